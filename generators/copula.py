"""Gaussian copula with smoothed empirical marginals.

Each column is a transform of one latent standard normal variable, and the latent
variables are jointly normal with a correlation matrix estimated from normal scores
(Patki, Wedge and Veeramachaneni 2016, the Synthetic Data Vault):

* a continuous column through its smoothed empirical quantile function
  ``x = Q(Phi(z))``, stored on a fixed grid of normal scores (never the data rows);
* an integer column through its empirical quantile function smoothed on the latent
  (normal-score) scale, with the amount of smoothing chosen by cross-validation, then
  rounded to the lattice of the observed values (so ties, heaped values and point masses
  such as zeros are kept);
* a categorical or binary column through thresholds at the normal quantiles of the
  cumulative category frequencies (each category an interval of the latent normal, as
  in :mod:`generators.parametric`).

References
----------
Patki, N., Wedge, R. and Veeramachaneni, K. (2016). The Synthetic Data Vault. IEEE DSAA,
399-410.
Silverman, B. W. (1986). *Density Estimation for Statistics and Data Analysis*. Chapman
& Hall (eq. 3.31, the rule-of-thumb bandwidth; section 6.4.1, the variance-corrected
smoothed bootstrap).
Sheather, S. J. and Marron, J. S. (1990). Kernel quantile estimators. *J. Amer. Statist.
Assoc.* 85, 410-416.
Harrell, F. E. and Davis, C. E. (1982). A new distribution-free quantile estimator.
*Biometrika* 69, 635-640.
Epstein, E. S. (1969). A scoring system for probability forecasts of ranked categories.
*J. Appl. Meteor.* 8, 985-987.
Gneiting, T. and Raftery, A. E. (2007). Strictly proper scoring rules, prediction, and
estimation. *J. Amer. Statist. Assoc.* 102, 359-378.
Olsson, U., Drasgow, F. and Dorans, N. J. (1982). The polyserial correlation
coefficient. *Psychometrika* 47, 337-347.
Higham, N. J. (2002). Computing the nearest correlation matrix. *IMA J. Numer. Anal.*
22, 329-343.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from generators.base import DataRoles, Generator, register
from generators.marginals import (
    CATEGORICAL,
    INTEGER,
    Z_GRID,
    categorical_output,
    category_codes,
    cuts,
    default_categorical,
    fit_categorical,
    fit_continuous,
    fit_integer,
    is_integer,
    is_numeric,
    numeric_values,
)
from trials.exceptions import DataError

_EIGEN_FLOOR = 1e-6  # smallest eigenvalue allowed in the latent correlation matrix
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@register("copula")
class GaussianCopula(Generator):
    """Gaussian copula with smoothed empirical marginals.

    Parameters
    ----------
    columns : list of str, optional
        The columns to model, in order; by default all columns of the fitted data.
    categorical : list of str, optional
        The columns to treat as categorical. By default: columns of object, string,
        category or bool dtype, integer columns (integer dtype, or floats whose observed
        values are all whole numbers) with at most 10 distinct values, and constant
        columns.
    smoothing : float, optional
        For continuous columns, the multiplier of Silverman's rule-of-thumb bandwidth
        ``h = 0.9 * min(sd, IQR / 1.349) * n ** (-1/5)`` of the Gaussian kernel that
        smooths the marginal (``None`` means 1). For integer columns, the width ``w``
        of the latent kernel (see Notes; ``None`` chooses it among :data:`WINDOWS` by
        cross-validation, column by column). ``0`` switches smoothing off: the quantile
        function is then the linear interpolation of the order statistics at the
        plotting positions ``(i - 0.5) / n``, with tails extended to one mean spacing
        beyond the extreme observations (half a lattice step for integer columns,
        which are then rounded).

    Attributes
    ----------
    marginals_ : list of dict
        One description per column: its ``kind`` (continuous, integer or categorical),
        original ``dtype``, ``missing_rate``, and either its quantile function on
        ``z_grid_`` (``quantiles``; with the ``bandwidth`` used for a continuous column;
        with the latent kernel ``window``, the lattice ``step`` and the observed ``min``
        and ``max`` for an integer one) or its ``categories`` and their
        ``probabilities``.
    correlation_ : ndarray of shape (n_columns, n_columns)
        Correlation matrix of the latent normal variables.
    correlation_projected_ : bool
        Whether the estimated matrix was not positive definite and was replaced by the
        nearest correlation matrix.
    z_grid_ : ndarray
        Normal scores at which the quantile functions are stored.

    Notes
    -----
    Modelling assumptions:

    * **Dependence** is Gaussian in the latent scale: no tail dependence, and the
      dependence between two columns is summarised by one correlation.
    * **Continuous marginals.** The default smoothing is a Gaussian kernel with Silverman's
      bandwidth and Silverman's variance correction (the kernel centres are shrunk
      towards the mean by ``1 / sqrt(1 + h**2 / sd**2)``), so the synthetic marginal has
      the mean and variance of the data, is continuous (synthetic values are not copies
      of observed ones) and smooths the sampling noise of the empirical distribution,
      at the price of a bias of order ``h**2`` in the density. It is chosen over the
      interpolated empirical CDF (``smoothing=0``) because it does not reproduce the
      observed extremes and small-sample steps, and it degrades gracefully with ties.
      The support is the observed range widened by one bandwidth on each side, and not
      below zero for a column never observed negative (the kernel density is
      truncated there and renormalised).
    * **Integer marginals** (counts, scores, ages or days: columns with ties, values
      heaped on round numbers, point masses such as zeros or an administrative end of
      follow-up) are smoothed on the latent scale instead, so that values observed
      often stay exact. With ``Q_n`` the empirical quantile function of the ``n``
      observed values and ``tau = w / sqrt(n)``, the quantile function is
      ``Q(z) = E Q_n(Phi(z + tau * e))`` with ``e`` standard normal, i.e.
      ``Q(z) = x_1 + sum_l (x_{l+1} - x_l) * Phi((z - b_l) / tau)`` over consecutive
      distinct values ``x_l`` with ``b_l = Phi^-1(F_n(x_l))``: a kernel quantile
      estimator (Sheather and Marron 1990) with a Gaussian kernel on the normal-score
      scale, a relative of the Harrell and Davis (1982) estimator. A value whose
      latent interval is wide compared with ``tau`` keeps most of it (ties, heaping
      and point masses are reproduced), sparsely observed stretches are averaged
      (values between the observed ones appear), and the range is the observed one.
      The smoothing is exact for a normal marginal (``Q_n(Phi(z))`` linear in ``z``);
      otherwise its bias is about ``tau**2 / 2`` times the curvature of
      ``Q_n(Phi(z))``, so the mean of a skewed column moves by a small fraction of
      its standard error. Values are rounded to the lattice of the data,
      ``min + k * step`` with ``step`` the greatest common divisor of the differences
      between observed values: the observed precision is assumed to be the recording
      precision (heaping is reproduced as observed, not modelled). The width ``w`` is
      chosen among :data:`WINDOWS` by 10-fold cross-validation of the ranked
      probability score, the discrete continuous ranked probability score (Epstein
      1969; Gneiting and Raftery 2007), of the held-out values under the rounded
      distribution: a proper score of the whole distribution function, it picks
      little smoothing for a rough (heaped) distribution and more for a smooth one.
      The folds come from a fixed seed, so fitting is deterministic.
    * **Categories** are ordered as the categories of a pandas Categorical, else by
      value; the order matters only for the latent correlations, which for unordered
      categories with more than two levels are a convenient rather than a faithful
      summary of the dependence.
    * **Latent correlation.** Each column's observed values are replaced by normal
      scores of their mid-ranks, ``Phi^-1(rank / (n + 1))``, and the pairwise
      (complete-case) Pearson correlation of the scores is divided by the product of
      each column's ``corr(score, latent)``, computed exactly from its tie groups. This
      is the ad hoc polyserial estimator of Olsson et al. (1982): consistent for a
      categorical with a continuous column, first-order for two categorical columns. A
      matrix that is not positive definite is replaced by the nearest correlation
      matrix (Higham 2002), with eigenvalues at least 1e-6.
    * **Missing values** are missing completely at random and independently across
      columns: each column's observed missing rate is reproduced, but not the
      correlation between missingness patterns or between missingness and values.

    References
    ----------
    Patki, Wedge and Veeramachaneni (2016); Silverman (1986); Sheather and Marron (1990);
    Harrell and Davis (1982); Epstein (1969); Gneiting and Raftery (2007); Olsson, Drasgow
    and Dorans (1982); Higham (2002) -- see the module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> data = pd.DataFrame({"age": rng.normal(60, 8, 500),
    ...                      "sex": rng.choice(["F", "M"], 500)})
    >>> copula = GaussianCopula().fit(data)
    >>> virtual = copula.sample(1000, rng=2)
    >>> list(virtual.columns), str(virtual["sex"].dtype)
    (['age', 'sex'], 'object')
    >>> older = copula.sample_where(100, lambda df: df["age"] > 65, rng=3)
    >>> bool((older["age"] > 65).all())
    True
    """

    def __init__(
        self,
        columns: list[str] | None = None,
        categorical: list[str] | None = None,
        smoothing: float | None = None,
    ):
        self.columns = columns
        self.categorical = categorical
        self.smoothing = smoothing

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> GaussianCopula:
        """Every column but the identifier."""
        return cls(columns=[c for c in roles.columns if c != roles.id])

    # -- fitting -------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame) -> GaussianCopula:
        """Learn the marginals and the latent correlation from patient-level data.

        Parameters
        ----------
        data : DataFrame
            One row per patient; missing values allowed.

        Returns
        -------
        self

        Raises
        ------
        DataError
            If a requested column is absent, a column has no observed values or an
            unsupported dtype, or there are fewer than two rows.
        """
        frame = self._select(data)
        smoothing = None if self.smoothing is None else float(self.smoothing)
        if smoothing is not None and not (math.isfinite(smoothing) and smoothing >= 0):
            raise ValueError(f"smoothing must be a non-negative number, got {self.smoothing!r}")
        categorical = self._categorical_columns(frame)
        marginals, scores, factors = [], [], []
        for name in frame.columns:
            column = frame[name]
            missing = column.isna().to_numpy()
            if missing.all():
                raise DataError(f"column {name!r} has no observed values")
            observed = column[~missing]
            marginal: dict[str, Any] = {
                "name": name,
                "dtype": str(column.dtype),
                "missing_rate": float(missing.mean()),
            }
            if name in categorical:
                marginal.update(fit_categorical(name, observed))
                ranked = category_codes(observed, marginal["categories"])
            else:
                values = observed.to_numpy(dtype=float)
                if is_integer(column):
                    marginal.update(fit_integer(values, smoothing))
                else:
                    marginal.update(fit_continuous(values, smoothing))
                ranked = values
            score, factor = _normal_scores(ranked)
            full = np.full(len(frame), np.nan)
            full[~missing] = score
            scores.append(full)
            factors.append(factor)
            marginals.append(marginal)
        correlation = _latent_correlation(np.column_stack(scores), np.asarray(factors))
        correlation, projected = _nearest_correlation(correlation)
        self._remember(frame)
        self.z_grid_ = Z_GRID.copy()
        self.marginals_ = marginals
        self.correlation_ = correlation
        self.correlation_projected_ = projected
        self._cholesky = np.linalg.cholesky(correlation)
        return self

    def _select(self, data: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(data).__name__}")
        bad = [c for c in data.columns if not isinstance(c, str)]
        if bad:
            raise DataError(f"column names must be strings, got {bad!r}")
        if self.columns is not None:
            absent = [c for c in self.columns if c not in data.columns]
            if absent:
                raise DataError(f"columns not in the data: {', '.join(map(repr, absent))}")
            data = data[list(self.columns)]
        if data.shape[1] == 0:
            raise DataError("the data have no columns to model")
        if len(data) < 2:
            raise DataError(f"at least 2 rows are needed to fit a copula, got {len(data)}")
        return data

    def _categorical_columns(self, frame: pd.DataFrame) -> set[str]:
        if self.categorical is not None:
            absent = [c for c in self.categorical if c not in frame.columns]
            if absent:
                raise DataError(
                    f"categorical columns not among the modelled columns: "
                    f"{', '.join(map(repr, absent))}"
                )
            chosen = set(self.categorical)
        else:
            chosen = {name for name in frame.columns if default_categorical(frame[name])}
        for name in frame.columns:
            column = frame[name]
            if name not in chosen:
                if not is_numeric(column):
                    raise DataError(
                        f"column {name!r} has dtype {column.dtype}, which is neither numeric "
                        "nor categorical"
                    )
                if column.nunique(dropna=True) < 2:
                    chosen.add(name)  # a constant column: one category
        return chosen

    # -- sampling ------------------------------------------------------------------------

    def sample(
        self,
        n_patients: int,
        rng: int | np.random.Generator | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Draw virtual patients, optionally with some columns fixed.

        Parameters
        ----------
        n_patients : int
            Number of rows.
        rng : int or numpy.random.Generator, optional
            Seed or generator.
        conditions : dict, optional
            Column -> value. The fixed columns take that value in every row (never
            missing) and the other columns are drawn from the copula conditional on it:
            a continuous value through its normal score, an integer or categorical value
            through the latent interval that maps to it.

        Returns
        -------
        DataFrame
            The modelled columns with their original dtypes (categories as a pandas
            Categorical with the original categories).

        Raises
        ------
        DataError
            If the generator is not fitted, a condition names an unknown column, a
            category not seen in fitting or a value outside the fitted range, or the
            conditions are too unlikely to be sampled.
        """
        self._check_fitted()
        n = _check_count(n_patients)
        rng = np.random.default_rng(rng)
        fixed = self._parse_conditions(conditions or {})
        latent = self._draw_latent(n, rng, fixed)
        rates = np.array([m["missing_rate"] for m in self.marginals_])
        missing = rng.random((n, len(self.marginals_))) < rates
        missing[:, list(fixed)] = False
        return self._to_frame(latent, missing, fixed)

    def sample_where(
        self,
        n_patients: int,
        predicate: Callable[[pd.DataFrame], Any],
        rng: int | np.random.Generator | None = None,
        max_tries: int = 100,
    ) -> pd.DataFrame:
        """Draw virtual patients satisfying a condition (eligibility criteria).

        Candidates are drawn in batches from :meth:`sample` and kept where
        ``predicate`` holds, until ``n_patients`` are accepted.

        Parameters
        ----------
        n_patients : int
            Number of rows wanted.
        predicate : callable
            Takes a DataFrame of candidates and returns one boolean per row (a missing
            value counts as False).
        rng : int or numpy.random.Generator, optional
            Seed or generator.
        max_tries : int, default 100
            At most ``max_tries * n_patients`` candidates are drawn, so an acceptance
            rate below about ``1 / max_tries`` fails.

        Returns
        -------
        DataFrame
            ``n_patients`` accepted rows, indexed from 0, in the order drawn.

        Raises
        ------
        DataError
            If the predicate returns the wrong shape, or too few candidates satisfy it.
        """
        self._check_fitted()
        n = _check_count(n_patients)
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError(f"max_tries must be a positive integer, got {max_tries!r}")
        rng = np.random.default_rng(rng)
        budget = n * max_tries
        accepted: list[pd.DataFrame] = [self.sample(0, rng=rng)]
        n_accepted = n_drawn = 0
        while n_accepted < n and n_drawn < budget:
            wanted = _batch_size(n, n_accepted, n_drawn)
            batch = min(budget - n_drawn, max(wanted, 100), 200_000)
            candidates = self.sample(batch, rng=rng)
            keep = _predicate_mask(predicate, candidates)
            n_drawn += batch
            n_accepted += int(keep.sum())
            accepted.append(candidates[keep])
        if n_accepted < n:
            raise DataError(
                f"only {n_accepted} of {n_drawn} virtual patients "
                f"({n_accepted / n_drawn:.3%}) satisfied the predicate, {n} were needed "
                f"within max_tries * n_patients = {budget} draws"
            )
        return pd.concat(accepted).iloc[:n].reset_index(drop=True)

    def _parse_conditions(self, conditions: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        """Column index -> {"value", "code" or "z" or "interval"} for each condition."""
        names = [m["name"] for m in self.marginals_]
        unknown = [c for c in conditions if c not in names]
        if unknown:
            raise DataError(
                f"conditions on unknown columns {', '.join(map(repr, unknown))} "
                f"(columns: {', '.join(names)})"
            )
        fixed: dict[int, dict[str, Any]] = {}
        for name, value in conditions.items():
            index = names.index(name)
            marginal = self.marginals_[index]
            if _is_missing(value):
                raise DataError(f"condition on {name!r}: cannot condition on a missing value")
            if marginal["kind"] == CATEGORICAL:
                fixed[index] = self._categorical_condition(marginal, value)
            else:
                fixed[index] = self._numeric_condition(marginal, value)
        return fixed

    def _categorical_condition(self, marginal: dict[str, Any], value: Any) -> dict[str, Any]:
        categories = marginal["categories"]
        matches = [i for i, c in enumerate(categories) if c == value]
        if not matches:
            raise DataError(
                f"condition on {marginal['name']!r}: {value!r} is not a category "
                f"(categories: {', '.join(map(repr, categories))})"
            )
        code = matches[0]
        if marginal["probabilities"][code] == 0:
            raise DataError(
                f"condition on {marginal['name']!r}: category {value!r} was never observed"
            )
        bounds = np.concatenate([[-np.inf], cuts(marginal["probabilities"]), [np.inf]])
        return {
            "value": categories[code], "code": code, "interval": (bounds[code], bounds[code + 1])
        }

    def _numeric_condition(self, marginal: dict[str, Any], value: Any) -> dict[str, Any]:
        name = marginal["name"]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"condition on {name!r}: {value!r} is not a number") from None
        quantiles = marginal["quantiles"]
        if marginal["kind"] == INTEGER:
            low, high = marginal["min"], marginal["max"]
            step = marginal.get("step", 1.0)
            position = (number - low) / step
            if number != round(number) or position != round(position) or not low <= number <= high:
                lattice = "" if step == 1 else f" and equal to {low:g} plus a multiple of {step:g}"
                raise DataError(
                    f"condition on {name!r}: {value!r} is not an integer in the fitted "
                    f"range [{low:g}, {high:g}]{lattice}"
                )
            edges = np.interp([number - step / 2, number + step / 2], quantiles, self.z_grid_)
            lower = -np.inf if number == low else edges[0]
            upper = np.inf if number == high else edges[1]
            if not ndtr(upper) - ndtr(lower) > 0:
                raise DataError(f"condition on {name!r}: {value!r} has probability 0")
            return {"value": number, "interval": (lower, upper)}
        if not quantiles[0] <= number <= quantiles[-1]:
            raise DataError(
                f"condition on {name!r}: {value!r} is outside the fitted range "
                f"[{quantiles[0]:g}, {quantiles[-1]:g}]"
            )
        return {"value": number, "z": float(np.interp(number, quantiles, self.z_grid_))}

    def _draw_latent(
        self, n: int, rng: np.random.Generator, fixed: dict[int, dict[str, Any]]
    ) -> np.ndarray:
        """Latent normals, conditional on fixed points and intervals."""
        p = len(self.marginals_)
        if not fixed or n == 0:
            return rng.standard_normal((n, p)) @ self._cholesky.T
        corr = self.correlation_
        points = [i for i in sorted(fixed) if "z" in fixed[i]]
        intervals = [i for i in sorted(fixed) if "interval" in fixed[i]]
        z_points = np.array([fixed[i]["z"] for i in points])
        if not intervals:
            free = [i for i in range(p) if i not in points]
            latent = np.empty((n, p))
            latent[:, points] = z_points
            latent[:, free] = _conditional_draw(corr, points, free, latent[:, points], rng)
            return latent
        # The first interval variable exactly (inverse-CDF truncated normal given the
        # points), the others by rejection given it: exact for the joint restriction.
        first, others = intervals[0], intervals[1:]
        if points:
            coef = np.linalg.solve(corr[np.ix_(points, points)], corr[points, first])
            mean, sd = float(coef @ z_points), math.sqrt(1.0 - float(coef @ corr[points, first]))
        else:
            mean, sd = 0.0, 1.0
        lower, upper = fixed[first]["interval"]
        known = [*points, first]
        free = [i for i in range(p) if i not in known]
        rows: list[np.ndarray] = []
        n_accepted = n_drawn = 0
        while n_accepted < n:
            if n_drawn >= 1000 * n:
                raise DataError(
                    f"the conditions are too unlikely: {n_accepted} of {n_drawn} draws "
                    "satisfied them"
                )
            batch = min(_batch_size(n, n_accepted, n_drawn), 1000 * n - n_drawn)
            latent = np.empty((batch, p))
            latent[:, points] = z_points
            latent[:, first] = _truncated_normal(mean, sd, lower, upper, batch, rng)
            latent[:, free] = _conditional_draw(corr, known, free, latent[:, known], rng)
            keep = np.ones(batch, dtype=bool)
            for i in others:
                low, high = fixed[i]["interval"]
                keep &= (latent[:, i] > low) & (latent[:, i] <= high)
            rows.append(latent[keep])
            n_accepted += int(keep.sum())
            n_drawn += batch
        return np.concatenate(rows)[:n]

    def _to_frame(
        self, latent: np.ndarray, missing: np.ndarray, fixed: dict[int, dict[str, Any]]
    ) -> pd.DataFrame:
        columns = {}
        for j, marginal in enumerate(self.marginals_):
            z = latent[:, j]
            if marginal["kind"] == CATEGORICAL:
                codes = np.searchsorted(cuts(marginal["probabilities"]), z, side="right")
                if j in fixed:
                    codes[:] = fixed[j]["code"]
                codes[missing[:, j]] = -1
                columns[marginal["name"]] = categorical_output(marginal, codes)
                continue
            values = numeric_values(marginal, z, self.z_grid_)
            if j in fixed:
                values[:] = fixed[j]["value"]
            values[missing[:, j]] = np.nan
            columns[marginal["name"]] = pd.Series(values).astype(marginal["dtype"])
        return pd.DataFrame(columns)

    # -- the latent scale, for trial populations ------------------------------------------

    @property
    def columns_modelled_(self) -> list[str]:
        """The modelled columns, in the order of ``correlation_``."""
        return [m["name"] for m in self.marginals_]

    def categories(self, name: str) -> list[Any] | None:
        """The fitted categories of a categorical column; ``None`` for a numeric one."""
        marginal = self.marginals_[self.columns_modelled_.index(name)]
        return list(marginal["categories"]) if marginal["kind"] == CATEGORICAL else None

    def latent_values(self, name: str, z: np.ndarray) -> np.ndarray:
        """The values of column ``name`` at latent normal scores ``z`` (never missing):
        its categories (an object array) or its numbers."""
        self._check_fitted()
        marginal = self.marginals_[self.columns_modelled_.index(name)]
        if marginal["kind"] == CATEGORICAL:
            codes = np.searchsorted(cuts(marginal["probabilities"]), z, side="right")
            return np.asarray(marginal["categories"], dtype=object)[codes]
        return numeric_values(marginal, z, self.z_grid_)

    # -- state ---------------------------------------------------------------------------

    def _get_state(self) -> dict[str, Any]:
        return {
            "z_grid": self.z_grid_,
            "marginals": self.marginals_,
            "correlation": self.correlation_,
            "correlation_projected": self.correlation_projected_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.z_grid_ = np.asarray(state["z_grid"], dtype=float)
        self.marginals_ = [dict(m) for m in state["marginals"]]
        self.correlation_ = np.asarray(state["correlation"], dtype=float)
        self.correlation_projected_ = bool(state["correlation_projected"])
        self._cholesky = np.linalg.cholesky(self.correlation_)


# -- latent correlation ------------------------------------------------------------------


def _normal_scores(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Mid-rank normal scores and ``corr(score, latent)`` for a discretised latent normal.

    The values are taken to be a non-decreasing function of a latent standard normal;
    the tie group ``g`` then occupies the latent interval ``(a_g, b_g]`` at the normal
    quantiles of its cumulative frequencies, and ``cov(score, latent) =
    sum_g s_g (phi(a_g) - phi(b_g))``.
    """
    n = len(values)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    cumulative = np.cumsum(counts)
    group_scores = ndtri((cumulative - (counts - 1) / 2) / (n + 1))
    lower = ndtri((cumulative - counts) / n)
    upper = ndtri(np.minimum(cumulative / n, 1.0))
    shares = counts / n
    centred = group_scores - shares @ group_scores
    variance = float(shares @ centred**2)
    if variance <= 0:
        return np.zeros(n), 0.0
    covariance = float(group_scores @ (_normal_pdf(lower) - _normal_pdf(upper)))
    return group_scores[inverse.reshape(-1)], covariance / math.sqrt(variance)


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.square(z)) / _SQRT_2PI


def _latent_correlation(scores: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Pairwise-complete Pearson correlations of the scores, divided by the factors."""
    observed = (~np.isnan(scores)).astype(float)
    filled = np.where(np.isnan(scores), 0.0, scores)
    n_pairs = observed.T @ observed
    sums = filled.T @ observed  # [j, k]: sum of column j over rows where k is observed
    squares = np.square(filled).T @ observed
    cross = filled.T @ filled
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = n_pairs * cross - sums * sums.T
        variance = n_pairs * squares - sums**2
        corr = covariance / np.sqrt(variance * variance.T)
        corr = corr / np.outer(factors, factors)
    corr[~np.isfinite(corr) | (n_pairs < 3)] = 0.0
    corr = np.clip((corr + corr.T) / 2, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def _nearest_correlation(corr: np.ndarray) -> tuple[np.ndarray, bool]:
    """Higham's (2002) alternating projections with Dykstra's correction, if needed."""
    if np.linalg.eigvalsh(corr)[0] >= _EIGEN_FLOOR:
        return corr, False
    y = corr.copy()
    correction = np.zeros_like(corr)
    for _ in range(500):
        r = y - correction
        eigenvalues, vectors = np.linalg.eigh(r)
        x = (vectors * np.maximum(eigenvalues, _EIGEN_FLOOR)) @ vectors.T
        correction = x - r
        previous, y = y, x.copy()
        np.fill_diagonal(y, 1.0)
        if np.linalg.norm(y - previous) <= 1e-10 * np.linalg.norm(y):
            break
    eigenvalues, vectors = np.linalg.eigh((y + y.T) / 2)
    x = (vectors * np.maximum(eigenvalues, _EIGEN_FLOOR)) @ vectors.T
    scale = np.sqrt(np.diag(x))
    x = x / np.outer(scale, scale)
    x = (x + x.T) / 2
    np.fill_diagonal(x, 1.0)
    return x, True


# -- conditional draws -------------------------------------------------------------------


def _conditional_draw(
    corr: np.ndarray,
    known: list[int],
    free: list[int],
    values: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the ``free`` latents given the ``known`` ones (one row of values per draw)."""
    n = len(values)
    if not free:
        return np.empty((n, 0))
    cross = corr[np.ix_(free, known)]
    coef = np.linalg.solve(corr[np.ix_(known, known)], cross.T).T
    covariance = corr[np.ix_(free, free)] - coef @ cross.T
    chol = np.linalg.cholesky((covariance + covariance.T) / 2)
    return values @ coef.T + rng.standard_normal((n, len(free))) @ chol.T


def _truncated_normal(
    mean: float, sd: float, lower: float, upper: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Inverse-CDF draws from N(mean, sd^2) restricted to (lower, upper]."""
    a, b = (lower - mean) / sd, (upper - mean) / sd
    u = rng.random(n)
    if a > 0:  # upper tail: work with survival probabilities for accuracy
        hi, lo = ndtr(-a), ndtr(-b)
        z = -ndtri(lo + u * (hi - lo))
    else:
        lo, hi = ndtr(a), ndtr(b)
        z = ndtri(lo + u * (hi - lo))
    return mean + sd * np.clip(z, a, b)


# -- helpers -----------------------------------------------------------------------------


def _check_count(n_patients: int) -> int:
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise ValueError(f"n_patients must be an integer, got {n_patients!r}")
    if n_patients < 0:
        raise ValueError(f"n_patients must be non-negative, got {n_patients}")
    return int(n_patients)


def _batch_size(n: int, n_accepted: int, n_drawn: int) -> int:
    """Candidates to draw next when rejection sampling ``n`` rows."""
    if n_drawn == 0:
        return n
    if n_accepted == 0:
        return 10 * n
    return int((n - n_accepted) * n_drawn / n_accepted * 1.2) + 10


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like values
        return False


def _predicate_mask(predicate: Callable[[pd.DataFrame], Any], frame: pd.DataFrame) -> np.ndarray:
    result = predicate(frame)
    if isinstance(result, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        mask = pd.array(result, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    else:
        mask = np.asarray(result)
        if mask.dtype != bool:
            raise DataError(f"the predicate must return booleans, got dtype {mask.dtype}")
    if mask.shape != (len(frame),):
        raise DataError(
            f"the predicate must return one boolean per row ({len(frame)}), got shape {mask.shape}"
        )
    return mask


__all__ = ["GaussianCopula", "Z_GRID"]
