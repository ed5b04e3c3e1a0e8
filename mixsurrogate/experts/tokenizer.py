"""Byte-level BPE tokenizer of a corpus: trained offline on the training split, exact round trip.

Byte level means every string encodes (no unknown token) and ``decode(encode(s)) == s``; the
only special token is the end-of-text marker that separates documents in the token streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import CorpusError

EOS_TOKEN = "<|endoftext|>"
MIN_VOCAB = 256 + 1  # every byte plus the end-of-text token
MAX_VOCAB = 1 << 16  # token streams are uint16


def check_vocab_size(vocab_size: int) -> None:
    """Refuse sizes that cannot hold the byte alphabet or do not fit a uint16 stream."""
    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise CorpusError(
            f"vocab size {vocab_size} out of range: byte-level BPE needs {MIN_VOCAB}..{MAX_VOCAB} (uint16 streams)"
        )


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, length: int | None = None
) -> Tokenizer:
    """Train a GPT-2-style byte-level BPE with ``EOS_TOKEN`` as the only special token.

    The trainer's own progress bar stays off: it writes to stdout, which ``--json`` keeps clean.
    """
    check_vocab_size(vocab_size)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=length)
    return tokenizer


def eos_id(tokenizer: Tokenizer) -> int:
    token_id = tokenizer.token_to_id(EOS_TOKEN)
    if token_id is None:
        raise CorpusError(f"tokenizer has no {EOS_TOKEN!r} token")
    return int(token_id)


def encode_documents(
    tokenizer: Tokenizer, documents: Sequence[str], *, batch_size: int = 512
) -> np.ndarray:
    """One stream of all documents with the end-of-text id between them (int64)."""
    eos = eos_id(tokenizer)
    # encode_batch_fast (tokenizers >= 0.21) skips the offsets we never use
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    pieces: list[np.ndarray] = []
    for start in range(0, len(documents), batch_size):
        batch = documents[start : start + batch_size]
        for encoding in encode(list(batch), add_special_tokens=False):
            if pieces:
                pieces.append(np.array([eos], dtype=np.int64))
            pieces.append(np.asarray(encoding.ids, dtype=np.int64))
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(pieces)


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    tokenizer.save(str(path))


def load_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
