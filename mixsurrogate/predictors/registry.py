"""Registry name -> predictor class, and :func:`make_predictor`.

Apart from the package's ``__init__`` so that ``auto``, which builds its candidates by name,
can use it without importing the package it is part of; ``auto`` itself is registered by the
package (last), once its module is loaded.
"""

from __future__ import annotations

from ..errors import MixsurrogateError
from .base import MixturePredictor
from .gp import GPPredictor
from .gp_hetero import HeteroGPPredictor
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
from .mde_examples import MDEExamplesPredictor
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
        HeteroGPPredictor,
        DMLPredictor,
        BiMixPredictor,
        MDEPredictor,
        MDECalPredictor,
        LinearMDEPredictor,
        LGBMMDEPredictor,
        GPMDEPredictor,
        GPResidualMDEPredictor,
        MDEExamplesPredictor,
        MFGPPredictor,
        MTGPPredictor,
        MTGPMDEPredictor,
    )
}


def predictor_class(name: str) -> type[MixturePredictor]:
    """The estimator class of a registry name (its ``capabilities`` say what it supports)."""
    if name not in PREDICTORS:
        raise MixsurrogateError(f"unknown predictor {name!r}; choose from {', '.join(PREDICTORS)}")
    return PREDICTORS[name]


def make_predictor(name: str, **params) -> MixturePredictor:
    """A fresh predictor by registry name, hyper-parameters as keyword arguments."""
    return predictor_class(name)(**params)
