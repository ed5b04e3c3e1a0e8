"""Built-in example data: RegMix's public logged runs (MIT, LICENSE beside the files) and the
schedules benchmark's logs (``mixsurrogate/data/schedules``, made by
``bench/schedules/generate.py``: single-phase and two-phase runs on real text)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from ..errors import MixsurrogateError
from .importers import import_regmix
from .log import RunsLog, load_runs

REGMIX_SPLITS = {
    "train-1m": ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
    "test-1m": ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    "test-60m": ("test_mixture_60m.csv", "test_pile_loss_60m.csv"),
    "test-1b": ("test_mixture_1B.csv", "test_pile_loss_1B.csv"),
}


def regmix_runs(split: str = "train-1m") -> RunsLog:
    """RegMix's runs for one split (``train-1m``, ``test-1m``, ``test-60m``, ``test-1b``)."""
    if split not in REGMIX_SPLITS:
        raise KeyError(f"unknown RegMix split {split!r}; choose from {', '.join(REGMIX_SPLITS)}")
    folder = resources.files("mixsurrogate") / "data" / "regmix"
    mixture, loss = REGMIX_SPLITS[split]
    with resources.as_file(folder / mixture) as m, resources.as_file(folder / loss) as loss_path:
        return import_regmix(m, loss_path, run_prefix=f"{split}-")


#: the schedules benchmark's logs: ``schedules:<name>`` is ``<name>.csv`` of its folder
SCHEDULE_LOGS = ("runs", "seeds", "proxy-unmatched", "proxy-matched")


def schedules_folder() -> Path:
    """The folder of the built-in schedule logs (with ``corpus.json``, ``plan.json``)."""
    return Path(str(resources.files("mixsurrogate") / "data" / "schedules"))


def schedule_runs(name: str = "runs") -> RunsLog:
    """One of the schedules benchmark's logs (``runs``: 20 single-phase and 20 two-phase runs)."""
    if name not in SCHEDULE_LOGS:
        raise KeyError(f"unknown schedules log {name!r}; choose from {', '.join(SCHEDULE_LOGS)}")
    return load_runs(schedules_folder() / f"{name}.csv")


def schedule_kinds(sets: list[str]) -> dict[str, str]:
    """Each set's kind in the schedule logs: an end task if the corpus manifest lists it."""
    manifest = json.loads((schedules_folder() / "corpus.json").read_text(encoding="utf-8"))
    tasks = set(manifest["tasks"])
    return {s: "task" if s in tasks else "val" for s in sets}


def resolve_log(spec: str, missing_domains: str = "refuse") -> RunsLog:
    """A runs-log path, or a built-in log: ``regmix:train-1m`` (also test-1m, test-60m,
    test-1b) or ``schedules:runs`` (also seeds, proxy-unmatched, proxy-matched).

    ``missing_domains``: what an empty weight cell of a path's log means (``runs.missing``).
    """
    for prefix, read in (("regmix:", regmix_runs), ("schedules:", schedule_runs)):
        if spec.startswith(prefix):
            try:
                return read(spec.split(":", 1)[1])
            except KeyError as err:
                raise MixsurrogateError(str(err.args[0])) from err
    return load_runs(spec, missing_domains)
