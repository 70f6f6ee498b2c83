"""What the Bayesian proportional-hazards models of censored survival share.

A patient with linear predictor ``eta`` (covariates and treatment, see
:mod:`generators.bayesian.base`) has the hazard ``h(t) = h0(t) exp(eta)`` and the survival
function ``S(t) = exp(-H0(t) exp(eta))``, ``H0`` the baseline cumulative hazard, so that
``exp(log_hr)`` is the treatment hazard ratio. Censoring is assumed non-informative: an event
contributes ``log h(t) + log S(t)`` to the log likelihood, a censored time ``log S(t)``.
Each model defines ``H0`` (Weibull, piecewise exponential); this module draws event times
by inverting it (``T = H0^-1(E exp(-eta))``, ``E ~ Exp(1)``) and checks the fit against the
observed Kaplan-Meier curves.

References
----------
Ibrahim, J. G., Chen, M.-H. and Sinha, D. (2001). *Bayesian Survival Analysis*. Springer,
ch. 2 and 3.
Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., ch. 6 (posterior predictive checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from generators.base import DataRoles
from generators.bayesian.base import BayesianRegression, _numeric, _rows
from trials.exceptions import DataError

__all__ = ["BayesianSurvival", "PosteriorPredictiveKM"]


@dataclass(frozen=True)
class PosteriorPredictiveKM:
    """A posterior predictive check of the Kaplan-Meier curves, per arm.

    Attributes
    ----------
    table : DataFrame
        One row per arm and grid time: ``arm``, ``time``, ``km`` (the observed Kaplan-Meier
        estimate), ``curve_lower`` / ``curve_upper`` (the ``level`` band of the model
        survival curve averaged over the arm's observed covariates, posterior uncertainty
        only), ``lower`` / ``upper`` (the ``level`` band of the Kaplan-Meier curves of
        replicated data sets: same covariates, event times from one posterior draw each,
        censoring times from the arm's observed censoring distribution, the reverse
        Kaplan-Meier estimate) and ``inside`` (whether
        ``km`` lies in ``[lower, upper]``).
    share_inside : float
        Share of grid points (all arms) where the observed Kaplan-Meier curve lies inside the
        replicated-data band.
    level : float
        Coverage of the bands (0.90: the 5 % and 95 % quantiles).
    n_draws : int
        Number of posterior draws used.
    """

    table: pd.DataFrame
    share_inside: float
    level: float
    n_draws: int

    def summary(self) -> pd.DataFrame:
        """Share of grid points inside the band, per arm."""
        return self.table.groupby("arm", observed=True)["inside"].mean().to_frame("share_inside")


class BayesianSurvival(BayesianRegression):
    """Base class of the proportional-hazards models of censored survival.

    Subclasses store ``time`` and ``event`` (column names) and define the baseline
    cumulative hazard (:meth:`_baseline_cumhaz`) and its inverse
    (:meth:`_inverse_baseline_cumhaz`), both in the data's time unit.
    """

    effect_scale = "log_hazard_ratio"
    _effect = "log_hr"
    _effect_ratio = "hazard_ratio"

    time: str
    event: str

    # -- what each survival model defines --------------------------------------------------

    def _baseline_cumhaz(self, times: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``H0(t)`` of the draws ``idx`` at ``times``: shape (len(idx), len(times))."""
        raise NotImplementedError

    def _inverse_baseline_cumhaz(self, target: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The times ``t`` with ``H0(t) = target`` under the draws ``idx`` (an index array
        that broadcasts to ``target``'s shape)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> BayesianSurvival:
        """Time, event and treatment from the dictionary's roles; its covariates."""
        if roles.time is None or roles.event is None:
            raise DataError(f"the {cls.kind} model needs a time and an event column")
        return cls(
            time=roles.time,
            event=roles.event,
            treatment=roles.arm,
            covariates=list(roles.covariates),
            seed=seed,
        )

    def _outcome_columns(self) -> list[str]:
        return [self.time, self.event]

    def _check_outcome(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        time = _numeric(data[self.time], self.time)
        if np.any(~np.isfinite(time) | (time <= 0)):
            raise DataError(
                f"column {self.time!r}: rows {_rows(~np.isfinite(time) | (time <= 0))} "
                "must be finite and greater than 0"
            )
        event = _numeric(data[self.event], self.event)
        if np.any(~np.isin(event, (0, 1))):
            raise DataError(
                f"column {self.event!r}: rows {_rows(~np.isin(event, (0, 1)))} must be 0 or 1"
            )
        if event.sum() == 0:
            raise DataError(f"column {self.event!r} has no events: nothing to fit")
        self.time_scale_ = float(np.median(time))
        return {"time": time, "event": event}

    def _uncast(self) -> set[str]:
        return {self.time}

    def _model_state(self) -> dict[str, Any]:
        return {"time_scale": self.time_scale_}

    def _set_model_state(self, state: dict[str, Any]) -> None:
        self.time_scale_ = float(state["time_scale"])

    def posterior_log_hr(self) -> np.ndarray:
        """The posterior draws of the treatment log hazard ratio (chains concatenated)."""
        return self.posterior_effect()

    def _draw_outcomes(
        self, idx: np.ndarray, eta: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Uncensored event times: ``time`` (float) and ``event`` (all 1)."""
        n = len(idx)
        times = self._inverse_baseline_cumhaz(rng.standard_exponential(n) * np.exp(-eta), idx)
        return {self.time: times, self.event: np.ones(n, dtype=np.int64)}

    def sample(
        self,
        n_patients: int,
        rng: int | np.random.Generator | None = None,
        covariates: pd.DataFrame | None = None,
        treatment: Any = None,
    ) -> pd.DataFrame:
        """Draw virtual patients with uncensored event times, each with its own posterior
        draw.

        Parameters
        ----------
        n_patients : int
            Number of virtual patients.
        rng : int or numpy.random.Generator, optional
            Seed or generator.
        covariates : DataFrame, optional
            ``n_patients`` rows with the covariate columns (e.g. from a copula generator);
            default: drawn from the Gaussian approximation (see the class Notes).
        treatment : scalar or array-like, optional
            Treatment of each patient (0/1, or the treatment column's levels); a scalar
            applies to all. Default: drawn with the observed treated share.

        Returns
        -------
        DataFrame
            The fitted columns in their training order: time (event time, float), event
            (all 1), treatment and covariates (training dtypes; categoricals as
            ``pd.Categorical`` with the training levels).
        """
        return super().sample(n_patients, rng, covariates=covariates, treatment=treatment)

    # -- posterior predictive check --------------------------------------------------------

    def ppc(self, data: pd.DataFrame, **kwargs) -> PosteriorPredictiveKM:
        """The model's posterior predictive check: :meth:`ppc_km`."""
        return self.ppc_km(data, **kwargs)

    def ppc_km(
        self,
        data: pd.DataFrame,
        n_draws: int = 100,
        times: np.ndarray | None = None,
        rng: int | np.random.Generator | None = 0,
        level: float = 0.90,
    ) -> PosteriorPredictiveKM:
        """Compare the observed Kaplan-Meier curve of each arm with posterior predictions.

        Parameters
        ----------
        data : DataFrame
            Observed data with the fitted columns (usually the training data).
        n_draws : int
            Number of posterior draws (without replacement when possible).
        times : array-like, optional
            Time grid; default 20 points evenly spaced up to the 90th percentile of the
            observed times.
        rng : int or numpy.random.Generator
            Seed or generator of the draws and of the replicated data sets.
        level : float
            Coverage of the bands.

        Returns
        -------
        PosteriorPredictiveKM
            The observed KM, the band of the model survival curve averaged over the arm's
            observed covariates, the band of replicated-data KM curves, and the share of
            grid points inside the latter.
        """
        from lifelines import KaplanMeierFitter

        self._check_fitted()
        rng = np.random.default_rng(rng)
        frame, treat, design = self._observed(data)
        observed = _numeric(frame[self.time], self.time)
        events = _numeric(frame[self.event], self.event)
        grid = (
            np.linspace(0, np.quantile(observed, 0.9), 21)[1:]
            if times is None
            else np.asarray(times, dtype=float)
        )
        idx = rng.choice(self.n_draws_, size=n_draws, replace=n_draws > self.n_draws_)
        cum_baseline = self._baseline_cumhaz(grid, idx)  # (draws, grid)
        eta = self._linear_predictor(design, treat, idx)  # (draws, patients)
        tails = (1 - level) / 2
        rows = []
        for arm in np.unique(treat):
            members = treat == arm
            km = KaplanMeierFitter().fit(observed[members], events[members])
            km_values = km.survival_function_at_times(grid).to_numpy()
            # model survival curves S(t | x_i), averaged over the arm's patients
            cum = cum_baseline[:, None, :] * np.exp(eta[:, members])[:, :, None]
            curves = np.exp(-cum).mean(axis=1)  # (draws, grid)
            # replicated data sets: event times from each draw, censoring as observed
            n_arm = int(members.sum())
            e = rng.standard_exponential((n_draws, n_arm))
            t_rep = self._inverse_baseline_cumhaz(e * np.exp(-eta[:, members]), idx[:, None])
            c_rep = _censoring_sampler(observed[members], events[members])(rng, (n_draws, n_arm))
            replicated = np.array(
                [
                    KaplanMeierFitter()
                    .fit(np.minimum(t_rep[d], c_rep[d]), (t_rep[d] <= c_rep[d]).astype(int))
                    .survival_function_at_times(grid)
                    .to_numpy()
                    for d in range(n_draws)
                ]
            )
            lower, upper = np.quantile(replicated, [tails, 1 - tails], axis=0)
            curve_lower, curve_upper = np.quantile(curves, [tails, 1 - tails], axis=0)
            rows.append(
                pd.DataFrame(
                    {
                        "arm": self._arm_label(arm),
                        "time": grid,
                        "km": km_values,
                        "curve_lower": curve_lower,
                        "curve_upper": curve_upper,
                        "lower": lower,
                        "upper": upper,
                        "inside": (km_values >= lower - 1e-12) & (km_values <= upper + 1e-12),
                    }
                )
            )
        table = pd.concat(rows, ignore_index=True)
        return PosteriorPredictiveKM(
            table=table,
            share_inside=float(table["inside"].mean()),
            level=level,
            n_draws=int(n_draws),
        )


def _censoring_sampler(observed: np.ndarray, events: np.ndarray):
    """Draw censoring times from the reverse Kaplan-Meier estimate of the censoring
    distribution; its mass beyond the last observed time is put at that time (end of
    follow-up)."""
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter().fit(observed, 1 - events)
    timeline = fitter.survival_function_.index.to_numpy()
    survival = fitter.survival_function_.iloc[:, 0].to_numpy()
    last = float(observed.max())

    def draw(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        u = rng.random(size)
        # the first time at which G(t) <= u: G is non-increasing, so search on -G
        pos = np.searchsorted(-survival, -u, side="left")
        return np.where(pos < len(timeline), timeline[np.minimum(pos, len(timeline) - 1)], last)

    return draw
