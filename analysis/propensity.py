"""Propensity scores for an external control arm: the model, matching and weights.

The "treatment" is membership of the single-arm trial (1) rather than of the external source
(0); the propensity score ``e(x) = P(trial | x)`` is estimated by logistic regression
(Rosenbaum & Rubin 1983). The estimand is the effect in the trial's population (the effect on
the treated, ATT), so every adjustment below reweights or selects the external patients to
resemble the trial patients:

* **nearest-neighbour matching** on the logit of the score, 1:k, greedy, with or without
  replacement, within a caliper of ``caliper`` standard deviations of the logit (0.2 by
  default, Austin 2011);
* **inverse probability weighting for the ATT**: trial patients weight 1, external patients
  ``e / (1 - e)`` (the odds of the score);
* **overlap weights** (Li, Morgan & Zaslavsky 2018): trial patients ``1 - e``, external
  patients ``e`` -- the population where both sources are represented; its estimand is the
  effect in the overlap population, which equals the ATT only when the effect is constant.

Balance diagnostics are in :mod:`analysis.balance`.

References
----------
Rosenbaum, P. R. and Rubin, D. B. (1983). The central role of the propensity score in
observational studies for causal effects. *Biometrika* 70, 41-55.
Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when estimating
differences in means and differences in proportions in observational studies. *Pharm.
Stat.* 10, 150-161.
Li, F., Morgan, K. L. and Zaslavsky, A. M. (2018). Balancing covariates via propensity score
weighting. *J. Am. Stat. Assoc.* 113, 390-400.
Kish, L. (1965). *Survey Sampling*. Wiley (the effective sample size of weights).
Ho, D. E., Imai, K., King, G. and Stuart, E. A. (2011). MatchIt: nonparametric preprocessing
for parametric causal inference. *J. Stat. Softw.* 42(8) (the matching weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from trials.exceptions import ConvergenceWarning, DataError

__all__ = [
    "MatchResult",
    "PropensityModel",
    "PropensityWeights",
    "att_weights",
    "check_overlap",
    "covariate_columns",
    "estimate_weights",
    "fit_propensity",
    "kish_ess",
    "match_nearest",
    "overlap_weights",
]

Method = Literal["matching", "iptw_att", "overlap"]
METHODS: tuple[str, ...] = ("matching", "iptw_att", "overlap")


# ----------------------------------------------------------------------------- design
def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )


def _levels(series: pd.Series) -> list:
    """The observed levels of a categorical column, in category (else sorted) order."""
    present = set(series.dropna().unique())
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if c in present]
    return sorted(present, key=str)


def _rows(index: Sequence, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(index)[:limit])
    more = len(index) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def covariate_columns(
    data: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool = True
) -> tuple[pd.DataFrame, dict[str, tuple[str, object | None]]]:
    """Numeric columns for covariates: numbers as they are, categories as indicators.

    Parameters
    ----------
    data : DataFrame
        The patients.
    covariates : sequence of str
        Column names. A column is categorical when its dtype is not numeric (text,
        ``pandas.Categorical``); booleans are read as 0/1.
    drop_first : bool, default True
        Leave out the first level of each categorical (the reference level of a
        regression); ``False`` gives one indicator per level (balance tables).

    Returns
    -------
    columns : DataFrame
        Float columns, named ``covariate`` or ``covariate[level]``.
    origin : dict
        For each output column, ``(covariate, level)`` (level ``None`` for a number).

    Raises
    ------
    DataError
        If a covariate is not a column, or has missing values (naming the rows).
    """
    absent = [c for c in covariates if c not in data.columns]
    if absent:
        raise DataError(
            f"covariates not in the data: {', '.join(map(repr, absent))} "
            f"(columns: {', '.join(map(str, data.columns))})"
        )
    columns: dict[str, np.ndarray] = {}
    origin: dict[str, tuple[str, object | None]] = {}
    for name in covariates:
        series = data[name]
        missing = series.isna().to_numpy()
        if missing.any():
            raise DataError(
                f"covariate {name!r} has missing values in rows {_rows(data.index[missing])}; "
                "impute or exclude them before the propensity analysis"
            )
        if _is_numeric(series) or pd.api.types.is_bool_dtype(series):
            columns[name] = series.to_numpy(dtype=float)
            origin[name] = (name, None)
            continue
        levels = _levels(series)
        for level in levels[1:] if drop_first else levels:
            label = f"{name}[{level}]"
            columns[label] = (series == level).to_numpy(dtype=float)
            origin[label] = (name, level)
    return pd.DataFrame(columns, index=data.index), origin


def _treated(data: pd.DataFrame, treatment: str) -> np.ndarray:
    if treatment not in data.columns:
        raise DataError(f"treatment column {treatment!r} not in the data")
    values = data[treatment]
    if values.isna().any():
        raise DataError(f"treatment column {treatment!r} has missing values")
    numbers = values.to_numpy(dtype=float)
    if not np.isin(numbers, (0.0, 1.0)).all():
        raise DataError(f"treatment column {treatment!r} must be 1 (trial) or 0 (external)")
    treated = numbers == 1.0
    if treated.all() or not treated.any():
        raise DataError(
            f"treatment column {treatment!r}: both trial (1) and external (0) patients are "
            f"needed (got {int(treated.sum())} and {int((~treated).sum())})"
        )
    return treated


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class PropensityModel:
    """A fitted propensity-score model (logistic regression of trial membership).

    Attributes
    ----------
    covariates : tuple of str
        The covariates, as given.
    coefficients : Series
        Intercept (``const``) and one coefficient per design column (categorical
        covariates as indicators of every level but the first).
    standard_errors : Series
        Model-based standard errors of the coefficients.
    linear_predictor : ndarray
        The logit of the score, one per patient (rows of the data, in order).
    treated : ndarray of bool
        True for trial patients.
    index : Index
        The data's row labels.
    converged : bool
        Whether the iteratively reweighted least squares converged without a
        separation warning.
    fit_warnings : tuple of str
        Warnings statsmodels gave while fitting (recorded, not shown).

    Notes
    -----
    Assumes the log-odds of trial membership is linear in the covariates (numbers enter
    linearly, categories as indicators); add transformed columns (``age**2``, splines) to
    the data for a more flexible model. No unmeasured confounding is assumed by every
    estimate built on the score.
    """

    covariates: tuple[str, ...]
    coefficients: pd.Series
    standard_errors: pd.Series
    linear_predictor: np.ndarray
    treated: np.ndarray
    index: pd.Index
    converged: bool
    fit_warnings: tuple[str, ...] = ()

    @property
    def scores(self) -> np.ndarray:
        """The propensity scores ``e(x) = P(trial | x)``."""
        return special.expit(self.linear_predictor)

    @property
    def logit(self) -> np.ndarray:
        """The logit of the scores (the linear predictor)."""
        return self.linear_predictor

    @property
    def n_trial(self) -> int:
        return int(self.treated.sum())

    @property
    def n_external(self) -> int:
        return int((~self.treated).sum())

    def summary(self) -> pd.DataFrame:
        """Coefficients (log odds ratios of trial membership), standard errors, z, p."""
        z = self.coefficients / self.standard_errors
        return pd.DataFrame(
            {
                "coef": self.coefficients,
                "se": self.standard_errors,
                "z": z,
                "p_value": 2 * special.ndtr(-np.abs(z)),
            }
        )


def fit_propensity(
    data: pd.DataFrame, treatment: str, covariates: Sequence[str], *, warn: bool = True
) -> PropensityModel:
    """Fit the propensity score by logistic regression (statsmodels GLM, binomial, logit).

    Parameters
    ----------
    data : DataFrame
        Trial and external patients together.
    treatment : str
        Column with 1 for trial patients and 0 for external patients.
    covariates : sequence of str
        The covariates of the model; text or categorical columns enter as indicators.
    warn : bool, default True
        Whether to warn when the fit does not converge (``converged`` records it anyway).

    Returns
    -------
    PropensityModel

    Raises
    ------
    DataError
        If a covariate is missing, has missing values or is constant, or the covariates
        separate the trial from the external patients completely.

    Warns
    -----
    ConvergenceWarning
        If the fit did not converge (the model records it).

    References
    ----------
    Rosenbaum & Rubin (1983), see the module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> age = rng.normal(60, 10, 400)
    >>> trial = (rng.random(400) < 1 / (1 + np.exp(-(age - 60) / 10))).astype(int)
    >>> model = fit_propensity(pd.DataFrame({"age": age, "trial": trial}), "trial", ["age"])
    >>> bool(0.05 < model.coefficients["age"] < 0.15)
    True
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    treated = _treated(data, treatment)
    columns, _ = covariate_columns(data, covariates)
    constant = [c for c in columns if np.ptp(columns[c].to_numpy()) == 0]
    if constant:
        raise DataError(
            f"covariate column {', '.join(map(repr, constant))} takes one value only among "
            "the trial and external patients; leave it out of the propensity model"
        )
    design = sm.add_constant(columns, has_constant="add")
    rank = np.linalg.matrix_rank(design.to_numpy())
    if rank < design.shape[1]:
        raise DataError(
            "the propensity model's covariates are collinear (a covariate is a combination "
            f"of others: {', '.join(columns.columns)}); leave one out"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.GLM(treated.astype(float), design, family=sm.families.Binomial()).fit()
    messages = tuple(str(w.message).splitlines()[0] for w in caught)
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    eta = design.to_numpy() @ fit.params.to_numpy()
    if separated or (eta[~treated].max() < eta[treated].min()):
        raise DataError(
            "the propensity scores do not overlap: the covariates separate the trial "
            "patients from the external patients completely (largest external score "
            f"{special.expit(eta[~treated].max()):.3g}, smallest trial score "
            f"{special.expit(eta[treated].min()):.3g}); no external patient resembles the "
            "trial patients -- check the eligibility criteria and the harmonisation"
        )
    converged = bool(fit.converged)
    if not converged and warn:
        warnings.warn(
            "the propensity model did not converge; its scores may be unreliable",
            ConvergenceWarning,
            stacklevel=2,
        )
    with np.errstate(all="ignore"):
        se = pd.Series(np.sqrt(np.diag(fit.cov_params().to_numpy())), index=fit.params.index)
    return PropensityModel(
        covariates=tuple(covariates),
        coefficients=fit.params.copy(),
        standard_errors=se,
        linear_predictor=eta,
        treated=treated,
        index=data.index.copy(),
        converged=converged,
        fit_warnings=messages,
    )


def check_overlap(model: PropensityModel, *, max_unsupported: float = 0.1) -> float:
    """Check that the trial patients are within the external patients' scores.

    A trial patient whose score is above the largest (or below the smallest) external score
    has no external patient like them: their outcome can only be compared by extrapolation.

    Parameters
    ----------
    model : PropensityModel
    max_unsupported : float, default 0.1
        The largest share of trial patients allowed outside the range of the external
        scores.

    Returns
    -------
    float
        The share of trial patients outside the range.

    Raises
    ------
    DataError
        If the ranges do not overlap, or more than ``max_unsupported`` of the trial
        patients are outside the external range.
    """
    eta, treated = model.linear_predictor, model.treated
    low, high = eta[~treated].min(), eta[~treated].max()
    trial = eta[treated]
    if high < trial.min() or low > trial.max():
        raise DataError(
            "the propensity scores do not overlap: external scores lie in "
            f"[{special.expit(low):.3g}, {special.expit(high):.3g}], trial scores in "
            f"[{special.expit(trial.min()):.3g}, {special.expit(trial.max()):.3g}]"
        )
    outside = float(np.mean((trial > high) | (trial < low)))
    if outside > max_unsupported:
        raise DataError(
            f"the propensity scores overlap poorly: {outside:.1%} of the trial patients "
            f"({int(round(outside * trial.size))} of {trial.size}) have a score outside the "
            f"external patients' range [{special.expit(low):.3g}, {special.expit(high):.3g}] "
            f"(at most {max_unsupported:.1%} allowed: max_unsupported)"
        )
    return outside


# ----------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class MatchResult:
    """Nearest-neighbour matches on the logit of the propensity score.

    Attributes
    ----------
    pairs : DataFrame
        One row per match: ``trial`` and ``external`` (row positions in the data),
        ``round`` (1 to k) and ``distance`` (absolute difference of the logits).
    weights : ndarray
        Matching weights, one per patient (see :func:`match_nearest`).
    k : int
    caliper_sd : float or None
        The caliper in standard deviations of the logit (``None``: no caliper).
    caliper : float
        The caliper on the logit scale (``inf`` without one).
    replace : bool
    n_unmatched : int
        Trial patients with no external patient within the caliper (dropped).
    """

    pairs: pd.DataFrame
    weights: np.ndarray
    k: int
    caliper_sd: float | None
    caliper: float
    replace: bool
    n_unmatched: int

    @property
    def n_matched_trial(self) -> int:
        return int(self.pairs["trial"].nunique())

    @property
    def n_matched_external(self) -> int:
        return int(self.pairs["external"].nunique())


def match_nearest(
    model: PropensityModel,
    *,
    k: int = 1,
    caliper: float | None = 0.2,
    replace: bool = False,
) -> MatchResult:
    """Greedy 1:k nearest-neighbour matching on the logit of the propensity score.

    Trial patients are taken in order of decreasing score (the hardest to match first,
    as MatchIt's default ``m.order = "largest"``). Without replacement, matching goes in
    ``k`` rounds: every trial patient gets a first match before any gets a second; each
    external patient is used at most once. With replacement, each trial patient takes its
    ``k`` nearest external patients within the caliper. Ties go to the earlier row.

    Parameters
    ----------
    model : PropensityModel
    k : int, default 1
        External patients per trial patient.
    caliper : float or None, default 0.2
        Largest allowed distance, in standard deviations of the logit of the score
        (pooled: ``sqrt((var_trial + var_external) / 2)``); ``None`` for no caliper.
        0.2 is Austin's (2011) recommendation.
    replace : bool, default False
        Whether an external patient may be matched to several trial patients.

    Returns
    -------
    MatchResult
        With the matching weights: 1 for a matched trial patient, 0 for an unmatched
        one; an external patient gets the sum over the trial patients it is matched to
        of ``1 / (number of matches of that trial patient)``, rescaled so that the
        external weights sum to the number of distinct matched external patients (the
        MatchIt convention; without replacement and with all ``k`` matches found, every
        matched external patient weighs 1).

    Raises
    ------
    DataError
        If no trial patient finds a match.

    References
    ----------
    Austin (2011); Ho, Imai, King & Stuart (2011) -- see the module docstring.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    eta, treated = model.linear_predictor, model.treated
    trial_rows = np.flatnonzero(treated)
    external_rows = np.flatnonzero(~treated)
    if caliper is None:
        width = np.inf
    else:
        if not caliper > 0:
            raise ValueError(f"caliper must be positive, got {caliper!r}")
        pooled = np.sqrt((np.var(eta[treated], ddof=1) + np.var(eta[~treated], ddof=1)) / 2)
        width = float(caliper * pooled)
    order = trial_rows[np.argsort(-eta[trial_rows], kind="stable")]
    distance = np.abs(eta[order][:, None] - eta[external_rows][None, :])
    distance[distance > width] = np.inf
    records: list[tuple[int, int, int, float]] = []
    if replace:
        for i, row in enumerate(order):
            nearest = np.argsort(distance[i], kind="stable")[:k]
            for r, j in enumerate(nearest[np.isfinite(distance[i, nearest])], start=1):
                records.append((row, external_rows[j], r, float(distance[i, j])))
    else:
        available = np.ones(external_rows.size, dtype=bool)
        for r in range(1, k + 1):
            for i, row in enumerate(order):
                candidates = np.where(available, distance[i], np.inf)
                j = int(np.argmin(candidates))
                if not np.isfinite(candidates[j]):
                    continue
                available[j] = False
                records.append((row, external_rows[j], r, float(candidates[j])))
    pairs = pd.DataFrame(records, columns=["trial", "external", "round", "distance"])
    if pairs.empty:
        raise DataError(
            "no trial patient has an external patient within the caliper "
            f"({caliper} SD of the logit of the propensity score); the propensity scores "
            "do not overlap"
        )
    weights = np.zeros(eta.size)
    counts = pairs.groupby("trial")["external"].transform("size").to_numpy()
    weights[pairs["trial"].unique()] = 1.0
    np.add.at(weights, pairs["external"].to_numpy(), 1.0 / counts)
    matched_external = pairs["external"].unique()
    weights[matched_external] *= matched_external.size / weights[matched_external].sum()
    n_unmatched = int(trial_rows.size - pairs["trial"].nunique())
    return MatchResult(
        pairs=pairs,
        weights=weights,
        k=int(k),
        caliper_sd=None if caliper is None else float(caliper),
        caliper=width,
        replace=bool(replace),
        n_unmatched=n_unmatched,
    )


# ----------------------------------------------------------------------------- weights
def att_weights(model: PropensityModel) -> np.ndarray:
    """Inverse probability weights for the effect on the treated (the trial population).

    Trial patients weigh 1, external patients ``e / (1 - e)``, rescaled so that the
    external weights sum to the number of trial patients (their unscaled sum estimates
    it; the rescaling makes the pseudo-population exactly 1:1 and leaves weighted means
    unchanged).
    """
    weights = np.where(model.treated, 1.0, np.exp(model.linear_predictor))
    external = ~model.treated
    weights[external] *= model.n_trial / weights[external].sum()
    return weights


def overlap_weights(model: PropensityModel) -> np.ndarray:
    """Overlap weights (Li, Morgan & Zaslavsky 2018): trial ``1 - e``, external ``e``.

    The external weights are rescaled so that they sum to the trial weights' sum (which
    they equal in expectation), leaving weighted means unchanged.
    """
    e = model.scores
    weights = np.where(model.treated, 1.0 - e, e)
    external = ~model.treated
    weights[external] *= weights[model.treated].sum() / weights[external].sum()
    return weights


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is 0)."""
    w = np.asarray(weights, dtype=float)
    total = float(np.sum(w * w))
    return 0.0 if total == 0 else float(np.sum(w) ** 2 / total)


@dataclass(frozen=True)
class PropensityWeights:
    """The weights of an adjustment, one per patient (0 for a patient left out).

    Attributes
    ----------
    method : {"matching", "iptw_att", "overlap"}
    weights : ndarray
    model : PropensityModel
    matching : MatchResult or None
        The matches, for ``method="matching"``.
    """

    method: str
    weights: np.ndarray
    model: PropensityModel
    matching: MatchResult | None = field(default=None)

    @property
    def treated(self) -> np.ndarray:
        return self.model.treated

    @property
    def ess_trial(self) -> float:
        """Kish effective sample size of the trial patients' weights."""
        return kish_ess(self.weights[self.treated])

    @property
    def ess_external(self) -> float:
        """Kish effective sample size of the external patients' weights."""
        return kish_ess(self.weights[~self.treated])

    def summary(self) -> pd.DataFrame:
        """Per source: patients, patients with a positive weight, total weight, ESS, range."""
        rows = []
        for label, mask in (("trial", self.treated), ("external", ~self.treated)):
            w = self.weights[mask]
            rows.append(
                {
                    "source": label,
                    "n_patients": int(mask.sum()),
                    "n_weighted": int((w > 0).sum()),
                    "sum_weights": float(w.sum()),
                    "ess": kish_ess(w),
                    "min_weight": float(w.min()),
                    "max_weight": float(w.max()),
                }
            )
        return pd.DataFrame(rows).set_index("source")


def estimate_weights(
    model: PropensityModel,
    method: Method = "iptw_att",
    *,
    k: int = 1,
    caliper: float | None = 0.2,
    replace: bool = False,
    max_unmatched: float = 0.1,
) -> PropensityWeights:
    """The weights of an adjustment method for a fitted propensity model.

    Parameters
    ----------
    model : PropensityModel
    method : {"matching", "iptw_att", "overlap"}
    k, caliper, replace
        Matching settings, see :func:`match_nearest`.
    max_unmatched : float, default 0.1
        Matching: the largest share of trial patients allowed without a match within
        the caliper (an unmatched trial patient changes the estimand to a subset of the
        trial population).

    Returns
    -------
    PropensityWeights

    Raises
    ------
    DataError
        If too many trial patients are unmatched, or a source's weights have a zero
        effective sample size.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    matching = None
    if method == "matching":
        matching = match_nearest(model, k=k, caliper=caliper, replace=replace)
        share = matching.n_unmatched / model.n_trial
        if share > max_unmatched:
            raise DataError(
                f"the propensity scores overlap poorly: {matching.n_unmatched} of "
                f"{model.n_trial} trial patients ({share:.1%}) have no external patient "
                f"within the caliper of {caliper} SD of the logit (at most "
                f"{max_unmatched:.1%} allowed: max_unmatched)"
            )
        weights = matching.weights
    elif method == "iptw_att":
        weights = att_weights(model)
    else:
        weights = overlap_weights(model)
    if not np.isfinite(weights).all():
        raise DataError("the weights are not finite (propensity scores of exactly 0 or 1)")
    result = PropensityWeights(method=method, weights=weights, model=model, matching=matching)
    for label, ess in (("trial", result.ess_trial), ("external", result.ess_external)):
        if not ess > 0:
            raise DataError(f"the {label} patients' weights have a zero effective sample size")
    return result
