"""Fidelity of a virtual cohort to real data: column shapes and pair trends.

The building blocks of the fidelity score of :func:`generators.validation.validate_cohort`,
as in SDMetrics' quality report: per column, ``1 - KS statistic`` (numeric) or
``1 - total variation distance`` (categorical); per pair of columns, the similarity of their
correlation (two numeric columns) or of their contingency tables.

References
----------
Patki, N., Wedge, R. and Veeramachaneni, K. (2016). The Synthetic Data Vault. IEEE DSAA.
(SDMetrics: ``KSComplement``, ``TVComplement``, ``CorrelationSimilarity``,
``ContingencySimilarity`` and the quality report.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["column_shape_score", "pair_trend_score", "total_variation_distance"]


def total_variation_distance(real: ArrayLike, virtual: ArrayLike) -> float:
    """Total variation distance of the empirical distributions of two categorical samples.

    ``TVD = 1/2 * sum_k |p_real(k) - p_virtual(k)|`` over the union of the categories.
    """
    codes, n_levels = _joint_codes(
        np.asarray(real, dtype=object), np.asarray(virtual, dtype=object)
    )
    return _tvd_codes(codes[0], codes[1], n_levels)


def column_shape_score(real: ArrayLike, virtual: ArrayLike, *, categorical: bool) -> float:
    """Similarity of one column's marginal distributions, in [0, 1].

    ``1 - D`` with ``D`` the two-sample Kolmogorov–Smirnov statistic for a numeric column
    (SDMetrics' ``KSComplement``), ``1 - TVD`` for a categorical one (``TVComplement``).
    """
    if categorical:
        return 1.0 - total_variation_distance(real, virtual)
    r = np.asarray(real, dtype=float)
    v = np.asarray(virtual, dtype=float)
    return 1.0 - float(stats.ks_2samp(r, v, method="asymp").statistic)


def pair_trend_score(
    real: pd.DataFrame,
    virtual: pd.DataFrame,
    columns: tuple[str, str],
    *,
    categorical: Sequence[str] = (),
) -> float:
    """Similarity of the relation of two columns, in [0, 1].

    Two numeric columns: ``1 - |r_real - r_virtual| / 2`` with Pearson's ``r``
    (SDMetrics' ``CorrelationSimilarity``; a constant column has ``r = 0``). Otherwise
    ``1 - TVD`` of the normalized two-way contingency tables (``ContingencySimilarity``),
    a numeric column first binned at the quintiles of ``real``.
    """
    a, b = columns
    numeric = [c not in categorical for c in columns]
    if all(numeric):
        diff = _pearson(real[a], real[b]) - _pearson(virtual[a], virtual[b])
        return 1.0 - abs(diff) / 2.0
    keys = []
    for col, is_num in zip(columns, numeric, strict=True):
        r, v = real[col].to_numpy(), virtual[col].to_numpy()
        if is_num:
            r, v = _quintile_bins(r, v)
        codes, n_levels = _joint_codes(r, v)
        keys.append((codes, n_levels))
    (ra, va), na = keys[0]
    (rb, vb), nb = keys[1]
    return 1.0 - _tvd_codes(ra * nb + rb, va * nb + vb, na * nb)


def _pearson(x: pd.Series, y: pd.Series) -> float:
    x = x.to_numpy(dtype=float) - x.to_numpy(dtype=float).mean()
    y = y.to_numpy(dtype=float) - y.to_numpy(dtype=float).mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 0 else 0.0


def _quintile_bins(real: np.ndarray, virtual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(real.astype(float), [0.2, 0.4, 0.6, 0.8]))
    return np.digitize(real.astype(float), edges), np.digitize(virtual.astype(float), edges)


def _joint_codes(real: np.ndarray, virtual: np.ndarray) -> tuple[tuple[np.ndarray, ...], int]:
    codes, levels = pd.factorize(np.concatenate([real, virtual]), sort=False)
    return (codes[: len(real)], codes[len(real) :]), len(levels)


def _tvd_codes(real: np.ndarray, virtual: np.ndarray, n_levels: int) -> float:
    p = np.bincount(real, minlength=n_levels) / len(real)
    q = np.bincount(virtual, minlength=n_levels) / len(virtual)
    return 0.5 * float(np.abs(p - q).sum())


def _fidelity(
    real: pd.DataFrame, virtual: pd.DataFrame, categorical: Sequence[str]
) -> tuple[dict[str, float], dict[tuple[str, str], float], float, float, float]:
    shapes = {
        c: column_shape_score(real[c], virtual[c], categorical=c in categorical)
        for c in real.columns
    }
    trends = {
        pair: pair_trend_score(real, virtual, pair, categorical=categorical)
        for pair in combinations(real.columns, 2)
    }
    shape = float(np.mean(list(shapes.values())))
    trend = float(np.mean(list(trends.values()))) if trends else math.nan
    overall = shape if not trends else (shape + trend) / 2.0
    return shapes, trends, shape, trend, overall

