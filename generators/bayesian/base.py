"""What the Bayesian outcome models share: the covariate design, the treatment coding, the
posterior sampling with its convergence diagnostics, the virtual covariates, and the state.

Every model in this package is a regression of one outcome on a treatment indicator ``z``
and covariates ``x`` through a linear predictor ``eta = beta . x + effect * z``; numeric
covariates enter standardized (mean 0, SD 1 in the training data), categorical ones one-hot
against their first level. The outcome part (likelihood, baseline parameters, priors,
virtual outcomes, posterior predictive check) belongs to each model's module.

Convergence is judged by the criteria of Vehtari et al. (2021): rank-normalized split R-hat
at most 1.01, bulk and tail effective sample sizes at least 400 (over all chains), and no
divergent transition after tuning. A fit that fails them warns with
:class:`~trials.exceptions.ConvergenceWarning`, or is refused with ``strict=True``.

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. *Bayesian
Analysis* 16(2), 667-718.
Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., ch. 6 (posterior predictive checks)
and ch. 16 (generalized linear models).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from generators.base import Generator
from trials.exceptions import ConvergenceWarning, DataError

#: Convergence criteria (Vehtari et al. 2021): R-hat at most 1.01, bulk and tail ESS at
#: least 400, no divergent transitions.
MAX_RHAT = 1.01
MIN_ESS = 400
#: A categorical covariate with more levels than this is refused (likely an identifier).
MAX_LEVELS = 20
#: NUTS implementations; ``"auto"`` takes nutpie when it is installed, PyMC's otherwise.
SAMPLERS = ("pymc", "nutpie", "auto")

__all__ = ["MAX_LEVELS", "MAX_RHAT", "MIN_ESS", "SAMPLERS", "BayesianRegression", "resolve_sampler"]


def resolve_sampler(sampler: str) -> str:
    """The NUTS implementation that ``sampler`` stands for on this installation."""
    if sampler == "auto":
        return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"
    return sampler


class BayesianRegression(Generator):
    """Base class of the Bayesian outcome models (see the module docstring).

    Subclasses define the outcome columns, the outcome checks, the PyMC model, the
    transformation of the posterior to the data's units, and the virtual outcomes. The
    configuration shared by all is stored by :meth:`__init__`:

    Parameters
    ----------
    treatment : str or None
        Column of the treatment indicator: a numeric 0/1 column (1 = treated), or a
        two-level categorical whose *second* level is the treated arm (the first level is
        the control). ``None``: no treatment effect in the model.
    covariates : list of str or None
        Covariate columns. Numeric ones are standardized (mean 0, SD 1) before fitting;
        categorical (or string) ones are one-hot coded against their first level (the
        categorical's first category, or the smallest value of a string column). ``None``:
        every column other than the outcome and treatment columns; ``[]``: none.
    draws, tune, chains : int
        Posterior draws kept per chain, tuning steps per chain, number of chains.
    target_accept : float
        NUTS target acceptance rate.
    seed : int
        Seed of the sampler (chains get child seeds from it).
    sampler : {"pymc", "nutpie", "auto"}
        NUTS implementation: PyMC's own, nutpie (needs the ``nutpie`` package; samples
        several times faster but compiles the model for longer, see the package
        docstring), or ``"auto"``: nutpie when it is installed, PyMC's otherwise. The one
        used is recorded in ``diagnostics_["sampler"]``.
    """

    #: Scale of the treatment effect returned by :meth:`posterior_effect`.
    effect_scale: ClassVar[str] = ""
    #: Name of the treatment effect in ``draws_`` (zeros without a treatment).
    _effect: ClassVar[str] = ""
    #: Name of the exponentiated effect in the summary (``hazard_ratio``…), or None.
    _effect_ratio: ClassVar[str | None] = None
    #: Dimensions (beyond chain and draw) of the reported posterior quantities.
    _dims: ClassVar[dict[str, list[str]]] = {"beta": ["term"]}

    def __init__(
        self,
        treatment: str | None = None,
        covariates: list[str] | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        sampler: str = "pymc",
    ):
        self.treatment = treatment
        self.covariates = None if covariates is None else list(covariates)
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.seed = seed
        self.sampler = sampler

    # -- what each model defines -----------------------------------------------------------

    def _outcome_columns(self) -> list[str]:
        """The outcome columns, in the order they are checked."""
        raise NotImplementedError

    def _check_outcome(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        """Check the (complete) outcome columns; returns the arrays the model needs and
        records the outcome's coding."""
        raise NotImplementedError

    def _model(self, outcome: dict[str, np.ndarray], treat: np.ndarray, design: np.ndarray):
        """The PyMC model (a ``pm.Model``)."""
        raise NotImplementedError

    def _free_names(self) -> list[str]:
        """The sampled (free) parameters, for the diagnostics."""
        raise NotImplementedError

    def _transform(self, flat) -> dict[str, np.ndarray]:
        """``draws_`` from the flattened posterior (``flat(name)``: chains concatenated)."""
        raise NotImplementedError

    def _baseline_reported(self) -> dict[str, np.ndarray]:
        """The model's own reported quantities (baseline parameters), from ``draws_``."""
        raise NotImplementedError

    def _draw_outcomes(
        self, idx: np.ndarray, eta: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Outcome columns of virtual patients with posterior draws ``idx`` and linear
        predictors ``eta``."""
        raise NotImplementedError

    def _model_state(self) -> dict[str, Any]:
        """The model's own learned state (besides the draws)."""
        return {}

    def _set_model_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`_model_state`."""

    def _coords(self) -> dict[str, list[str]]:
        return {"term": list(self.terms_)}

    def _uncast(self) -> set[str]:
        """Output columns left in the type :meth:`_draw_outcomes` gives them."""
        return set()

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, *, strict: bool = False) -> BayesianRegression:
        """Sample the posterior of the model given the data.

        Parameters
        ----------
        data : DataFrame
            One row per patient with the outcome, treatment and covariate columns.
        strict : bool
            Raise :class:`~trials.exceptions.DataError` instead of warning when the chains
            fail the convergence criteria.

        Returns
        -------
        self

        Raises
        ------
        DataError
            Missing columns or values (the message names the column and the rows), an
            outcome the model cannot take, a treatment column that is not binary, or an
            unavailable sampler.

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
        outcome, treat, design = self._prepare(data)
        model = self._model(outcome, treat, design)
        sampler = resolve_sampler(self.sampler)
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
                nuts_sampler=sampler,
                progressbar=False,
                compute_convergence_checks=False,
                model=model,
            )
        posterior = idata.posterior

        def flat(name: str) -> np.ndarray:
            values = posterior[name].to_numpy()
            return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])

        self.draws_ = self._transform(flat)
        self.n_chains_ = self.chains
        for name, values in self._coords().items():
            if name not in posterior.coords:
                posterior.coords[name] = values
        for name, values in self._reported().items():
            dims = ["chain", "draw", *self._dims.get(name, [])]
            posterior[name] = (dims, values.reshape(self.chains, self.draws, *values.shape[1:]))
        self.idata_ = idata
        self.diagnostics_ = _diagnostics(idata, self._free_names(), sampler, az)
        failed = self.diagnostics_["warnings"]
        message = "the posterior sampling did not converge: " + "; ".join(failed)
        if failed and strict:
            raise DataError(message + " (fit with more tune/draws, or check the model)")
        self._remember(data)
        if failed:
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
        return self

    def _check_config(self) -> None:
        if self.sampler not in SAMPLERS:
            raise DataError(
                f"sampler must be {', '.join(map(repr, SAMPLERS))}, got {self.sampler!r}"
            )
        if self.sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
            raise DataError(
                "sampler='nutpie' needs the nutpie package (pip install nutpie); "
                "it is not installed: use sampler='pymc'"
            )
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < (0 if name == "tune" else 1):
                raise DataError(f"{name} must be a positive integer, got {value!r}")

    def _prepare(self, data: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Check the columns and learn the coding; returns the outcome, treatment, design."""
        covariates = self.covariates
        outcome_columns = self._outcome_columns()
        if covariates is None:
            roles = {*outcome_columns, self.treatment}
            covariates = [str(c) for c in data.columns if c not in roles]
        needed = [*outcome_columns, *([self.treatment] if self.treatment else []), *covariates]
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
        outcome = self._check_outcome(data)

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
        return outcome, treat, self._design(data)

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
        return int(self.draws_[self._effect].shape[0])

    def posterior_effect(self) -> np.ndarray:
        """The posterior draws of the treatment effect on the scale ``effect_scale``
        (chains concatenated)."""
        self._check_fitted()
        if self.treatment is None:
            raise DataError("the model has no treatment: fit with treatment='<column>'")
        return self.draws_[self._effect].copy()

    def _reported(self) -> dict[str, np.ndarray]:
        """The quantities the summary reports, from ``draws_`` (chains concatenated)."""
        reported = dict(self._baseline_reported())
        if self.treatment is not None:
            reported[self._effect] = self.draws_[self._effect]
            if self._effect_ratio is not None:
                reported[self._effect_ratio] = np.exp(self.draws_[self._effect])
        reported["beta"] = self.draws_["beta"]
        return reported

    def _summary_names(self) -> list[str]:
        names = list(self._baseline_reported())
        if self.treatment is not None:
            names += [self._effect, *([self._effect_ratio] if self._effect_ratio else [])]
        if self.terms_:
            names.append("beta")
        return names

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD, 90 % HDI, R-hat and ESS of each reported quantity
        (``arviz.summary``): the baseline parameters in the data's units, the treatment
        effect (and its exponential for ratio scales) and ``beta[term]`` per design column."""
        import arviz as az

        self._check_fitted()
        return az.summary(self._posterior(), var_names=self._summary_names(), hdi_prob=0.9)

    def _posterior(self):
        """The posterior as InferenceData (rebuilt from the saved draws after a load)."""
        import arviz as az

        if getattr(self, "idata_", None) is not None:
            return self.idata_
        chains = self.n_chains_

        def shaped(values: np.ndarray) -> np.ndarray:
            return values.reshape(chains, values.shape[0] // chains, *values.shape[1:])

        posterior = {name: shaped(values) for name, values in self._reported().items()}
        dims = {name: dims for name, dims in self._dims.items() if name in posterior}
        return az.from_dict(posterior=posterior, coords=self._coords(), dims=dims)

    def _linear_predictor(self, design: np.ndarray, treat: np.ndarray, idx=slice(None)):
        """``eta`` of shape (draws, patients) for the draws ``idx``."""
        beta = self.draws_["beta"][idx]
        eta = beta @ design.T if design.shape[1] else np.zeros((beta.shape[0], design.shape[0]))
        return eta + self.draws_[self._effect][idx][:, None] * treat[None, :]

    def _observed(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Rows, treatment codes and design of observed data (for the predictive checks)."""
        self._check_fitted()
        frame = data.reset_index(drop=True)
        missing = [c for c in self.output_columns_ if c not in frame.columns]
        if missing:
            raise DataError(f"the data has no column(s) {', '.join(map(repr, missing))}")
        for name in self.output_columns_:
            _check_complete(frame[name], name)
        treat = (
            self._treatment_codes_known(frame[self.treatment])
            if self.treatment is not None
            else np.zeros(len(frame))
        )
        return frame, treat, self._design(frame)

    def _arm_label(self, arm: float):
        return self.treatment_levels_[int(arm)] if self.treatment_levels_ is not None else int(arm)

    # -- virtual patients ------------------------------------------------------------------

    def sample(
        self,
        n_patients: int,
        rng: int | np.random.Generator | None = None,
        covariates: pd.DataFrame | None = None,
        treatment: Any = None,
    ) -> pd.DataFrame:
        """Draw virtual patients, each with its own posterior draw.

        Parameters
        ----------
        n_patients : int
            Number of virtual patients.
        rng : int or numpy.random.Generator, optional
            Seed or generator.
        covariates : DataFrame, optional
            ``n_patients`` rows with the covariate columns (e.g. from a copula generator);
            default: drawn from a Gaussian approximation of the training covariates (see
            the Notes of the model classes).
        treatment : scalar or array-like, optional
            Treatment of each patient (0/1, or the treatment column's levels); a scalar
            applies to all. Default: drawn with the observed treated share.

        Returns
        -------
        DataFrame
            The fitted columns in their training order: the outcome (see the model),
            treatment and covariates (training dtypes; categoricals as ``pd.Categorical``
            with the training levels).
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
        eta = np.einsum("ij,ij->i", beta, design) + self.draws_[self._effect][idx] * treat

        out = self._draw_outcomes(idx, eta, rng)
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
        uncast = self._uncast()
        for name, dtype in self.dtypes_.items():
            if name not in uncast and name in frame and name not in self.levels_:
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
            **self._model_state(),
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
        n_draws = len(self.draws_[self._effect])  # beta may have no terms at all
        self.draws_["beta"] = self.draws_["beta"].reshape(n_draws, len(state["terms"]))
        self.n_chains_ = int(state["n_chains"])
        self._set_model_state(state)
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
