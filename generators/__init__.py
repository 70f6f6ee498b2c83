"""Virtual patients: statistical, Bayesian, deep generative and mechanistic generators.

Importing the package registers every generator, so that :func:`generators.base.load`
reads any saved model.
"""

from generators.base import REGISTRY, Generator, load
from generators.bayesian import (  # PyMC is imported only when fitting
    BayesianLinear,
    BayesianLogistic,
    BayesianPiecewiseExponential,
    BayesianWeibull,
)
from generators.copula import GaussianCopula
from generators.mechanistic import TumourGrowthInhibition
from generators.parametric import ParametricCovariates
from generators.rhvae import RHVAE  # torch is imported only when fitting or sampling
from generators.vae import TabularVAE

__all__ = [
    "REGISTRY",
    "BayesianLinear",
    "BayesianLogistic",
    "BayesianPiecewiseExponential",
    "BayesianWeibull",
    "GaussianCopula",
    "Generator",
    "ParametricCovariates",
    "RHVAE",
    "TabularVAE",
    "TumourGrowthInhibition",
    "load",
]
