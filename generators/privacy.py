"""Privacy of a virtual cohort: distances of virtual rows to real patients, and the filter
that drops virtual rows too close to one.

Rows are points (numeric columns on their robust scale, categorical ones one-hot); the
distance to closest record (DCR) and the nearest-neighbour distance ratio (NNDR) of virtual
rows against the real training rows are compared with those of the real holdout, and a
distance-based membership-inference attack tells training from holdout rows
(:func:`generators.validation.validate_cohort` reports them). :func:`similarity_filter` drops
virtual rows closer to a real patient than new real patients usually are.

References
----------
Stadler, T., Oprisanu, B. and Troncoso, C. (2022). Synthetic data — anonymisation
groundhog day. USENIX Security.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from generators.holdout import RNG, _categorical_columns, _check_frames, _split_rows
from trials.exceptions import DataError

__all__ = ["CLOSE_QUANTILE", "similarity_filter"]

#: Quantile of the holdout-to-training distances below which a virtual row counts as close.
CLOSE_QUANTILE = 0.05


@dataclass(frozen=True)
class _Encoding:
    """Rows as points: numeric columns centred at the median and divided by the robust
    scale of the reference rows; categorical columns one-hot divided by ``sqrt(2)``, so that
    a mismatch adds 1 to the squared Euclidean distance, as one robust standard deviation of
    a numeric column does (a Gower-like mismatch)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    centre: np.ndarray
    scale: np.ndarray
    levels: tuple[pd.Index, ...]

    @classmethod
    def fit(
        cls, reference: pd.DataFrame, others: Sequence[pd.DataFrame], categorical: Sequence[str]
    ) -> _Encoding:
        numeric = tuple(c for c in reference.columns if c not in categorical)
        cat = tuple(c for c in reference.columns if c in categorical)
        x = reference[list(numeric)].to_numpy(dtype=float)
        centre = np.median(x, axis=0) if numeric else np.zeros(0)
        scale = np.array([_robust_scale(x[:, j]) for j in range(len(numeric))])
        levels = tuple(
            pd.Index(pd.unique(pd.concat([reference[c], *(o[c] for o in others)]).astype(object)))
            for c in cat
        )
        return cls(numeric, cat, centre, scale, levels)

    def transform(self, data: pd.DataFrame) -> np.ndarray:
        parts = [(data[list(self.numeric)].to_numpy(dtype=float) - self.centre) / self.scale]
        for col, levels in zip(self.categorical, self.levels, strict=True):
            codes = levels.get_indexer(data[col].astype(object))
            if (codes < 0).any():
                raise DataError(f"column {col!r} has a level not seen when encoding")
            parts.append(np.eye(len(levels))[codes] / math.sqrt(2.0))
        return np.hstack(parts)


def _robust_scale(x: np.ndarray) -> float:
    """Normal-consistent interquartile range ``IQR / 1.349``; the standard deviation where
    the IQR is 0, and 1 where the column is constant."""
    q1, q3 = np.quantile(x, [0.25, 0.75])
    for scale in ((q3 - q1) / 1.3489795, float(np.std(x))):
        if scale > 0:
            return float(scale)
    return 1.0


def _nearest(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(reference))
    distances, _ = NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(query)
    return distances


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Nearest over second-nearest distance; 1 where both are 0 (duplicated records)."""
    if distances.shape[1] < 2:
        return np.full(len(distances), math.nan)
    d1, d2 = distances[:, 0], distances[:, 1]
    return np.divide(d1, d2, out=np.ones_like(d1), where=d2 > 0)


def _membership_auc(x_train: np.ndarray, x_holdout: np.ndarray, x_virtual: np.ndarray):
    """AUC of ``-distance to the nearest virtual row`` for training (members) vs holdout."""
    from sklearn.metrics import roc_auc_score

    d_train = _nearest(x_virtual, x_train, 1)[:, 0]
    d_holdout = _nearest(x_virtual, x_holdout, 1)[:, 0]
    labels = np.r_[np.ones(len(d_train)), np.zeros(len(d_holdout))]
    return float(roc_auc_score(labels, -np.concatenate([d_train, d_holdout])))


def similarity_filter(
    real: pd.DataFrame,
    virtual: pd.DataFrame,
    threshold: float | None = None,
    *,
    categorical: Sequence[str] | None = None,
    holdout_fraction: float = 0.3,
    rng: RNG = 0,
) -> tuple[pd.DataFrame, int]:
    """Drop virtual rows closer to a real patient than new real patients usually are.

    Parameters
    ----------
    real, virtual : DataFrame
        With the same columns.
    threshold : float, optional
        Distance (as in :func:`~generators.validation.validate_cohort`) below which a
        virtual row is dropped. By default ``CLOSE_QUANTILE`` (5th percentile) of the
        distances of the real holdout to the real training rows, i.e.
        ``validate_cohort(...).dcr_threshold`` for the same ``holdout_fraction`` and integer
        ``rng``, and exact copies of a real row are dropped too (on data with many ties
        that percentile can be 0). A given threshold drops the rows strictly closer, so
        ``threshold=0`` drops nothing and a tiny positive value drops exact copies only.
    categorical, holdout_fraction, rng
        As in :func:`~generators.validation.validate_cohort`.

    Returns
    -------
    filtered : DataFrame
        The virtual rows kept, in their order, with their index.
    n_dropped : int
        How many rows were dropped.

    Notes
    -----
    Distances are measured to *all* real rows, on the scale of the real training rows.
    """
    _check_frames(real, virtual, {})
    cat = _categorical_columns(real, categorical, None, None)
    training_rows, holdout_rows = _split_rows(
        len(real), holdout_fraction, np.random.default_rng(rng)
    )
    training, held = real.iloc[training_rows], real.iloc[holdout_rows]
    encoding = _Encoding.fit(training, [virtual[list(real.columns)], held], cat)
    copies = threshold is None  # by default exact copies go too, even at a 0 threshold
    if threshold is None:
        d = _nearest(encoding.transform(training), encoding.transform(held), 1)[:, 0]
        threshold = float(np.quantile(d, CLOSE_QUANTILE))
    elif not threshold >= 0:
        raise ValueError(f"threshold must be a non-negative distance; got {threshold!r}")
    dcr = _nearest(encoding.transform(real), encoding.transform(virtual[list(real.columns)]), 1)[
        :, 0
    ]
    keep = dcr >= threshold
    if copies:
        keep &= dcr > 0
    return virtual.loc[keep], int((~keep).sum())
