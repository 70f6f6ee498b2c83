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
holdout rows: fit the generator on the first part of :func:`~generators.holdout.split_holdout`
(same ``holdout_fraction`` and ``rng``), or pass the rows it did not see as ``holdout``.

:func:`validate_cohort` answers the four questions and returns a :class:`CohortValidation`;
the column-shape and pair-trend scores are computed in :mod:`generators.fidelity`, the
distances in :mod:`generators.privacy` (which also holds
:func:`~generators.privacy.similarity_filter`), the split in :mod:`generators.holdout`.

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
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from generators.fidelity import _fidelity, column_shape_score, pair_trend_score
from generators.holdout import (
    RNG,
    _categorical_columns,
    _check_frames,
    _split_rows,
    split_holdout,
)
from generators.privacy import (
    CLOSE_QUANTILE,
    _Encoding,
    _membership_auc,
    _nearest,
    _nndr,
    similarity_filter,
)
from trials.exceptions import ConvergenceWarning, DataError, InsilicoWarning

__all__ = [
    "CohortValidation",
    "UtilityComparison",
    "survival_agreement",
    "validate_cohort",
    # defined elsewhere, importable from here as before the split
    "column_shape_score",
    "pair_trend_score",
    "similarity_filter",
    "split_holdout",
]

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
        (categorical) of virtual against the real holdout rows when ``holdout`` was given
        (the rows the generator did not see), else against the real training rows.
    pair_trends : dict of (str, str) to float
        Per pair of columns, ``1 - |r_real - r_virtual| / 2`` (two numeric columns, Pearson
        ``r``) or ``1 - TVD`` of the normalized contingency tables (otherwise; a numeric
        column binned at the quintiles of the real training rows).
    column_shape_score, pair_trend_score, fidelity_score : float
        Mean column shape, mean pair trend, and their mean (in [0, 1]; 1 is identical).
    reference_column_shape_score, reference_pair_trend_score, reference_fidelity_score : float
        The same for the real training rows against the holdout when ``holdout`` was
        given, else for the real holdout against the training rows.
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
        Share of virtual / holdout rows closer to a training row than ``dcr_threshold``;
        rows at exactly the threshold count with the fraction that makes the holdout share
        exactly 0.05 (ties are common on discrete data, where the threshold may be 0).
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
    When ``holdout`` gives the rows the generator did not see, fidelity, the survival
    comparison and the detection test compare the virtual cohort with those rows, and the
    fidelity reference is the real training rows against them: an honest comparison. When
    it is not given (the generator saw every real row), fidelity compares the virtual cohort
    with a random training part and the reference is the remaining holdout against it (its
    noise is that of ``holdout_fraction * n_real`` rows, usually more than the virtual
    cohort's, so the reference is conservative), and the survival comparison and the
    detection test use all real rows. Privacy always measures distances to the training
    rows, with the holdout's distances as the reference; at ties with the threshold see
    ``share_close_virtual``. Distances (DCR, NNDR, membership)
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

    # fidelity and detection: against the rows the generator did not see when they are
    # known (``holdout`` given), else against the training rows / all rows
    if holdout is not None:
        shapes, trends, shape, trend, overall = _fidelity(held, virtual, cat)
        _, _, ref_shape, ref_trend, ref_overall = _fidelity(held, training, cat)
        unseen = held
    else:
        shapes, trends, shape, trend, overall = _fidelity(training, virtual, cat)
        _, _, ref_shape, ref_trend, ref_overall = _fidelity(training, held, cat)
        unseen = real
    survival: dict[str, float | None] = dict.fromkeys(SURVIVAL_FIELDS)
    if time is not None:
        survival.update(_survival_fidelity(unseen, virtual, time, event, notes))

    # detection
    detection, detection_se, n_folds = _detection(unseen, virtual, cat, gen, notes)

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
        share_close_virtual=_share_close(dcr, dcr_holdout, threshold),
        share_close_holdout=_share_close(dcr_holdout, dcr_holdout, threshold),
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


def survival_agreement(
    real: pd.DataFrame, virtual: pd.DataFrame, *, time: str, event: str
) -> dict[str, Any]:
    """Survival of virtual patients against real ones, censored or not.

    The Kaplan–Meier curves of both (``km_max_difference``, ``km_integrated_difference``
    over the common follow-up ``[0, km_follow_up]``) and the Cox hazard ratio of virtual
    versus real patients with its 95 % Wald interval, as in :func:`validate_cohort`.

    Virtual event times drawn *without* censoring (``event`` all 1, as the Bayesian
    survival models draw them) are compared correctly: under independent censoring the real
    data's Kaplan–Meier curve and the partial likelihood estimate the same survival and
    hazards as uncensored times would, so neither the censoring nor the event rate has to
    match; the comparison stops at the real follow-up.

    Returns
    -------
    dict
        The figures above, and ``notes`` (fit problems of the Cox model, in words).
    """
    for frame, which in ((real, "real"), (virtual, "virtual")):
        missing = [c for c in (time, event) if c not in frame.columns]
        if missing:
            raise DataError(f"the {which} patients lack the survival columns {missing}")
    notes: list[str] = []
    out: dict[str, Any] = _survival_fidelity(real, virtual, time, event, notes)
    return {**out, "notes": notes}


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


def _share_close(distances: np.ndarray, reference: np.ndarray, threshold: float) -> float:
    """Share of rows closer to a training row than ``threshold``, the reference's
    ``CLOSE_QUANTILE``. Rows at exactly the threshold (ties, common on discrete data, where
    the threshold may be 0) count with the fraction that makes the reference's share
    exactly ``CLOSE_QUANTILE``: the share of a mid-distribution, without randomization."""
    below, at = np.mean(reference < threshold), np.mean(reference == threshold)
    fraction = min(max((CLOSE_QUANTILE - below) / at, 0.0), 1.0) if at > 0 else 0.0
    return float(np.mean(distances < threshold) + fraction * np.mean(distances == threshold))


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
