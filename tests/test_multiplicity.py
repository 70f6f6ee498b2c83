"""Multiplicity adjustments against statsmodels and published Dunnett constants."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from analysis.multiplicity import dunnett_critical_value, holm_adjusted


def test_holm_equals_statsmodels(rng):
    p = rng.random((4, 50)) ** 3
    expected = np.array([multipletests(p[:, r], method="holm")[1] for r in range(50)]).T
    np.testing.assert_allclose(holm_adjusted(p), expected, rtol=1e-12)


# Dunnett's constants for infinite degrees of freedom and equal allocation (Dunnett 1955,
# Tables 1a and 2a; Hochberg & Tamhane 1987, Table 4): two decimals or three as printed.
@pytest.mark.parametrize(
    ("k", "alpha", "sided", "expected", "tol"),
    [
        (2, 0.05, 1, 1.916, 2e-3),
        (3, 0.05, 1, 2.062, 2e-3),
        (2, 0.05, 2, 2.212, 2e-3),
        (3, 0.05, 2, 2.349, 2e-3),
        (4, 0.05, 2, 2.442, 2e-3),
        (2, 0.01, 2, 2.794, 2e-3),
    ],
)
def test_dunnett_critical_values_match_the_tables(k, alpha, sided, expected, tol):
    assert dunnett_critical_value([1.0] * k, alpha, sided) == pytest.approx(expected, abs=tol)


def test_dunnett_with_one_comparison_is_the_normal_quantile():
    assert dunnett_critical_value([1.0], 0.025) == pytest.approx(1.959964, abs=1e-6)
