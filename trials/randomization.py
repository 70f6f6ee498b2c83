"""Treatment assignment for many simulated trials at once.

Every scheme works on arrays of shape ``(R, N)`` (replicates × patients in order of
randomization) and takes its randomness as uniform draws laid out by
:func:`n_uniforms`, so that a replicate's assignment depends on its own stream only.

Permuted blocks draw, for each block, its size (uniformly among ``block_sizes``) and one
arrangement of the block's arms, uniformly among all distinct arrangements; this is the
same distribution as a random permutation of the block and needs no sorting.

References
----------
Rosenberger, W. F. and Lachin, J. M. (2016). *Randomization in Clinical Trials*, 2nd ed.
Wiley. Chapters 3 and 9.
Pocock, S. J. and Simon, R. (1975). Sequential treatment assignment with balancing for
prognostic factors in the controlled clinical trial. *Biometrics* 31, 103–115.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import permutations

import numpy as np
from array_api_compat import device

from trials.arrays import like, namespace
from trials.protocol import (
    BlockRandomization,
    MinimizationRandomization,
    Randomization,
    SimpleRandomization,
    StratifiedBlockRandomization,
)


def n_uniforms(scheme: Randomization, n_patients: int, n_strata: int = 1) -> int:
    """How many uniforms per replicate ``assign`` consumes."""
    if isinstance(scheme, SimpleRandomization):
        return n_patients
    if isinstance(scheme, MinimizationRandomization):
        return 2 * n_patients
    n_blocks = _n_blocks(scheme, n_patients)
    sequences = n_strata if isinstance(scheme, StratifiedBlockRandomization) else 1
    return 2 * n_blocks * sequences


def assign(
    scheme: Randomization,
    weights: np.ndarray,
    uniforms: np.ndarray,
    n_patients: int,
    strata: np.ndarray | None = None,
    n_strata: int = 1,
    factors: list[tuple[np.ndarray, int]] | None = None,
) -> np.ndarray:
    """Arm indexes, shape ``(R, n_patients)``.

    Parameters
    ----------
    scheme : protocol randomization
    weights : ndarray
        Allocation of each arm (integers for blocks).
    uniforms : ndarray
        ``(R, n_uniforms(scheme, n_patients, n_strata))`` uniform draws.
    strata : ndarray, optional
        ``(R, n_patients)`` stratum codes for stratified blocks.
    factors : list of (codes, n_levels), optional
        The minimization factors, each ``(R, n_patients)`` integer codes.
    """
    weights = np.asarray(weights, dtype=float)
    if isinstance(scheme, SimpleRandomization):
        xp = namespace(uniforms)
        cumulative = like(np.cumsum(weights / weights.sum()), uniforms)
        return xp.minimum(xp.searchsorted(cumulative, uniforms, side="right"), len(weights) - 1)
    if isinstance(scheme, MinimizationRandomization):
        return _minimization(scheme, weights, uniforms, n_patients, factors or [])
    n_blocks = _n_blocks(scheme, n_patients)
    if isinstance(scheme, BlockRandomization):
        return _block_sequence(scheme, weights, uniforms, n_blocks, n_patients)
    return _stratified(scheme, weights, uniforms, n_blocks, n_patients, strata, n_strata)


def _n_blocks(scheme, n_patients: int) -> int:
    return -(-n_patients // min(scheme.block_sizes))


@lru_cache(maxsize=64)
def arrangements(block_size: int, weights: tuple[int, ...]) -> np.ndarray:
    """All distinct orderings of a block, shape ``(n_arrangements, block_size)``."""
    total = sum(weights)
    pattern = np.repeat(np.arange(len(weights)), [w * block_size // total for w in weights])
    if len(pattern) <= 12:
        distinct = sorted(set(permutations(pattern.tolist())))
        return np.array(distinct, dtype=np.int8 if len(weights) < 127 else np.int64)
    raise ValueError(f"block size {block_size} is too large (at most 12)")


def _block_sequence(scheme, weights, uniforms, n_blocks, n_patients):
    """Concatenated permuted blocks, the first ``n_patients`` positions (numpy arrays or
    torch tensors)."""
    xp = namespace(uniforms)
    n_rep = uniforms.shape[0]
    sizes = np.array(scheme.block_sizes)
    int_weights = tuple(int(round(w)) for w in weights)
    u_size, u_order = uniforms[:, :n_blocks], uniforms[:, n_blocks : 2 * n_blocks]

    def pick(size):
        table = arrangements(int(size), int_weights)
        return like(table.astype(np.int64), uniforms), xp.astype(u_order * len(table), xp.int64)

    if len(sizes) == 1:
        table, chosen = pick(sizes[0])
        return xp.reshape(table[chosen], (n_rep, -1))[:, :n_patients]
    width = int(sizes.max())
    choice = xp.astype(u_size * len(sizes), xp.int64)
    where = {"dtype": xp.int64, "device": device(uniforms)}
    slots = xp.full((n_rep, n_blocks, width), -1, **where)
    for k, size in enumerate(sizes):
        table, chosen = pick(size)
        here = choice == k
        slots[here, :size] = table[chosen[here]]
    slots = xp.reshape(slots, (n_rep, -1))
    valid = slots >= 0
    position = xp.cumulative_sum(xp.astype(valid, xp.int64), axis=1) - 1
    keep = valid & (position < n_patients)
    out = xp.empty((n_rep, n_patients), **where)
    rows = xp.broadcast_to(xp.arange(n_rep, **where)[:, None], slots.shape)
    out[rows[keep], position[keep]] = slots[keep]
    return out


def _stratified(scheme, weights, uniforms, n_blocks, n_patients, strata, n_strata):
    xp = namespace(uniforms)
    n_rep = uniforms.shape[0]
    per_stratum = xp.reshape(uniforms, (n_rep, n_strata, 2 * n_blocks))
    sequences = xp.stack(
        [
            _block_sequence(scheme, weights, per_stratum[:, s], n_blocks, n_patients)
            for s in range(n_strata)
        ],
        axis=1,
    )
    onehot = strata[..., None] == xp.arange(n_strata, device=device(strata))
    counts = xp.cumulative_sum(xp.astype(onehot, xp.int64), axis=1) - 1
    rank = xp.reshape(counts[onehot], (n_rep, n_patients))
    flat = xp.reshape(sequences, (n_rep, -1))
    return xp.take_along_axis(flat, strata * n_patients + rank, axis=1)


def _minimization(scheme, weights, uniforms, n_patients, factors) -> np.ndarray:
    """Pocock–Simon minimization with the range of allocation-weighted counts."""
    n_rep = uniforms.shape[0]
    n_arms = len(weights)
    prob = weights / weights.sum()
    counts = [np.zeros((n_rep, n_levels, n_arms)) for _, n_levels in factors]
    arms = np.empty((n_rep, n_patients), dtype=np.int64)
    rows = np.arange(n_rep)
    eye = np.eye(n_arms)
    u_coin, u_pick = uniforms[:, :n_patients], uniforms[:, n_patients:]
    for i in range(n_patients):
        imbalance = np.zeros((n_rep, n_arms))
        for (codes, _), count in zip(factors, counts, strict=True):
            current = count[rows, codes[:, i]]  # (R, arms)
            trial = (current[:, None, :] + eye[None]) / weights  # (R, candidate, arms)
            imbalance += trial.max(axis=2) - trial.min(axis=2)
        best = imbalance <= imbalance.min(axis=1, keepdims=True) + 1e-12
        # among the best arms, choose with the allocation probabilities
        best_prob = np.where(best, prob, 0.0)
        best_arm = _pick(best_prob, u_pick[:, i])
        other_prob = np.where(best, 0.0, prob)
        has_other = other_prob.sum(axis=1) > 0
        other_arm = _pick(np.where(has_other[:, None], other_prob, prob), u_pick[:, i])
        take_best = (u_coin[:, i] < scheme.p_best) | ~has_other
        arm = np.where(take_best, best_arm, other_arm)
        arms[:, i] = arm
        for (codes, _), count in zip(factors, counts, strict=True):
            count[rows, codes[:, i], arm] += 1
    return arms


def _pick(probabilities: np.ndarray, u: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    return np.minimum((cumulative <= u[:, None]).sum(axis=1), probabilities.shape[1] - 1)
