"""Experts -> score store: every expert's log-probabilities on the same evaluation sequences.

An expert is one trained here (``experts train``) or a user's own Hugging Face causal LM recorded
by ``experts import`` (:mod:`.hf_import`); both are scored by the same :func:`token_logprobs`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..corpus.evalsets import build_eval_suite
from ..corpus.store import Corpus
from ..errors import ScoreStoreError
from ..mde.store import Budget, EvalSetScores, write_scores
from .hf_import import is_imported, load_causal_lm, recheck_imported
from .lm_eval import token_logprobs
from .model import load_trained, select_device
from .presets import preset_from_dict
from .publish import read_expert_meta
from .snapshots import SNAPSHOT_FOLDER, snapshot_name

IMPORTED_FACTS = ("model_dir", "model_type", "architectures", "model_dtype", "tokenizer")


def find_experts(experts_dir: Path, corpus: Corpus) -> list[tuple[str, Path, dict]]:
    """Finished experts in corpus domain order, checked against the corpus tokenizer."""
    found = []
    for domain in corpus.domains:
        meta = read_expert_meta(experts_dir / domain)
        if meta is not None:
            found.append((domain, experts_dir / domain, meta))
    if not found:
        raise ScoreStoreError(
            f"{experts_dir}: no finished expert for any corpus domain "
            f"({', '.join(corpus.domains)}); train them with 'mixsurrogate experts train' "
            "or record your own models with 'mixsurrogate experts import'"
        )
    for domain, _, meta in found:
        if meta.get("tokenizer_sha256") != corpus.tokenizer_sha256:
            raise ScoreStoreError(
                f"expert {domain!r} was trained with tokenizer {str(meta.get('tokenizer_sha256'))[:12]}, "
                f"the corpus has {corpus.tokenizer_sha256[:12]}: score with the corpus it was trained on"
            )
    hashes = {meta["preset_sha256"] for _, _, meta in found}
    if len(hashes) > 1:
        raise ScoreStoreError(f"{experts_dir}: experts of different presets cannot share a store")
    imported = [(d, meta) for d, _, meta in found if is_imported(meta)]
    if imported:  # every model folder checked again before any is scored
        context = int(found[0][2]["preset"]["model"]["context"])
        recheck_imported(imported, corpus, context)
    return found


def load_expert(folder: Path, meta: dict, device, step: int | None = None):
    """The model of a trained expert or of an imported one (its folder is named in ``meta``);
    ``step``: its budget snapshot of that step instead (trained experts only)."""
    if is_imported(meta):
        return load_causal_lm(Path(meta["model_dir"]), device, meta.get("model_dtype", "float32"))
    if step is not None and step != meta.get("steps"):
        return load_trained(folder, device, f"{SNAPSHOT_FOLDER}/{snapshot_name(step)}")
    return load_trained(folder, device)  # ExpertError names a damaged file and the fix


def expert_budgets(experts: list[tuple[str, Path, dict]]) -> tuple[list[int], tuple[Budget, ...]]:
    """(steps, budgets) of the snapshots every expert has (``experts train --checkpoints``):
    empty when none has any; one line when some differ, since a store's budgets are shared."""
    lists = [meta.get("snapshots") for _, _, meta in experts]
    if not any(lists):
        return [], ()
    keys = [[(r["step"], r["fraction"], r["tokens"]) for r in x] if x else [] for x in lists]
    if any(k != keys[0] for k in keys):
        odd = next(d for (d, _, _), k in zip(experts, keys, strict=True) if k != keys[0])
        raise ScoreStoreError(
            f"expert {odd!r} has other budget snapshots than expert {experts[0][0]!r}: a score "
            "store's budgets are shared; train every expert with the same --checkpoints"
        )
    return [k[0] for k in keys[0]], tuple(Budget(float(f), int(t)) for _, f, t in keys[0])


def score_experts(
    experts_dir: str | Path,
    corpus_dir: str | Path,
    out: str | Path,
    device: str = "auto",
    dtype: str = "float32",
    progress: bool = True,
) -> Path:
    """Write the score store of every finished expert in ``experts_dir`` to ``out``."""
    corpus = Corpus.load(corpus_dir)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ScoreStoreError(f"{out}: exists and is not empty; choose a new folder")
    experts = find_experts(Path(experts_dir), corpus)
    preset = preset_from_dict(experts[0][2]["preset"], experts[0][2]["preset"]["name"])
    suite = build_eval_suite(
        corpus, preset.model.context, preset.eval.val_sequences, preset.eval.task_items
    )
    dev = select_device(device)
    steps, budgets = expert_budgets(experts)
    points = steps or [None]  # budget snapshots, the last the expert itself
    logp = {
        name: np.empty((len(points), len(experts), *s.mask.shape), np.float32)
        for name, s in suite.sets.items()
    }
    # a context manager: a damaged model file closes the bar before its one-line error prints
    with tqdm(
        total=len(experts) * len(suite.sets) * len(points),
        desc="score",
        disable=not progress,
        leave=False,
    ) as bar:
        for i, (domain, folder, meta) in enumerate(experts):
            for b, step in enumerate(points):
                model = load_expert(folder, meta, dev, step)
                for name, seqs in suite.sets.items():
                    bar.set_postfix(expert=domain, set=name, step=step, refresh=False)
                    logp[name][b, i] = token_logprobs(model, seqs, preset.eval.batch_size, dev)
                    bar.update(1)
    sets = {
        name: EvalSetScores(name, s.kind, logp[name][-1], s.mask, tuple(logp[name][:-1]))
        for name, s in suite.sets.items()
    }
    provenance = {
        "tool": f"mixsurrogate {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "corpus": str(corpus.root.resolve()),
        "preset": preset.to_dict(),
        "preset_sha256": preset.sha256,
        "experts": {
            domain: {
                **{
                    k: meta.get(k)
                    for k in ("seed", "steps", "tokens", "params", "final_train_loss")
                },
                **{k: meta[k] for k in (*IMPORTED_FACTS, "snapshots") if k in meta},
            }
            for domain, _, meta in experts
        },
        "device": str(dev),
        "eval_sets": {name: s.facts() for name, s in suite.sets.items()},
    }
    return write_scores(
        out,
        [d for d, _, _ in experts],
        sets,
        seq_len=preset.model.context,
        tokenizer_sha256=corpus.tokenizer_sha256,
        eval_id=suite.eval_id,
        provenance=provenance,
        dtype=dtype,
        budgets=budgets,
    )
