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

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from generators.base import DataRoles, Generator, register
from trials.exceptions import ConvergenceWarning, DataError

#: Convergence criteria (Vehtari et al. 2021): R-hat at most 1.01, bulk and tail ESS at
#: least 400, no divergent transitions.
MAX_RHAT = 1.01
MIN_ESS = 400
#: A categorical covariate with more levels than this is refused (likely an identifier).
MAX_LEVELS = 20

_PARAMETERS = ("log_shape", "log_scale", "beta", "log_hr")

__all__ = ["BayesianWeibull", "PosteriorPredictiveKM"]


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


@register("bayesian_weibull")
class BayesianWeibull(Generator):
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
    sampler : {"pymc", "nutpie"}
        NUTS implementation; ``"nutpie"`` needs the ``nutpie`` package.

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
        ``warnings`` (the failed criteria, in words), ``sampler``.

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
        self.treatment = treatment
        self.covariates = None if covariates is None else list(covariates)
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.seed = seed
        self.sampler = sampler

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> BayesianWeibull:
        """Time, event and treatment from the dictionary's roles; its covariates."""
        if roles.time is None or roles.event is None:
            raise DataError(f"the {cls.kind} model needs a time and an event column")
        return cls(
            time=roles.time, event=roles.event, treatment=roles.arm,
            covariates=list(roles.covariates), seed=seed,
        )

    def fit(self, data: pd.DataFrame, *, strict: bool = False) -> BayesianWeibull:
        """Sample the posterior of the model given censored survival data.

        Parameters
        ----------
        data : DataFrame
            One row per patient with the time, event, treatment and covariate columns.
        strict : bool
            Raise :class:`~trials.exceptions.DataError` instead of warning when the chains
            fail the convergence criteria.

        Returns
        -------
        self

        Raises
        ------
        DataError
            Missing columns or values, non-positive times, events other than 0/1, a
            treatment column that is not binary, or an unavailable sampler.

        Warns
        -----
        ConvergenceWarning
            When max R-hat > 1.01, a bulk or tail ESS < 400, or any divergent transition;
            the failed criteria are also recorded in ``diagnostics_["warnings"]``.
        """
        import arviz as az
        import pymc as pm

        self._check_config()
        self.data_hash_ = None  # a failed refit leaves the generator unfitted
        time, event, treat, design = self._prepare(data)
        self.time_scale_ = float(np.median(time))
        log_t = np.log(time / self.time_scale_)

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
            # Early in tuning NUTS may try a wild trajectory whose energy overflows; the
            # sampler rejects it as divergent (counted in the diagnostics when it happens
            # after tuning), so numpy's overflow warnings there are noise, not errors.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                idata = pm.sample(
                    draws=self.draws,
                    tune=self.tune,
                    chains=self.chains,
                    target_accept=self.target_accept,
                    random_seed=self.seed,
                    nuts_sampler=self.sampler,
                    progressbar=False,
                    compute_convergence_checks=False,
                    model=model,
                )
        posterior = idata.posterior
        posterior["log_scale"] = posterior["log_scale_std"] + np.log(self.time_scale_)
        posterior["shape"] = np.exp(posterior["log_shape"])
        posterior["scale"] = np.exp(posterior["log_scale"])
        if self.treatment is not None:
            posterior["hazard_ratio"] = np.exp(posterior["log_hr"])
        self.idata_ = idata

        def flat(name: str) -> np.ndarray:
            values = posterior[name].to_numpy()
            return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])

        n_total = self.chains * self.draws
        self.draws_ = {
            "log_shape": flat("log_shape"),
            "log_scale": flat("log_scale"),
            "beta": flat("beta").reshape(n_total, len(self.terms_)),
            "log_hr": flat("log_hr") if self.treatment is not None else np.zeros(n_total),
        }
        self.n_chains_ = self.chains
        self.diagnostics_ = _diagnostics(idata, self._free_names(), self.sampler, az)
        failed = self.diagnostics_["warnings"]
        message = "the posterior sampling did not converge: " + "; ".join(failed)
        if failed and strict:
            raise DataError(message + " (fit with more tune/draws, or check the model)")
        self._remember(data)
        if failed:
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
        return self

    def _check_config(self) -> None:
        if self.sampler not in ("pymc", "nutpie"):
            raise DataError(f"sampler must be 'pymc' or 'nutpie', got {self.sampler!r}")
        if self.sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
            raise DataError(
                "sampler='nutpie' needs the nutpie package (pip install nutpie); "
                "it is not installed: use sampler='pymc'"
            )
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < (0 if name == "tune" else 1):
                raise DataError(f"{name} must be a positive integer, got {value!r}")

    def _free_names(self) -> list[str]:
        names = ["log_shape", "log_scale_std"]
        if self.terms_:
            names.append("beta")
        if self.treatment is not None:
            names.append("log_hr")
        return names

    def _prepare(self, data: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """Check the columns and learn the coding; returns time, event, treatment, design."""
        covariates = self.covariates
        if covariates is None:
            roles = {self.time, self.event, self.treatment}
            covariates = [str(c) for c in data.columns if c not in roles]
        needed = [self.time, self.event, *([self.treatment] if self.treatment else []), *covariates]
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise DataError(
                f"the data has no column(s) {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(map(str, data.columns))})"
            )
        for name in needed:
            _check_complete(data[name], name)
        if len(data) < 2:
            raise DataError("at least 2 patients are needed to fit the model")

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

        self.treatment_levels_ = None
        self.treated_share_ = None
        treat = np.zeros(len(data))
        if self.treatment is not None:
            treat = self._treatment_codes(data[self.treatment])
            self.treated_share_ = float(treat.mean())

        self.covariate_names_ = list(covariates)
        self.numeric_ = {}
        self.levels_ = {}
        for name in covariates:
            series = data[name]
            if _is_categorical(series):
                levels = _levels(series)
                if len(levels) > MAX_LEVELS:
                    raise DataError(
                        f"column {name!r} has {len(levels)} categories (more than {MAX_LEVELS}): "
                        "is it an identifier? name the covariates to use"
                    )
                counts = series.astype(object).map(str).value_counts()
                self.levels_[name] = {
                    "levels": levels,
                    "frequencies": np.array([counts.get(lv, 0) for lv in levels]) / len(series),
                    "categorical": isinstance(series.dtype, pd.CategoricalDtype),
                }
            else:
                values = _numeric(series, name)
                sd = float(values.std(ddof=1))
                if not np.isfinite(sd) or sd == 0:
                    raise DataError(f"column {name!r} is constant: it cannot be a covariate")
                self.numeric_[name] = {
                    "mean": float(values.mean()),
                    "sd": sd,
                    "integer": bool(pd.api.types.is_integer_dtype(series.dtype)),
                    "bool": bool(pd.api.types.is_bool_dtype(series.dtype)),
                    "min": float(values.min()),
                    "max": float(values.max()),
                }
        self.terms_ = [name for name in covariates if name in self.numeric_] + [
            f"{name}[{level}]"
            for name in covariates
            if name in self.levels_
            for level in self.levels_[name]["levels"][1:]
        ]
        numeric = self._standardized(data)
        self.numeric_cov_ = (
            np.atleast_2d(np.cov(numeric, rowvar=False)) if numeric.shape[1] else np.zeros((0, 0))
        )
        self.output_columns_ = [str(c) for c in data.columns if c in set(needed)]
        self.dtypes_ = {
            name: str(data[name].dtype)
            for name in needed
            if not isinstance(data[name].dtype, pd.CategoricalDtype)
        }
        return time, event, treat, self._design(data)

    def _treatment_codes(self, series: pd.Series) -> np.ndarray:
        if _is_categorical(series):
            levels = _levels(series)
            if len(levels) != 2:
                raise DataError(
                    f"treatment column {self.treatment!r} must have two levels (control, then "
                    f"treated), got {len(levels)}: {', '.join(levels)}"
                )
            self.treatment_levels_ = levels
            return (series.astype(object).map(str) == levels[1]).to_numpy(float)
        values = _numeric(series, self.treatment)
        if np.any(~np.isin(values, (0, 1))):
            raise DataError(
                f"treatment column {self.treatment!r}: rows {_rows(~np.isin(values, (0, 1)))} "
                "must be 0 (control) or 1 (treated)"
            )
        if values.min() == values.max():
            raise DataError(f"treatment column {self.treatment!r} has a single arm")
        return values

    def _standardized(self, frame: pd.DataFrame) -> np.ndarray:
        columns = [
            (_numeric(frame[name], name) - spec["mean"]) / spec["sd"]
            for name, spec in self.numeric_.items()
        ]
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's design matrix: standardized numeric covariates, then one-hot ones."""
        blocks = [self._standardized(frame)]
        for name, spec in self.levels_.items():
            labels = frame[name].astype(object).map(str).to_numpy()
            unknown = ~np.isin(labels, spec["levels"])
            if unknown.any():
                raise DataError(
                    f"column {name!r}: rows {_rows(unknown)} hold categories not seen in fitting "
                    f"({', '.join(sorted(set(labels[unknown])))}; known: "
                    f"{', '.join(spec['levels'])})"
                )
            blocks.append(
                (labels[:, None] == np.asarray(spec["levels"][1:])[None, :]).astype(float)
            )
        return np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))

    # -- posterior -------------------------------------------------------------------------

    @property
    def n_draws_(self) -> int:
        return int(self.draws_["log_shape"].shape[0])

    def posterior_log_hr(self) -> np.ndarray:
        """The posterior draws of the treatment log hazard ratio (chains concatenated)."""
        self._check_fitted()
        if self.treatment is None:
            raise DataError("the model has no treatment: fit with treatment='<column>'")
        return self.draws_["log_hr"].copy()

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD, 90 % HDI, R-hat and ESS of each parameter (``arviz.summary``).

        Rows: ``shape``, ``scale`` (baseline, in the data's time unit), ``log_hr`` and
        ``hazard_ratio`` (with a treatment) and ``beta[term]`` per design column.
        """
        import arviz as az

        self._check_fitted()
        names = ["shape", "scale"]
        if self.treatment is not None:
            names += ["log_hr", "hazard_ratio"]
        if self.terms_:
            names.append("beta")
        return az.summary(self._posterior(), var_names=names, hdi_prob=0.9)

    def _posterior(self):
        """The posterior as InferenceData (rebuilt from the saved draws after a load)."""
        import arviz as az

        if getattr(self, "idata_", None) is not None:
            return self.idata_
        chains = self.n_chains_

        def shaped(values: np.ndarray) -> np.ndarray:
            return values.reshape(chains, values.shape[0] // chains, *values.shape[1:])

        posterior = {
            "shape": shaped(np.exp(self.draws_["log_shape"])),
            "scale": shaped(np.exp(self.draws_["log_scale"])),
            "beta": shaped(self.draws_["beta"]),
        }
        if self.treatment is not None:
            posterior["log_hr"] = shaped(self.draws_["log_hr"])
            posterior["hazard_ratio"] = np.exp(posterior["log_hr"])
        return az.from_dict(
            posterior=posterior, coords={"term": self.terms_}, dims={"beta": ["term"]}
        )

    def _linear_predictor(self, design: np.ndarray, treat: np.ndarray, idx=slice(None)):
        """``eta`` of shape (draws, patients) for the draws ``idx``."""
        beta = self.draws_["beta"][idx]
        eta = beta @ design.T if design.shape[1] else np.zeros((beta.shape[0], design.shape[0]))
        return eta + self.draws_["log_hr"][idx][:, None] * treat[None, :]

    # -- virtual patients ------------------------------------------------------------------

    def sample(
        self,
        n_patients: int,
        rng: int | np.random.Generator | None = None,
        covariates: pd.DataFrame | None = None,
        treatment: Any = None,
    ) -> pd.DataFrame:
        """Draw virtual patients with uncensored event times.

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
        self._check_fitted()
        if not isinstance(n_patients, int | np.integer) or n_patients < 0:
            raise DataError(f"n_patients must be a non-negative integer, got {n_patients!r}")
        rng = np.random.default_rng(rng)
        n = int(n_patients)
        if covariates is None:
            cov_frame = self._draw_covariates(n, rng)
        else:
            cov_frame = self._given_covariates(covariates, n)
        treat = self._draw_treatment(n, rng, treatment)
        design = self._design(cov_frame)
        idx = rng.integers(0, self.n_draws_, size=n)
        beta = self.draws_["beta"][idx]
        eta = np.einsum("ij,ij->i", beta, design) + self.draws_["log_hr"][idx] * treat
        shape = np.exp(self.draws_["log_shape"][idx])
        scale = np.exp(self.draws_["log_scale"][idx])
        # S(t) = exp(-(t / scale)^k e^eta)  =>  t = scale (E e^-eta)^(1/k), E ~ Exp(1)
        times = scale * (rng.standard_exponential(n) * np.exp(-eta)) ** (1.0 / shape)

        out = {self.time: times, self.event: np.ones(n, dtype=np.int64)}
        if self.treatment is not None:
            if self.treatment_levels_ is not None:
                out[self.treatment] = pd.Categorical.from_codes(
                    treat.astype(int), self.treatment_levels_
                )
            else:
                out[self.treatment] = treat
        for name in self.covariate_names_:
            out[name] = cov_frame[name].to_numpy() if name in self.numeric_ else cov_frame[name]
        frame = pd.DataFrame({name: out[name] for name in self.output_columns_})
        for name, dtype in self.dtypes_.items():
            if name != self.time and name in frame and name not in self.levels_:
                frame[name] = frame[name].astype(dtype)
        return frame

    def _draw_covariates(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        frame = {}
        if self.numeric_:
            std = rng.multivariate_normal(
                np.zeros(len(self.numeric_)), self.numeric_cov_, size=n, method="eigh"
            )
            for j, (name, spec) in enumerate(self.numeric_.items()):
                values = spec["mean"] + spec["sd"] * std[:, j]
                if spec["integer"] or spec["bool"]:
                    values = np.clip(np.round(values), spec["min"], spec["max"])
                frame[name] = values
        for name, spec in self.levels_.items():
            codes = rng.choice(len(spec["levels"]), size=n, p=spec["frequencies"])
            frame[name] = pd.Categorical.from_codes(codes, spec["levels"])
        return pd.DataFrame(frame, index=pd.RangeIndex(n))

    def _given_covariates(self, covariates: pd.DataFrame, n: int) -> pd.DataFrame:
        if len(covariates) != n:
            raise DataError(f"covariates has {len(covariates)} rows, n_patients is {n}")
        missing = [c for c in self.covariate_names_ if c not in covariates.columns]
        if missing:
            raise DataError(f"covariates lacks column(s) {', '.join(map(repr, missing))}")
        frame = covariates[self.covariate_names_].reset_index(drop=True).copy()
        for name in self.covariate_names_:
            _check_complete(frame[name], name)
            if name in self.levels_:
                labels = frame[name].astype(object).map(str)
                unknown = ~labels.isin(self.levels_[name]["levels"]).to_numpy()
                if unknown.any():
                    raise DataError(
                        f"covariates column {name!r}: rows {_rows(unknown)} hold categories "
                        f"not seen in fitting (known: {', '.join(self.levels_[name]['levels'])})"
                    )
                frame[name] = pd.Categorical(labels, categories=self.levels_[name]["levels"])
        return frame

    def _draw_treatment(self, n: int, rng: np.random.Generator, treatment: Any) -> np.ndarray:
        if self.treatment is None:
            if treatment is not None:
                raise DataError("the model has no treatment: do not pass treatment=")
            return np.zeros(n)
        if treatment is None:
            return (rng.random(n) < self.treated_share_).astype(float)
        values = pd.Series(np.broadcast_to(np.asarray(treatment, dtype=object), (n,)))
        if self.treatment_levels_ is not None:
            return self._treatment_codes_known(values.map(str))
        return self._treatment_codes_known(values)

    # -- posterior predictive check --------------------------------------------------------

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
        frame = data.reset_index(drop=True)
        observed = _numeric(frame[self.time], self.time)
        events = _numeric(frame[self.event], self.event)
        design = self._design(frame)
        treat = (
            self._treatment_codes_known(frame[self.treatment])
            if self.treatment is not None
            else np.zeros(len(frame))
        )
        grid = (
            np.linspace(0, np.quantile(observed, 0.9), 21)[1:]
            if times is None
            else np.asarray(times, dtype=float)
        )
        idx = rng.choice(self.n_draws_, size=n_draws, replace=n_draws > self.n_draws_)
        shape = np.exp(self.draws_["log_shape"][idx])[:, None, None]
        scale = np.exp(self.draws_["log_scale"][idx])[:, None, None]
        eta = self._linear_predictor(design, treat, idx)  # (draws, patients)
        tails = (1 - level) / 2
        rows = []
        for arm in np.unique(treat):
            members = treat == arm
            km = KaplanMeierFitter().fit(observed[members], events[members])
            km_values = km.survival_function_at_times(grid).to_numpy()
            # model survival curves S(t | x_i), averaged over the arm's patients
            cum = (grid[None, None, :] / scale) ** shape * np.exp(eta[:, members])[:, :, None]
            curves = np.exp(-cum).mean(axis=1)  # (draws, grid)
            # replicated data sets: event times from each draw, censoring as observed
            n_arm = int(members.sum())
            e = rng.standard_exponential((n_draws, n_arm))
            t_rep = scale[:, :, 0] * (e * np.exp(-eta[:, members])) ** (1 / shape[:, :, 0])
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
            label = (
                self.treatment_levels_[int(arm)] if self.treatment_levels_ is not None else int(arm)
            )
            rows.append(
                pd.DataFrame(
                    {
                        "arm": label,
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

    def _treatment_codes_known(self, series: pd.Series) -> np.ndarray:
        if self.treatment_levels_ is not None:
            labels = series.astype(object).map(str)
            unknown = ~labels.isin(self.treatment_levels_).to_numpy()
            if unknown.any():
                raise DataError(
                    f"treatment column {self.treatment!r}: rows {_rows(unknown)} are not "
                    f"{' or '.join(self.treatment_levels_)}"
                )
            return (labels == self.treatment_levels_[1]).to_numpy(float)
        values = _numeric(series, self.treatment)
        if np.any(~np.isin(values, (0, 1))):
            raise DataError(f"treatment column {self.treatment!r} must be 0 or 1")
        return values

    # -- state -----------------------------------------------------------------------------

    def _get_state(self) -> dict[str, Any]:
        return {
            "draws": dict(self.draws_),
            "n_chains": self.n_chains_,
            "time_scale": self.time_scale_,
            "terms": list(self.terms_),
            "covariate_names": list(self.covariate_names_),
            "numeric": {name: dict(spec) for name, spec in self.numeric_.items()},
            "numeric_cov": self.numeric_cov_,
            "levels": {name: dict(spec) for name, spec in self.levels_.items()},
            "treatment_levels": self.treatment_levels_,
            "treated_share": self.treated_share_,
            "output_columns": list(self.output_columns_),
            "dtypes": dict(self.dtypes_),
            "diagnostics": dict(self.diagnostics_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.draws_ = {name: np.asarray(values) for name, values in state["draws"].items()}
        n_draws = len(self.draws_["log_shape"])  # beta may have no terms at all
        self.draws_["beta"] = self.draws_["beta"].reshape(n_draws, len(state["terms"]))
        self.n_chains_ = int(state["n_chains"])
        self.time_scale_ = float(state["time_scale"])
        self.terms_ = list(state["terms"])
        self.covariate_names_ = list(state["covariate_names"])
        self.numeric_ = dict(state["numeric"])
        self.numeric_cov_ = np.asarray(state["numeric_cov"], dtype=float).reshape(
            len(self.numeric_), len(self.numeric_)
        )
        self.levels_ = {
            name: {**spec, "frequencies": np.asarray(spec["frequencies"], dtype=float)}
            for name, spec in state["levels"].items()
        }
        self.treatment_levels_ = state["treatment_levels"]
        self.treated_share_ = state["treated_share"]
        self.output_columns_ = list(state["output_columns"])
        self.dtypes_ = dict(state["dtypes"])
        self.diagnostics_ = dict(state["diagnostics"])
        self.idata_ = None


# -- helpers -------------------------------------------------------------------------------


def _diagnostics(idata, names: list[str], sampler: str, az) -> dict[str, Any]:
    rhat = az.rhat(idata, var_names=names)
    ess_bulk = az.ess(idata, var_names=names, method="bulk")
    ess_tail = az.ess(idata, var_names=names, method="tail")

    def extreme(dataset, fn) -> float:
        return float(fn([float(fn(dataset[name].to_numpy())) for name in names]))

    n_chains = idata.posterior.sizes["chain"]
    max_rhat = extreme(rhat, np.max) if n_chains > 1 else float("nan")
    result = {
        "max_rhat": max_rhat,
        "min_ess_bulk": extreme(ess_bulk, np.min),
        "min_ess_tail": extreme(ess_tail, np.min),
        "n_divergences": int(idata.sample_stats["diverging"].sum()),
        "sampler": sampler,
    }
    failed = []
    if n_chains > 1 and not max_rhat <= MAX_RHAT:
        failed.append(f"max R-hat {max_rhat:.3f} > {MAX_RHAT}")
    if n_chains == 1:
        failed.append("R-hat not computable with 1 chain")
    for key, label in (("min_ess_bulk", "bulk"), ("min_ess_tail", "tail")):
        if not result[key] >= MIN_ESS:
            failed.append(f"min {label} ESS {result[key]:.0f} < {MIN_ESS}")
    if result["n_divergences"] > 0:
        failed.append(f"{result['n_divergences']} divergent transitions")
    result["warnings"] = failed
    result["converged"] = not failed
    return result


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


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or (
        pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
    )


def _levels(series: pd.Series) -> list[str]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [str(c) for c in series.cat.categories]
    return sorted({str(v) for v in series})


def _numeric(series: pd.Series, name: str) -> np.ndarray:
    try:
        return series.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"column {name!r} must be numeric (got {series.dtype})") from None


def _check_complete(series: pd.Series, name: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataError(f"column {name!r}: rows {_rows(missing)} are missing")


def _rows(mask: np.ndarray) -> str:
    """Row numbers (0-based positions) of a mask, the first few."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")
