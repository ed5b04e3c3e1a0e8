"""What ``propose`` is asked: one validated record, built from the command line's flags or from a
TOML file (``propose --config request.toml``), that knows its mode and refuses options that do
not go together (each with one line), before any log is read or any model fitted.

A TOML request uses the long option names as keys (``-`` or ``_``), e.g.::

    log = "regmix:train-1m"
    predictor = "linear"
    objective = "pile_cc=1"
    bounds = ["github=:0.1"]
    no_worse_than = ["uniform:0.02"]
    seed = 0

Paths in the file are read from the current directory, as on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from ..errors import MixsurrogateError
from ..search.defaults import DEFAULT_STRATEGY, parse_switch_after
from .kl_prior import parse_kl
from .robust import AUTO, check_recommender

STRATEGIES = ("qlognei", "turbo", "exploit", "sobol", "uniform", "qlognei-v1")
MDE_KINDS = ("token", "bayes", "both", "budget", "budget-bayes")
RECOMMEND_METHODS = ("argmin", "top-k")
#: the modes a request can be in (``ProposeRequest.mode``)
MODES = ("exploit", "worst-case", "explore", "multi-fidelity", "zero-run")


@dataclass(frozen=True)
class ProposeRequest:
    """Everything ``propose`` needs, as given (text specs are parsed against the log later)."""

    log: str | None = None
    predictor: str = "gp"
    scores: str | None = None
    mde_kind: str = "token"
    missing_domains: str = "refuse"
    objective: str = "val=1"
    kinds: tuple[str, ...] = ()
    bounds: tuple[str, ...] = ()
    max_epochs: float | None = None
    corpus: str | None = None
    budget_tokens: int | None = None
    prior: str | None = None
    kl: str | None = None
    no_worse_than: tuple[str, ...] = ()
    worst_case: str | None = None
    n: int = 1
    explore: bool = False
    strategy: str = DEFAULT_STRATEGY
    recommender: str | None = None
    recommend: str | None = None
    no_ledger: bool = False
    initial: int | None = None
    domains: str | None = None
    fidelities: str | None = None
    target: str | None = None
    cost_alpha: float = 1.0
    cost_factor: float = 6.0
    switch_after: str | None = None
    switch_flops: float | None = None
    phases: int | None = None
    phase_share: float | None = None
    exposure: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _typed(f.name, f.type, getattr(self, f.name)))
        self._check_values()
        self._check_combinations()

    # --------------------------------------------------------------------- building

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "the request") -> ProposeRequest:
        """From a mapping of option names (``-`` or ``_``) to values; one line for a key that
        is not an option of ``propose``."""
        known = {f.name for f in fields(cls)}
        out = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise MixsurrogateError(
                    f"{where}: unknown key {key!r}; known: {', '.join(sorted(known))}"
                )
            out[name] = value
        return cls(**out)

    @classmethod
    def from_toml(
        cls, path: str | Path, overrides: Mapping[str, Any] | None = None
    ) -> ProposeRequest:
        """A request from a TOML file; ``overrides`` (the flags given explicitly on the command
        line) replace the file's values, a repeatable flag its whole list."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise MixsurrogateError(f"--config {path}: cannot read ({err.strerror})") from err
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise MixsurrogateError(f"--config {path}: not valid TOML ({err})") from err
        where = f"--config {path}"
        try:
            merged = {str(k).replace("-", "_"): v for k, v in data.items()}
            base = cls.from_mapping(merged, where)  # unknown keys and bad values of the file
            return cls.from_mapping({**_given(base), **dict(overrides or {})}, where)
        except MixsurrogateError as err:
            raise MixsurrogateError(
                str(err) if str(err).startswith(where) else f"{where}: {err}"
            ) from err

    # --------------------------------------------------------------------- what it asks

    @property
    def lam(self) -> float | str | None:
        """--kl parsed: a lambda >= 0, ``"auto"``, or None."""
        return parse_kl(self.kl)

    @property
    def multi_fidelity(self) -> bool:
        return bool(self.fidelities or self.target)

    @property
    def mode(self) -> str:
        """One of :data:`MODES`."""
        if self.log is None:
            return "zero-run"
        if self.multi_fidelity:
            return "multi-fidelity"
        if self.explore:
            return "explore"
        return "worst-case" if self.worst_case is not None else "exploit"

    @property
    def chosen_recommender(self) -> str:
        """--recommender, or its earlier name --recommend; default kl with --kl, else auto."""
        return self.recommender or self.recommend or ("kl" if self.lam is not None else AUTO)

    # --------------------------------------------------------------------- validation

    def _check_values(self) -> None:
        if self.mde_kind not in MDE_KINDS:
            raise MixsurrogateError(
                f"mde_kind {self.mde_kind!r}: choose from {', '.join(MDE_KINDS)}"
            )
        if self.missing_domains not in ("refuse", "zero"):
            raise MixsurrogateError(
                f"missing_domains {self.missing_domains!r}: choose from refuse, zero"
            )
        if self.strategy not in STRATEGIES:
            raise MixsurrogateError(
                f"strategy {self.strategy!r}: choose from {', '.join(STRATEGIES)}"
            )
        if self.recommend is not None and self.recommend not in RECOMMEND_METHODS:
            raise MixsurrogateError(f"recommend {self.recommend!r}: choose from argmin, top-k")
        if self.n < 1:
            raise MixsurrogateError(f"n = {self.n}: propose at least 1 mixture")
        if self.initial is not None and self.initial < 1:
            raise MixsurrogateError(f"initial = {self.initial}: must be at least 1")
        if not self.cost_alpha >= 0:
            raise MixsurrogateError(f"cost_alpha = {self.cost_alpha}: must be >= 0")
        if not self.cost_factor > 0:
            raise MixsurrogateError(f"cost_factor = {self.cost_factor}: must be > 0")
        if self.recommender is not None:
            check_recommender(self.recommender)
        self.lam  # noqa: B018 - --kl's one-line error, now rather than at the solve

    def _check_combinations(self) -> None:
        """The options that do not go together, each refused with one line."""
        lam, zero_run = self.lam, self.log is None
        outcome_rows = bool(self.no_worse_than) or self.worst_case is not None
        if lam is not None and self.prior is None:
            raise MixsurrogateError(
                "--kl needs --prior: e.g. --prior natural --corpus DIR --kl auto, "
                "or --prior uniform --kl 0.05"
            )
        if self.recommender is not None and self.recommend is not None:
            raise MixsurrogateError("--recommend is the earlier name of --recommender: give one")
        if lam is not None and (self.explore or zero_run or self.multi_fidelity):
            raise MixsurrogateError(
                "--prior/--kl regularise the exploit proposal of a runs log: not with --explore, "
                "--fidelities or zero-run mode"
            )
        if lam is not None and self.worst_case is not None:
            raise MixsurrogateError(
                "--kl pulls the blended objective to a prior; not with --worst-case"
            )
        if zero_run and not self.scores:
            raise MixsurrogateError("give a runs log, or --scores for zero-run mode")
        if zero_run and outcome_rows:
            raise MixsurrogateError("--no-worse-than and --worst-case need a runs log")
        if self.multi_fidelity and outcome_rows:
            raise MixsurrogateError(
                "--no-worse-than and --worst-case apply to exploit and --explore, not --fidelities"
            )
        if self.explore and self.worst_case is not None:
            raise MixsurrogateError(
                "--worst-case is an exploit objective; with --explore use --no-worse-than"
            )
        if self.multi_fidelity and not (self.fidelities and self.target):
            raise MixsurrogateError("--fidelities and --target go together: give both")
        if self.multi_fidelity and not self.explore:
            raise MixsurrogateError("--fidelities/--target choose runs to train: add --explore")
        single = {"--strategy": self.strategy != DEFAULT_STRATEGY, "--recommender": self.recommender,
                  "--recommend": self.recommend}  # fmt: skip
        for flag, given in single.items():
            if self.multi_fidelity and given:
                raise MixsurrogateError(
                    f"{flag} applies to single-fidelity search, not --fidelities (multi-fidelity "
                    "proposes by augmented EI and recommends the posterior-mean minimiser at the "
                    "target)"
                )
        if self.switch_after is not None:
            parse_switch_after(self.switch_after, 1)  # the format; the default needs K
        if self.max_epochs is not None and not (self.corpus and self.budget_tokens):
            raise MixsurrogateError("--max-epochs needs --corpus DIR and --budget-tokens N")
        if self.exposure and not (self.corpus and self.budget_tokens):
            raise MixsurrogateError(
                "--exposure needs --corpus DIR (unique tokens per domain) and --budget-tokens N "
                "(the proposed run's tokens)"
            )
        self._check_schedule()

    def _check_schedule(self) -> None:
        """--phases/--phase-share: schedules of a runs log, exploit or --explore only."""
        if self.phases is None and self.phase_share is None:
            return
        if self.phases is not None and self.phases < 2:
            raise MixsurrogateError(f"--phases {self.phases}: a schedule has at least 2 phases")
        if self.phase_share is not None and not 0 < self.phase_share < 1:
            raise MixsurrogateError(f"--phase-share {self.phase_share}: must be between 0 and 1")
        others = {"zero-run mode (no runs log)": self.log is None,
                  "--fidelities": self.multi_fidelity, "--kl": self.kl is not None,
                  "--no-worse-than": bool(self.no_worse_than),
                  "--worst-case": self.worst_case is not None,
                  "--strategy (schedules explore by a lower confidence bound)":
                      self.strategy != DEFAULT_STRATEGY}  # fmt: skip
        for what, given in others.items():
            if given:
                raise MixsurrogateError(f"--phases/--phase-share (schedules) not with {what}")
        if self.chosen_recommender not in (AUTO, "argmin"):
            raise MixsurrogateError(
                f"--recommender {self.chosen_recommender}: a schedule's recommendation is its "
                "argmin, judged by a cross-fitted optimism report (argmin or auto)"
            )


def _given(request: ProposeRequest) -> dict[str, Any]:
    """The request's values that differ from the defaults (what a file or flags said)."""
    default = {f.name: f.default for f in fields(ProposeRequest)}
    return {k: v for k, v in vars(request).items() if v != default[k]}


_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}


def _typed(name: str, annotation: str, value: Any) -> Any:
    """``value`` checked against the field's annotation (a TOML file can hold anything):
    lists become tuples, ints pass as floats, a number passes as --kl's text."""
    if value is None and "None" in annotation:
        return None
    if annotation.startswith("tuple"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise MixsurrogateError(f"{name} = {value!r}: expected a list of strings")
        return tuple(items)
    kind = annotation.split(" |")[0]
    if name == "kl" and isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = _SCALARS[kind]
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        raise MixsurrogateError(f"{name} = {value!r}: expected {_WORDS[kind]}")
    return value


_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}
