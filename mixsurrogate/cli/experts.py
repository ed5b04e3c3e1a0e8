"""CLI for the GPU side: ``experts train``, ``experts score`` and ``runs train`` (thin wrappers).

``runs_train`` is a standalone click command that ``cli.py`` attaches to its ``runs`` group.
Library errors (:class:`MixsurrogateError`) become one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable

import click

from ..errors import MixsurrogateError
from .common import one_line


def _echo(text: str) -> None:
    """Print once: under torchrun only rank 0 reports."""
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(text)


def _one_line_errors(func: Callable) -> Callable:
    """Turn a MixsurrogateError into click's one-line 'Error: ...' and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MixsurrogateError as err:
            raise click.ClickException(one_line(str(err))) from err

    return wrapper


def _preset(value: str):
    from ..experts.presets import load_preset

    return load_preset(value)


def _domains(value: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in value for n in v.split(",") if n.strip()]
    return names or None


_PRESET_HELP = "preset name (tiny-cpu, small-gpu, gpu-70m, gpu-150m) or a path to a .toml file"
_CHECKPOINTS_HELP = (
    "also save the weights at these fractions of the token budget, for budget-matched MDE: "
    "a comma list (1/32,1/16,1/8,1/4,1/2,1 or 0.25,0.5) or geometric:N (N fractions halving "
    "from 1, e.g. geometric:6 = 1/32..1); the full budget is always included"
)
_DEVICE = click.option(
    "--device", default="auto", show_default=True, help="auto (GPU when present), cpu, cuda, cuda:N"
)
_QUIET = click.option("--quiet", is_flag=True, help="no progress bar")
_JSON = click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")


@click.group("experts")
def experts() -> None:
    """Data experts: one small LM per domain, and their scores on fixed evaluation sequences."""


@experts.command("train")
@click.argument("corpus", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--preset", "preset_name", default="tiny-cpu", show_default=True, help=_PRESET_HELP)
@click.option("--domains", multiple=True, help="only these domains (comma-separated or repeated)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--checkpoints", "checkpoint_spec", metavar="FRACTIONS", help=_CHECKPOINTS_HELP)
@_DEVICE
@_QUIET
@_JSON
@_one_line_errors
def experts_train(
    corpus, out, preset_name, domains, seed, checkpoint_spec, device, quiet, as_json
) -> None:
    """Train one expert per corpus domain into OUT/<domain>/ (resumable: rerun to continue).

    The progress bar's and the table's loss(ema) is the training loss smoothed over about the
    last 20 steps (an exponential moving average), not one batch's loss.

    --checkpoints also saves each expert's weights when the tokens it has seen reach each
    fraction of its budget (OUT/<domain>/snapshots/), in the same one run: the final expert is
    the same as without. 'experts score' then writes every snapshot's log-probabilities into
    the store, for budget-matched MDE (--mde-kind budget). A snapshot at fraction f is the
    expert part-way through the cosine schedule of the full budget, not a model trained with
    its own schedule to f tokens.

    \b
    Examples:
      mixsurrogate experts train corpus/ --preset tiny-cpu experts/
      mixsurrogate experts train corpus/ --preset tiny-cpu experts/ --checkpoints geometric:6
    """
    from ..experts.snapshots import parse_checkpoints
    from ..experts.train import train_experts

    fractions = parse_checkpoints(checkpoint_spec) if checkpoint_spec else None
    results = train_experts(
        corpus, _preset(preset_name), out, _domains(domains), seed, device,
        progress=not quiet, checkpoints=fractions,
    )  # fmt: skip
    keys = (
        "domain", "skipped", "params", "steps", "tokens", "final_train_loss",
        "smoothed_train_loss", "seconds",
    )  # fmt: skip
    if as_json:
        _echo(json.dumps([{k: r.get(k) for k in keys} for r in results], indent=2))
        return
    _echo(
        f"{'domain':<20} {'status':<8} {'params':>10} {'tokens':>12} {'loss(ema)':>9} {'seconds':>8}"
    )
    for r in results:
        status = "skipped" if r["skipped"] else "trained"
        smoothed = r.get("smoothed_train_loss")  # absent from experts trained before it existed
        shown = "-" if smoothed is None else f"{smoothed:.3f}"
        _echo(
            f"{r['domain']:<20} {status:<8} {r['params']:>10,} {r['tokens']:>12,} "
            f"{shown:>9} {r['seconds']:>8.1f}"
        )
    _echo(f"experts in {out}")


@experts.command("score")
@click.argument("experts_dir", metavar="EXPERTS", type=click.Path(file_okay=False))
@click.argument("corpus", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--float16", is_flag=True, help="store log-probabilities as float16 (half the size)")
@_DEVICE
@_QUIET
@_JSON
@_one_line_errors
def experts_score(experts_dir, corpus, out, float16, device, quiet, as_json) -> None:
    """Score every expert on the corpus evaluation sequences into the score store OUT.

    EXPERTS holds experts trained by 'experts train' or your own models recorded by
    'experts import' (each checked again before any is scored).

    \b
    Example:
      mixsurrogate experts score experts/ corpus/ scores/
    """
    from ..experts.score import score_experts
    from ..mde.store import load_scores

    if int(os.environ.get("RANK", "0")) != 0:
        return  # scoring is one pass of inference: under torchrun, rank 0 does it alone

    path = score_experts(
        experts_dir, corpus, out, device, "float16" if float16 else "float32", progress=not quiet
    )
    store = load_scores(path)
    summary = {
        "path": str(path),
        "experts": store.experts,
        "eval_id": store.eval_id,
        "eval_sets": {
            n: {"kind": s.kind, "shape": list(s.logp.shape), "tokens": s.n_tokens}
            for n, s in store.eval_sets.items()
        },
    }
    if as_json:
        _echo(json.dumps(summary, indent=2))
        return
    _echo(f"score store {path}: experts {', '.join(store.experts)}; eval_id {store.eval_id[:12]}")
    _echo(f"{'eval set':<24} {'kind':<5} {'sequences':>9} {'positions':>9} {'tokens':>9}")
    for n, s in store.eval_sets.items():
        _, seqs, pos = s.logp.shape
        _echo(f"{n:<24} {s.kind:<5} {seqs:>9} {pos:>9} {s.n_tokens:>9}")


@experts.command("import")
@click.argument("models", metavar="DIR...", nargs=-1, required=True)
@click.option(
    "--corpus", required=True, type=click.Path(file_okay=False), help="the corpus to score on"
)
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="experts folder to write"
)
@click.option(
    "--preset",
    "preset_name",
    default="tiny-cpu",
    show_default=True,
    help="the preset of your proxy runs: it fixes the evaluation sequences (context, windows, "
    "task items) so the score store matches their runs log; " + _PRESET_HELP,
)
@click.option(
    "--model-dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    show_default=True,
    help="dtype the weights are loaded in for scoring (log-probabilities are float32 anyway)",
)
@_JSON
@_one_line_errors
def experts_import(models, corpus, out, preset_name, model_dtype, as_json) -> None:
    """Record your own Hugging Face causal LMs, one per domain, as experts in OUT.

    Each DIR (or DOMAIN=DIR; the domain is otherwise the folder's name) holds a model saved
    with save_pretrained: config.json and safetensors weights (pytorch_model.bin is refused:
    nothing is unpickled), any architecture AutoModelForCausalLM loads without remote code.
    All must read the corpus tokenizer: tokenizer files in a folder must be that tokenizer
    (same vocabulary and encodings); a folder without them is scored with it. The vocabulary
    must cover the corpus ids and the context the preset's. Weights are not copied: the
    meta.json written in OUT/<domain>/ points at DIR. Then score them as trained experts with 'experts score'.

    \b
    Example:
      mixsurrogate experts import hf/code hf/books web=hf/web-1b --corpus corpus/ \\
          --out my-experts/ --preset tiny-cpu
      mixsurrogate experts score my-experts/ corpus/ scores/
    """
    from ..experts.hf_import import import_experts, parse_model_args

    metas = import_experts(parse_model_args(models), corpus, out, _preset(preset_name), model_dtype)
    keys = (
        "domain",
        "model_dir",
        "model_type",
        "params",
        "vocab_size",
        "max_positions",
        "tokenizer",
    )
    if as_json:
        _echo(json.dumps([{k: m[k] for k in keys} for m in metas], indent=2))
        return
    _echo(f"{'domain':<16} {'model':<12} {'params':>12} {'vocab':>8}  tokenizer")
    for m in metas:
        _echo(
            f"{m['domain']:<16} {m['model_type']:<12} {m['params']:>12,} {m['vocab_size']:>8,}  "
            f"{m['tokenizer']}"
        )
    _echo(f"experts in {out}; score them with 'mixsurrogate experts score {out} {corpus} OUT'")


@click.command("train")
@click.argument("corpus", type=click.Path(file_okay=False))
@click.argument("mixtures", type=click.Path(dir_okay=False))
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--preset", "preset_name", default="tiny-cpu", show_default=True, help=_PRESET_HELP)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="seed of every run without a 'seed' column",
)
@click.option(
    "--resume-dir",
    type=click.Path(file_okay=False),
    help="checkpoints of unfinished runs [default: .LOG.checkpoints beside LOG]",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=1),
    help="also evaluate every N optimiser steps and log each checkpoint as a row <run>@<tokens>",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="train only rows I, I+N, I+2N, ... of MIXTURES (1-based; one Slurm array task each)",
)
@click.option(
    "--match-repetition",
    type=click.IntRange(min=1),
    metavar="TARGET_TOKENS",
    help="subsample each domain's data so these runs repeat it as often as TARGET_TOKENS would",
)
@click.option(
    "--unique-tokens",
    "unique_specs",
    multiple=True,
    metavar="DOMAIN=TOKENS",
    help="train on only the first TOKENS unique tokens of DOMAIN (repeatable)",
)
@_DEVICE
@_QUIET
@_JSON
@_one_line_errors
def runs_train(
    corpus, mixtures, log, preset_name, seed, resume_dir, eval_every, shard, match_repetition,
    unique_specs, device, quiet, as_json,
) -> None:  # fmt: skip
    """Train one proxy model per mixture and append its losses to the runs log LOG.

    MIXTURES is a CSV/JSONL with run_id and w:<domain> columns (as 'runs design' writes);
    runs already in LOG are skipped, an interrupted run resumes from its checkpoint. Each run
    is logged as pending (weights, no losses) when training starts, so other workers see it
    in flight, and filled in when it ends; a pending row of LOG with the same run_id and
    weights (e.g. a proposed run) is trained and filled in.

    --eval-every N (optimiser steps; a step is the preset's batch_size x context tokens) also
    evaluates the model after steps N, 2N, ... and logs each as an extra row: same mixture,
    fewer tokens, run_id <run>@<tokens>, notes 'intermediate checkpoint'. They are a free lower
    fidelity, not short runs: their learning rate has not decayed yet.

    --shard I/N trains the I-th share of MIXTURES: rows I, I+N, I+2N, ... in file order
    (round-robin), so N workers started at once (a Slurm array) train every row once and
    append to the one LOG under its lock; a rerun skips what is logged.

    Rows with schedule columns (w@<p>:<domain>, share@<p>, as 'runs design --phases' writes)
    switch mixture at whole optimiser steps under one learning-rate schedule: phase p ends
    after step round(cumulative share x steps), and the log records the realised shares.

    --match-repetition TARGET_TOKENS keeps the first (unique tokens x run tokens /
    TARGET_TOKENS) tokens of each domain's training stream, so a small proxy repeats every
    domain as often as a TARGET_TOKENS run of the same mixture would on the full data.
    --unique-tokens DOMAIN=TOKENS caps a domain the same way for every run. The tokens kept are
    logged in unique:<domain> columns (and the notes), which epochs features read.

    \b
    Examples:
      mixsurrogate runs train corpus/ mixtures.csv --preset tiny-cpu runs.csv
      mixsurrogate runs train corpus/ mixtures.csv --preset tiny-cpu proxies.csv \\
          --match-repetition 8000000
      mixsurrogate runs train corpus/ mixtures.csv --preset tiny-cpu runs.csv --eval-every 200
      mixsurrogate runs train corpus/ mixtures.csv --preset gpu-70m runs.csv \\
          --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"
    """
    from ..experts.proxy_runs import Shard, train_proxy_runs
    from ..experts.repetition import parse_unique_caps
    from ..runs.log import LOSS_PREFIX

    share = Shard.parse(shard) if shard is not None else None  # before anything is read
    caps = parse_unique_caps(unique_specs)
    rows = train_proxy_runs(
        corpus, mixtures, _preset(preset_name), log, seed, resume_dir, device,
        progress=not quiet, eval_every=eval_every or 0, shard=share, unique_caps=caps,
        match_repetition=match_repetition,
    )  # fmt: skip
    if as_json:
        _echo(json.dumps(rows, indent=2))
        return
    if not rows:
        what = f"shard {share} of {mixtures}" if share else mixtures
        _echo(f"nothing to train: every run of {what} is already in {log}")
        return
    losses = [c for c in rows[0] if c.startswith(LOSS_PREFIX)]
    _echo(
        f"{'run_id':<16} {'seconds':>8} "
        + " ".join(f"{c.removeprefix(LOSS_PREFIX)[:12]:>12}" for c in losses)
    )
    for r in rows:
        _echo(
            f"{r['run_id']:<16} {r['seconds']:>8.1f} " + " ".join(f"{r[c]:>12.4f}" for c in losses)
        )
    partial = sum("intermediate checkpoint" in str(r.get("notes")) for r in rows)
    extra = f" and {partial} intermediate checkpoint(s)" if partial else ""
    _echo(f"logged {len(rows) - partial} run(s){extra} in {log}")
