"""Your own experts: any ``transformers`` causal LM saved with ``save_pretrained``, one per domain.

``experts import`` checks every model folder and records it as ``EXPERTS/<domain>/meta.json``
(format :data:`HF_EXPERT_FORMAT`, pointing at the folder: weights are not copied); ``experts
score`` then scores it exactly as a trained expert, on the corpus evaluation sequences.

Tokenizer rule (the "shared tokenizer" option, not per-model tokenizers aligned per token): the
evaluation sequences are token ids of the corpus tokenizer, and a score store holds one
log-probability per position of those ids, so every expert must read the same ids. A model
folder that holds tokenizer files must hold the corpus tokenizer (same vocabulary, same ids, same
encodings of probe texts); one without tokenizer files is taken to use the corpus tokenizer (its
vocabulary size is still checked). Aligning each model's own tokenization to a reference one
would make a position's log-probability a sum over a variable number of the model's tokens, so
the MDE mixture of per-token probabilities (the method's premise) would no longer be defined.

Safety: weights are read from safetensors only (``use_safetensors=True``) and model code from
``transformers`` only (no ``trust_remote_code``), so an imported folder can never run code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from .. import __version__
from ..corpus.store import Corpus
from ..errors import CorpusError, ExpertError
from ..files import atomic_write_text
from .presets import Preset

HF_EXPERT_FORMAT = "mixsurrogate-hf-expert/1"
MODEL_DTYPES = ("float32", "bfloat16", "float16")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model",
)  # fmt: skip
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5")
PROBE_TEXTS = (
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "def mean(xs):\n    return sum(xs) / len(xs)  # 3.14159\n",
    "  Ünïcödé — “quotes”, tabs\tand 12,345 numbers.",
)
PROBE_TOKENS = 256  # tokens of each corpus domain's validation stream decoded into a probe text


def parse_model_args(args: tuple[str, ...] | list[str]) -> list[tuple[str, Path]]:
    """``DIR`` (domain = the folder's name) or ``DOMAIN=DIR``, in the order given."""
    models: list[tuple[str, Path]] = []
    for arg in args:
        domain, sep, folder = arg.partition("=")
        path = Path(folder if sep else arg)
        name = domain if sep else path.resolve().name
        if not name:
            raise ExpertError(f"{arg!r}: give a model folder as DIR or DOMAIN=DIR")
        if name in (d for d, _ in models):
            raise ExpertError(f"domain {name!r} is given two models; one model per domain")
        models.append((name, path))
    if not models:
        raise ExpertError("no model folder given: DIR... or DOMAIN=DIR...")
    return models


@dataclass
class ModelFacts:
    """What the checks read from one model folder, before any weights are loaded."""

    domain: str
    folder: Path
    model_type: str
    architectures: list[str]
    vocab_size: int
    max_positions: int | None
    params: int
    has_tokenizer: bool


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def read_model_facts(domain: str, folder: Path) -> ModelFacts:
    """Check one folder (config, safetensors weights, a causal LM architecture); read its facts."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoConfig  # here: seconds to import

    if not folder.is_dir():
        raise ExpertError(f"model {domain!r}: {folder} is not a folder")
    if not (folder / "config.json").is_file():
        raise ExpertError(
            f"model {domain!r}: {folder} has no config.json; save the model with "
            "model.save_pretrained(DIR)"
        )
    weights = _weight_files(folder)
    if not weights:
        pickled = [n for n in PICKLE_WEIGHTS if (folder / n).is_file()]
        held = f"holds only {', '.join(pickled)}" if pickled else "holds no *.safetensors weights"
        raise ExpertError(
            f"model {domain!r}: {folder} {held}; mixsurrogate loads safetensors only (no pickle): "
            "re-save it with model.save_pretrained(DIR, safe_serialization=True)"
        )
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise ExpertError(
            f"model {domain!r}: {folder / 'config.json'}: unreadable ({err})"
        ) from err
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ExpertError(
            f"model {domain!r}: {folder} is a {config.model_type!r} model, which "
            "transformers' AutoModelForCausalLM does not load (a causal LM is needed)"
        )
    text = config.get_text_config()
    vocab = getattr(text, "vocab_size", None)
    if not isinstance(vocab, int):
        raise ExpertError(f"model {domain!r}: {folder / 'config.json'} has no vocab_size")
    positions = getattr(text, "max_position_embeddings", None)
    return ModelFacts(
        domain,
        folder,
        str(config.model_type),
        list(getattr(config, "architectures", None) or []),
        vocab,
        positions if isinstance(positions, int) else None,
        _count_params(weights, domain),
        any((folder / n).is_file() for n in TOKENIZER_FILES),
    )


def _count_params(weights: list[Path], domain: str) -> int:
    """Parameters from the safetensors headers alone (no tensor is read)."""
    total = 0
    for path in weights:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                    n = 1
                    for d in handle.get_slice(key).get_shape():
                        n *= d
                    total += n
        except Exception as err:  # safetensors raises its own error types for damaged files
            raise ExpertError(f"model {domain!r}: {path}: unreadable safetensors ({err})") from err
    return total


def check_shapes(facts: ModelFacts, corpus: Corpus, context: int) -> None:
    """A model must embed every corpus token id and attend over a whole evaluation sequence."""
    if facts.vocab_size < corpus.vocab_size:
        raise ExpertError(
            f"model {facts.domain!r}: vocabulary of {facts.vocab_size:,} ids, the corpus "
            f"tokenizer has {corpus.vocab_size:,}: token ids >= {facts.vocab_size:,} would not "
            "embed; build the corpus with the models' tokenizer ('corpus build --tokenizer DIR')"
        )
    if facts.max_positions is not None and facts.max_positions < context:
        raise ExpertError(
            f"model {facts.domain!r}: at most {facts.max_positions} positions, the evaluation "
            f"sequences have {context} (the preset's context); use a preset with context <= "
            f"{facts.max_positions}"
        )


# --- tokenizers ---------------------------------------------------------------------------------


@dataclass
class TokenizerView:
    """What two tokenizers are compared on: the vocabulary and the ids of probe texts."""

    vocab: dict[str, int]
    probes: list[list[int]]

    @property
    def sha256(self) -> str:
        text = json.dumps([sorted(self.vocab.items()), self.probes])
        return hashlib.sha256(text.encode()).hexdigest()


def probe_texts(corpus: Corpus) -> list[str]:
    """Fixed strings plus a stretch of every domain's validation text (real text of the corpus)."""
    tokenizer = corpus.tokenizer()
    texts = list(PROBE_TEXTS)
    for domain in corpus.domains:
        try:
            ids = corpus.tokens(domain, "val")[:PROBE_TOKENS]
        except CorpusError:  # an empty validation split: the fixed strings still probe
            continue
        texts.append(tokenizer.decode([int(i) for i in ids], skip_special_tokens=False))
    return texts


def corpus_view(corpus: Corpus, texts: list[str]) -> TokenizerView:
    tokenizer = corpus.tokenizer()
    return TokenizerView(
        tokenizer.get_vocab(with_added_tokens=True),
        [tokenizer.encode(t, add_special_tokens=False).ids for t in texts],
    )


def model_view(facts: ModelFacts, texts: list[str]) -> TokenizerView:
    """The model folder's own tokenizer, through ``AutoTokenizer`` (local files only)."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(facts.folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ExpertError(
            f"model {facts.domain!r}: the tokenizer files in {facts.folder} do not load ({err}); "
            f"remove them to score with the corpus tokenizer"
        ) from err
    return TokenizerView(
        dict(tokenizer.get_vocab()),
        [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts],
    )


def tokenizer_difference(a: TokenizerView, b: TokenizerView, texts: list[str]) -> str | None:
    """How two tokenizers differ, in words; None when they agree."""
    if len(a.vocab) != len(b.vocab):
        return f"vocabularies of {len(a.vocab):,} and {len(b.vocab):,} tokens"
    moved = sum(b.vocab.get(token) != i for token, i in a.vocab.items())
    if moved:
        return f"{moved:,} of {len(a.vocab):,} tokens have other ids"
    for text, x, y in zip(texts, a.probes, b.probes, strict=True):
        if x != y:
            return f"same vocabulary, but {text[:30]!r}... encodes differently"
    return None


def check_tokenizers(models: list[ModelFacts], corpus: Corpus) -> dict[str, str]:
    """All experts share one tokenizer and it is the corpus tokenizer; domain -> what was used."""
    with_files = [f for f in models if f.has_tokenizer]
    used = {f.domain: "corpus tokenizer (the folder has none)" for f in models}
    if not with_files:
        return used
    texts = probe_texts(corpus)
    views = {f.domain: model_view(f, texts) for f in with_files}
    first = with_files[0]
    for other in with_files[1:]:
        why = tokenizer_difference(views[first.domain], views[other.domain], texts)
        if why:
            raise ExpertError(
                f"experts {first.domain!r} ({first.folder}) and {other.domain!r} "
                f"({other.folder}) have different tokenizers ({why}); all experts must share "
                "the corpus tokenizer"
            )
    why = tokenizer_difference(views[first.domain], corpus_view(corpus, texts), texts)
    if why:
        raise ExpertError(
            f"model {first.domain!r}: its tokenizer ({first.folder}) is not the corpus "
            f"tokenizer ({corpus.tokenizer_path}): {why}; build the corpus with the models' "
            "tokenizer ('corpus build --tokenizer DIR'), so the evaluation sequences are ids "
            "the models read"
        )
    used |= {f.domain: "own tokenizer, identical to the corpus tokenizer" for f in with_files}
    return used


# --- import and load ----------------------------------------------------------------------------


def check_models(
    models: list[tuple[str, Path]], corpus: Corpus, context: int
) -> tuple[list[ModelFacts], dict[str, str]]:
    """Every check, for every model, before anything is written or scored."""
    corpus.check_domains([d for d, _ in models])
    facts = [read_model_facts(d, Path(folder)) for d, folder in models]
    for f in facts:
        check_shapes(f, corpus, context)
    return facts, check_tokenizers(facts, corpus)


def import_experts(
    models: list[tuple[str, Path]],
    corpus_dir: str | Path,
    out: str | Path,
    preset: Preset,
    model_dtype: str = "float32",
) -> list[dict]:
    """Record each checked model as ``out/<domain>/meta.json``; returns the metas written.

    ``preset`` fixes the evaluation sequences (context, validation windows, task items), so the
    score store matches runs logged with the same preset; its model shape is not used.
    """
    if model_dtype not in MODEL_DTYPES:
        raise ExpertError(f"model dtype {model_dtype!r}: choose one of {', '.join(MODEL_DTYPES)}")
    corpus = Corpus.load(corpus_dir)
    out = Path(out)
    facts, tokenizers = check_models(models, corpus, preset.model.context)
    taken = [f.domain for f in facts if (out / f.domain).exists()]
    if taken:
        raise ExpertError(
            f"{out}: already holds {', '.join(taken)}; import into a new folder or remove them"
        )
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    metas = []
    for f in facts:
        meta = {
            "format": HF_EXPERT_FORMAT,
            "domain": f.domain,
            "model_dir": str(f.folder.resolve()),
            "model_type": f.model_type,
            "architectures": f.architectures,
            "params": f.params,
            "vocab_size": f.vocab_size,
            "max_positions": f.max_positions,
            "model_dtype": model_dtype,
            "tokenizer": tokenizers[f.domain],
            "tokenizer_sha256": corpus.tokenizer_sha256,
            "preset": preset.to_dict(),
            "preset_sha256": preset.sha256,
            "corpus": str(corpus.root.resolve()),
            "imported": now,
            "tool": f"mixsurrogate {__version__}",
        }
        (out / f.domain).mkdir(parents=True)
        atomic_write_text(out / f.domain / "meta.json", json.dumps(meta, indent=2) + "\n")
        metas.append(meta)
    return metas


def is_imported(meta: dict) -> bool:
    return meta.get("format") == HF_EXPERT_FORMAT


def recheck_imported(experts: list[tuple[str, dict]], corpus: Corpus, context: int) -> None:
    """At scoring time, the same checks again: the folders may have changed since the import."""
    check_models([(d, Path(m["model_dir"])) for d, m in experts], corpus, context)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers warnings or progress bars: what goes wrong is our one line instead.

    (A weight missing from the files, the warning that matters, is refused by
    :func:`load_causal_lm`.)
    """
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def load_causal_lm(folder: Path, device, dtype: str = "float32"):
    """``AutoModelForCausalLM`` from local safetensors only, in eval mode on ``device``.

    A weight the files lack would be initialised at random by transformers, with a warning:
    such a model's scores mean nothing, so it is refused.
    """
    import torch  # here: `experts import` checks folders without torch (seconds to import)
    from transformers import AutoModelForCausalLM

    try:
        with quiet_transformers():
            model, info = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, use_safetensors=True, dtype=getattr(torch, dtype),
                output_loading_info=True,
            )  # fmt: skip
    except (OSError, ValueError, RuntimeError) as err:
        raise ExpertError(f"{folder}: the model does not load ({err})") from err
    bad = sorted(info.get("missing_keys") or []) + sorted(
        str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys") or []
    )
    if bad:
        raise ExpertError(
            f"{folder}: {len(bad)} weight(s) missing from its safetensors or of another shape "
            f"than config.json says (e.g. {bad[0]}); they would be random: re-save the model"
        )
    return model.to(device).eval()
