"""Points on the probability simplex: design (Sobol, Dirichlet), bounds, projection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MixsurrogateError, MixtureError

SUM_TOLERANCE = 1e-2  # RegMix's files sum to 1 within 0.004; beyond 1e-2 it is a mistake


def check_mixtures(
    W,  # noqa: N803
    n_domains: int | None = None,
    *,
    labels: list[str] | None = None,
    columns: list[str] | None = None,
    sum_tolerance: float | None = None,
    negative_tolerance: float = 0.0,
) -> np.ndarray:
    """The one validator of mixture weights: a finite 2-D float array, one row per mixture.

    ``n_domains`` checks the width; weights below ``-negative_tolerance`` are refused (an
    optimiser's -1e-12 is not a user's mistake); with ``sum_tolerance`` rows must sum to 1
    within it. Errors name the first bad row (``labels``, e.g. "run a1") and column.
    """
    if np.iscomplexobj(W):
        raise MixtureError("mixtures hold complex numbers; weights must be real")
    W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
    if W.ndim != 2 or (n_domains is not None and W.shape[1] != n_domains):
        expected = f"(mixtures, {n_domains})" if n_domains is not None else "(mixtures, domains)"
        raise MixtureError(f"mixtures have shape {W.shape}; expected {expected}")
    labels = labels or [f"row {i}" for i in range(len(W))]
    columns = columns or [f"{j}" for j in range(W.shape[1])]
    bad = ~np.isfinite(W)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise MixtureError(f"{labels[row]}: weight {columns[col]} is missing or NaN")
    negative = W < -negative_tolerance
    if negative.any():
        row, col = map(int, np.argwhere(negative)[0])
        raise MixtureError(f"{labels[row]}: weight {columns[col]} is negative ({W[row, col]:g})")
    if sum_tolerance is not None:
        totals = W.sum(axis=1)
        off = np.flatnonzero(np.abs(totals - 1.0) > sum_tolerance)
        if len(off):
            raise MixtureError(f"{labels[off[0]]}: weights sum to {totals[off[0]]:.4f}, not 1")
    return W


def sobol_simplex(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``n`` low-discrepancy points on the ``k``-simplex.

    Sobol points in the unit cube are mapped by the exponential-spacings transform
    (``-log u`` normalised), which is the uniform (Dirichlet(1)) distribution on the simplex,
    so the low discrepancy carries over.
    """
    if k == 1:
        return np.ones((n, 1))
    return exponential_spacings(sobol_cube(n, k, seed))


def sobol_cube(n: int, d: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` points of a scrambled Sobol sequence in the ``d``-dimensional unit cube."""
    from scipy.stats import qmc  # here, not at the top: scipy.stats costs the CLI 0.3-1 s

    sampler = qmc.Sobol(d=d, scramble=True, seed=seed)
    m = int(np.ceil(np.log2(max(n, 2))))
    return sampler.random_base2(m)[:n]


def exponential_spacings(u: np.ndarray) -> np.ndarray:
    """Points of the unit cube (rows) mapped onto the simplex: ``-log u``, normalised.

    Uniform points give the uniform (Dirichlet(1)) distribution on the simplex, so Sobol points
    stay low-discrepancy; a block of columns of a larger cube maps onto one factor of a product
    of simplices (the phases of a schedule).
    """
    e = -np.log(np.clip(u, 1e-12, 1.0))
    return e / e.sum(axis=1, keepdims=True)


def dirichlet_simplex(n: int, k: int, alpha: float | np.ndarray = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` Dirichlet draws; small ``alpha`` gives the sparse mixtures RegMix samples."""
    rng = np.random.default_rng(seed)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (k,))
    return rng.dirichlet(alpha, size=n)


def vertices_and_uniform(k: int) -> np.ndarray:
    """The ``k`` pure-domain mixtures and the uniform one."""
    return np.vstack([np.eye(k), np.full((1, k), 1.0 / k)])


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the simplex (Duchi et al., 2008)."""
    v = np.atleast_2d(np.asarray(v, dtype=float))
    n, k = v.shape
    u = np.sort(v, axis=1)[:, ::-1]
    css = np.cumsum(u, axis=1) - 1.0
    idx = np.arange(1, k + 1)
    cond = u - css / idx > 0
    rho = k - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(n), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0)


@dataclass(frozen=True)
class Bounds:
    """Per-domain share limits ``lower <= w <= upper`` on the simplex."""

    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def unbounded(cls, k: int) -> Bounds:
        return cls(np.zeros(k), np.ones(k))

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...], domains: list[str]) -> Bounds:
        """Parse ``dom=lo:hi`` strings (either side may be empty) and check feasibility."""
        lower, upper = np.zeros(len(domains)), np.ones(len(domains))
        for spec in specs:
            name, sep, rng = spec.partition("=")
            lo, sep2, hi = rng.partition(":")
            if not sep or not sep2:
                raise MixsurrogateError(
                    f"bad bound {spec!r}: expected DOMAIN=LO:HI, e.g. code=0.05:0.4"
                )
            if name not in domains:
                raise MixsurrogateError(
                    f"bound names unknown domain {name!r}; domains are: {', '.join(domains)}"
                )
            i = domains.index(name)
            try:
                lower[i] = float(lo) if lo else 0.0
                upper[i] = float(hi) if hi else 1.0
            except ValueError as err:
                raise MixsurrogateError(f"bad bound {spec!r}: {err}") from err
            if not (np.isfinite(lower[i]) and np.isfinite(upper[i])):  # float() reads 'nan'
                raise MixsurrogateError(
                    f"bad bound {spec!r}: LO and HI must be numbers between 0 and 1"
                )
        bounds = cls(lower, upper)
        bounds.check(domains)
        return bounds

    def tightened(self, upper: np.ndarray) -> Bounds:
        return Bounds(self.lower.copy(), np.minimum(self.upper, upper))

    def with_max_epochs(
        self,
        domains: list[str],
        available_tokens: dict[str, int],
        budget_tokens: int,
        max_epochs: float,
    ) -> Bounds:
        """Cap each share so no domain is repeated more than ``max_epochs`` times.

        A share w_i of a ``budget_tokens`` run reads w_i * budget tokens of domain i, which is
        ``w_i * budget / available_i`` epochs; hence ``w_i <= max_epochs * available_i / budget``.
        """
        if budget_tokens <= 0 or max_epochs <= 0:
            raise MixsurrogateError("--budget-tokens and --max-epochs must be positive")
        missing = [d for d in domains if d not in available_tokens]
        if missing:
            raise MixsurrogateError(
                f"the corpus has no token count for domain(s): {', '.join(missing)}"
            )
        cap = np.array([max_epochs * available_tokens[d] / budget_tokens for d in domains])
        bounds = self.tightened(np.minimum(cap, 1.0))
        try:
            bounds.check(domains)
        except MixsurrogateError as err:
            raise MixsurrogateError(
                f"with at most {max_epochs:g} epochs per domain a {budget_tokens:,}-token run cannot be filled ({err})"
            ) from err
        return bounds

    def check(self, domains: list[str] | None = None) -> None:
        """Raise one clear error if no mixture satisfies the bounds."""
        names = domains or [str(i) for i in range(len(self.lower))]
        ok = (self.lower >= 0) & (self.upper <= 1) & (self.lower <= self.upper)  # False for NaN
        bad = np.flatnonzero(~ok)
        if len(bad):
            i = int(bad[0])
            raise MixsurrogateError(
                f"bound for {names[i]} is impossible: {self.lower[i]:g}:{self.upper[i]:g} (need 0 <= lo <= hi <= 1)"
            )
        if self.lower.sum() > 1 + 1e-9:
            raise MixsurrogateError(
                f"lower bounds sum to {self.lower.sum():.3f} > 1: no mixture fits"
            )
        if self.upper.sum() < 1 - 1e-9:
            raise MixsurrogateError(
                f"upper bounds sum to {self.upper.sum():.3f} < 1: no mixture fits"
            )

    def contains(self, W: np.ndarray, tol: float = 1e-6) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)
        return (
            (W >= self.lower - tol).all(axis=1)
            & (W <= self.upper + tol).all(axis=1)
            & (np.abs(W.sum(axis=1) - 1) <= tol)
        )

    def sample(self, n: int, seed: int = 0, method: str = "sobol") -> np.ndarray:
        """Points inside the bounds: ``lower`` plus a scaled simplex draw, clipped by ``upper``.

        Points violating ``upper`` after scaling are repaired by :meth:`repair`.
        """
        k = len(self.lower)
        free = 1.0 - self.lower.sum()
        base = (
            sobol_simplex(n, k, seed) if method == "sobol" else dirichlet_simplex(n, k, 1.0, seed)
        )
        return self.repair(self.lower + free * base)

    def repair(self, W: np.ndarray, iterations: int = 100) -> np.ndarray:  # noqa: N803
        """Move points onto {sum = 1, lower <= w <= upper} by alternating clip and rescale."""
        W = np.clip(np.atleast_2d(np.asarray(W, dtype=float)), self.lower, self.upper)
        for _ in range(iterations):
            gap = 1.0 - W.sum(axis=1, keepdims=True)
            if np.all(np.abs(gap) < 1e-12):
                break
            room = np.where(gap > 0, self.upper - W, W - self.lower)
            share = room / np.maximum(room.sum(axis=1, keepdims=True), 1e-300)
            W = np.clip(W + gap * share, self.lower, self.upper)
        return W
