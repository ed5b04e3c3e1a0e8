"""Blended objectives: a weighted sum of evaluation-set losses.

``val=0.5,task=0.5`` weighs two groups (the mean over validation domains, the mean over
end-task sets); ``code=1,arc_easy=2`` (or ``loss:code=1``) weighs sets explicitly; the two
styles can be mixed. Each set is predicted separately, then combined, so one surrogate per
set serves every objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import MixsurrogateError

GROUPS = ("val", "task")


@dataclass(frozen=True)
class Objective:
    """Non-negative weights over evaluation sets (they need not sum to 1)."""

    weights: dict[str, float]
    spec: str = ""

    @property
    def sets(self) -> list[str]:
        return [s for s, a in self.weights.items() if a != 0]

    @classmethod
    def parse(
        cls, spec: str, sets: Sequence[str], kinds: Mapping[str, str] | None = None
    ) -> Objective:
        """Parse a spec against the known sets; ``kinds`` maps set -> 'val' | 'task'.

        Without ``kinds`` every set counts as a validation set.
        """
        kinds = dict(kinds or {})
        kinds = {s: kinds.get(s, "val") for s in sets}
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip().removeprefix("loss:")
            try:
                amount = float(value) if sep else 1.0
            except ValueError as err:
                raise MixsurrogateError(
                    f"objective term {part!r}: {value!r} is not a number"
                ) from err
            if amount < 0 or not np.isfinite(amount):
                raise MixsurrogateError(f"objective term {part!r}: weights must be finite and >= 0")
            if name in GROUPS:
                members = [s for s in sets if kinds[s] == name]
                if not members:
                    raise MixsurrogateError(
                        f"objective group {name!r} has no evaluation sets"
                        + ("; pass --scores so end-task sets are known" if name == "task" else "")
                    )
                for s in members:
                    weights[s] = weights.get(s, 0.0) + amount / len(members)
            elif name in sets:
                weights[name] = weights.get(name, 0.0) + amount
            else:
                raise MixsurrogateError(
                    f"objective names unknown set {name!r}; valid: {', '.join(GROUPS)}, {', '.join(sets)}"
                )
        if not weights or sum(weights.values()) == 0:
            raise MixsurrogateError(f"objective {spec!r} gives no set a positive weight")
        return cls(weights, spec)

    def vector(self, sets: Sequence[str]) -> np.ndarray:
        """The weights in the order of ``sets`` (0 for sets the objective does not use)."""
        return np.array([self.weights.get(s, 0.0) for s in sets])

    def combine(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective values from per-set losses (rows x sets)."""
        return np.atleast_2d(losses) @ self.vector(sets)

    def combine_std(self, stds: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective std from per-set stds, treating the sets' errors as independent."""
        return np.sqrt((np.atleast_2d(stds) ** 2) @ (self.vector(sets) ** 2))
