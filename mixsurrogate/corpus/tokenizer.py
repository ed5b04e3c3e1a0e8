"""Byte-level BPE tokenizer of a corpus: trained offline on the training split, exact round trip.

Byte level means every string encodes (no unknown token) and ``decode(encode(s)) == s``; the
only special token is the end-of-text marker that separates documents in the token streams.
``corpus build --tokenizer PATH`` uses an existing Hugging Face ``tokenizer.json`` instead
(:func:`load_user_tokenizer`); its end-of-text token is found by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import CorpusError

EOS_TOKEN = "<|endoftext|>"
MIN_VOCAB = 256 + 1  # every byte plus the end-of-text token
MAX_VOCAB = 1 << 32  # token streams are uint16 up to 65,536 ids, uint32 above
# end-of-text tokens of common tokenizers, tried in this order when --eos-token is not given
EOS_CANDIDATES = (EOS_TOKEN, "<|end_of_text|>", "</s>", "<eos>", "<|eot_id|>", "[SEP]")


def check_vocab_size(vocab_size: int) -> None:
    """Refuse sizes that cannot hold the byte alphabet or do not fit a uint32 stream."""
    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise CorpusError(
            f"vocab size {vocab_size} out of range: byte-level BPE needs {MIN_VOCAB}..{MAX_VOCAB} (uint32 streams)"
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


def eos_id(tokenizer: Tokenizer, token: str = EOS_TOKEN) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise CorpusError(f"tokenizer has no {token!r} token")
    return int(token_id)


def iter_encoded(
    tokenizer: Tokenizer,
    documents: Iterable[str],
    *,
    eos: int,
    eos_token: str = EOS_TOKEN,
    batch_size: int = 512,
) -> Iterator[np.ndarray]:
    """The stream of ``documents`` (end-of-text id between them) as int64 chunks, one per batch
    of at most ``batch_size`` documents: memory is one batch, whatever the number of documents.

    A literal end-of-text token inside a text is removed first (it would become a document
    break); :func:`..documents.clean_text` already removes the default one.
    """
    # encode_batch_fast (tokenizers >= 0.21) skips the offsets we never use
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    first = True
    batch: list[str] = []

    def flush() -> np.ndarray:
        nonlocal first
        pieces: list[np.ndarray] = []
        for encoding in encode(batch, add_special_tokens=False):
            if not first:
                pieces.append(np.array([eos], dtype=np.int64))
            first = False
            pieces.append(np.asarray(encoding.ids, dtype=np.int64))
        batch.clear()
        return np.concatenate(pieces)

    for text in documents:
        batch.append(text.replace(eos_token, "") if eos_token in text else text)
        if len(batch) == batch_size:
            yield flush()
    if batch:
        yield flush()


def encode_documents(
    tokenizer: Tokenizer, documents: Sequence[str], *, batch_size: int = 512
) -> np.ndarray:
    """One stream of all documents with the end-of-text id between them (int64)."""
    pieces = list(iter_encoded(tokenizer, documents, eos=eos_id(tokenizer), batch_size=batch_size))
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(pieces)


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    tokenizer.save(str(path))


def load_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def tokenizer_file(path: Path) -> Path:
    """``path`` itself, or ``path/tokenizer.json`` for a folder (a saved HF tokenizer)."""
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise CorpusError(
            f"--tokenizer {path}: no tokenizer.json there (give a tokenizer.json file or a folder holding one)"
        )
    return file


def _configured_eos(file: Path) -> str | None:
    """``eos_token`` of a ``tokenizer_config.json`` beside the file (transformers' layout)."""
    config = file.parent / "tokenizer_config.json"
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("eos_token")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def load_user_tokenizer(path: Path, eos_token: str | None = None) -> tuple[Tokenizer, Path, str]:
    """An existing HF tokenizer (no hub: a local file) with its end-of-text token: ``eos_token``
    if given, else the ``eos_token`` of a ``tokenizer_config.json`` beside it, else the first of
    :data:`EOS_CANDIDATES` it knows. Returns the tokenizer, its file and that token."""
    file = tokenizer_file(path)
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as err:  # the Rust side raises plain Exception
        raise CorpusError(f"--tokenizer {file}: not a Hugging Face tokenizer.json ({err})") from err
    if eos_token is not None:
        eos_id(tokenizer, eos_token)  # one clear line when it is not in the vocabulary
        return tokenizer, file, eos_token
    configured = _configured_eos(file)
    for token in (configured, *EOS_CANDIDATES):
        if token is not None and tokenizer.token_to_id(token) is not None:
            return tokenizer, file, token
    raise CorpusError(
        f"--tokenizer {file}: no end-of-text token found (tried {', '.join(EOS_CANDIDATES)}); "
        "name it with --eos-token"
    )
