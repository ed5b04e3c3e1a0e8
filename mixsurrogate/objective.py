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


def parse_kinds(specs: Sequence[str], sets: Sequence[str]) -> dict[str, str]:
    """``--kinds val=code,books --kinds task=arc_easy`` -> {set: kind}, each set known."""
    kinds: dict[str, str] = {}
    for text in specs:
        kind, sep, names = text.partition("=")
        kind = kind.strip()
        if not sep or kind not in GROUPS:
            raise MixsurrogateError(f"--kinds {text!r}: give val=SET,SET or task=SET,SET")
        for name in filter(None, (n.strip() for n in names.split(","))):
            if name not in sets:
                raise MixsurrogateError(f"--kinds names unknown set {name!r}")
            if kinds.get(name, kind) != kind:
                raise MixsurrogateError(f"--kinds gives {name!r} two kinds")
            kinds[name] = kind
    return kinds


@dataclass(frozen=True)
class Objective:
    """Non-negative weights over evaluation sets (they need not sum to 1)."""

    weights: dict[str, float]
    spec: str = ""
    kinds_source: str = ""  # where the val/task kinds of a group term came from (for output)

    @property
    def sets(self) -> list[str]:
        return [s for s, a in self.weights.items() if a != 0]

    @classmethod
    def parse(
        cls,
        spec: str,
        sets: Sequence[str],
        kinds: Mapping[str, str] | None = None,
        kinds_source: str = "",
    ) -> Objective:
        """Parse a spec against the known sets; ``kinds`` maps set -> 'val' | 'task'.

        A group term (``val``, ``task``) needs every set's kind from somewhere explicit (a
        score store, ``--kinds``, a built-in log's metadata): guessing would silently count
        end-task sets as validation sets. ``kinds_source`` says where they came from.
        """
        kinds = dict(kinds or {})
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
                unknown = [s for s in sets if s not in kinds]
                if unknown:
                    raise MixsurrogateError(
                        f"objective group {name!r} needs every set's kind (val or task), and "
                        f"{', '.join(unknown)} have none: pass --scores (the store knows them) "
                        "or name them, e.g. --kinds val=code,books --kinds task=arc_easy"
                    )
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
        uses_groups = any(
            p.partition("=")[0].strip() in GROUPS for p in spec.split(",") if p.strip()
        )
        return cls(weights, spec, kinds_source if uses_groups else "")

    def vector(self, sets: Sequence[str]) -> np.ndarray:
        """The weights in the order of ``sets`` (0 for sets the objective does not use)."""
        return np.array([self.weights.get(s, 0.0) for s in sets])

    def combine(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective values from per-set losses (rows x sets)."""
        return np.atleast_2d(losses) @ self.vector(sets)

    def combine_std(self, stds: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective std from per-set stds, treating the sets' errors as independent."""
        return np.sqrt((np.atleast_2d(stds) ** 2) @ (self.vector(sets) ** 2))
