"""Bayesian generalized linear models of a binary or continuous outcome, fitted with PyMC.

A patient with covariates ``x`` (standardized numeric covariates, one-hot categorical
ones) and treatment indicator ``z`` has the linear predictor
``eta = alpha + beta . x + effect * z``, and

- :class:`BayesianLogistic` (a binary outcome ``y``): ``logit P(y = 1) = eta``, the
  treatment effect ``log_or`` a log odds ratio;
- :class:`BayesianLinear` (a continuous outcome ``y``): ``y = eta + sigma * e`` with ``e``
  standard normal (``likelihood="normal"``) or Student-t with ``nu`` degrees of freedom
  (``likelihood="student_t"``, robust to outlying outcomes), the treatment effect
  ``mean_difference`` a difference in (location) means, treated minus control.

``alpha`` is the outcome's log odds or mean for a control patient with numeric covariates at
their means and categorical ones at their reference levels.

Priors (weakly informative)
---------------------------
Logistic (Gelman et al. 2008, with normal rather than Cauchy tails):

- ``alpha ~ Normal(0, 2.5)``: a baseline probability between 0.007 and 0.993 within two SDs;
- ``beta_j ~ Normal(0, 2.5)``: the log odds ratio per SD of a numeric covariate, or of a
  category against the reference level;
- ``log_or ~ Normal(0, 2.5)``: the treatment log odds ratio (rules out only odds ratios
  beyond about 150 or below 1/150).

Linear: the outcome is standardized by its mean ``m`` and SD ``s`` in the data before
fitting (recorded as ``outcome_mean_`` and ``outcome_sd_``); on that scale

- ``alpha ~ Normal(0, 1)``, ``beta_j ~ Normal(0, 1)`` (outcome SDs per covariate SD) and
  ``mean_difference / s ~ Normal(0, 1)``: effects within two outcome SDs, two prior SDs
  either side;
- ``sigma / s ~ HalfNormal(1)``;
- ``nu ~ Gamma(2, 0.1)`` for the Student-t likelihood (Juárez & Steel 2010): prior mean 20,
  from nearly Cauchy to nearly normal tails.

The posterior draws are reported in the outcome's units.

References
----------
Gelman, A., Jakulin, A., Pittau, M. G. and Su, Y.-S. (2008). A weakly informative default prior
distribution for logistic and other regression models. *Annals of Applied Statistics* 2(4),
1360-1383.
Juárez, M. A. and Steel, M. F. J. (2010). Model-based clustering of non-Gaussian panel data
based on skew-t distributions. *Journal of Business & Economic Statistics* 28(1), 52-66.
Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., ch. 6 (posterior predictive checks),
ch. 14 and 16 (regression, generalized linear models), ch. 17 (the t model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from generators.base import DataRoles, register
from generators.bayesian.base import (
    BayesianRegression,
    _is_categorical,
    _levels,
    _numeric,
    _rows,
)
from trials.exceptions import DataError

LIKELIHOODS = ("normal", "student_t")

__all__ = ["LIKELIHOODS", "BayesianLinear", "BayesianLogistic", "PosteriorPredictiveArms"]


@dataclass(frozen=True)
class PosteriorPredictiveArms:
    """A posterior predictive check of summary statistics of the outcome, per arm.

    Attributes
    ----------
    table : DataFrame
        One row per arm and statistic: ``arm``, ``statistic`` (``proportion`` for a binary
        outcome, ``mean`` and ``sd`` for a continuous one), ``observed`` (in the data),
        ``lower`` / ``upper`` (the ``level`` interval of the statistic over replicated data
        sets: the arm's observed covariates and treatment, outcomes from one posterior draw
        each), ``p_value`` (posterior predictive p-value, the share of replicated
        statistics at least as large as the observed one) and ``inside``.
    share_inside : float
        Share of rows whose observed statistic lies inside its interval.
    level : float
        Coverage of the intervals (0.90: the 5 % and 95 % quantiles).
    n_draws : int
        Number of posterior draws (replicated data sets).
    """

    table: pd.DataFrame
    share_inside: float
    level: float
    n_draws: int

    def summary(self) -> pd.DataFrame:
        """Whether each observed statistic is inside its interval, per arm."""
        return self.table.pivot(index="arm", columns="statistic", values="inside")


class _OutcomeRegression(BayesianRegression):
    """A model of one outcome column (binary or continuous)."""

    outcome: str
    _statistics: tuple[str, ...] = ()

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> _OutcomeRegression:
        """The first outcome of the dictionary, its arm and covariates."""
        if not roles.outcomes:
            raise DataError(
                f"the {cls.kind} model needs an outcome column (role 'outcome' in the data "
                "dictionary)"
            )
        return cls(
            outcome=roles.outcomes[0],
            treatment=roles.arm,
            covariates=list(roles.covariates),
            seed=seed,
        )

    def _outcome_columns(self) -> list[str]:
        return [self.outcome]

    def _replicate(self, idx: np.ndarray, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Replicated outcomes (draws, patients) for the draws ``idx``."""
        raise NotImplementedError

    def _statistic(self, name: str, values: np.ndarray) -> np.ndarray:
        """A statistic of outcomes over the last axis."""
        if name == "sd":
            return values.std(axis=-1, ddof=1)
        return values.mean(axis=-1)

    def ppc(
        self,
        data: pd.DataFrame,
        n_draws: int = 200,
        rng: int | np.random.Generator | None = 0,
        level: float = 0.90,
    ) -> PosteriorPredictiveArms:
        """Compare the outcome's summary statistics per arm with posterior predictions.

        Parameters
        ----------
        data : DataFrame
            Observed data with the fitted columns (usually the training data).
        n_draws : int
            Number of posterior draws, each giving one replicated data set.
        rng : int or numpy.random.Generator
            Seed or generator.
        level : float
            Coverage of the intervals.

        Returns
        -------
        PosteriorPredictiveArms
        """
        self._check_fitted()
        rng = np.random.default_rng(rng)
        frame, treat, design = self._observed(data)
        observed = self._outcome_values(frame[self.outcome])
        idx = rng.choice(self.n_draws_, size=n_draws, replace=n_draws > self.n_draws_)
        eta = self._linear_predictor(design, treat, idx)
        replicated = self._replicate(idx, eta, rng)
        tails = (1 - level) / 2
        rows = []
        for arm in np.unique(treat):
            members = treat == arm
            for name in self._statistics:
                value = float(self._statistic(name, observed[members]))
                reps = self._statistic(name, replicated[:, members])
                lower, upper = np.quantile(reps, [tails, 1 - tails])
                rows.append(
                    {
                        "arm": self._arm_label(arm),
                        "statistic": name,
                        "observed": value,
                        "lower": float(lower),
                        "upper": float(upper),
                        "p_value": float(np.mean(reps >= value)),
                        "inside": bool(lower - 1e-12 <= value <= upper + 1e-12),
                    }
                )
        table = pd.DataFrame(rows)
        return PosteriorPredictiveArms(
            table=table,
            share_inside=float(table["inside"].mean()),
            level=level,
            n_draws=int(n_draws),
        )

    def _outcome_values(self, series: pd.Series) -> np.ndarray:
        return _numeric(series, self.outcome)


@register("bayesian_logistic")
class BayesianLogistic(_OutcomeRegression):
    """Bayesian logistic regression generator of a binary outcome.

    The model and its priors are stated in the module docstring. Assumptions: a linear
    logit in the treatment and the (standardized) numeric covariates, no interactions.

    Parameters
    ----------
    outcome : str
        Column of the binary outcome: numeric or boolean 0/1 (1 = the event of interest),
        or a two-level categorical whose *second* level is the event.
    treatment : str or None
        Column of the treatment indicator: numeric 0/1 (1 = treated), or a two-level
        categorical whose second level is the treated arm. ``None``: no treatment effect.
    covariates : list of str or None
        Covariate columns (numeric standardized, categorical one-hot against the first
        level). ``None``: every other column; ``[]``: none.
    draws, tune, chains, target_accept, seed, sampler
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Attributes
    ----------
    idata_ : arviz.InferenceData or None
        The posterior (``intercept``, ``log_or``, ``odds_ratio``, ``beta``) and the observed
        outcome (``None`` after a load).
    draws_ : dict of str to ndarray
        ``intercept`` (log odds at baseline), ``log_or`` (zeros without treatment) and
        ``beta`` (``n_draws`` x ``n_terms``, log odds ratio per covariate SD or category).
    outcome_levels_ : list of str or None
        The categorical outcome's levels (no event, event); None for a numeric outcome.
    diagnostics_ : dict
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Notes
    -----
    Virtual patients get covariates and treatment as in
    :class:`~generators.bayesian.BayesianWeibull`; each gets its own posterior draw and an
    outcome drawn from Bernoulli(expit(eta)).

    Examples
    --------
    >>> model = BayesianLogistic(outcome="response", treatment="arm")  # doctest: +SKIP
    >>> model.fit(data).posterior_effect().mean()  # doctest: +SKIP
    """

    effect_scale = "log_odds_ratio"
    _effect = "log_or"
    _effect_ratio = "odds_ratio"
    _statistics = ("proportion",)

    def __init__(
        self,
        outcome: str = "outcome",
        treatment: str | None = None,
        covariates: list[str] | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        sampler: str = "pymc",
    ):
        self.outcome = outcome
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

    def _check_outcome(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        series = data[self.outcome]
        self.outcome_levels_ = None
        if _is_categorical(series):
            levels = _levels(series)
            if len(levels) != 2:
                raise DataError(
                    f"outcome column {self.outcome!r} must be binary: two levels (no event, "
                    f"then event), got {len(levels)}: {', '.join(levels)}"
                )
            self.outcome_levels_ = levels
        y = self._outcome_values(series)
        if y.min() == y.max():
            raise DataError(
                f"outcome column {self.outcome!r} takes a single value ({y[0]:g}): nothing to fit"
            )
        return {"y": y.astype(np.int64)}

    def _outcome_values(self, series: pd.Series) -> np.ndarray:
        if self.outcome_levels_ is not None:
            labels = series.astype(object).map(str)
            unknown = ~labels.isin(self.outcome_levels_).to_numpy()
            if unknown.any():
                raise DataError(
                    f"outcome column {self.outcome!r}: rows {_rows(unknown)} are not "
                    f"{' or '.join(self.outcome_levels_)}"
                )
            return (labels == self.outcome_levels_[1]).to_numpy(float)
        y = _numeric(series, self.outcome)
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise DataError(
                f"outcome column {self.outcome!r}: rows {_rows(bad)} must be 0 or 1 "
                "(a binary outcome)"
            )
        return y

    def _model(self, outcome: dict[str, np.ndarray], treat: np.ndarray, design: np.ndarray):
        import pymc as pm

        with pm.Model(coords=self._coords()) as model:
            intercept = pm.Normal("intercept", 0.0, 2.5)
            beta = pm.Normal("beta", 0.0, 2.5, dims="term")
            eta = intercept + (pm.math.dot(design, beta) if design.shape[1] else 0.0)
            if self.treatment is not None:
                eta = eta + pm.Normal("log_or", 0.0, 2.5) * treat
            pm.Bernoulli("y", logit_p=eta, observed=outcome["y"])
        return model

    def _free_names(self) -> list[str]:
        return (
            ["intercept"]
            + (["beta"] if self.terms_ else [])
            + (["log_or"] if self.treatment is not None else [])
        )

    def _transform(self, flat) -> dict[str, np.ndarray]:
        n_total = self.chains * self.draws
        return {
            "intercept": flat("intercept"),
            "beta": flat("beta").reshape(n_total, len(self.terms_)),
            "log_or": flat("log_or") if self.treatment is not None else np.zeros(n_total),
        }

    def _baseline_reported(self) -> dict[str, np.ndarray]:
        return {"intercept": self.draws_["intercept"]}

    def _model_state(self) -> dict[str, Any]:
        return {"outcome_levels": self.outcome_levels_}

    def _set_model_state(self, state: dict[str, Any]) -> None:
        self.outcome_levels_ = state["outcome_levels"]

    def _probability(self, idx: np.ndarray, eta: np.ndarray) -> np.ndarray:
        intercept = self.draws_["intercept"][idx]
        if eta.ndim == 2:
            intercept = intercept[:, None]
        return 1.0 / (1.0 + np.exp(-(intercept + eta)))

    def _draw_outcomes(
        self, idx: np.ndarray, eta: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        y = (rng.random(len(idx)) < self._probability(idx, eta)).astype(np.int64)
        if self.outcome_levels_ is not None:
            return {self.outcome: pd.Categorical.from_codes(y, self.outcome_levels_)}
        return {self.outcome: y}

    def _replicate(self, idx, eta, rng) -> np.ndarray:
        return (rng.random(eta.shape) < self._probability(idx, eta)).astype(float)


@register("bayesian_linear")
class BayesianLinear(_OutcomeRegression):
    """Bayesian linear regression generator of a continuous outcome (normal or Student-t
    errors).

    The model and its priors are stated in the module docstring. Assumptions: a mean linear
    in the treatment and the (standardized) numeric covariates, no interactions, one
    residual scale for all patients.

    Parameters
    ----------
    outcome : str
        Column of the continuous outcome (numeric, finite; an integer column gives rounded
        virtual outcomes).
    treatment : str or None
        Column of the treatment indicator: numeric 0/1 (1 = treated), or a two-level
        categorical whose second level is the treated arm. ``None``: no treatment effect.
    covariates : list of str or None
        Covariate columns (numeric standardized, categorical one-hot against the first
        level). ``None``: every other column; ``[]``: none.
    likelihood : {"normal", "student_t"}
        Distribution of the residuals.
    draws, tune, chains, target_accept, seed, sampler
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Attributes
    ----------
    idata_ : arviz.InferenceData or None
        The posterior (standardized parameters, and ``intercept``, ``mean_difference``,
        ``sigma``, ``nu``, ``beta`` in the outcome's units) and the observed outcome
        (``None`` after a load).
    draws_ : dict of str to ndarray
        In the outcome's units: ``intercept``, ``mean_difference`` (zeros without
        treatment), ``sigma``, ``beta`` (``n_draws`` x ``n_terms``, per covariate SD or
        category) and, for Student-t, ``nu``.
    outcome_mean_, outcome_sd_ : float
        The standardization of the outcome.
    diagnostics_ : dict
        As for :class:`~generators.bayesian.BayesianWeibull`.

    Notes
    -----
    Virtual patients get covariates and treatment as in
    :class:`~generators.bayesian.BayesianWeibull`; each gets its own posterior draw and an
    outcome ``eta + sigma * e`` with ``e`` drawn from the residual distribution.

    Examples
    --------
    >>> model = BayesianLinear("fev1", treatment="arm", likelihood="student_t")  # doctest: +SKIP
    >>> model.fit(data).posterior_effect().mean()  # doctest: +SKIP
    """

    effect_scale = "mean_difference"
    _effect = "mean_difference"
    _effect_ratio = None
    _statistics = ("mean", "sd")

    def __init__(
        self,
        outcome: str = "outcome",
        treatment: str | None = None,
        covariates: list[str] | None = None,
        likelihood: str = "normal",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        sampler: str = "pymc",
    ):
        self.outcome = outcome
        self.likelihood = likelihood
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
        if self.likelihood not in LIKELIHOODS:
            raise DataError(
                f"likelihood must be {' or '.join(map(repr, LIKELIHOODS))}, got {self.likelihood!r}"
            )

    def _check_outcome(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        series = data[self.outcome]
        if pd.api.types.is_bool_dtype(series.dtype) or _is_categorical(series):
            raise DataError(
                f"outcome column {self.outcome!r} is not continuous ({series.dtype}): "
                "use bayesian_logistic for a binary outcome"
            )
        y = _numeric(series, self.outcome)
        bad = ~np.isfinite(y)
        if bad.any():
            raise DataError(f"outcome column {self.outcome!r}: rows {_rows(bad)} are not finite")
        sd = float(y.std(ddof=1))
        if sd == 0:
            raise DataError(f"outcome column {self.outcome!r} is constant: nothing to fit")
        self.outcome_mean_ = float(y.mean())
        self.outcome_sd_ = sd
        return {"y": (y - self.outcome_mean_) / sd}

    def _model(self, outcome: dict[str, np.ndarray], treat: np.ndarray, design: np.ndarray):
        import pymc as pm

        with pm.Model(coords=self._coords()) as model:
            intercept = pm.Normal("intercept_std", 0.0, 1.0)
            beta = pm.Normal("beta_std", 0.0, 1.0, dims="term")
            mu = intercept + (pm.math.dot(design, beta) if design.shape[1] else 0.0)
            if self.treatment is not None:
                mu = mu + pm.Normal("mean_difference_std", 0.0, 1.0) * treat
            sigma = pm.HalfNormal("sigma_std", 1.0)
            if self.likelihood == "student_t":
                nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
                pm.StudentT("y", nu=nu, mu=mu, sigma=sigma, observed=outcome["y"])
            else:
                pm.Normal("y", mu=mu, sigma=sigma, observed=outcome["y"])
        return model

    def _free_names(self) -> list[str]:
        return (
            ["intercept_std", "sigma_std"]
            + (["beta_std"] if self.terms_ else [])
            + (["mean_difference_std"] if self.treatment is not None else [])
            + (["nu"] if self.likelihood == "student_t" else [])
        )

    def _transform(self, flat) -> dict[str, np.ndarray]:
        n_total = self.chains * self.draws
        m, s = self.outcome_mean_, self.outcome_sd_
        draws = {
            "intercept": m + s * flat("intercept_std"),
            "sigma": s * flat("sigma_std"),
            "beta": s * flat("beta_std").reshape(n_total, len(self.terms_)),
            "mean_difference": (
                s * flat("mean_difference_std") if self.treatment is not None else np.zeros(n_total)
            ),
        }
        if self.likelihood == "student_t":
            draws["nu"] = flat("nu")
        return draws

    def _baseline_reported(self) -> dict[str, np.ndarray]:
        reported = {"intercept": self.draws_["intercept"], "sigma": self.draws_["sigma"]}
        if self.likelihood == "student_t":
            reported["nu"] = self.draws_["nu"]
        return reported

    def _model_state(self) -> dict[str, Any]:
        return {"outcome_mean": self.outcome_mean_, "outcome_sd": self.outcome_sd_}

    def _set_model_state(self, state: dict[str, Any]) -> None:
        self.outcome_mean_ = float(state["outcome_mean"])
        self.outcome_sd_ = float(state["outcome_sd"])

    def _residuals(self, idx: np.ndarray, shape: tuple[int, ...], rng) -> np.ndarray:
        """Standardized residuals (normal, or Student-t with each draw's ``nu``)."""
        if self.likelihood == "student_t":
            nu = self.draws_["nu"][idx]
            return rng.standard_t(nu if len(shape) == 1 else nu[:, None], size=shape)
        return rng.standard_normal(shape)

    def _draw_outcomes(
        self, idx: np.ndarray, eta: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        y = (
            self.draws_["intercept"][idx]
            + eta
            + self.draws_["sigma"][idx] * self._residuals(idx, eta.shape, rng)
        )
        dtype = pd.api.types.pandas_dtype(self.dtypes_[self.outcome])
        if pd.api.types.is_integer_dtype(dtype):
            y = np.round(y)
        return {self.outcome: y}

    def _replicate(self, idx, eta, rng) -> np.ndarray:
        mean = self.draws_["intercept"][idx][:, None] + eta
        return mean + self.draws_["sigma"][idx][:, None] * self._residuals(idx, eta.shape, rng)
