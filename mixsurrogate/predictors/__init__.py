"""Predictor registry: registry name -> estimator class (contract in ``base.MixturePredictor``).

Every predictor is built by ``make_predictor(name, **hyper_parameters)``. ``RATE_PREDICTORS``
need only the mixture rates; ``MDE_PREDICTORS`` also need ``features`` (MDE losses of every
evaluation set, computed by the caller from a score store); ``FIDELITY_PREDICTORS`` take the
runs' fidelity (log10 params and tokens) as ``features``. These lists, like every caller, read
each class's declared ``capabilities`` (``base.Capabilities``).
"""

from __future__ import annotations

from ..errors import MixsurrogateError
from .auto import AutoPredictor
from .base import Capabilities, MixturePredictor
from .gp import GPPredictor
from .laws import BiMixPredictor, DMLPredictor
from .lgbm import LGBMPredictor
from .linear import LinearPredictor
from .loglinear import LogLinearPredictor
from .mde import (
    GPMDEPredictor,
    GPResidualMDEPredictor,
    LGBMMDEPredictor,
    LinearMDEPredictor,
    MDECalPredictor,
    MDEPredictor,
)
from .mean import MeanPredictor
from .mfgp import MFGPPredictor
from .mtgp import MTGPMDEPredictor, MTGPPredictor

PREDICTORS: dict[str, type[MixturePredictor]] = {
    cls.name: cls
    for cls in (
        MeanPredictor,
        LinearPredictor,
        LogLinearPredictor,
        LGBMPredictor,
        GPPredictor,
        DMLPredictor,
        BiMixPredictor,
        MDEPredictor,
        MDECalPredictor,
        LinearMDEPredictor,
        LGBMMDEPredictor,
        GPMDEPredictor,
        GPResidualMDEPredictor,
        MFGPPredictor,
        MTGPPredictor,
        MTGPMDEPredictor,
        AutoPredictor,
    )
}
RATE_PREDICTORS: list[str] = [
    n for n, c in PREDICTORS.items() if not (c.capabilities.features or c.capabilities.fidelity)
]
MDE_PREDICTORS: list[str] = [n for n, c in PREDICTORS.items() if c.capabilities.features]
#: left out of ``cv``'s default list: several times gp's cost per fit (mtgp's joint covariance
#: over all sets; auto's inner cross-validation); name them with ``-p``
OPT_IN_PREDICTORS: tuple[str, ...] = tuple(
    n for n, c in PREDICTORS.items() if c.capabilities.opt_in
)
#: predictors that also need the runs' fidelity columns (params, tokens): see ``fidelity.py``
FIDELITY_PREDICTORS: list[str] = [n for n, c in PREDICTORS.items() if c.capabilities.fidelity]


def predictor_class(name: str) -> type[MixturePredictor]:
    """The estimator class of a registry name (its ``capabilities`` say what it supports)."""
    if name not in PREDICTORS:
        raise MixsurrogateError(f"unknown predictor {name!r}; choose from {', '.join(PREDICTORS)}")
    return PREDICTORS[name]


def make_predictor(name: str, **params) -> MixturePredictor:
    """A fresh predictor by registry name, hyper-parameters as keyword arguments."""
    return predictor_class(name)(**params)


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
