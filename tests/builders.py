"""Builders shared by the test modules: tiny synthetic corpora, presets, runs logs and score
stores (no network, seconds to build). One copy of each; the test folders mirror the package.

The corpus follows the contract of ``mixsurrogate.corpus.store`` without using the corpus
builder: two domains with disjoint styles (words vs arithmetic), so an expert clearly prefers
its own domain after a few dozen steps, and one end-task set of prompt/answer items.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixsurrogate.corpus.store import (
    CORPUS_FORMAT,
    file_sha256,
    token_path,
    write_token_stream,
)
from mixsurrogate.mde.store import Budget, EvalSetScores, write_scores
from mixsurrogate.predictors.linear import LinearPredictor
from mixsurrogate.runs.fidelity import Fidelity
from mixsurrogate.runs.log import (
    RunsLog,
    validate_frame,
)
from mixsurrogate.runs.schedule import schedule_row
from mixsurrogate.simplex import Bounds, sobol_simplex

REPO = Path(__file__).resolve().parents[1]  # the checkout, for subprocesses that import it
EOS = "<|endoftext|>"
WORDS = "the cat dog sat ran on mat red big a and over under fox jumps lazy".split()


def words_doc(rng: random.Random) -> str:
    return " ".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + "." for _ in range(4)
    )


def sums_doc(rng: random.Random) -> str:
    parts = []
    for _ in range(6):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        parts.append(f"{a} + {b} = {a + b};")
    return " ".join(parts)


GENERATORS = {"words": words_doc, "sums": sums_doc}


def task_items(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        items.append({"prompt": f"the cat sat. {a} + {b} =", "answer": f" {a + b};"})
    return items


def tiny_preset(path: Path, **overrides: dict) -> Path:
    """A TOML preset for tests: 2 layers, n_embd 32, context 32, a few dozen steps."""
    sections = {
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "context": 32},
        "train": {
            "batch_size": 8, "tokens": 8 * 32 * 40, "lr": 1e-2, "min_lr": 1e-3,
            "warmup_steps": 4, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95,
            "grad_clip": 1.0, "checkpoint_every": 10,
        },
        "eval": {"val_sequences": 6, "task_items": 12, "batch_size": 4},
    }  # fmt: skip
    for section, values in overrides.items():
        sections[section] = {**sections[section], **values}
    lines = ['description = "test preset"']
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v!r}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def make_corpus(
    root: Path,
    docs: dict[str, int] | None = None,
    val_docs: int = 12,
    tasks: int = 12,
    vocab_size: int = 300,
    seed: int = 0,
) -> Path:
    """Write a corpus directory; ``docs`` maps each domain (a GENERATORS key) to train documents.

    A domain with 0 documents gets empty token streams (for the bad-input tests).
    """
    docs = {"words": 120, "sums": 120} if docs is None else docs
    rng = random.Random(seed)
    texts = {
        d: {
            "train": [GENERATORS[d.split("_")[0]](rng) for _ in range(n)],
            "val": [GENERATORS[d.split("_")[0]](rng) for _ in range(val_docs if n else 0)],
        }
        for d, n in docs.items()
    }
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([t for d in texts.values() for t in d["train"]], trainer)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(root / "tokenizer.json"))
    eos = tokenizer.token_to_id(EOS)
    domains = {}
    for d, splits in texts.items():
        counts = {}
        for split, documents in splits.items():
            ids: list[int] = []
            for doc in documents:
                ids += tokenizer.encode(doc).ids + [eos]
            write_token_stream(token_path(root, d, split), np.array(ids, dtype=np.int64))
            counts[split] = len(ids)
        domains[d] = {"documents": {s: len(v) for s, v in splits.items()}, "tokens": counts}
    manifest = {
        "format": CORPUS_FORMAT,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": file_sha256(root / "tokenizer.json"),
            "vocab_size": tokenizer.get_vocab_size(),
            "eos_id": eos,
        },
        "domains": domains,
        "tasks": {},
    }
    if tasks:
        (root / "tasks").mkdir(exist_ok=True)
        with open(root / "tasks" / "qa.jsonl", "w", encoding="utf-8") as handle:
            for item in task_items(tasks):
                handle.write(json.dumps(item) + "\n")
        manifest["tasks"]["qa"] = {"file": "tasks/qa.jsonl", "items": tasks}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def two_bowls_log(n: int = 40, k: int = 4, seed: int = 0) -> RunsLog:
    """Two losses with a known interior optimum: quadratic bowls around fixed mixtures."""
    W = sobol_simplex(n, k, seed=seed)
    centre_a = np.array([0.4, 0.3, 0.2, 0.1])[:k]
    centre_b = np.array([0.1, 0.2, 0.3, 0.4])[:k]
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(k)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    frame["loss:a"] = 2.0 + 5 * ((W - centre_a) ** 2).sum(axis=1)
    frame["loss:b"] = 3.0 + 5 * ((W - centre_b) ** 2).sum(axis=1)
    return RunsLog(frame)


def noisy_log(
    n: int = 30, k: int = 4, targets: int = 3, seed: int = 0, domain_target: bool = False
) -> RunsLog:
    """Losses s0, s1, ... (no domain has their name) and, optionally, d0 (a domain's own)."""
    rng = np.random.default_rng(seed)
    W = sobol_simplex(n, k, seed=seed)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(k)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    for t in range(targets):
        slope = rng.normal(0, 1, k)
        frame[f"loss:s{t}"] = 3.0 + np.sqrt(W) @ slope + rng.normal(0, 0.05, n)
    if domain_target:
        frame["loss:d0"] = 2.0 / (W[:, 0] + 0.01) ** 0.1 + rng.normal(0, 0.01, n)
    return RunsLog(frame)


def copy_corpus(corpus_dir: Path, tmp_path: Path) -> Path:
    """A copy of a built corpus to damage in one test."""
    copy = tmp_path / "corpus"
    shutil.copytree(corpus_dir, copy)
    return copy


STORE_EXPERTS = ["code", "books", "web"]


def score_store(path: Path) -> Path:
    """A score store of 3 experts, a validation set ``val_code`` and a task set ``qa``."""
    rng = np.random.default_rng(0)
    sets = {}
    for name, kind in (("val_code", "val"), ("qa", "task")):
        logp = -rng.gamma(2.0, 1.0, size=(len(STORE_EXPERTS), 4, 6)).astype(np.float32)
        mask = rng.random((4, 6)) < 0.8
        sets[name] = EvalSetScores(name, kind, logp, mask)
    return write_scores(path, STORE_EXPERTS, sets, seq_len=6, tokenizer_sha256="t", eval_id="e")


STORE_BUDGETS = tuple(Budget(f, int(f * 4096)) for f in (0.125, 0.25, 0.5, 1.0))


def budget_score_store(path: Path, dtype: str = "float32") -> Path:
    """``score_store``'s experts and sets with budget snapshots (``STORE_BUDGETS``): log-probs
    that improve with the budget, as ``experts score`` writes them after ``--checkpoints``."""
    rng = np.random.default_rng(0)
    sets = {}
    for name, kind in (("val_code", "val"), ("qa", "task")):
        full = -rng.gamma(2.0, 1.0, size=(len(STORE_EXPERTS), 4, 6))
        snaps = tuple(
            (full - (1 - b.fraction) * rng.gamma(1.5, 0.6, size=full.shape)).astype(np.float32)
            for b in STORE_BUDGETS[:-1]
        )
        mask = rng.random((4, 6)) < 0.8
        mask[:, 0] = True
        sets[name] = EvalSetScores(name, kind, full.astype(np.float32), mask, snaps)
    return write_scores(
        path, STORE_EXPERTS, sets, seq_len=6, tokenizer_sha256="t", eval_id="e",
        dtype=dtype, budgets=STORE_BUDGETS,
    )  # fmt: skip


def random_log(domains: list[str], targets: list[str], n: int = 5) -> RunsLog:
    """A validated runs log of ``n`` Dirichlet mixtures with random losses."""
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(len(domains)), size=n)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate(domains):
        frame[f"w:{d}"] = W[:, j]
    for t in targets:
        frame[f"loss:{t}"] = 3.0 + rng.random(n)
    return RunsLog(validate_frame(frame))


def one_line(err: pytest.ExceptionInfo) -> str:
    """The raised error's message, asserted to be one line."""
    message = str(err.value)
    assert "\n" not in message
    return message


def cli_error_line(command: click.Command, args: list[str], exit_code: int | None = None) -> str:
    """Run a CLI command that must fail with one ``Error: ...`` line (and exit ``exit_code``)."""
    result = CliRunner().invoke(command, args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert exit_code is None or result.exit_code == exit_code, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def partial_log(n: int = 30, pending: int = 2, missing_y: int = 12, seed: int = 0) -> RunsLog:
    """Three domains, two sets: ``y`` measured on ``n - pending - missing_y`` runs only."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), n)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = 3.0 - W[:, 0] + 0.3 * W[:, 2] ** 2 + 0.01 * rng.normal(size=n)
    frame["loss:y"] = 3.0 - W[:, 1] + 0.01 * rng.normal(size=n)
    frame.loc[frame.index[pending : pending + missing_y], "loss:y"] = np.nan
    frame.loc[frame.index[:pending], ["loss:x", "loss:y"]] = np.nan
    return RunsLog(validate_frame(frame))


def fidelity_log(params, tokens=None) -> RunsLog:
    """Three domains, one set, and ``params``/``tokens`` fidelity columns."""
    n = len(params)
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), n)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = 3 + W[:, 0]
    frame["params"] = params
    frame["tokens"] = tokens if tokens is not None else [1e9] * n
    return RunsLog(frame)


def two_scale_log(n_small=40, n_large=12, seed=0) -> RunsLog:
    """A synthetic two-scale log: the same mixture effect at both scales, shifted and shrunk."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), n_small + n_large)  # noqa: N806
    large = np.arange(len(W)) >= n_small
    effect = np.sin(3 * W[:, 0]) + W[:, 1] ** 2
    loss = np.where(large, 3.0 + 0.3 * effect, 5.0 + effect) + 0.005 * rng.standard_normal(len(W))
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(W))]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = loss
    frame["params"] = np.where(large, 1e9, 1e6)
    frame["tokens"] = np.where(large, 2e10, 1e9)
    return RunsLog(frame)


class SpyPredictor(LinearPredictor):
    """A linear predictor that records every loss it is fitted on."""

    name = "spy"
    seen: list[float] = []

    def _fit(self, W, y, features):  # noqa: N803
        SpyPredictor.seen.extend(np.round(y, 12).tolist())
        super()._fit(W, y, features)


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "qua", "fen", "dor", "gil"]


# corpus build options for tests: a small vocabulary, small domains
FAST_BUILD = {"vocab_size": 300, "min_train_tokens": 64, "progress": False}


def sentences(seed: int, n: int) -> str:
    """Made-up prose: deterministic words from syllables, no third-party text."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [
            "".join(rng.choices(SYLLABLES, k=rng.randint(1, 3))) for _ in range(rng.randint(4, 12))
        ]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def split_stream(ids: np.ndarray, eos: int) -> list[list[int]]:
    """A token stream cut at its end-of-document ids (the last document has none after it)."""
    docs, current = [], []
    for token in ids.tolist():
        if token == eos:
            docs.append(current)
            current = []
        else:
            current.append(token)
    return [*docs, current]


#: a three-domain multi-scale world: two proxy sizes and the target
SMALL, MID, TARGET = Fidelity(1e6, 1e9), Fidelity(6e7, 1e9), Fidelity(1e9, 2.5e10)


def multiscale_truth(W: np.ndarray, fid: Fidelity) -> np.ndarray:  # noqa: N803
    """Same optimum at every scale (near w = (0.6, 0.3, 0.1)), lower loss at larger scale."""
    level = 5.0 - 0.7 * (np.log10(fid.params) - 6)
    return level + (W - [0.6, 0.3, 0.1]) ** 2 @ np.ones(3)


def multiscale_runs(
    n_small: int = 12, n_mid: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, fidelity features, losses) of ``n_small`` SMALL and ``n_mid`` MID runs."""
    W = Bounds.unbounded(3).sample(n_small + n_mid, seed=seed)  # noqa: N806
    fids = [SMALL] * n_small + [MID] * n_mid
    F = np.array([f.features() for f in fids])  # noqa: N806
    y = np.concatenate([multiscale_truth(W[i : i + 1], f) for i, f in enumerate(fids)])
    return W, F, y


def schedule_truth(weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """A loss that depends on *when* domain a is seen: phase 2's share of a lowers it twice as
    much as the effective mixture's, so runs with one effective mixture differ in loss."""
    effective = np.einsum("np,npk->nk", shares, weights)
    return 3.0 - 0.8 * weights[:, -1, 0] + 0.4 * effective[:, 1] + 0.2 * effective[:, 0]


def schedule_log(n: int = 40, seed: int = 0, noise: float = 0.005) -> RunsLog:
    """Two-phase runs over domains a, b, c with losses from ``schedule_truth`` (plus noise)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(3), size=(n, 2))
    last = rng.uniform(0.1, 0.5, size=n)
    shares = np.column_stack([1 - last, last])
    y = schedule_truth(weights, shares) + noise * rng.standard_normal(n)
    rows = [
        {"run_id": f"s{i}", **schedule_row(weights[i], shares[i], ["a", "b", "c"]),
         "loss:web": float(y[i]), "tokens": 1_000_000}
        for i in range(n)
    ]  # fmt: skip
    return RunsLog(validate_frame(pd.DataFrame(rows)))


def hetero_noise_log(
    repeated: int = 10, seeds: int = 4, single: int = 30, seed: int = 0
) -> tuple[RunsLog, np.ndarray]:
    """Runs whose seed noise depends on the mixture, and that noise's true std per run.

    ``repeated`` mixtures trained ``seeds`` times (same weights, other seeds, as a seeds log)
    and ``single`` mixtures once, over three domains; set ``x`` has a smooth mixture effect and
    seed noise std 0.005 + 0.15 w_a^2 (0.005 without domain a, 0.155 on it alone).
    """
    rng = np.random.default_rng(seed)
    W = Bounds.unbounded(3).sample(repeated + single, seed=seed)  # noqa: N806
    W = np.array([w for w in W[:repeated] for _ in range(seeds)] + list(W[repeated:]))  # noqa: N806
    std = 0.005 + 0.15 * W[:, 0] ** 2
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(W))]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = 3 + np.sin(3 * W[:, 0]) + W[:, 1] ** 2 + std * rng.standard_normal(len(W))
    frame["seed"] = [i % seeds for i in range(repeated * seeds)] + [0] * single
    return RunsLog(frame), std


#: a ``runs train`` preset's facts: model parameters, tokens of a whole run, steps
EVAL_EVERY_PARAMS, EVAL_EVERY_TOKENS, EVAL_EVERY_STEPS = 173824, 1048576, 16


def eval_every_log(
    n_runs: int = 6, checkpoints: int = 3, in_flight: int = 0, seed: int = 0
) -> RunsLog:
    """A log shaped like ``runs train --eval-every`` output: each run's row (logged pending when
    its training starts, filled in when it ends), then its checkpoint rows ``<run>@<tokens>``
    (after 1/4, 2/4, 3/4 of its steps, appended as they are evaluated), the last
    ``in_flight`` runs still training (their checkpoints logged, their final row pending with
    no loss, params or tokens, as ``runs train`` logs it). Loss falls with tokens; the
    mixture effect (optimum near (0.6, 0.3, 0.1)) is the same at every checkpoint."""
    rng = np.random.default_rng(seed)
    W = Bounds.unbounded(3).sample(n_runs, seed=seed)  # noqa: N806
    rows = []
    for i, w in enumerate(W):
        effect = float(((w - [0.6, 0.3, 0.1]) ** 2).sum())
        pending = i >= n_runs - in_flight
        for c in [checkpoints + 1, *range(1, checkpoints + 1)]:
            final = c == checkpoints + 1
            steps = EVAL_EVERY_STEPS * c // (checkpoints + 1)
            tokens = EVAL_EVERY_TOKENS * c // (checkpoints + 1)
            loss = 5.0 + 0.5 * (EVAL_EVERY_TOKENS / tokens - 1) + effect + 0.003 * rng.normal()
            note = "preset=tiny-cpu" + (
                "" if final else f"; intermediate checkpoint of r{i} at step {steps} of "
                f"{EVAL_EVERY_STEPS} (learning rate not yet decayed)"
            )  # fmt: skip
            row = {"run_id": f"r{i}" if final else f"r{i}@{tokens}"}
            row |= {f"w:{d}": w[j] for j, d in enumerate("abc")}
            row |= {"loss:val": loss, "params": EVAL_EVERY_PARAMS, "tokens": tokens}
            row |= {"steps": steps, "seed": 0, "notes": note}
            if final and pending:
                row |= {"loss:val": None, "params": None, "tokens": None, "steps": None}
                row["notes"] = "preset=tiny-cpu; in flight (runs train)"
            rows.append(row)
    return RunsLog(validate_frame(pd.DataFrame(rows)))
