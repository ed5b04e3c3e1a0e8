"""The fixed evaluation sequences that experts score and proxy runs are evaluated on.

* Validation domain ``d`` (kind ``val``): N non-overlapping windows of ``context + 1`` tokens
  spread evenly over its whole validation stream (not its first N windows, which would cover one
  or two documents of a domain with long documents); every predicted token counts.
* Task set ``t`` (kind ``task``): per item, the end-of-text id, the prompt tokens, then the answer
  tokens (prompt and answer tokenized separately, the prompt left-truncated to fit the context),
  padded with the end-of-text id to the longest item; only the answer tokens count. An answer
  longer than the context keeps its first ``context`` tokens, and the set counts such items.

Position ``j`` of a sequence predicts token ``j + 1`` from tokens ``0..j``, so ``tokens`` has one
column more than ``mask``. The ``eval_id`` hashes the tokenizer and every array, so a score store
and a runs log can be checked to come from the same sequences.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import CorpusError
from .store import Corpus, check_token_ids

EVAL_FORMAT = "mixsurrogate-evalsets/2"  # 2: validation windows spread over the stream


@dataclass
class EvalSequences:
    """One evaluation set: ``tokens`` (S, P + 1) int64 and ``mask`` (S, P) bool."""

    name: str
    kind: str
    tokens: np.ndarray
    mask: np.ndarray
    documents: int | None = None  # validation documents the windows touch
    documents_available: int | None = None  # documents in the validation stream
    answers_truncated: int = 0  # task items whose answer was cut to fit the context

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())

    def facts(self) -> dict:
        """What the set covers, for manifests and reports."""
        facts = {"kind": self.kind, "sequences": len(self.tokens), "tokens": self.n_tokens}
        if self.kind == "val":
            facts |= {"documents": self.documents, "documents_available": self.documents_available}
        else:
            facts["answers_truncated"] = self.answers_truncated
        return facts


@dataclass
class EvalSuite:
    """Every evaluation set of a corpus at one context length, in a fixed order."""

    sets: dict[str, EvalSequences]
    context: int
    tokenizer_sha256: str
    eval_id: str

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, s in self.sets.items() if kind is None or s.kind == kind]


def val_windows(
    stream: np.ndarray, count: int, context: int, name: str, eos_id: int | None = None
) -> EvalSequences:
    """``count`` windows whose starts are evenly spaced over the stream (floor of a linspace:
    consecutive starts are at least one window apart, so windows never overlap)."""
    span = context + 1
    n = min(count, len(stream) // span)
    if n < 1:
        raise CorpusError(
            f"validation stream of {name!r} has {len(stream)} tokens, "
            f"fewer than one evaluation window ({span})"
        )
    starts = np.floor(np.linspace(0, len(stream) - span, n)).astype(np.int64)
    tokens = np.stack([np.asarray(stream[s : s + span], dtype=np.int64) for s in starts])
    documents = available = None
    if eos_id is not None:
        is_eos = np.asarray(stream) == eos_id  # documents are joined by end-of-text ids
        doc_of = np.concatenate([[0], np.cumsum(is_eos)[:-1]])  # an id ends its document
        available = int(doc_of[-1]) + 1
        touched = [np.unique(doc_of[s : s + span]) for s in starts]
        documents = len(np.unique(np.concatenate(touched)))
    return EvalSequences(
        name, "val", tokens, np.ones((n, context), dtype=bool), documents, available
    )


def task_sequences(
    encoded: list[tuple[list[int], list[int]]], context: int, eos_id: int, name: str
) -> EvalSequences:
    """Pack (prompt ids, answer ids) pairs; items with an empty answer are an error."""
    if not encoded:
        raise CorpusError(f"task set {name!r} has no items")
    span = context + 1
    rows = []
    truncated = 0
    for i, (prompt, answer) in enumerate(encoded):
        if not answer:
            raise CorpusError(f"task set {name!r}: item {i} has an empty answer")
        truncated += len(answer) > span - 1
        answer = answer[: span - 1]  # at least one token of context before the answer
        prompt = ([eos_id] + list(prompt))[-(span - len(answer)) :]
        rows.append((prompt, answer))
    width = max(len(p) + len(a) for p, a in rows)
    tokens = np.full((len(rows), width), eos_id, dtype=np.int64)
    mask = np.zeros((len(rows), width - 1), dtype=bool)
    for i, (prompt, answer) in enumerate(rows):
        tokens[i, : len(prompt)] = prompt
        tokens[i, len(prompt) : len(prompt) + len(answer)] = answer
        # position j predicts token j + 1: the answer tokens sit at len(prompt) .. end - 1
        mask[i, len(prompt) - 1 : len(prompt) + len(answer) - 1] = True
    return EvalSequences(name, "task", tokens, mask, answers_truncated=truncated)


def eval_id(tokenizer_sha256: str, sets: dict[str, EvalSequences]) -> str:
    digest = hashlib.sha256(f"{EVAL_FORMAT}\n{tokenizer_sha256}\n".encode())
    for name, s in sets.items():
        digest.update(f"{name}\n{s.kind}\n{s.tokens.shape}\n".encode())
        digest.update(np.ascontiguousarray(s.tokens, dtype="<i8").tobytes())
        digest.update(np.packbits(s.mask).tobytes())
    return digest.hexdigest()


def build_eval_suite(
    corpus: Corpus, context: int, val_sequences: int, task_items: int
) -> EvalSuite:
    """Validation windows of every corpus domain, then the answer tokens of every task set."""
    clash = set(corpus.domains) & set(corpus.tasks)
    if clash:
        raise CorpusError(f"names used by both a domain and a task set: {', '.join(sorted(clash))}")
    sets: dict[str, EvalSequences] = {}
    for domain in corpus.domains:
        sets[domain] = val_windows(
            corpus.tokens(domain, "val"), val_sequences, context, domain, corpus.eos_id
        )
        where = f"validation stream of domain {domain!r}"
        check_token_ids(sets[domain].tokens, corpus.vocab_size, where)
    if corpus.tasks:
        tokenizer = corpus.tokenizer()
        for task in corpus.tasks:
            items = corpus.task_items(task)[:task_items]
            try:
                encoded = [
                    (
                        tokenizer.encode(str(it["prompt"]), add_special_tokens=False).ids,
                        tokenizer.encode(str(it["answer"]), add_special_tokens=False).ids,
                    )
                    for it in items
                ]
            except (KeyError, TypeError) as err:
                raise CorpusError(f"task set {task!r}: items need 'prompt' and 'answer'") from err
            sets[task] = task_sequences(encoded, context, corpus.eos_id, task)
    return EvalSuite(sets, context, corpus.tokenizer_sha256, eval_id(corpus.tokenizer_sha256, sets))
