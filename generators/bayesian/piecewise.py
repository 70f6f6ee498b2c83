"""A Bayesian piecewise-exponential proportional-hazards model of censored survival.

Follow-up is divided at cut points ``0 = c_0 < c_1 < ... < c_{K-1} < c_K = inf`` into ``K``
intervals on which the baseline hazard is constant, ``h0(t) = lambda_j`` for
``c_{j-1} <= t < c_j``; a patient with covariates ``x`` (standardized numeric covariates,
one-hot categorical ones) and treatment indicator ``z`` has the hazard

    h(t | x, z) = h0(t) * exp(beta . x + log_hr * z),
    S(t | x, z) = exp(-exp(beta . x + log_hr * z) * sum_j lambda_j * e_j(t)),

with ``e_j(t)`` the time spent in interval ``j`` up to ``t`` (the exposure). The likelihood
is written directly: with ``d_j`` the number of events in interval ``j``,

    log L = sum_j d_j log lambda_j + sum_i [delta_i eta_i - exp(eta_i) sum_j lambda_j e_j(t_i)],

the same as the Poisson likelihood of the event counts per patient and interval with the
exposures as offsets (the "Poisson trick", Holford 1980; Laird & Olivier 1981), without
expanding the data to one row per patient and interval. Censoring is assumed
non-informative. The cut points are given, or by default at the ``j / K`` quantiles of the
observed event times (about equal numbers of events per interval). As the number of
intervals grows the model approaches Cox's semi-parametric model, whose partial-likelihood
estimate of ``log_hr`` it then matches.

Priors (weakly informative)
---------------------------
Time is divided by the median observed time ``m`` before fitting (recorded as
``time_scale_``); with ``lambda_j`` per unit ``m``:

- ``baseline_prior="random_walk"`` (default): ``log lambda_1 ~ Normal(0, 2)`` and
  ``log lambda_j - log lambda_{j-1} ~ Normal(0, 1)``, a first-order Gaussian random walk
  (Gamerman 1991; Fahrmeir & Knorr-Held 1997) that lets the hazard change between adjacent
  intervals by a factor up to ``e^2 ~ 7.4`` (two SDs) and borrows strength across intervals
  with few events;
- ``baseline_prior="independent"``: ``log lambda_j ~ Normal(0, 2)``, independently (a
  hazard within a factor ``e^4 ~ 55`` of one event per median follow-up time, two SDs);
- ``beta_j ~ Normal(0, 1)``: the log hazard ratio per SD of a numeric covariate, or of a
  category against the reference level;
- ``log_hr ~ Normal(0, 1)``: the treatment log hazard ratio (a 95 % prior range of hazard
  ratios from 0.14 to 7).

References
----------
Holford, T. R. (1980). The analysis of rates and of survivorship using log-linear models.
*Biometrics* 36(2), 299-305.
Laird, N. and Olivier, D. (1981). Covariance analysis of censored survival data using
log-linear analysis techniques. *JASA* 76(374), 231-240.
Gamerman, D. (1991). Dynamic Bayesian models for survival data. *Journal of the Royal
Statistical Society C* 40(1), 63-79.
Fahrmeir, L. and Knorr-Held, L. (1997). Dynamic discrete-time duration models. *Sociological
Methodology* 27, 417-452.
Ibrahim, J. G., Chen, M.-H. and Sinha, D. (2001). *Bayesian Survival Analysis*. Springer,
ch. 3 (piecewise exponential model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from generators.base import register
from generators.bayesian.survival import BayesianSurvival
from trials.exceptions import DataError

#: Prior SD of the log baseline hazard in the first interval (or every interval).
LOG_HAZARD_SD = 2.0
#: Prior SD of the change of the log baseline hazard between adjacent intervals.
RANDOM_WALK_SD = 1.0
BASELINE_PRIORS = ("random_walk", "independent")

__all__ = ["BASELINE_PRIORS", "BayesianPiecewiseExponential"]


@register("bayesian_piecewise_exponential")
class BayesianPiecewiseExponential(BayesianSurvival):
    """Bayesian piecewise-exponential proportional-hazards generator of survival times.

    The model and its priors are stated in the module docstring. Assumptions: proportional
    hazards for treatment and every covariate, a baseline hazard constant between the cut
    points, log-linear effects of numeric covariates, and censoring independent of the
    event time given the covariates.

    Parameters
    ----------
    time : str
        Column of follow-up times (> 0).
    event : str
        Column of event indicators (1 event, 0 censored).
    treatment : str or None
        Column of the treatment indicator: numeric 0/1 (1 = treated), or a two-level
        categorical whose second level is the treated arm. ``None``: no treatment effect.
    covariates : list of str or None
        Covariate columns (numeric standardized, categorical one-hot against the first
        level). ``None``: every other column; ``[]``: none.
    cuts : list of float or None
        Interior cut points in the data's time unit (positive, increasing). ``None``: at
        the ``j / n_intervals`` quantiles of the observed event times (duplicates and cuts
        at or beyond the last observed time dropped).
    n_intervals : int
        Number of intervals when ``cuts`` is None.
    baseline_prior : {"random_walk", "independent"}
        Prior of the log baseline hazards (see the module docstring).
    draws, tune, chains, target_accept, seed, sampler
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Attributes
    ----------
    cuts_ : list of float
        The interior cut points used (data time unit).
    idata_ : arviz.InferenceData or None
        The posterior, with ``hazard`` (baseline hazard per interval, per unit of the data's
        time) over the dimension ``interval`` (``None`` after a load).
    draws_ : dict of str to ndarray
        ``log_hazard`` (``n_draws`` x ``n_intervals``; per unit of the data's time),
        ``log_hr`` (zeros without treatment) and ``beta`` (``n_draws`` x ``n_terms``).
    diagnostics_ : dict
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Notes
    -----
    Virtual patients get their covariates and treatment as in
    :class:`~generators.bayesian.BayesianWeibull`, and each its own posterior draw. Event
    times beyond the last cut point follow the last interval's constant hazard (an
    exponential tail): the model says nothing else about times after follow-up.

    Examples
    --------
    >>> model = BayesianPiecewiseExponential(treatment="arm", n_intervals=6)  # doctest: +SKIP
    >>> model.fit(data).posterior_log_hr().mean()  # doctest: +SKIP
    """

    _dims = {"beta": ["term"], "hazard": ["interval"]}

    def __init__(
        self,
        time: str = "time",
        event: str = "event",
        treatment: str | None = None,
        covariates: list[str] | None = None,
        cuts: list[float] | None = None,
        n_intervals: int = 8,
        baseline_prior: str = "random_walk",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        sampler: str = "pymc",
    ):
        self.time = time
        self.event = event
        self.cuts = None if cuts is None else [float(c) for c in cuts]
        self.n_intervals = n_intervals
        self.baseline_prior = baseline_prior
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

    def _check_config(self) -> None:
        super()._check_config()
        if self.baseline_prior not in BASELINE_PRIORS:
            raise DataError(
                f"baseline_prior must be {' or '.join(map(repr, BASELINE_PRIORS))}, "
                f"got {self.baseline_prior!r}"
            )
        if self.cuts is None:
            if not isinstance(self.n_intervals, int | np.integer) or self.n_intervals < 1:
                raise DataError(f"n_intervals must be a positive integer, got {self.n_intervals!r}")
        else:
            cuts = np.asarray(self.cuts, dtype=float)
            if np.any(~np.isfinite(cuts) | (cuts <= 0)) or np.any(np.diff(cuts) <= 0):
                raise DataError(
                    f"cuts must be positive, finite and increasing, got {list(self.cuts)}"
                )

    def _check_outcome(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        outcome = super()._check_outcome(data)
        time, event = outcome["time"], outcome["event"]
        if self.cuts is not None:
            self.cuts_ = list(self.cuts)
        else:
            probs = np.arange(1, self.n_intervals) / self.n_intervals
            cuts = np.unique(np.quantile(time[event == 1], probs)) if len(probs) else []
            self.cuts_ = [float(c) for c in cuts if 0 < c < time.max()]
        return outcome

    @property
    def interval_labels_(self) -> list[str]:
        """The intervals as ``[lower, upper)`` in the data's time unit."""
        bounds = [0.0, *self.cuts_, np.inf]
        return [f"[{lo:.4g}, {hi:.4g})" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def _coords(self) -> dict[str, list[str]]:
        return {"term": list(self.terms_), "interval": self.interval_labels_}

    def _model(self, outcome: dict[str, np.ndarray], treat: np.ndarray, design: np.ndarray):
        import pymc as pm

        cuts = np.asarray(self.cuts_) / self.time_scale_
        time = outcome["time"] / self.time_scale_
        event = outcome["event"]
        exposure = _exposure(time, cuts)  # (patients, intervals), standardized time
        n_intervals = exposure.shape[1]
        interval = np.searchsorted(cuts, time[event == 1], side="right")
        events_per_interval = np.bincount(interval, minlength=n_intervals).astype(float)
        with pm.Model(coords=self._coords()) as model:
            if self.baseline_prior == "random_walk" and n_intervals > 1:
                log_hazard = pm.GaussianRandomWalk(
                    "log_hazard_std",
                    mu=0.0,
                    sigma=RANDOM_WALK_SD,
                    init_dist=pm.Normal.dist(0.0, LOG_HAZARD_SD),
                    dims="interval",
                )
            else:
                log_hazard = pm.Normal("log_hazard_std", 0.0, LOG_HAZARD_SD, dims="interval")
            beta = pm.Normal("beta", 0.0, 1.0, dims="term")
            log_hr = pm.Normal("log_hr", 0.0, 1.0) if self.treatment is not None else None
            eta = pm.math.dot(design, beta) if design.shape[1] else pm.math.zeros(len(time))
            if log_hr is not None:
                eta = eta + log_hr * treat
            cum_hazard = pm.math.dot(exposure, pm.math.exp(log_hazard))  # H0(t_i)
            pm.Potential(
                "loglik",
                pm.math.sum(events_per_interval * log_hazard)
                + pm.math.sum(event * eta - pm.math.exp(eta) * cum_hazard),
            )
        return model

    def _free_names(self) -> list[str]:
        names = ["log_hazard_std"]
        if self.terms_:
            names.append("beta")
        if self.treatment is not None:
            names.append("log_hr")
        return names

    def _transform(self, flat) -> dict[str, np.ndarray]:
        n_total = self.chains * self.draws
        return {
            "log_hazard": flat("log_hazard_std").reshape(n_total, len(self.cuts_) + 1)
            - np.log(self.time_scale_),
            "beta": flat("beta").reshape(n_total, len(self.terms_)),
            "log_hr": flat("log_hr") if self.treatment is not None else np.zeros(n_total),
        }

    def _baseline_reported(self) -> dict[str, np.ndarray]:
        return {"hazard": np.exp(self.draws_["log_hazard"])}

    def _model_state(self) -> dict[str, Any]:
        return {"time_scale": self.time_scale_, "cuts": list(self.cuts_)}

    def _set_model_state(self, state: dict[str, Any]) -> None:
        super()._set_model_state(state)
        self.cuts_ = [float(c) for c in state["cuts"]]
        n_draws = len(self.draws_["log_hr"])
        self.draws_["log_hazard"] = self.draws_["log_hazard"].reshape(n_draws, len(self.cuts_) + 1)

    def _baseline_cumhaz(self, times: np.ndarray, idx: np.ndarray) -> np.ndarray:
        exposure = _exposure(np.asarray(times, dtype=float), np.asarray(self.cuts_))
        return np.exp(self.draws_["log_hazard"][idx]) @ exposure.T

    def _inverse_baseline_cumhaz(self, target: np.ndarray, idx: np.ndarray) -> np.ndarray:
        target = np.asarray(target, dtype=float)
        flat_idx = np.broadcast_to(idx, target.shape).ravel()
        flat_target = target.ravel()
        hazard = np.exp(self.draws_["log_hazard"][flat_idx])  # (m, intervals)
        starts = np.array([0.0, *self.cuts_])
        widths = np.diff(starts)
        # H0 at the end of each bounded interval, and the interval each target falls in
        ends = np.cumsum(hazard[:, :-1] * widths, axis=1)
        j = (ends < flat_target[:, None]).sum(axis=1)
        rows = np.arange(len(flat_target))
        at_start = np.concatenate([np.zeros((len(flat_target), 1)), ends], axis=1)[rows, j]
        times = starts[j] + (flat_target - at_start) / hazard[rows, j]
        return times.reshape(target.shape)


def _exposure(times: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Time spent in each interval up to ``times``: shape (len(times), len(cuts) + 1)."""
    lower = np.concatenate([[0.0], cuts])
    width = np.concatenate([np.diff(lower), [np.inf]])
    return np.clip(times[:, None] - lower[None, :], 0.0, width[None, :])
