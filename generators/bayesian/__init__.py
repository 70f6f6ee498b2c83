"""Bayesian outcome models with covariates and treatment, fitted with PyMC.

- :class:`BayesianWeibull` (``bayesian_weibull``): Weibull proportional hazards, censored
  survival;
- :class:`BayesianPiecewiseExponential` (``bayesian_piecewise_exponential``): piecewise-constant
  baseline hazard, proportional hazards, censored survival;
- :class:`BayesianLogistic` (``bayesian_logistic``): logistic regression, binary outcome;
- :class:`BayesianLinear` (``bayesian_linear``): linear regression with normal or Student-t
  residuals, continuous outcome.

Each keeps its ArviZ ``InferenceData`` as ``idata_``, checks and reports convergence
(``diagnostics_``; a :class:`~trials.exceptions.ConvergenceWarning`, or a refusal with
``fit(data, strict=True)``), has a posterior predictive check (``ppc``), gives the treatment
effect's posterior draws on its ``effect_scale`` (``posterior_effect()``; the survival models
also ``posterior_log_hr()``), and samples virtual patients each with their own posterior draw.
Priors are stated in each model's module with their references. PyMC is imported only when a
model is fitted.

The sampler: PyMC's own NUTS by default. nutpie (``sampler="nutpie"``, or ``"auto"`` for
nutpie when it is installed and PyMC otherwise; the one used is recorded in
``diagnostics_["sampler"]``) draws several times faster once compiled, but compiles each new
model with numba for several seconds, so that a whole fit of 700 patients (4 chains x 1000
draws after 1000 tuning steps) was not reliably faster with it on a 2-CPU machine; it pays
off with long chains or large data sets.
"""

from generators.bayesian.base import MAX_LEVELS, MAX_RHAT, MIN_ESS, SAMPLERS, BayesianRegression
from generators.bayesian.glm import BayesianLinear, BayesianLogistic, PosteriorPredictiveArms
from generators.bayesian.piecewise import BayesianPiecewiseExponential
from generators.bayesian.survival import BayesianSurvival, PosteriorPredictiveKM
from generators.bayesian.weibull import BayesianWeibull

__all__ = [
    "MAX_LEVELS",
    "MAX_RHAT",
    "MIN_ESS",
    "SAMPLERS",
    "BayesianLinear",
    "BayesianLogistic",
    "BayesianPiecewiseExponential",
    "BayesianRegression",
    "BayesianSurvival",
    "BayesianWeibull",
    "PosteriorPredictiveArms",
    "PosteriorPredictiveKM",
]
