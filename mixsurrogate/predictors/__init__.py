"""Predictor registry: registry name -> estimator class (contract in ``base.MixturePredictor``).

Every predictor is built by ``make_predictor(name, **hyper_parameters)``. ``RATE_PREDICTORS``
need only the mixture rates; ``MDE_PREDICTORS`` also need ``features`` (MDE losses of every
evaluation set, computed by the caller from a score store); ``FIDELITY_PREDICTORS`` take the
runs' fidelity (log10 params and tokens) as ``features``. These lists, like every caller, read
each class's declared ``capabilities`` (``base.Capabilities``).
"""

from __future__ import annotations

from .auto import AutoPredictor
from .base import Capabilities, MixturePredictor
from .registry import PREDICTORS, make_predictor, predictor_class

# auto chooses among the others by name (through the registry): it is registered last
PREDICTORS[AutoPredictor.name] = AutoPredictor

RATE_PREDICTORS: list[str] = [
    n for n, c in PREDICTORS.items() if not (c.capabilities.features or c.capabilities.fidelity)
]
MDE_PREDICTORS: list[str] = [n for n, c in PREDICTORS.items() if c.capabilities.features]
#: left out of ``cv``'s default list: several times gp's cost per fit (mtgp's joint covariance
#: over all sets; auto's inner cross-validation), or needing repeated runs (gp-hetero); name
#: them with ``-p``
OPT_IN_PREDICTORS: tuple[str, ...] = tuple(
    n for n, c in PREDICTORS.items() if c.capabilities.opt_in or c.capabilities.repeats
)
#: predictors that also need the runs' fidelity columns (params, tokens): see ``fidelity.py``
FIDELITY_PREDICTORS: list[str] = [n for n, c in PREDICTORS.items() if c.capabilities.fidelity]


__all__ = [
    "Capabilities",
    "OPT_IN_PREDICTORS",
    "FIDELITY_PREDICTORS",
    "MDE_PREDICTORS",
    "PREDICTORS",
    "RATE_PREDICTORS",
    "MixturePredictor",
    "make_predictor",
    "predictor_class",
]
