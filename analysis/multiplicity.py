"""Multiplicity adjustment across experimental arms sharing a control.

- Bonferroni: each of ``k`` comparisons at ``alpha / k``.
- Holm (1979): step-down Bonferroni; the adjusted p-value of the ``j``-th smallest of
  ``k`` p-values is ``max_{i <= j} (k - i + 1) p_(i)``, capped at 1.
- Dunnett (1955), single step: comparison ``j`` succeeds when its z statistic exceeds
  the critical value ``c`` with ``P(max_j Z_j <= c) = 1 - alpha`` under the joint normal
  distribution of the comparisons, whose correlation through the shared control is
  ``sqrt(r_j r_l / ((1 + r_j)(1 + r_l)))`` with ``r_j = n_j / n_control``. Applied to z
  statistics (a normal approximation for t-tests: "Dunnett-type").

All work on arrays of shape ``(k, R)``: comparisons × replicates.

References
----------
Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scand J Stat*
6, 65–70.
Dunnett, C. W. (1955). A multiple comparison procedure for comparing several treatments
with a control. *JASA* 50, 1096–1121.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

from trials.exceptions import DesignError


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values, same shape ``(k, R)``."""
    p = np.asarray(p_values, dtype=float)
    k = p.shape[0]
    order = np.argsort(p, axis=0, kind="stable")
    ranked = np.take_along_axis(p, order, axis=0) * (k - np.arange(k))[:, None]
    ranked = np.minimum(np.maximum.accumulate(ranked, axis=0), 1.0)
    adjusted = np.empty_like(ranked)
    np.put_along_axis(adjusted, order, ranked, axis=0)
    return adjusted


def dunnett_correlation(allocation_ratios: Sequence[float]) -> np.ndarray:
    """Correlation of the comparisons with a shared control; ``r_j = n_j / n_control``."""
    r = np.asarray(allocation_ratios, dtype=float)
    share = np.sqrt(r / (1 + r))
    corr = np.outer(share, share)
    np.fill_diagonal(corr, 1.0)
    return corr


def dunnett_critical_value(
    allocation_ratios: Sequence[float], alpha: float = 0.025, sided: int = 1
) -> float:
    """Single-step Dunnett critical value for ``k`` comparisons with a shared control."""
    if not 0 < alpha < 1:
        raise DesignError(f"alpha must lie in (0, 1), got {alpha}")
    corr = dunnett_correlation(allocation_ratios)
    k = corr.shape[0]
    # a fixed generator for the quasi-Monte Carlo integration: reproducible, no global state
    mvn = stats.multivariate_normal(mean=np.zeros(k), cov=corr, seed=np.random.default_rng(0))

    def excess(c: float) -> float:
        if sided == 1:
            inside = mvn.cdf(np.full(k, c), lower_limit=np.full(k, -np.inf))
        else:
            inside = mvn.cdf(np.full(k, c), lower_limit=np.full(k, -c))
        return (1 - inside) - alpha

    upper = stats.norm.isf(alpha / (k * sided))  # Bonferroni is conservative
    lower = stats.norm.isf(alpha / sided)
    if k == 1:
        return float(lower)
    return float(optimize.brentq(excess, lower - 1e-9, upper + 1e-9, xtol=1e-10))
