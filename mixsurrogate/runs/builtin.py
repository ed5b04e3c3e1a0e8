"""Built-in example data: RegMix's public logged runs (MIT, LICENSE beside the files)."""

from __future__ import annotations

from importlib import resources

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


def resolve_log(spec: str, missing_domains: str = "refuse") -> RunsLog:
    """A runs-log path, or a built-in log: ``regmix:train-1m`` (also test-1m, test-60m, test-1b).

    ``missing_domains``: what an empty weight cell of a path's log means (``runs.missing``).
    """
    if spec.startswith("regmix:"):
        try:
            return regmix_runs(spec.split(":", 1)[1])
        except KeyError as err:
            raise MixsurrogateError(str(err.args[0])) from err
    return load_runs(spec, missing_domains)
