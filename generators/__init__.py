"""Virtual patients: statistical, Bayesian, deep generative and mechanistic generators."""

from generators.parametric import ParametricCovariates

__all__ = ["ParametricCovariates"]
