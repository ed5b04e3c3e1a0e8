"""Builders shared by the test modules: tiny synthetic corpora, presets, runs logs and score
stores (no network, seconds to build). One copy of each; the test folders mirror the package.

The corpus follows the contract of ``mixsurrogate.corpus.store`` without using the corpus
builder: two domains with disjoint styles (words vs arithmetic), so an expert clearly prefers
its own domain after a few dozen steps, and one end-task set of prompt/answer items.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixsurrogate.corpus.store import (
    CORPUS_FORMAT,
    file_sha256,
    token_path,
    write_token_stream,
)

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
