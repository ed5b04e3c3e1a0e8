"""Olmix-style regularised proposals: minimise ``predicted objective + lambda * KL(w || prior)``.

The surrogate is least trustworthy far from the mixtures it was fitted on, and the minimiser
of a fitted surrogate is drawn to exactly the places where its errors flatter it. Olmix
(Chen et al., 2025) pulls the proposal towards a prior mixture (the corpus's natural token
shares) by a KL penalty; ``lambda = 0`` is the plain exploit proposal and a large ``lambda``
returns the prior (projected into the bounds, in the KL sense).

Solvers:

* the fitted objective affine in ``w`` (checked numerically: e.g. ``-p linear``), no
  ``--no-worse-than``, and cvxpy installed: the exact convex problem by cvxpy
  (``c @ w + lambda * sum(rel_entr(w, prior))`` on the bounded simplex), as Olmix does;
* any other smooth predictor (or no cvxpy): the existing multi-start SLSQP of ``propose``
  on the penalised objective (the KL term is convex and smooth inside the simplex);
* tree predictors (piecewise constant): the mean of the top-k candidates ranked by the
  penalised objective, as RegMix does for the plain one.

``--kl auto`` chooses ``lambda`` (``kl_auto.choose_lambda``) by cross-fitting on the logged runs only: split the runs in two halves, propose with a surrogate fitted on one
half and judge that proposal by a surrogate fitted on the other (whose errors are independent
of the proposer's, so a proposal that exploits the proposer's errors is not rewarded), both
directions, over a few random halvings; the lambda with the best mean judged objective wins
(ties: the larger lambda).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from ..objective import cut_names
from ..runs.log import WEIGHT_PREFIX
from ..simplex import dirichlet_simplex

_FLOOR = 1e-12


@dataclass(frozen=True)
class Prior:
    """The mixture a proposal is pulled towards, and where it came from."""

    name: str  # natural | uniform | the file
    mixture: np.ndarray
    description: str


@dataclass
class KLSetting:
    """``--prior`` and ``--kl``: lambda a number, or ``"auto"``."""

    prior: Prior
    lam: float | str

    @property
    def auto(self) -> bool:
        return self.lam == "auto"


@dataclass
class KLResult:
    """What a regularised proposal reports: the prior, lambda, how it was chosen, the KL."""

    prior: Prior
    lam: float
    how: str
    solver: str
    kl: np.ndarray  # (q,) KL(proposal || prior) in nats
    grid: dict[float, float] = field(default_factory=dict)  # auto: lambda -> judged objective

    def to_dict(self, domains: list[str]) -> dict:
        return {
            "prior": self.prior.name,
            "prior_description": self.prior.description,
            "prior_mixture": dict(zip(domains, map(float, self.prior.mixture), strict=True)),
            "lambda": float(self.lam),
            "lambda_chosen_by": self.how,
            "solver": self.solver,
            "kl_to_prior": [float(v) for v in self.kl],
            "auto_grid": None
            if not self.grid
            else [{"lambda": float(k), "judged_objective": float(v)} for k, v in self.grid.items()],
        }

    def lines(self) -> list[str]:
        """Text output (the solver is among the proposal's notes)."""
        out = [
            f"prior: {self.prior.name} ({self.prior.description})",
            f"lambda {self.lam:g} ({self.how})",
        ]
        out += [
            f"KL(proposal{'' if len(self.kl) == 1 else f' {i + 1}'} || prior) = {v:.4f} nats"
            for i, v in enumerate(self.kl)
        ]
        if self.grid:
            out.append(
                "--kl auto, judged objective by lambda: "
                + ", ".join(f"{k:g}: {v:.4f}" for k, v in self.grid.items())
            )
        return out


def kl_divergence(W: np.ndarray, prior: np.ndarray) -> np.ndarray:  # noqa: N803
    """``KL(w || prior) = sum_i w_i log(w_i / prior_i)`` per row (0 log 0 = 0)."""
    W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
    safe = np.maximum(W, _FLOOR)
    return np.where(W > 0, W * np.log(safe / prior), 0.0).sum(axis=1)


class KLPenalty:
    """``lambda * KL(w || prior)`` as a batch function, with its gradient."""

    def __init__(self, prior: np.ndarray, lam: float):
        self.prior, self.lam = np.asarray(prior, dtype=float), float(lam)

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.lam * kl_divergence(W, self.prior)

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.lam * (np.log(np.maximum(w, _FLOOR) / self.prior) + 1.0)


def parse_kl(text: str | None) -> float | str | None:
    """``--kl 0.05`` or ``--kl auto``."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return "auto"
    try:
        lam = float(text)
    except ValueError as err:
        raise MixsurrogateError(f"--kl {text!r}: give a number >= 0 or auto") from err
    if not np.isfinite(lam) or lam < 0:
        raise MixsurrogateError(f"--kl {text!r}: lambda must be finite and >= 0")
    return lam


def resolve_prior(spec: str, domains: list[str], corpus_dir: str | None = None) -> Prior:
    """``natural`` (the corpus's training token shares, needs ``--corpus``), ``uniform``
    (1/K), or a FILE holding a mixture (CSV or JSON; see :func:`read_prior_file`)."""
    k = len(domains)
    if spec == "uniform":
        return Prior("uniform", np.full(k, 1.0 / k), f"1/{k} per domain")
    if spec == "natural":
        if not corpus_dir:
            raise MixsurrogateError(
                "--prior natural needs --corpus DIR (its token shares per domain); or give "
                "--prior uniform or --prior FILE"
            )
        corpus = Corpus.load(corpus_dir)
        counts = {}
        for d in corpus.domains:
            try:
                counts[d] = float(corpus.manifest["domains"][d]["tokens"]["train"])
            except (KeyError, TypeError, ValueError) as err:
                raise MixsurrogateError(
                    f"corpus {corpus_dir}: domain {d!r} has no training token count"
                ) from err
        return Prior(
            "natural",
            _check_mixture(counts, domains, f"corpus {corpus_dir}"),
            f"training token shares of the corpus {corpus_dir}",
        )
    path = Path(spec)
    if not path.is_file():
        raise MixsurrogateError(
            f"--prior {spec!r}: give natural, uniform or a mixture file (CSV or JSON) that exists"
        )
    return Prior(str(path), read_prior_file(path, domains), f"the mixture in {path}")


def read_prior_file(path: Path, domains: list[str]) -> np.ndarray:
    """A prior mixture from a file: JSON ``{"code": 0.3, ...}`` (or ``{"mixture": {...}}``),
    CSV with two columns ``domain,weight``, or a CSV whose header is the domains (optionally
    ``w:``-prefixed, as in a runs log) over one row. Weights (or token counts) are normalised;
    every domain needs a positive one."""
    where = f"--prior {path}"
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MixsurrogateError(f"{where}: not valid JSON ({err})") from err
        if isinstance(data, dict) and isinstance(data.get("mixture"), dict):
            data = data["mixture"]
        if not isinstance(data, dict):
            raise MixsurrogateError(f"{where}: expected a JSON object of domain -> weight")
        return _check_mixture(data, domains, where)
    try:
        frame = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - pandas raises many kinds; one line for all
        raise MixsurrogateError(f"{where}: not a readable CSV ({err})") from err
    cols = [str(c).strip() for c in frame.columns]
    if len(cols) == 2 and cols[0].lower() in ("domain", "name") and len(frame):
        data = dict(zip(frame.iloc[:, 0].astype(str), frame.iloc[:, 1], strict=True))
    elif len(frame) == 1:
        data = {c.removeprefix(WEIGHT_PREFIX): v for c, v in zip(cols, frame.iloc[0], strict=True)}
    else:
        raise MixsurrogateError(
            f"{where}: expected columns domain,weight (one row per domain) or one row under "
            "a header of the domains"
        )
    return _check_mixture(data, domains, where)


def _check_mixture(data: dict, domains: list[str], where: str) -> np.ndarray:
    missing = [d for d in domains if d not in data]
    if missing:
        raise MixsurrogateError(f"{where} has no weight for domain(s): {cut_names(missing)}")
    extra = [str(d) for d in data if d not in domains]
    if extra:
        raise MixsurrogateError(
            f"{where} names domain(s) the runs log lacks: {cut_names(extra)}; domains: {cut_names(domains)}"
        )
    values = []
    for d in domains:
        try:
            v = float(data[d])
        except (TypeError, ValueError) as err:
            raise MixsurrogateError(
                f"{where}: weight of {d!r} ({data[d]!r}) is not a number"
            ) from err
        if not np.isfinite(v) or v <= 0:
            raise MixsurrogateError(
                f"{where}: weight of {d!r} is {v:g}; a prior needs every share > 0 "
                "(KL to a zero share is infinite)"
            )
        values.append(v)
    prior = np.array(values)
    return prior / prior.sum()


# ----------------------------------------------------------------------------- solving


def affine_coefficients(f, k: int, seed: int = 0) -> np.ndarray | None:
    """``c`` with ``f(w) = c @ w`` on the simplex, if the fitted objective is affine there
    (checked at random mixtures), else None."""
    c = np.asarray(f(np.eye(k)), dtype=float).ravel()
    probe = dirichlet_simplex(4, k, 1.0, seed=seed + 17)
    got = np.asarray(f(probe), dtype=float).ravel()
    scale = 1.0 + np.abs(got).max()
    return c if np.all(np.abs(got - probe @ c) <= 1e-8 * scale) else None


def solve_affine(c: np.ndarray, prior: np.ndarray, lam: float, bounds) -> np.ndarray | None:
    """``min c @ w + lam * KL(w || prior)`` on the bounded simplex by cvxpy; None when cvxpy
    is not installed or its solver did not reach an optimum."""
    try:
        import cvxpy as cp
    except ImportError:
        return None
    w = cp.Variable(len(c))
    problem = cp.Problem(
        cp.Minimize(c @ w + lam * cp.sum(cp.rel_entr(w, prior))),
        [cp.sum(w) == 1, w >= bounds.lower, w <= bounds.upper],
    )
    try:
        problem.solve()
    except Exception:  # noqa: BLE001 - a solver failure falls back to SLSQP
        return None
    if problem.status not in ("optimal", "optimal_inaccurate") or w.value is None:
        return None
    return bounds.repair(np.maximum(np.asarray(w.value, dtype=float), 0.0))[0]
