"""The marginal distributions of a Gaussian copula's columns, fitted to data.

Each column is a transform of one latent standard normal variable ``z``:

* a continuous column through its smoothed empirical quantile function
  ``x = Q(Phi(z))`` (Gaussian kernel, Silverman's bandwidth and variance correction),
  stored on the fixed grid of normal scores :data:`Z_GRID` (never the data rows);
* an integer column through its empirical quantile function smoothed on the latent
  (normal-score) scale — a kernel quantile estimator whose width is chosen by
  cross-validation of the ranked probability score — then rounded to the lattice of the
  observed values, so that ties, heaped values and point masses are kept;
* a categorical or binary column through thresholds at the normal quantiles of the
  cumulative category frequencies.

A marginal is a plain dict (JSON-serializable: it is saved with the generator). See
:class:`generators.copula.GaussianCopula` for the assumptions, and its module for the
references.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from trials.exceptions import DataError

#: Normal scores at which each continuous quantile function is stored (401 points,
#: probabilities from 2.9e-7 to 1 - 2.9e-7, densest in the centre in probability terms).
Z_GRID = np.linspace(-5.0, 5.0, 401)

#: Integer columns with at most this many distinct values are categorical by default.
MAX_DISCRETE_LEVELS = 10

CONTINUOUS = "continuous"
INTEGER = "integer"
CATEGORICAL = "categorical"

#: Candidate widths ``w`` of the latent kernel of integer columns (see GaussianCopula).
WINDOWS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

_N_X_GRID = 2049  # points at which the smoothed CDF is evaluated before inversion
_N_FOLDS = 10  # folds of the cross-validation choosing an integer column's window
_FOLD_SEED = 20_240_517  # fixed seed of those folds, so that fitting is deterministic
_MAX_LATTICE = 10_000  # cross-validation bins at most this many lattice points
_MERGE = 1 / 8  # values closer than this many kernel SDs (normal scores) are merged
_REACH = 8.5  # kernel standard deviations beyond which a Gaussian weight is 0 or 1
_CHUNK = 2_000_000  # elements per block when evaluating the kernel mixture



def is_numeric(column: pd.Series) -> bool:
    dtype = column.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def is_integer(column: pd.Series) -> bool:
    """Integer dtype, or floats whose observed values are all whole numbers."""
    if pd.api.types.is_integer_dtype(column.dtype):
        return True
    if pd.api.types.is_float_dtype(column.dtype):
        values = column.dropna().to_numpy(dtype=float)
        return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return False


def default_categorical(column: pd.Series) -> bool:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return True
    if is_numeric(column) and is_integer(column):
        return column.nunique(dropna=True) <= MAX_DISCRETE_LEVELS
    return False


def fit_categorical(name: str, observed: pd.Series) -> dict[str, Any]:
    dtype = observed.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = list(dtype.categories)
        ordered = bool(dtype.ordered)
    else:
        uniques = list(pd.unique(observed))
        try:
            categories = sorted(uniques)
        except TypeError:  # mixed types: order by text
            categories = sorted(uniques, key=str)
        ordered = False
    categories = [c.item() if isinstance(c, np.generic) else c for c in categories]
    bad = [c for c in categories if not isinstance(c, str | int | float | bool)]
    if bad:
        raise DataError(
            f"column {name!r}: categories must be strings, numbers or booleans, "
            f"got {type(bad[0]).__name__}"
        )
    codes = category_codes(observed, categories)
    probabilities = np.bincount(codes, minlength=len(categories)) / len(codes)
    return {
        "kind": CATEGORICAL,
        "categories": categories,
        "ordered": ordered,
        "probabilities": probabilities,
    }


def category_codes(observed: pd.Series, categories: list[Any]) -> np.ndarray:
    if isinstance(observed.dtype, pd.CategoricalDtype):
        return observed.cat.codes.to_numpy().astype(np.int64)
    index = pd.Index(categories, dtype=object)
    return index.get_indexer(pd.Index(observed.to_numpy(), dtype=object)).astype(np.int64)


def cuts(probabilities: np.ndarray) -> np.ndarray:
    """Latent thresholds between consecutive categories."""
    return ndtri(np.clip(np.cumsum(probabilities)[:-1], 0.0, 1.0))


def fit_continuous(values: np.ndarray, smoothing: float | None) -> dict[str, Any]:
    """The smoothed quantile function on :data:`Z_GRID` (see the class Notes)."""
    x = np.sort(values)
    n = len(x)
    if not np.all(np.isfinite(x)):
        raise DataError("continuous columns must hold finite numbers")
    sd = float(x.std())
    iqr = float(np.subtract(*np.quantile(x, [0.75, 0.25])))
    spread = min(sd, iqr / 1.349) if iqr > 0 else sd
    bandwidth = (1.0 if smoothing is None else smoothing) * 0.9 * spread * n ** (-0.2)
    margin = bandwidth if bandwidth > 0 else (x[-1] - x[0]) / (n - 1)
    lower, upper = x[0] - margin, x[-1] + margin
    if x[0] >= 0:
        lower = max(lower, 0.0)
    if bandwidth > 0:
        shrink = math.sqrt(1.0 + (bandwidth / sd) ** 2)
        mean = float(x.mean())
        centres = mean + (x - mean) / shrink
        grid = np.linspace(lower, upper, _N_X_GRID)
        cdf = _mixture_cdf(grid, centres, bandwidth / shrink)
        target = cdf[0] + ndtr(Z_GRID) * (cdf[-1] - cdf[0])
        quantiles = np.interp(target, cdf, grid)
    else:
        quantiles = _interpolated_order_statistics(x, lower, upper)
    return {
        "kind": CONTINUOUS,
        "quantiles": np.maximum.accumulate(quantiles),
        "bandwidth": float(bandwidth),
    }


def _interpolated_order_statistics(x: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Quantiles on :data:`Z_GRID` interpolating the sorted ``x`` at the plotting
    positions ``(i - 0.5) / n``, and ``lower`` and ``upper`` at probabilities 0 and 1."""
    n = len(x)
    positions = np.concatenate([[0.0], (np.arange(1, n + 1) - 0.5) / n, [1.0]])
    return np.interp(ndtr(Z_GRID), positions, np.concatenate([[lower], x, [upper]]))


def fit_integer(values: np.ndarray, smoothing: float | None) -> dict[str, Any]:
    """The latent-kernel quantile function of an integer column on :data:`Z_GRID`, its
    window and its lattice (see the class Notes)."""
    x = np.sort(values)
    levels, counts = np.unique(x, return_counts=True)
    step = _lattice_step(levels)
    if smoothing == 0:
        window = 0.0
        quantiles = _interpolated_order_statistics(x, x[0] - step / 2, x[-1] + step / 2)
    else:
        window = _choose_window(x, step) if smoothing is None else smoothing
        quantiles = latent_kernel_quantiles(levels, counts, window, Z_GRID)
    return {
        "kind": INTEGER,
        "quantiles": np.maximum.accumulate(quantiles),
        "window": float(window),
        "step": step,
        "min": float(x[0]),
        "max": float(x[-1]),
    }


def _lattice_step(levels: np.ndarray) -> float:
    """Greatest common divisor of the gaps between the sorted distinct whole numbers
    ``levels`` (1 for a single level, or for values too large to be exact integers)."""
    if len(levels) < 2 or np.abs(levels).max() >= 2.0**52:
        return 1.0
    return float(np.gcd.reduce(np.diff(levels).astype(np.int64)))


def latent_kernel_quantiles(
    levels: np.ndarray, counts: np.ndarray, window: float, z: np.ndarray
) -> np.ndarray:
    """``Q(z) = E Q_n(Phi(z + tau * e))``, ``tau = window / sqrt(n)``, at the normal
    scores ``z``, for the sample whose sorted distinct values ``levels`` were observed
    ``counts`` times.

    ``Q(z) = x_1 + sum_l (x_{l+1} - x_l) * Phi((z - b_l) / tau)`` with
    ``b_l = Phi^-1(F_n(x_l))``; only the thresholds within ``_REACH`` kernel standard
    deviations of ``z`` are evaluated (the others contribute 0 or the full gap). Values
    whose mid-rank normal scores fall in the same interval of ``_MERGE`` kernel standard
    deviations are first merged at their mean (an error of order ``_MERGE**2`` of their
    spread, and none in the mean), so that the cost does not grow with ``n``.
    """
    n = float(counts.sum())
    tau = window / math.sqrt(n)
    cumulative = np.cumsum(counts)
    cells = np.floor(ndtri((cumulative - counts / 2) / n) / (_MERGE * tau))
    starts = np.flatnonzero(np.r_[True, np.diff(cells) != 0])
    if len(starts) < len(levels):
        merged = np.add.reduceat(counts, starts)
        levels = np.add.reduceat(levels * counts, starts) / merged
        counts = merged
    bounds = ndtri(np.cumsum(counts)[:-1] / n)
    gaps = np.diff(levels).astype(float)
    centre = np.asarray(z, dtype=float)
    first = np.searchsorted(bounds, centre - _REACH * tau)
    last = np.searchsorted(bounds, centre + _REACH * tau)
    out = levels[first].astype(float)  # x_1 plus every gap whose threshold lies below
    width = int((last - first).max(initial=0))
    if width == 0:
        return out
    rows = max(1, _CHUNK // width)
    for start in range(0, len(centre), rows):
        block = slice(start, start + rows)
        index = first[block, None] + np.arange(width)
        inside = index < last[block, None]
        index = np.minimum(index, len(bounds) - 1)
        terms = gaps[index] * ndtr((centre[block, None] - bounds[index]) / tau)
        out[block] += np.where(inside, terms, 0.0).sum(axis=1)
    return out


def _choose_window(x: np.ndarray, step: float) -> float:
    """The latent kernel width in :data:`WINDOWS` minimising the cross-validated ranked
    probability score of the rounded values.

    With ``K`` folds, ``F_k`` the distribution function of the rounded values fitted
    without fold ``k`` and ``G_k`` the empirical distribution function of fold ``k``, both
    at the midpoints ``e_j`` between consecutive lattice points (in bins of at most
    ``_MAX_LATTICE`` points), the criterion ``sum_k sum_j [F_k(e_j)**2 - 2 F_k(e_j)
    G_k(e_j)]`` is the summed mean ranked probability score of the held-out values, less
    a constant.
    """
    n = len(x)
    n_folds = min(_N_FOLDS, n)
    folds = np.random.default_rng(_FOLD_SEED).permutation(n) % n_folds
    low = x[0]
    width = step * math.ceil((round((x[-1] - low) / step) + 1) / _MAX_LATTICE)
    n_bins = int((x[-1] - low + step / 2) // width) + 1
    edges = low - step / 2 + width * np.arange(1, n_bins)
    bins = ((x - low + step / 2) // width).astype(np.int64)
    scores = np.zeros(len(WINDOWS))
    for k in range(n_folds):
        levels, counts = np.unique(x[folds != k], return_counts=True)
        held = bins[folds == k]
        empirical = np.cumsum(np.bincount(held, minlength=n_bins))[:-1] / len(held)
        for i, window in enumerate(WINDOWS):
            q = np.maximum.accumulate(latent_kernel_quantiles(levels, counts, window, Z_GRID))
            cdf = np.where(
                edges < q[0], 0.0, np.where(edges >= q[-1], 1.0, ndtr(np.interp(edges, q, Z_GRID)))
            )
            scores[i] += cdf @ cdf - 2.0 * cdf @ empirical
    return WINDOWS[int(np.argmin(scores))]


def numeric_values(marginal: dict[str, Any], z: np.ndarray, z_grid: np.ndarray) -> np.ndarray:
    """The values of a continuous or integer column at the latent normal scores ``z``."""
    values = np.interp(z, z_grid, marginal["quantiles"])
    if marginal["kind"] == INTEGER:
        low = marginal["min"]
        step = marginal.get("step", 1.0)  # files written before the lattice was stored
        values = np.clip(low + step * np.rint((values - low) / step), low, marginal["max"])
    return values


def _mixture_cdf(grid: np.ndarray, centres: np.ndarray, scale: float) -> np.ndarray:
    """CDF of the equal-weight normal mixture at the equally spaced ``grid``.

    The centres lie within the grid. They are linearly binned onto it and the CDF is a
    discrete convolution (error of order ``(spacing / scale)**2 / 30``, below 1e-4 when
    the spacing is under a tenth of the scale); otherwise the sum is evaluated directly.
    """
    m = len(grid)
    spacing = grid[1] - grid[0]
    if spacing > scale / 10:
        total = np.zeros(m)
        step = max(1, _CHUNK // m)
        for start in range(0, len(centres), step):
            block = centres[start : start + step]
            total += ndtr((grid[:, None] - block[None, :]) / scale).sum(axis=1)
        return total / len(centres)
    position = np.clip((centres - grid[0]) / spacing, 0.0, m - 1.0)
    left = np.minimum(np.floor(position).astype(np.int64), m - 2)
    fraction = position - left
    weights = np.bincount(left, 1.0 - fraction, minlength=m) + np.bincount(
        left + 1, fraction, minlength=m
    )
    kernel = ndtr(np.arange(-(m - 1), m) * (spacing / scale))
    return np.convolve(weights, kernel)[m - 1 : 2 * m - 1] / len(centres)


def categorical_output(marginal: dict[str, Any], codes: np.ndarray) -> Any:
    categories = marginal["categories"]
    if marginal["dtype"] == "category":
        dtype = pd.CategoricalDtype(categories, ordered=marginal["ordered"])
        return pd.Categorical.from_codes(codes, dtype=dtype)
    values = np.empty(len(codes), dtype=object)
    observed = codes >= 0
    values[observed] = np.asarray(categories, dtype=object)[codes[observed]]
    values[~observed] = np.nan
    return pd.Series(values, dtype=object).astype(marginal["dtype"])
