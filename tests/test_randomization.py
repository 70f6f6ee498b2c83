"""Randomization schemes: the defining property of each, checked on many sequences."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy import stats

from trials.protocol import (
    BlockRandomization,
    MinimizationRandomization,
    SimpleRandomization,
    StratifiedBlockRandomization,
)
from trials.randomization import arrangements, assign, n_uniforms


def run(scheme, weights, n, rng, n_rep=2000, **kwargs):
    u = rng.random((n_rep, n_uniforms(scheme, n, kwargs.get("n_strata", 1))))
    return assign(scheme, np.array(weights), u, n, **kwargs)


def test_arrangements_are_all_distinct_orderings():
    assert arrangements(4, (1, 1)).shape == (comb(4, 2), 4)
    assert arrangements(6, (1, 2)).shape == (comb(6, 2), 6)
    table = arrangements(6, (1, 1, 1))
    assert table.shape == (90, 6)
    assert all(np.bincount(row, minlength=3).tolist() == [2, 2, 2] for row in table)


def test_simple_randomization_follows_the_allocation(rng):
    arms = run(SimpleRandomization(method="simple"), [1, 2], 300, rng)
    share = (arms == 1).mean()
    assert abs(share - 2 / 3) < 4 * np.sqrt(2 / 9 / arms.size)


@pytest.mark.parametrize(
    ("sizes", "weights"), [([4], [1, 1]), ([3, 6], [1, 2]), ([2, 4, 6], [1, 1])]
)
def test_permuted_blocks_balance_at_every_block_end(rng, sizes, weights):
    scheme = BlockRandomization(method="blocks", block_sizes=sizes)
    arms = run(scheme, weights, 60, rng)
    total = sum(weights)
    counts = np.cumsum(arms == 1, axis=1)
    # imbalance is bounded by the largest block; at multiples of the largest common
    # block end (not known per sequence) we check the bound instead
    expected = np.arange(1, 61) * weights[1] / total
    assert np.abs(counts - expected).max() <= max(sizes) * weights[1] / total
    if len(sizes) == 1:
        ends = np.arange(sizes[0], 61, sizes[0]) - 1
        np.testing.assert_array_equal(
            counts[:, ends], np.broadcast_to(expected[ends], (2000, len(ends)))
        )


def test_fixed_blocks_are_uniform_over_arrangements(rng):
    scheme = BlockRandomization(method="blocks", block_sizes=[4])
    arms = run(scheme, [1, 1], 4, rng, n_rep=6000)
    codes = arms @ (2 ** np.arange(4))
    observed = np.bincount(codes, minlength=16)[observed_codes := np.unique(codes)]
    assert len(observed_codes) == 6
    assert stats.chisquare(observed).pvalue > 0.001


def test_stratified_blocks_balance_within_each_stratum(rng):
    scheme = StratifiedBlockRandomization(method="stratified_blocks", block_sizes=[4], strata=["s"])
    strata = rng.integers(0, 3, (500, 80))
    u = rng.random((500, n_uniforms(scheme, 80, 3)))
    arms = assign(scheme, np.array([1, 1]), u, 80, strata=strata, n_strata=3)
    for s in range(3):
        in_stratum = strata == s
        n1 = ((arms == 1) & in_stratum).sum(axis=1)
        n0 = ((arms == 0) & in_stratum).sum(axis=1)
        assert np.abs(n1 - n0).max() <= 2  # at most half a block of 4 open per stratum


def test_minimization_balances_factor_margins_better_than_simple(rng):
    factor = rng.integers(0, 4, (300, 100))
    scheme = MinimizationRandomization(method="minimization", factors=["f"], p_best=0.9)
    u = rng.random((300, n_uniforms(scheme, 100)))
    arms = assign(scheme, np.array([1, 1]), u, 100, factors=[(factor, 4)])
    simple = (rng.random((300, 100)) < 0.5).astype(int)

    def worst_margin(a):
        return max(
            np.abs(
                ((a == 1) & (factor == level)).sum(1) - ((a == 0) & (factor == level)).sum(1)
            ).mean()
            for level in range(4)
        )

    assert worst_margin(arms) < 0.4 * worst_margin(simple)
    # deterministic minimization (p_best = 1) keeps every margin within 1 after each level
    scheme = MinimizationRandomization(method="minimization", factors=["f"], p_best=1.0)
    arms = assign(scheme, np.array([1, 1]), u, 100, factors=[(factor, 4)])
    for level in range(4):
        diff = ((arms == 1) & (factor == level)).sum(1) - ((arms == 0) & (factor == level)).sum(1)
        assert np.abs(diff).max() <= 1


def test_minimization_respects_unequal_allocation(rng):
    factor = rng.integers(0, 2, (400, 90))
    scheme = MinimizationRandomization(method="minimization", factors=["f"])
    u = rng.random((400, n_uniforms(scheme, 90)))
    arms = assign(scheme, np.array([1.0, 2.0]), u, 90, factors=[(factor, 2)])
    assert abs((arms == 1).mean() - 2 / 3) < 0.02
