"""Validation of a virtual (generated) cohort against the real data it imitates.

Four questions, each answered against a reference computed on the real data alone:

* **Fidelity** — do the marginals and the pairwise relations match? Column shapes and pair
  trends as in SDMetrics' quality report, Kaplan–Meier curves and the hazard ratio of
  virtual versus real patients when the data hold a survival endpoint. Reference: the same
  score for a real holdout against the real training rows.
* **Detection** — can a classifier tell virtual from real rows? Cross-validated ROC AUC of
  a logistic regression and of gradient boosting (a classifier two-sample test); 0.5 means
  indistinguishable.
* **Privacy** — are virtual rows closer to real patients than new real patients would be?
  Distance to closest record (DCR) and nearest-neighbour distance ratio (NNDR) against the
  real training rows, compared with the real holdout; a distance-based membership-inference
  attack.
* **Utility** — does a model trained on virtual patients predict real holdout patients as
  well as one trained on real training patients (train on synthetic, test on real)?

The holdout and privacy comparisons are meaningful only if the generator never saw the
holdout rows: fit the generator on the first part of :func:`split_holdout` (same
``holdout_fraction`` and ``rng``), or pass the rows it did not see as ``holdout``.

References
----------
Patki, N., Wedge, R. and Veeramachaneni, K. (2016). The Synthetic Data Vault. IEEE DSAA.
(SDMetrics: ``KSComplement``, ``TVComplement``, ``CorrelationSimilarity``,
``ContingencySimilarity`` and the quality report.)
Lopez-Paz, D. and Oquab, M. (2017). Revisiting classifier two-sample tests. ICLR.
Norcliffe, A., Cebere, B., Imrie, F., Lio, P. and van der Schaar, M. (2023). SurvivalGAN:
generating time-to-event data for survival analysis. AISTATS.
Stadler, T., Oprisanu, B. and Troncoso, C. (2022). Synthetic data — anonymisation
groundhog day. USENIX Security.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from trials.exceptions import ConvergenceWarning, DataError, InsilicoWarning

__all__ = [
    "CohortValidation",
    "UtilityComparison",
    "column_shape_score",
    "pair_trend_score",
    "similarity_filter",
    "split_holdout",
    "total_variation_distance",
    "validate_cohort",
]

#: Quantile of the holdout-to-training distances below which a virtual row counts as close.
CLOSE_QUANTILE = 0.05
#: Folds of the detection cross-validation (fewer when a class has fewer rows).
N_FOLDS = 5
#: Ridge penalty of the Cox models of the utility comparison.
COX_PENALIZER = 0.01
CLASSIFIERS = ("logistic", "gradient_boosting")
SURVIVAL_FIELDS = (
    "km_max_difference",
    "km_integrated_difference",
    "km_follow_up",
    "hazard_ratio",
    "hazard_ratio_lower",
    "hazard_ratio_upper",
)

RNG = int | np.random.Generator | None


# -- result objects -----------------------------------------------------------------------


@dataclass(frozen=True)
class UtilityComparison:
    """Train-on-virtual versus train-on-real performance on the real holdout.

    Attributes
    ----------
    metric : str
        ``"c_index"`` (Cox model of the survival endpoint, Harrell's C) or ``"roc_auc"``
        (logistic regression of a binary outcome).
    trained_on_virtual : float
        The metric on the real holdout of the model fitted to the virtual cohort.
    trained_on_real : float
        The metric on the real holdout of the model fitted to the real training rows.
    """

    metric: str
    trained_on_virtual: float
    trained_on_real: float

    @property
    def ratio(self) -> float:
        """``trained_on_virtual / trained_on_real`` (1 means no loss of utility)."""
        if not self.trained_on_real:
            return math.nan
        return self.trained_on_virtual / self.trained_on_real


@dataclass(frozen=True)
class CohortValidation:
    """Result of :func:`validate_cohort`.

    Scores are floats; ``nan`` where a quantity could not be computed (the reason is in
    ``notes``), ``None`` where it does not apply (no survival endpoint).

    Attributes
    ----------
    n_real, n_virtual, n_training, n_holdout : int
        Rows of the real data, of the virtual cohort, and of the real training / holdout
        parts.
    categorical : tuple of str
        The columns treated as categorical.
    column_shapes : dict of str to float
        Per column, ``1 - KS statistic`` (numeric) or ``1 - total variation distance``
        (categorical) of virtual against real training rows.
    pair_trends : dict of (str, str) to float
        Per pair of columns, ``1 - |r_real - r_virtual| / 2`` (two numeric columns, Pearson
        ``r``) or ``1 - TVD`` of the normalized contingency tables (otherwise; a numeric
        column binned at the quintiles of the real training rows).
    column_shape_score, pair_trend_score, fidelity_score : float
        Mean column shape, mean pair trend, and their mean (in [0, 1]; 1 is identical).
    reference_column_shape_score, reference_pair_trend_score, reference_fidelity_score : float
        The same for the real holdout against the real training rows.
    km_max_difference, km_integrated_difference : float or None
        ``sup |S_real(t) - S_virtual(t)|`` and ``integral |S_real - S_virtual| dt`` of the
        Kaplan–Meier curves over the common follow-up ``[0, km_follow_up]``.
    km_follow_up : float or None
        The common follow-up: the smaller of the two largest observed times.
    hazard_ratio, hazard_ratio_lower, hazard_ratio_upper : float or None
        Cox hazard ratio of virtual versus real patients and its 95% Wald interval.
    detection_auc, detection_auc_se : dict of str to float
        Per classifier (``"logistic"``, ``"gradient_boosting"``), mean cross-validated ROC AUC
        of real versus virtual rows and its standard error (fold standard deviation over
        ``sqrt(n_folds)``).
    n_folds : int
        Folds of the detection cross-validation.
    dcr_threshold : float
        The 5th percentile of the holdout-to-training distances.
    dcr_virtual_median, dcr_holdout_median : float
        Median distance to the closest real training row, of virtual and of holdout rows.
    share_close_virtual, share_close_holdout : float
        Share of virtual / holdout rows closer to a training row than ``dcr_threshold``
        (the holdout share is at most 0.05 by construction).
    n_exact_copies : int
        Virtual rows identical to a real training row (DCR 0).
    nndr_virtual_median, nndr_holdout_median : float
        Median nearest-neighbour distance ratio (nearest / second nearest training row).
    membership_auc : float
        ROC AUC of the distance attack telling training from holdout rows by their
        distance to the nearest virtual row (0.5: no leak; 1: the cohort copies training).
    utility : tuple of UtilityComparison
        One entry per available task (survival endpoint, binary outcome).
    notes : tuple of str
        Quantities that could not be computed and why (each was also warned).
    dcr : ndarray
        Per virtual row, its distance to the closest real training row.
    training_rows : ndarray of int
        Positions in ``real`` of the training rows (the others are the holdout).
    """

    n_real: int
    n_virtual: int
    n_training: int
    n_holdout: int
    categorical: tuple[str, ...]
    column_shapes: dict[str, float]
    pair_trends: dict[tuple[str, str], float]
    column_shape_score: float
    pair_trend_score: float
    fidelity_score: float
    reference_column_shape_score: float
    reference_pair_trend_score: float
    reference_fidelity_score: float
    km_max_difference: float | None
    km_integrated_difference: float | None
    km_follow_up: float | None
    hazard_ratio: float | None
    hazard_ratio_lower: float | None
    hazard_ratio_upper: float | None
    detection_auc: dict[str, float]
    detection_auc_se: dict[str, float]
    n_folds: int
    dcr_threshold: float
    dcr_virtual_median: float
    dcr_holdout_median: float
    share_close_virtual: float
    share_close_holdout: float
    n_exact_copies: int
    nndr_virtual_median: float
    nndr_holdout_median: float
    membership_auc: float
    utility: tuple[UtilityComparison, ...]
    notes: tuple[str, ...]
    dcr: np.ndarray = field(repr=False, compare=False)
    training_rows: np.ndarray = field(repr=False, compare=False)

    @property
    def fidelity_at_least_holdout(self) -> bool:
        """Whether the overall fidelity is at least that of the real holdout."""
        return bool(self.fidelity_score >= self.reference_fidelity_score)

    def summary(self) -> pd.DataFrame:
        """One row per metric: its value and the reference it is judged against.

        ``reference`` is the holdout-versus-training value (``reference_kind`` ``"holdout"``),
        the value of indistinguishable data (``"ideal"``) or the train-on-real value
        (``"trained on real"``).
        """
        h, i, r = "holdout", "ideal", "trained on real"
        rows: list[tuple] = [
            ("fidelity", name, getattr(self, name), getattr(self, f"reference_{name}"), h)
            for name in ("column_shape_score", "pair_trend_score", "fidelity_score")
        ]
        if self.km_max_difference is not None:
            rows += [
                ("survival", "km_max_difference", self.km_max_difference, 0.0, i),
                ("survival", "km_integrated_difference", self.km_integrated_difference, 0.0, i),
                ("survival", "hazard_ratio", self.hazard_ratio, 1.0, i),
                ("survival", "hazard_ratio lower 95%", self.hazard_ratio_lower, None, ""),
                ("survival", "hazard_ratio upper 95%", self.hazard_ratio_upper, None, ""),
            ]
        rows += [("detection", f"auc {c}", self.detection_auc[c], 0.5, i) for c in CLASSIFIERS]
        rows += [
            ("privacy", f"{name}_median", getattr(self, f"{name}_virtual_median"),
             getattr(self, f"{name}_holdout_median"), h)
            for name in ("dcr", "nndr")
        ]  # fmt: skip
        rows += [
            ("privacy", "share_close", self.share_close_virtual, self.share_close_holdout, h),
            ("privacy", "n_exact_copies", float(self.n_exact_copies), 0.0, i),
            ("privacy", "membership_auc", self.membership_auc, 0.5, i),
        ]
        for u in self.utility:
            rows.append(("utility", u.metric, u.trained_on_virtual, u.trained_on_real, r))
            rows.append(("utility", f"{u.metric} ratio", u.ratio, 1.0, i))
        frame = pd.DataFrame(
            rows, columns=["domain", "metric", "value", "reference", "reference_kind"]
        )
        frame[["value", "reference"]] = frame[["value", "reference"]].astype(float)
        return frame.set_index(["domain", "metric"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (``nan`` as ``None``), without the per-row arrays."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name in ("dcr", "training_rows"):
                continue
            value = getattr(self, name)
            if name == "pair_trends":
                value = [{"column_1": a, "column_2": b, "score": s} for (a, b), s in value.items()]
            elif name == "utility":
                value = [
                    {
                        "metric": u.metric,
                        "trained_on_virtual": u.trained_on_virtual,
                        "trained_on_real": u.trained_on_real,
                        "ratio": u.ratio,
                    }
                    for u in value
                ]
            out[name] = value
        out["fidelity_at_least_holdout"] = self.fidelity_at_least_holdout
        return _jsonable(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else float(value)
    return value


# -- fidelity building blocks -------------------------------------------------------------


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


# -- encoding and distances ---------------------------------------------------------------


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


# -- splitting and input checks -----------------------------------------------------------


def _split_rows(n: int, holdout_fraction: float, gen: np.random.Generator):
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1); got {holdout_fraction!r}")
    n_holdout = int(round(holdout_fraction * n))
    if n_holdout < 2 or n - n_holdout < 2:
        raise DataError(
            f"the real data need at least 2 training and 2 holdout rows; {n} rows with "
            f"holdout_fraction={holdout_fraction} give {n - n_holdout} and {n_holdout}"
        )
    order = gen.permutation(n)
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def split_holdout(
    real: pd.DataFrame, holdout_fraction: float = 0.3, rng: RNG = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The random training / holdout split of :func:`validate_cohort`.

    With the same integer ``rng`` and ``holdout_fraction`` it is the split that
    :func:`validate_cohort` and :func:`similarity_filter` use: fit the generator on the
    training part so that the holdout comparisons are honest.

    Returns
    -------
    training, holdout : DataFrame
        Rows of ``real``, in their original order.
    """
    training, holdout = _split_rows(len(real), holdout_fraction, np.random.default_rng(rng))
    return real.iloc[training], real.iloc[holdout]


def _check_frames(real: pd.DataFrame, virtual: pd.DataFrame, named: dict[str, str | None]):
    missing = [c for c in real.columns if c not in virtual.columns]
    extra = [c for c in virtual.columns if c not in real.columns]
    if missing or extra:
        raise DataError(
            f"real and virtual data must have the same columns; virtual lacks "
            f"{missing} and has extra {extra}"
        )
    for role, name in named.items():
        if name is not None and name not in real.columns:
            raise DataError(f"{role} column {name!r} is not in the data")
    for label, frame in (("real", real), ("virtual", virtual)):
        if len(frame) < 2:
            raise DataError(f"the {label} data need at least 2 rows; got {len(frame)}")
        na = frame.isna()
        for col in frame.columns[na.any().to_numpy()]:
            rows = np.flatnonzero(na[col].to_numpy())
            raise DataError(
                f"{label} column {col!r} has missing values at rows "
                f"{rows[:10].tolist()}{' ...' if len(rows) > 10 else ''}"
            )


def _categorical_columns(real: pd.DataFrame, categorical, event, outcome) -> tuple[str, ...]:
    if categorical is None:
        chosen = {
            c
            for c in real.columns
            if isinstance(real[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(real[c])
            or pd.api.types.is_bool_dtype(real[c])
            or pd.api.types.is_string_dtype(real[c])
        }
    else:
        unknown = [c for c in categorical if c not in real.columns]
        if unknown:
            raise DataError(f"categorical columns {unknown} are not in the data")
        chosen = set(categorical)
    chosen |= {c for c in (event, outcome) if c is not None}
    not_numeric = [
        c for c in real.columns if c not in chosen and not pd.api.types.is_numeric_dtype(real[c])
    ]
    if not_numeric:
        raise DataError(f"columns {not_numeric} are not numeric; list them as categorical")
    return tuple(c for c in real.columns if c in chosen)


# -- the validation -----------------------------------------------------------------------


def validate_cohort(
    real: pd.DataFrame,
    virtual: pd.DataFrame,
    *,
    time: str | None = None,
    event: str | None = None,
    categorical: Sequence[str] | None = None,
    outcome: str | None = None,
    holdout: ArrayLike | None = None,
    holdout_fraction: float = 0.3,
    rng: RNG = 0,
) -> CohortValidation:
    """Fidelity, detectability, privacy and utility of a virtual cohort.

    Parameters
    ----------
    real, virtual : DataFrame
        Patient-level data with the same columns, no missing values.
    time, event : str, optional
        The survival endpoint: follow-up time and event indicator (1/True: event). Give both
        or neither.
    categorical : sequence of str, optional
        Categorical columns; by default those of object, string, category or bool dtype.
        ``event`` and ``outcome`` are always categorical.
    outcome : str, optional
        A binary column to predict from the other columns in the utility comparison (its
        larger value is the positive class).
    holdout : array-like of bool, optional
        Which rows of ``real`` the generator did not see. By default a random
        ``holdout_fraction`` of the rows (:func:`split_holdout`).
    holdout_fraction : float
        Share of real rows held out, in (0, 1).
    rng : int or numpy.random.Generator
        Seed of the split, of the subsampling and of the classifiers.

    Returns
    -------
    CohortValidation

    Raises
    ------
    DataError
        Columns differ or are missing, missing values, too few rows, a non-binary outcome.

    Notes
    -----
    Fidelity and privacy compare the virtual cohort with the real *training* rows, so that
    the real holdout against the same rows is a like-for-like reference (its noise is that
    of ``holdout_fraction * n_real`` rows, usually more than the virtual cohort's, so the
    reference is conservative). The survival comparison, the detection test and the
    similarity of the virtual cohort use all real rows. Distances (DCR, NNDR, membership)
    are Euclidean on numeric columns centred and divided by their robust scale in the real
    training rows (IQR / 1.349) and categorical columns one-hot divided by ``sqrt(2)`` (a
    mismatch weighs as one robust standard deviation). The detection test balances the
    classes by subsampling the larger set; one-hot encodes categoricals; uses stratified
    ``N_FOLDS``-fold cross-validation. Utility covariates are all columns except ``time``,
    ``event`` and ``outcome``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> g = np.random.default_rng(1)
    >>> def cohort(n):
    ...     return pd.DataFrame({"age": g.normal(60, 10, n), "sex": g.choice(["F", "M"], n)})
    >>> result = validate_cohort(cohort(200), cohort(200), rng=2)
    >>> bool(result.detection_auc["logistic"] < 0.65)
    True
    """
    if (time is None) != (event is None):
        raise DataError("give both time and event columns, or neither")
    _check_frames(real, virtual, {"time": time, "event": event, "outcome": outcome})
    virtual = virtual[list(real.columns)]
    if event is not None:
        for label, frame in (("real", real), ("virtual", virtual)):
            bad = np.flatnonzero(~frame[event].isin([0, 1]).to_numpy())
            if len(bad):
                raise DataError(
                    f"{label} event column {event!r} must hold 0/1 or bool; rows "
                    f"{bad[:10].tolist()} do not"
                )
    if outcome is not None and real[outcome].nunique() != 2:
        raise DataError(
            f"outcome column {outcome!r} must take two values in the real data; "
            f"got {real[outcome].nunique()}"
        )
    cat = _categorical_columns(real, categorical, event, outcome)
    gen = np.random.default_rng(rng)
    notes: list[tuple[type[Warning], str]] = []

    if holdout is None:
        training_rows, holdout_rows = _split_rows(len(real), holdout_fraction, gen)
    else:
        mask = np.asarray(holdout, dtype=bool)
        if mask.shape != (len(real),) or mask.sum() < 2 or (~mask).sum() < 2:
            raise DataError(
                "holdout must be a boolean mask over the real rows with at least "
                "2 holdout and 2 training rows"
            )
        training_rows, holdout_rows = np.flatnonzero(~mask), np.flatnonzero(mask)
    training, held = real.iloc[training_rows], real.iloc[holdout_rows]

    # fidelity
    shapes, trends, shape, trend, overall = _fidelity(training, virtual, cat)
    _, _, ref_shape, ref_trend, ref_overall = _fidelity(training, held, cat)
    survival: dict[str, float | None] = dict.fromkeys(SURVIVAL_FIELDS)
    if time is not None:
        survival.update(_survival_fidelity(real, virtual, time, event, notes))

    # detection
    detection, detection_se, n_folds = _detection(real, virtual, cat, gen, notes)

    # privacy
    encoding = _Encoding.fit(training, [virtual, held], cat)
    x_train = encoding.transform(training)
    x_virtual, x_holdout = encoding.transform(virtual), encoding.transform(held)
    d_virtual = _nearest(x_train, x_virtual, 2)
    d_holdout = _nearest(x_train, x_holdout, 2)
    dcr, dcr_holdout = d_virtual[:, 0], d_holdout[:, 0]
    threshold = float(np.quantile(dcr_holdout, CLOSE_QUANTILE))
    membership = _membership_auc(x_train, x_holdout, x_virtual)

    # utility
    utility = _utility(training, held, virtual, time, event, outcome, cat, notes)
    for category, message in notes:
        warnings.warn(message, category, stacklevel=2)

    return CohortValidation(
        n_real=len(real),
        n_virtual=len(virtual),
        n_training=len(training),
        n_holdout=len(held),
        categorical=cat,
        column_shapes=shapes,
        pair_trends=trends,
        column_shape_score=shape,
        pair_trend_score=trend,
        fidelity_score=overall,
        reference_column_shape_score=ref_shape,
        reference_pair_trend_score=ref_trend,
        reference_fidelity_score=ref_overall,
        **survival,
        detection_auc=detection,
        detection_auc_se=detection_se,
        n_folds=n_folds,
        dcr_threshold=threshold,
        dcr_virtual_median=float(np.median(dcr)),
        dcr_holdout_median=float(np.median(dcr_holdout)),
        share_close_virtual=float(np.mean(dcr < threshold)),
        share_close_holdout=float(np.mean(dcr_holdout < threshold)),
        n_exact_copies=int(np.sum(dcr == 0.0)),
        nndr_virtual_median=float(np.median(_nndr(d_virtual))),
        nndr_holdout_median=float(np.median(_nndr(d_holdout))),
        membership_auc=membership,
        utility=tuple(utility),
        notes=tuple(message for _, message in notes),
        dcr=dcr,
        training_rows=training_rows,
    )


def _note(notes: list, message: str, category: type[Warning] = InsilicoWarning) -> None:
    """Record a quantity that could not be computed; validate_cohort warns at the end."""
    notes.append((category, message))


def _lifelines_fit(fitter, frame: pd.DataFrame, what: str, notes: list[str], **kwargs) -> bool:
    """Fit a lifelines model; its warnings become ours (recorded), its failure a note."""
    from lifelines.exceptions import ConvergenceError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter.fit(frame, **kwargs)
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            _note(notes, f"{what}: the fit failed ({exc}); reported as nan", ConvergenceWarning)
            return False
    for w in caught:
        _note(notes, f"{what}: {w.message}", ConvergenceWarning)
    return True


def _survival_fidelity(real, virtual, time, event, notes) -> dict[str, float]:
    from lifelines import CoxPHFitter, KaplanMeierFitter

    t_r, e_r = real[time].to_numpy(dtype=float), real[event].to_numpy(dtype=float)
    t_v, e_v = virtual[time].to_numpy(dtype=float), virtual[event].to_numpy(dtype=float)
    follow_up = min(t_r.max(), t_v.max())
    grid = np.unique(np.concatenate([[0.0, follow_up], t_r, t_v]))
    grid = grid[(grid >= 0.0) & (grid <= follow_up)]
    s_r = KaplanMeierFitter().fit(t_r, e_r).survival_function_at_times(grid).to_numpy()
    s_v = KaplanMeierFitter().fit(t_v, e_v).survival_function_at_times(grid).to_numpy()
    gap = np.abs(s_r - s_v)
    out = {
        "km_max_difference": float(gap.max()),
        "km_integrated_difference": float(np.sum(gap[:-1] * np.diff(grid))),
        "km_follow_up": float(follow_up),
        "hazard_ratio": math.nan,
        "hazard_ratio_lower": math.nan,
        "hazard_ratio_upper": math.nan,
    }
    frame = pd.DataFrame(
        {
            "T": np.concatenate([t_r, t_v]),
            "E": np.concatenate([e_r, e_v]),
            "virtual": np.r_[np.zeros(len(t_r)), np.ones(len(t_v))],
        }
    )
    cph = CoxPHFitter()
    if _lifelines_fit(
        cph, frame, "Cox model of virtual vs real", notes, duration_col="T", event_col="E"
    ):
        row = cph.summary.loc["virtual"]
        out.update(
            hazard_ratio=float(row["exp(coef)"]),
            hazard_ratio_lower=float(row["exp(coef) lower 95%"]),
            hazard_ratio_upper=float(row["exp(coef) upper 95%"]),
        )
    return out


def _detection(real, virtual, cat, gen, notes):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    n = min(len(real), len(virtual))
    r = real.iloc[np.sort(gen.choice(len(real), n, replace=False))]
    v = virtual.iloc[np.sort(gen.choice(len(virtual), n, replace=False))]
    encoding = _Encoding.fit(r, [v], cat)
    x = np.vstack([encoding.transform(r), encoding.transform(v)])
    y = np.r_[np.zeros(n), np.ones(n)]
    seed = int(gen.integers(2**31 - 1))
    n_folds = min(N_FOLDS, n)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000)),
        "gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }
    auc, se = {}, {}
    for name, model in models.items():
        # one OpenMP thread: at these sizes the threads' synchronisation costs more than it
        # saves (and many times more on a busy machine)
        with threadpool_limits(limits=1, user_api="openmp"):
            scores = cross_val_score(model, x, y, cv=folds, scoring="roc_auc")
        auc[name] = float(scores.mean())
        se[name] = float(scores.std(ddof=1) / math.sqrt(n_folds))
    return auc, se, n_folds


def _membership_auc(x_train: np.ndarray, x_holdout: np.ndarray, x_virtual: np.ndarray):
    """AUC of ``-distance to the nearest virtual row`` for training (members) vs holdout."""
    from sklearn.metrics import roc_auc_score

    d_train = _nearest(x_virtual, x_train, 1)[:, 0]
    d_holdout = _nearest(x_virtual, x_holdout, 1)[:, 0]
    labels = np.r_[np.ones(len(d_train)), np.zeros(len(d_holdout))]
    return float(roc_auc_score(labels, -np.concatenate([d_train, d_holdout])))


def _design(frames, covariates, cat):
    """Numeric covariates as they are, categorical ones as dummies (first level dropped)."""
    columns = {}
    for col in covariates:
        if col in cat:
            levels = pd.unique(pd.concat([f[col] for f in frames]).astype(object))
            for level in levels[1:]:
                columns[f"{col}={level}"] = [
                    (f[col].astype(object) == level).to_numpy(float) for f in frames
                ]
        else:
            columns[col] = [f[col].to_numpy(dtype=float) for f in frames]
    return [pd.DataFrame({k: v[i] for k, v in columns.items()}) for i in range(len(frames))]


def _utility(training, held, virtual, time, event, outcome, cat, notes):
    covariates = [c for c in training.columns if c not in (time, event, outcome)]
    results: list[UtilityComparison] = []
    if not covariates:
        return results
    frames = {"real training": training, "holdout": held, "virtual": virtual}
    design = dict(zip(frames, _design(list(frames.values()), covariates, cat), strict=True))
    if time is not None:
        c_index = {
            label: _cox_c_index(design[label], frames[label], design["holdout"], held, time,
                                event, label, notes)
            for label in ("virtual", "real training")
        }  # fmt: skip
        results.append(UtilityComparison("c_index", c_index["virtual"], c_index["real training"]))
    if outcome is not None:
        positive = np.sort(pd.unique(training[outcome]))[-1]
        y = {label: (f[outcome] == positive).to_numpy() for label, f in frames.items()}
        auc = {
            label: _logistic_auc(design[label], y[label], design["holdout"], y["holdout"],
                                 label, notes)
            for label in ("virtual", "real training")
        }  # fmt: skip
        results.append(UtilityComparison("roc_auc", auc["virtual"], auc["real training"]))
    return results


def _cox_c_index(x_fit, fit, x_test, test, time, event, label, notes) -> float:
    from lifelines import CoxPHFitter
    from lifelines.utils import concordance_index

    keep = [c for c in x_fit.columns if x_fit[c].std() > 0]  # constant: no information
    frame = x_fit[keep].assign(_T=fit[time].to_numpy(float), _E=fit[event].to_numpy(float))
    cph = CoxPHFitter(penalizer=COX_PENALIZER)
    if not keep or not _lifelines_fit(
        cph, frame, f"Cox model on {label} rows", notes, duration_col="_T", event_col="_E"
    ):
        if not keep:
            _note(notes, f"Cox model on {label} rows: no non-constant covariate; C-index nan")
        return math.nan
    risk = cph.predict_partial_hazard(x_test[keep]).to_numpy()
    return float(concordance_index(test[time].to_numpy(float), -risk, test[event].to_numpy(float)))


def _logistic_auc(x_fit, y_fit, x_test, y_test, label, notes) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_fit)) < 2 or len(np.unique(y_test)) < 2:
        _note(
            notes,
            f"logistic regression on {label} rows: the outcome takes one value in "
            "the fitting or holdout rows; ROC AUC nan",
        )
        return math.nan
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000))
    model.fit(x_fit.to_numpy(), y_fit)
    return float(roc_auc_score(y_test, model.predict_proba(x_test.to_numpy())[:, 1]))


# -- filtering ----------------------------------------------------------------------------


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
        Distance (as in :func:`validate_cohort`) below which a virtual row is dropped. By
        default ``CLOSE_QUANTILE`` (5th percentile) of the distances of the real holdout
        to the real training rows, i.e. ``validate_cohort(...).dcr_threshold`` for the same
        ``holdout_fraction`` and integer ``rng``. Rows strictly closer are dropped, so
        ``threshold=0`` drops nothing; a tiny positive value drops exact copies only.
    categorical, holdout_fraction, rng
        As in :func:`validate_cohort`.

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
    if threshold is None:
        d = _nearest(encoding.transform(training), encoding.transform(held), 1)[:, 0]
        threshold = float(np.quantile(d, CLOSE_QUANTILE))
    elif not threshold >= 0:
        raise ValueError(f"threshold must be a non-negative distance; got {threshold!r}")
    dcr = _nearest(encoding.transform(real), encoding.transform(virtual[list(real.columns)]), 1)[
        :, 0
    ]
    keep = dcr >= threshold
    return virtual.loc[keep], int((~keep).sum())
