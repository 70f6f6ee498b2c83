"""A Bayesian Weibull proportional-hazards model of censored survival, fitted with PyMC.

The event time ``T`` of a patient with covariates ``x`` (standardized numeric covariates,
one-hot categorical ones) and treatment indicator ``z`` is Weibull with shape ``k`` and
scale ``lambda * exp(-(beta . x + log_hr * z) / k)``, that is

    h(t | x, z) = h0(t) * exp(beta . x + log_hr * z),     h0(t) = (k / lambda) (t / lambda)^(k-1),
    S(t | x, z) = exp(-(t / lambda)^k * exp(beta . x + log_hr * z)),

a proportional-hazards model whose baseline (``z = 0``, numeric covariates at their mean,
categorical ones at their reference level) is Weibull(k, lambda). Censoring is assumed
non-informative: an event contributes ``log f(t)``, a censored time ``log S(t)``.

Priors (weakly informative)
---------------------------
Time is divided by the median observed time ``m`` of the data before fitting (a
data-dependent centring, recorded as ``time_scale_``); on that scale

- ``log k ~ Normal(0, 1)``: shapes from about 0.14 to 7 within two SDs;
- ``log(lambda / m) ~ Normal(0, 2)``: the baseline scale within a factor ``e^4 ~ 55`` of the
  median observed time, two SDs either side;
- ``beta_j ~ Normal(0, 1)``: the log hazard ratio per SD of a numeric covariate, or of a
  category against the reference level;
- ``log_hr ~ Normal(0, 1)``: the treatment log hazard ratio (a 95 % prior range of hazard
  ratios from 0.14 to 7).

References
----------
Ibrahim, J. G., Chen, M.-H. and Sinha, D. (2001). *Bayesian Survival Analysis*. Springer, ch. 2.
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat. *Bayesian Analysis* 16(2), 667-718.
Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., ch. 6 (posterior predictive checks).
"""

from __future__ import annotations

import numpy as np

from generators.base import register
from generators.bayesian.survival import BayesianSurvival

__all__ = ["BayesianWeibull"]


@register("bayesian_weibull")
class BayesianWeibull(BayesianSurvival):
    """Bayesian Weibull proportional-hazards generator of censored survival times.

    The model and its priors are stated in the module docstring. Assumptions: proportional
    hazards for treatment and every covariate, a Weibull baseline hazard, log-linear effects
    of numeric covariates, and censoring independent of the event time given the covariates.

    Parameters
    ----------
    time : str
        Column of follow-up times (> 0).
    event : str
        Column of event indicators (1 event, 0 censored).
    treatment : str or None
        Column of the treatment indicator: a numeric 0/1 column (1 = treated), or a
        two-level categorical whose *second* level is the treated arm (the first level is
        the control). ``None``: no treatment effect in the model.
    covariates : list of str or None
        Covariate columns. Numeric ones are standardized (mean 0, SD 1) before fitting;
        categorical (or string) ones are one-hot coded against their first level (the
        categorical's first category, or the smallest value of a string column). ``None``:
        every column other than ``time``, ``event`` and ``treatment``; ``[]``: none.
    draws, tune, chains : int
        Posterior draws kept per chain, tuning steps per chain, number of chains.
    target_accept : float
        NUTS target acceptance rate.
    seed : int
        Seed of the sampler (chains get child seeds from it).
    sampler : {"pymc", "nutpie", "auto"}
        NUTS implementation: PyMC's own, nutpie (needs the ``nutpie`` package), or
        ``"auto"``: nutpie when it is installed, PyMC's otherwise (the one used is in
        ``diagnostics_["sampler"]``).

    Attributes
    ----------
    idata_ : arviz.InferenceData or None
        The posterior (``None`` after :func:`~generators.base.load`: only the draws are saved).
    draws_ : dict of str to ndarray
        Posterior draws, chains concatenated: ``log_shape`` and ``log_scale`` (``n_draws``;
        the scale in the data's time unit), ``log_hr`` (``n_draws``; zeros without
        treatment), ``beta`` (``n_draws`` x ``n_terms``).
    terms_ : list of str
        Names of the columns of the design (``age``, ``stage[II]``…), the order of ``beta``.
    diagnostics_ : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``n_divergences``, ``converged``,
        ``warnings`` (the failed criteria, in words), ``sampler`` (the one used).

    Notes
    -----
    Virtual patients get covariates from a Gaussian approximation of the training data when
    none are given: numeric covariates jointly normal with the observed means and covariance
    (integer columns rounded and kept within their observed range), categorical ones drawn
    independently from their observed frequencies, and treatment drawn with its observed
    share, independently of the covariates (as under randomization). This keeps the
    generator self-contained but loses non-normal marginals and the dependence between
    categorical and other covariates; for realistic covariates use a copula generator and
    pass its patients as ``covariates=`` to :meth:`sample`.

    Each virtual patient gets its own posterior draw (uniformly at random), so a sampled
    cohort carries the parameter uncertainty of the fit, not only the Weibull variability.

    Examples
    --------
    >>> model = BayesianWeibull(treatment="arm", covariates=["age"], chains=2)  # doctest: +SKIP
    >>> model.fit(data).posterior_log_hr().mean()  # doctest: +SKIP
    """

    def __init__(
        self,
        time: str = "time",
        event: str = "event",
        treatment: str | None = None,
        covariates: list[str] | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        sampler: str = "pymc",
    ):
        self.time = time
        self.event = event
        super().__init__(
            treatment=treatment,
            covariates=covariates,
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            seed=seed,
            sampler=sampler,
        )

    def _model(self, outcome: dict[str, np.ndarray], treat: np.ndarray, design: np.ndarray):
        import pymc as pm

        log_t = np.log(outcome["time"] / self.time_scale_)
        event = outcome["event"]
        coords = {"term": list(self.terms_)}
        with pm.Model(coords=coords) as model:
            log_shape = pm.Normal("log_shape", 0.0, 1.0)
            log_scale_std = pm.Normal("log_scale_std", 0.0, 2.0)
            beta = pm.Normal("beta", 0.0, 1.0, dims="term")
            log_hr = pm.Normal("log_hr", 0.0, 1.0) if self.treatment is not None else None
            eta = pm.math.dot(design, beta) if design.shape[1] else 0.0
            if log_hr is not None:
                eta = eta + log_hr * treat
            # log cumulative hazard and log hazard at the observed times (standardized scale)
            z = pm.math.exp(log_shape) * (log_t - log_scale_std)
            log_cum_hazard = z + eta
            log_hazard = log_shape - log_t + log_cum_hazard
            pm.Potential("loglik", pm.math.sum(event * log_hazard - pm.math.exp(log_cum_hazard)))
        return model

    def _free_names(self) -> list[str]:
        names = ["log_shape", "log_scale_std"]
        if self.terms_:
            names.append("beta")
        if self.treatment is not None:
            names.append("log_hr")
        return names

    def _transform(self, flat) -> dict[str, np.ndarray]:
        n_total = self.chains * self.draws
        return {
            "log_shape": flat("log_shape"),
            "log_scale": flat("log_scale_std") + np.log(self.time_scale_),
            "beta": flat("beta").reshape(n_total, len(self.terms_)),
            "log_hr": flat("log_hr") if self.treatment is not None else np.zeros(n_total),
        }

    def _baseline_reported(self) -> dict[str, np.ndarray]:
        return {
            "shape": np.exp(self.draws_["log_shape"]),
            "scale": np.exp(self.draws_["log_scale"]),
        }

    def _reported(self) -> dict[str, np.ndarray]:
        return {"log_scale": self.draws_["log_scale"], **super()._reported()}

    def _baseline_cumhaz(self, times: np.ndarray, idx: np.ndarray) -> np.ndarray:
        shape = np.exp(self.draws_["log_shape"][idx])[:, None]
        scale = np.exp(self.draws_["log_scale"][idx])[:, None]
        return (np.asarray(times, dtype=float)[None, :] / scale) ** shape

    def _inverse_baseline_cumhaz(self, target: np.ndarray, idx: np.ndarray) -> np.ndarray:
        # H0(t) = (t / scale)^k  =>  t = scale * H0^(1/k)
        shape = np.exp(self.draws_["log_shape"][idx])
        scale = np.exp(self.draws_["log_scale"][idx])
        return scale * target ** (1.0 / shape)
