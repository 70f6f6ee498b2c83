"""Stratified bootstrap of an estimate: patients resampled with replacement within groups.

Each group (trial, external) keeps its size; the statistic re-estimates everything
(propensity model, weights, generator) in each resample, so that a percentile interval
carries the uncertainty of the estimated steps. Used by :mod:`analysis.external_control`
and :mod:`analysis.synthetic_control`.

References
----------
Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall
(percentile intervals, ch. 13).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from trials.exceptions import DataError, SimulationWarning

__all__ = ["BootstrapResult", "bootstrap"]


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(stats.norm.ppf((1 + level) / 2))


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap distribution of an estimate (log hazard ratio or difference).

    Attributes
    ----------
    estimates : ndarray
        One per successful resample.
    n_resamples : int
        Resamples drawn.
    n_failed : int
        Resamples where the estimate could not be computed (e.g. no overlap, no event);
        they are left out, which the interval's reader should know when it is not 0.
    level : float
    seed : object
        The seed given (recorded for reproducibility).
    """

    estimates: np.ndarray
    n_resamples: int
    n_failed: int
    level: float
    seed: object = None

    @property
    def se(self) -> float:
        return float(np.std(self.estimates, ddof=1))

    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of the estimates (on their scale)."""
        level = self.level if level is None else level
        _z(level)
        low, high = np.quantile(self.estimates, [(1 - level) / 2, (1 + level) / 2])
        return float(low), float(high)


def bootstrap(
    statistic: Callable[[pd.DataFrame, np.random.Generator], float],
    data: pd.DataFrame,
    groups: np.ndarray,
    *,
    n_resamples: int = 200,
    rng: int | np.random.Generator | None = 0,
    level: float = 0.95,
) -> BootstrapResult:
    """Stratified bootstrap: resample patients with replacement within each group.

    Parameters
    ----------
    statistic : callable
        ``statistic(resample, rng) -> float``; it re-estimates everything (propensity
        model, weights, generator). A :class:`~trials.exceptions.DataError` marks the
        resample as failed.
    data : DataFrame
        The patients (index is reset in each resample).
    groups : array of bool
        The strata (trial / external): each keeps its size.
    n_resamples : int, default 200
    rng : int or Generator
        Seed; resample ``b`` uses the ``b``-th child stream, so a seed gives one result.
    level : float, default 0.95

    Returns
    -------
    BootstrapResult

    Raises
    ------
    DataError
        If every resample fails.

    Warns
    -----
    SimulationWarning
        If more than 5 % of the resamples fail.
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    _z(level)
    seed = rng if isinstance(rng, int | None) else "Generator"
    generator = np.random.default_rng(rng)
    groups = np.asarray(groups, dtype=bool)
    strata = [np.flatnonzero(groups), np.flatnonzero(~groups)]
    estimates = []
    n_failed = 0
    for child in generator.spawn(n_resamples):
        rows = np.concatenate([child.choice(s, size=s.size, replace=True) for s in strata])
        resample = data.iloc[rows].reset_index(drop=True)
        try:
            value = statistic(resample, child)
        except DataError:
            n_failed += 1
            continue
        if not np.isfinite(value):
            n_failed += 1
            continue
        estimates.append(value)
    if not estimates:
        raise DataError(f"all {n_resamples} bootstrap resamples failed")
    if n_failed > 0.05 * n_resamples:
        warnings.warn(
            f"{n_failed} of {n_resamples} bootstrap resamples failed and were left out; "
            "the bootstrap interval may be too narrow",
            SimulationWarning,
            stacklevel=2,
        )
    return BootstrapResult(
        estimates=np.asarray(estimates),
        n_resamples=n_resamples,
        n_failed=n_failed,
        level=level,
        seed=seed,
    )
