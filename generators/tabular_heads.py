"""Mixed-type tabular data for the torch generators: columns in, likelihoods, columns out.

The deep generators (:mod:`generators.vae`, :mod:`generators.rhvae`) see a patient table
as a list of *units*, one per column except that a time-to-event column and its event
indicator form one survival unit. Each unit has a likelihood *head* on the decoder's
output:

* ``continuous`` and ``integer`` — the column is mapped to normal scores through its
  (piecewise-linear) empirical quantile function stored on :data:`Z_GRID`, and the head
  is Gaussian in that scale with one learned standard deviation per column. Integer
  columns and tied values are *dequantized*: a value stands for the interval of normal
  scores that maps back to it, and each training pass draws a point in that interval,
  uniformly in probability (Theis, van den Oord and Bethge 2016), so that point masses
  do not make the likelihood unbounded and the scores of every column stay standard
  normal. Generated values are mapped back and, for integer columns, rounded and kept
  within the observed range.
* ``binary`` — Bernoulli with a logit; numeric 0/1 and boolean columns.
* ``categorical`` — softmax over the *observed* levels (categorical, object, string
  columns and integer columns with few distinct values); unobserved declared levels are
  never generated.
* ``survival`` — a time and an event indicator under independent censoring. In the
  normal-score scale ``u = g(time)`` (``g`` the quantile transform of the *distinct*
  observed times, so that a point mass such as administrative censoring at the end of
  follow-up occupies a narrow band of scores) the latent event time and censoring time
  are Gaussian with their own means and standard deviations (at least
  :data:`SURVIVAL_SIGMA_FLOOR`) per patient, so ``T = g^-1(U_T)``, ``C = g^-1(U_C)`` are
  flexible per-patient distributions (log-normal when ``g`` is a logarithm). An event at
  ``u`` contributes ``log f_T(u) + log S_C(u)``, a censored time ``log S_T(u) +
  log f_C(u)`` (:func:`censored_normal_loglik`; a tied or whole-number time is taken at
  the middle, in probability, of its interval of scores); a generated patient has
  ``time = g^-1(min(U_T, U_C))`` and ``event = 1{U_T <= U_C}``. ``g`` is monotone, so
  the ordering of event and censoring times, hence the event indicator, is that of the
  original scale.

  **Marginal calibration.** A Gaussian in the score scale is a poor *marginal* family for
  the event time: when a third of the patients are event-free at the end of follow-up
  (a plateau of the Kaplan-Meier curve) the heads learn very wide event-time
  distributions, which spread events over the whole follow-up (too many late events,
  too few early ones, on GBSG2). The unit therefore stores the Kaplan-Meier estimate of
  the event-time distribution and the reverse Kaplan-Meier estimate of the censoring
  distribution (Schemper and Smith 1996) of the training rows as CDFs ``F``, ``G`` of
  the scores on :data:`Z_GRID` (:func:`survival_targets`: the mass of each distinct time
  spread uniformly over its interval of scores, ties taken as events before
  censorings, so that ``S_KM * G_rKM`` is the empirical survival of the observed times).
  A generator fitted with these targets records the marginal CDFs ``F_T``, ``F_C`` of
  its own latent times under its sampling distribution of the code
  (:func:`marginal_cdfs`) and maps each draw monotonically,
  ``U_T' = F^-1(F_T(U_T))`` and ``U_C' = G^-1(F_C(U_C))`` (quantile mapping, the
  marginal calibration of Gneiting, Balabdaoui and Raftery 2007;
  :func:`calibrate_survival`): the latent times keep their ranks, hence their relations
  with the other columns through the code, and get the estimated marginals. The
  event-time mass beyond the last event time (the Kaplan-Meier plateau) is put beyond
  follow-up (always censored), the censoring mass beyond the last time at the end of
  follow-up. Were ``U_T'`` and ``U_C'`` independent, the Kaplan-Meier curve and the event
  rate of generated cohorts would be those of the training rows; the dependence the
  code induces between them makes this approximate.
* ``constant`` — a column with one observed value (or one category) is reproduced as it
  is; no head.

A unit with missing values in the training data also has a Bernoulli head for being
missing, so missingness rates, and their relations with the other columns through the
latent code, are learned; the likelihood of a value counts only where it is observed.
The time and event of a survival unit are missing together (a row missing either is
missing both).

References
----------
Kingma, D. P. and Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
Xu, L., Skoularidou, M., Cuesta-Infante, A. and Veeramachaneni, K. (2019). Modeling
tabular data using conditional GAN (CTGAN and TVAE). NeurIPS 32.
Nazábal, A., Olmos, P. M., Ghahramani, Z. and Valera, I. (2020). Handling incomplete
heterogeneous data using VAEs. *Pattern Recognition* 107, 107501.
Theis, L., van den Oord, A. and Bethge, M. (2016). A note on the evaluation of
generative models. ICLR (uniform dequantization).
Klein, J. P. and Moeschberger, M. L. (2003). *Survival Analysis*, 2nd ed., Springer,
section 3.5 (the likelihood under independent right censoring).
Kaplan, E. L. and Meier, P. (1958). Nonparametric estimation from incomplete observations.
*JASA* 53(282), 457-481.
Schemper, M. and Smith, T. L. (1996). A note on quantifying follow-up in studies of
failure time. *Controlled Clinical Trials* 17(4), 343-346 (the reverse Kaplan-Meier).
Gneiting, T., Balabdaoui, F. and Raftery, A. E. (2007). Probabilistic forecasts,
calibration and sharpness. *JRSS B* 69(2), 243-268 (marginal calibration).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr
from torch import nn
from torch.nn import functional

from trials.exceptions import DataError, InsilicoWarning

#: Normal scores at which each quantile function is stored.
Z_GRID = np.linspace(-5.0, 5.0, 401)
#: Integer columns with at most this many distinct values get a categorical head.
MAX_DISCRETE_LEVELS = 10
#: Bounds of the per-column standard deviation of the Gaussian heads (normal scores).
SIGMA_BOUNDS = (0.01, 2.0)
#: Smallest standard deviation of the survival heads (normal scores).
SURVIVAL_SIGMA_FLOOR = 0.05
#: Normal scores at which the marginal CDFs of a model's latent survival times are stored
#: (wider than :data:`Z_GRID`: the latent times are not confined to the data's range).
CALIBRATION_GRID = np.linspace(-10.0, 10.0, 801)

CONTINUOUS, INTEGER, BINARY = "continuous", "integer", "binary"
CATEGORICAL, SURVIVAL, CONSTANT = "categorical", "survival", "constant"
NUMERIC = (CONTINUOUS, INTEGER)
DTYPE = torch.float32
_P_MIN = float(ndtr(Z_GRID[0]))


# -- the columns ---------------------------------------------------------------------------


def infer_schema(
    frame: pd.DataFrame,
    *,
    time: str | None = None,
    event: str | None = None,
    categorical: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready description per unit (see the module docstring), in column order.

    Parameters
    ----------
    frame : DataFrame
        The modelled columns, one row per patient.
    time, event : str, optional
        The survival pair (both or neither).
    categorical : list of str, optional
        Columns forced to a categorical head (otherwise as in the module docstring).

    Raises
    ------
    DataError
        A column with no observed value, a non-numeric column that is not categorical, a
        time column with non-positive values, an event column other than 0/1.
    """
    forced = set(categorical or ())
    units: list[dict[str, Any]] = []
    for name in frame.columns:
        if name == event:
            continue
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.all():
            raise DataError(f"column {name!r} has no observed values")
        if name == time:
            units.extend(_survival_units(frame, time, event))
            continue
        unit: dict[str, Any] = {
            "name": name,
            "dtype": str(column.dtype),
            "missing_rate": float(missing.mean()),
        }
        unit.update(_column_unit(name, column[~missing], forced=name in forced))
        units.append(unit)
    for unit in units:
        unit["missing_head"] = unit["missing_rate"] > 0
    return units


def _column_unit(name: str, observed: pd.Series, *, forced: bool) -> dict[str, Any]:
    dtype = observed.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    levels = pd.unique(observed)
    if len(levels) == 1:
        unit = {"kind": CONSTANT, "value": _plain(levels[0])}
        if isinstance(dtype, pd.CategoricalDtype):
            unit.update(_categorical_unit(name, observed), kind=CONSTANT)
        return unit
    if pd.api.types.is_bool_dtype(dtype):
        return {"kind": BINARY}
    if numeric and not forced:
        values = observed.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise DataError(f"column {name!r}: numeric columns must hold finite numbers")
        whole = bool(np.all(values == np.round(values)))
        if whole and set(np.unique(values)) == {0.0, 1.0}:
            return {"kind": BINARY}
        if not (whole and len(levels) <= MAX_DISCRETE_LEVELS):
            return {"kind": INTEGER if whole else CONTINUOUS, **fit_quantiles(values, whole)}
    elif not (
        forced
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    ):
        raise DataError(
            f"column {name!r} has dtype {dtype}, which is neither numeric nor categorical"
        )
    return _categorical_unit(name, observed)


def _categorical_unit(name: str, observed: pd.Series) -> dict[str, Any]:
    dtype = observed.dtype
    declared, ordered = None, False
    if isinstance(dtype, pd.CategoricalDtype):
        declared = [_plain(c) for c in dtype.categories]
        ordered = bool(dtype.ordered)
        present = set(observed.unique())
        categories = [c for c in declared if c in present]
    else:
        uniques = [_plain(c) for c in pd.unique(observed)]
        try:
            categories = sorted(uniques)
        except TypeError:  # mixed types: order by text
            categories = sorted(uniques, key=str)
    bad = [c for c in categories if not isinstance(c, str | int | float | bool)]
    if bad:
        raise DataError(
            f"column {name!r}: categories must be strings, numbers or booleans, "
            f"got {type(bad[0]).__name__}"
        )
    return {"kind": CATEGORICAL, "categories": categories, "declared": declared, "ordered": ordered}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _survival_units(frame: pd.DataFrame, time: str, event: str) -> list[dict[str, Any]]:
    times, events = frame[time], frame[event]
    if not pd.api.types.is_numeric_dtype(times.dtype) or pd.api.types.is_bool_dtype(times.dtype):
        raise DataError(f"time column {time!r} must be numeric, got dtype {times.dtype}")
    missing = (times.isna() | events.isna()).to_numpy()
    if missing.all():
        raise DataError(f"the survival columns {time!r} and {event!r} are never both observed")
    t = times[~missing].to_numpy(dtype=float)
    e = events[~missing].to_numpy(dtype=float)
    bad_t = np.flatnonzero(~(np.isfinite(t) & (t > 0)))
    if len(bad_t):
        raise DataError(
            f"time column {time!r}: times must be positive finite numbers "
            f"(got {t[bad_t[:3]].tolist()})"
        )
    if not np.isin(e, (0.0, 1.0)).all():
        raise DataError(f"event column {event!r} must hold 0 (censored) or 1 (event)")
    whole = bool(np.all(t == np.round(t)))
    base = {"missing_rate": float(missing.mean())}
    if np.unique(t).size == 1:  # one time for everyone: nothing to order
        note = (
            f"every observed patient has the same {time!r} ({t[0]:g}): it is kept constant "
            f"and {event!r} is modelled as an ordinary binary column"
        )
        warnings.warn(note, InsilicoWarning, stacklevel=4)
        time_unit = {"name": time, "dtype": str(times.dtype), "note": note, **base}
        time_unit.update({"kind": CONSTANT, "value": float(t[0])})
        event_unit = {"name": event, "dtype": str(events.dtype), **base}
        event_unit.update(
            {"kind": CONSTANT, "value": _plain(events[~missing].iloc[0])}
            if e.min() == e.max()
            else {"kind": BINARY}
        )
        return [time_unit, event_unit]
    if e.min() == e.max():  # all events or all censored: nothing to learn of the other
        what = "event" if e[0] == 1 else "censored"
        note = (
            f"every observed patient is {what} in {event!r}: the event indicator is kept "
            f"constant ({int(e[0])}) and {time!r} is modelled as an ordinary "
            f"{'integer' if whole else 'continuous'} column"
        )
        warnings.warn(note, InsilicoWarning, stacklevel=4)
        time_unit = {"name": time, "dtype": str(times.dtype), "note": note, **base}
        time_unit.update({"kind": INTEGER if whole else CONTINUOUS, **fit_quantiles(t, whole)})
        event_unit = {"name": event, "dtype": str(events.dtype), **base}
        event_unit.update({"kind": CONSTANT, "value": _plain(events[~missing].iloc[0])})
        return [time_unit, event_unit]
    unit = {
        "name": time,
        "event": event,
        "kind": SURVIVAL,
        "dtype": str(times.dtype),
        "event_dtype": str(events.dtype),
        "integer": whole,
        **base,
        **fit_quantiles(np.unique(t), whole),
        **survival_targets(t, e),
    }
    return [unit]


def survival_targets(times: np.ndarray, events: np.ndarray) -> dict[str, np.ndarray]:
    """The Kaplan-Meier CDF of the event time and the reverse Kaplan-Meier CDF of the
    censoring time, as CDFs of the scores of the survival unit on :data:`Z_GRID`.

    With ``x_1 < ... < x_m`` the distinct observed times, ``n_k`` patients at risk at
    ``x_k``, ``d_k`` events and ``c_k`` censorings there: ``S_k = prod (1 - d_j / n_j)``
    and, ties counted as events before censorings, ``G_k = prod (1 - c_j / (n_j -
    d_j))``. The quantile transform of the unit (:func:`fit_quantiles` of the distinct
    times) gives ``x_k`` the scores whose probability ``Phi(u)`` lies in ``[(k - 1) / m,
    k / m]``; the mass of ``x_k`` is spread uniformly over it, so the CDFs are
    piecewise linear in ``Phi(u)`` through ``(k / m, 1 - S_k)`` and ``(k / m, 1 - G_k)``.
    Keys ``event_cdf`` and ``censor_cdf``; the first ends below 1 when the last time is
    censored (the plateau of the Kaplan-Meier curve).
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(events, dtype=float)
    distinct, where = np.unique(t, return_inverse=True)
    m = len(distinct)
    d = np.bincount(where, weights=e, minlength=m)
    c = np.bincount(where, weights=1 - e, minlength=m)
    at_risk = (d + c)[::-1].cumsum()[::-1]
    survival = np.cumprod(1 - d / at_risk)
    after_events = at_risk - d
    with np.errstate(divide="ignore", invalid="ignore"):
        censoring = np.cumprod(np.where(after_events > 0, 1 - c / after_events, 1.0))
    knots = np.arange(m + 1) / m
    v = ndtr(Z_GRID)
    return {
        "event_cdf": np.interp(v, knots, np.concatenate([[0.0], 1 - survival])),
        "censor_cdf": np.interp(v, knots, np.concatenate([[0.0], 1 - censoring])),
    }


# -- quantile transform --------------------------------------------------------------------


def fit_quantiles(values: np.ndarray, integer: bool) -> dict[str, Any]:
    """The column's piecewise-linear quantile function on :data:`Z_GRID`.

    Continuous: the CDF interpolates ``i / n`` linearly at the midpoints between
    consecutive order statistics, and 0 and 1 half a mean spacing beyond the extremes
    (not below 0, nor below half the minimum, for a column never observed negative or
    zero). Integer: the CDF of the values spread uniformly over ``[v - 1/2, v + 1/2]``.
    No observed value is stored, except the minimum and maximum of integer columns.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if integer:
        levels, counts = np.unique(x, return_counts=True)
        upper_cdf = np.cumsum(counts) / n
        knots_x = np.concatenate([[levels[0] - 0.5], levels + 0.5])
        knots_p = np.concatenate([[0.0], upper_cdf])
        gaps = np.flatnonzero(np.diff(levels) > 1)  # empty stretches between levels
        if len(gaps):
            knots_x = np.insert(knots_x, gaps + 2, levels[gaps + 1] - 0.5)
            knots_p = np.insert(knots_p, gaps + 2, upper_cdf[gaps])
        extra = {"min": float(levels[0]), "max": float(levels[-1])}
    else:
        spacing = (x[-1] - x[0]) / (n - 1)
        lower, upper = x[0] - spacing / 2, x[-1] + spacing / 2
        if x[0] > 0:
            lower = max(lower, x[0] / 2)
        elif x[0] == 0:
            lower = 0.0
        knots_x = np.concatenate([[lower], (x[:-1] + x[1:]) / 2, [upper]])
        knots_p = np.concatenate([[0.0], np.arange(1, n) / n, [1.0]])
        extra = {}
    quantiles = np.interp(ndtr(Z_GRID), knots_p, knots_x)
    return {"quantiles": np.maximum.accumulate(quantiles), **extra}


def to_scores(x: np.ndarray, quantiles: np.ndarray, side: str) -> np.ndarray:
    """Normal score ``u`` with ``Q(u) = x``: the smallest (``side="left"``) or largest
    (``"right"``) where ``Q`` is flat at ``x``; clipped to the grid."""
    x = np.asarray(x, dtype=float)
    k = np.clip(np.searchsorted(quantiles, x, side=side), 1, len(quantiles) - 1)
    q0, q1 = quantiles[k - 1], quantiles[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(q1 > q0, (x - q0) / (q1 - q0), 0.5)
    u = Z_GRID[k - 1] + np.clip(share, 0.0, 1.0) * (Z_GRID[k] - Z_GRID[k - 1])
    return np.clip(u, Z_GRID[0], Z_GRID[-1])


def score_interval(x: np.ndarray, unit: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The interval of normal scores that maps back to each observed value."""
    q = np.asarray(unit["quantiles"], dtype=float)
    if unit["kind"] == INTEGER or unit.get("integer"):
        return to_scores(x - 0.5, q, "right"), to_scores(x + 0.5, q, "left")
    return to_scores(x, q, "left"), to_scores(x, q, "right")


def from_scores(u: np.ndarray, unit: dict[str, Any]) -> np.ndarray:
    """Values of the column at normal scores ``u`` (rounded and clipped if integer)."""
    values = np.interp(u, Z_GRID, np.asarray(unit["quantiles"], dtype=float))
    if unit["kind"] == INTEGER or unit.get("integer"):
        values = np.clip(np.rint(values), unit["min"], unit["max"])
    return values


# -- layout of inputs and outputs ---------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each unit sits in the encoder's input and the decoder's output."""

    numeric: tuple[int, ...]
    binary: tuple[int, ...]
    categorical: tuple[int, ...]
    levels: tuple[int, ...]
    survival: int | None
    missing: tuple[int, ...]

    @classmethod
    def of(cls, units: list[dict[str, Any]]) -> Layout:
        def where(kind: str) -> tuple[int, ...]:
            return tuple(i for i, u in enumerate(units) if u["kind"] == kind)

        survival = where(SURVIVAL)
        return cls(
            numeric=tuple(i for i, u in enumerate(units) if u["kind"] in NUMERIC),
            binary=where(BINARY),
            categorical=where(CATEGORICAL),
            levels=tuple(len(units[i]["categories"]) for i in where(CATEGORICAL)),
            survival=survival[0] if survival else None,
            missing=tuple(i for i, u in enumerate(units) if u["missing_head"]),
        )

    @property
    def n_survival(self) -> int:
        return int(self.survival is not None)

    @property
    def input_width(self) -> int:
        return (
            len(self.numeric) + len(self.binary) + sum(self.levels) + 2 * self.n_survival
            + len(self.missing)
        )  # fmt: skip

    @property
    def output_width(self) -> int:
        return (
            len(self.numeric) + len(self.binary) + sum(self.levels) + 4 * self.n_survival
            + len(self.missing)
        )  # fmt: skip

    def output_slices(self) -> dict[str, slice]:
        sizes = {
            "numeric": len(self.numeric),
            "binary": len(self.binary),
            "categorical": sum(self.levels),
            "survival": 4 * self.n_survival,
            "missing": len(self.missing),
        }
        slices, start = {}, 0
        for name, size in sizes.items():
            slices[name] = slice(start, start + size)
            start += size
        return slices


def encode(frame: pd.DataFrame, units: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The training arrays of the units (normal-score intervals, codes, masks)."""
    layout = Layout.of(units)
    n = len(frame)
    arrays: dict[str, np.ndarray] = {
        "numeric_lo": np.zeros((n, len(layout.numeric))),
        "numeric_hi": np.zeros((n, len(layout.numeric))),
        "numeric_observed": np.zeros((n, len(layout.numeric))),
        "binary": np.zeros((n, len(layout.binary))),
        "binary_observed": np.zeros((n, len(layout.binary))),
        "codes": np.full((n, len(layout.categorical)), -1, dtype=np.int64),
        "survival_lo": np.zeros(n),
        "survival_hi": np.zeros(n),
        "event": np.zeros(n),
        "survival_observed": np.zeros(n),
        "missing": np.zeros((n, len(layout.missing))),
    }
    for j, i in enumerate(layout.numeric):
        column = frame[units[i]["name"]]
        observed = column.notna().to_numpy()
        lo, hi = score_interval(column[observed].to_numpy(dtype=float), units[i])
        arrays["numeric_lo"][observed, j], arrays["numeric_hi"][observed, j] = lo, hi
        arrays["numeric_observed"][:, j] = observed
    for j, i in enumerate(layout.binary):
        column = frame[units[i]["name"]]
        observed = column.notna().to_numpy()
        arrays["binary"][observed, j] = column[observed].to_numpy(dtype=float)
        arrays["binary_observed"][:, j] = observed
    for j, i in enumerate(layout.categorical):
        column = frame[units[i]["name"]]
        index = pd.Index(units[i]["categories"], dtype=object)
        values = pd.Index(column.astype(object).to_numpy(), dtype=object)
        codes = index.get_indexer(values)
        codes[column.isna().to_numpy()] = -1
        arrays["codes"][:, j] = codes
    if layout.survival is not None:
        unit = units[layout.survival]
        times, events = frame[unit["name"]], frame[unit["event"]]
        observed = (times.notna() & events.notna()).to_numpy()
        lo, hi = score_interval(times[observed].to_numpy(dtype=float), unit)
        arrays["survival_lo"][observed], arrays["survival_hi"][observed] = lo, hi
        arrays["event"][observed] = events[observed].to_numpy(dtype=float)
        arrays["survival_observed"] = observed.astype(float)
    for j, i in enumerate(layout.missing):
        unit = units[i]
        missing = frame[unit["name"]].isna()
        if unit["kind"] == SURVIVAL:
            missing = missing | frame[unit["event"]].isna()
        arrays["missing"][:, j] = missing.to_numpy()
    return arrays


def to_tensors(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {
        k: torch.as_tensor(v, dtype=torch.long if v.dtype == np.int64 else DTYPE, device=device)
        for k, v in arrays.items()
    }


def take(data: dict[str, torch.Tensor], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[rows] for k, v in data.items()}


def dequantize(
    batch: dict[str, torch.Tensor], layout: Layout, generator: torch.Generator | None
) -> dict[str, torch.Tensor]:
    """Ready a batch for the network: each numeric value drawn in its interval of normal
    scores uniformly in probability, ``u = Phi^-1(U(Phi(lo), Phi(hi)))``, so that the
    dequantized scores of a column are standard normal whatever its ties (the middle of
    the interval in probability without a ``generator``); each time at the middle of its
    interval; the categories one-hot (zeros where missing)."""
    lo, hi = batch["numeric_lo"], batch["numeric_hi"]
    if generator is None:
        numeric = _middle_in_probability(lo, hi)
    else:
        numeric = _uniform_in_probability(lo, hi, generator)
    codes = batch["codes"]
    onehots = [
        functional.one_hot(codes[:, j].clamp(min=0), k).to(DTYPE)
        * (codes[:, j] >= 0).to(DTYPE)[:, None]
        for j, k in enumerate(layout.levels)
    ]
    return {
        **batch,
        "numeric_u": numeric,
        "survival_u": _middle_in_probability(batch["survival_lo"], batch["survival_hi"]),
        "onehot": torch.cat(onehots, 1) if onehots else lo.new_zeros((len(lo), 0)),
    }


def _middle_in_probability(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    p = (torch.special.ndtr(lo) + torch.special.ndtr(hi)) / 2
    return torch.special.ndtri(p.clamp(_P_MIN, 1 - _P_MIN)).clamp(lo, hi)


def _uniform_in_probability(
    lo: torch.Tensor, hi: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    p_lo, p_hi = torch.special.ndtr(lo), torch.special.ndtr(hi)
    share = torch.rand(lo.shape, generator=generator, device=lo.device, dtype=lo.dtype)
    u = torch.special.ndtri((p_lo + share * (p_hi - p_lo)).clamp(_P_MIN, 1 - _P_MIN))
    return torch.where(hi > lo, u.clamp(lo, hi), lo)


def encoder_input(batch: dict[str, torch.Tensor], layout: Layout) -> torch.Tensor:
    """The encoder's input of a batch readied by :func:`dequantize`; missing entries are
    zeros."""
    parts = [
        batch["numeric_u"] * batch["numeric_observed"],
        (2 * batch["binary"] - 1) * batch["binary_observed"],
        batch["onehot"],
    ]
    if layout.survival is not None:
        observed = batch["survival_observed"]
        parts.append((batch["survival_u"] * observed)[:, None])
        parts.append(((2 * batch["event"] - 1) * observed)[:, None])
    parts.append(batch["missing"])
    return torch.cat(parts, dim=1)


# -- likelihoods ---------------------------------------------------------------------------

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_logpdf(x: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / sd) ** 2 - torch.log(sd) - _HALF_LOG_2PI


def normal_logsf(x: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return torch.special.log_ndtr(-(x - mean) / sd)


def censored_normal_loglik(
    u: torch.Tensor,
    event: torch.Tensor,
    event_mean: torch.Tensor,
    event_sd: torch.Tensor,
    censor_mean: torch.Tensor,
    censor_sd: torch.Tensor,
) -> torch.Tensor:
    """Log-likelihood of an observed time under independent censoring.

    With the latent event time ``U_T ~ N(event_mean, event_sd**2)`` and censoring time
    ``U_C ~ N(censor_mean, censor_sd**2)`` independent, and ``u = min(U_T, U_C)``:
    ``log f_T(u) + log S_C(u)`` for an event (``event == 1``), ``log S_T(u) +
    log f_C(u)`` for a censored time (Klein and Moeschberger 2003, section 3.5).
    """
    as_event = normal_logpdf(u, event_mean, event_sd) + normal_logsf(u, censor_mean, censor_sd)
    as_censored = normal_logsf(u, event_mean, event_sd) + normal_logpdf(u, censor_mean, censor_sd)
    return torch.where(event > 0.5, as_event, as_censored)


def numeric_sd(log_sigma: torch.Tensor) -> torch.Tensor:
    low, high = SIGMA_BOUNDS
    return torch.exp(log_sigma.clamp(math.log(low), math.log(high)))


def survival_parameters(raw: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Event mean, event sd, censoring mean, censoring sd from the 4 survival outputs."""
    return (
        raw[:, 0],
        SURVIVAL_SIGMA_FLOOR + functional.softplus(raw[:, 1]),
        raw[:, 2],
        SURVIVAL_SIGMA_FLOOR + functional.softplus(raw[:, 3]),
    )


def log_likelihood(
    out: torch.Tensor, batch: dict[str, torch.Tensor], layout: Layout, log_sigma: torch.Tensor
) -> torch.Tensor:
    """Per-row log-likelihood of a dequantized batch given the decoder's output; each
    value counts only where observed, and each missingness indicator counts."""
    s = layout.output_slices()
    total = torch.zeros(out.shape[0], dtype=out.dtype, device=out.device)
    if layout.numeric:
        sd = numeric_sd(log_sigma)
        logpdf = normal_logpdf(batch["numeric_u"], out[:, s["numeric"]], sd)
        total = total + (logpdf * batch["numeric_observed"]).sum(1)
    if layout.binary:
        bce = functional.binary_cross_entropy_with_logits(
            out[:, s["binary"]], batch["binary"], reduction="none"
        )
        total = total - (bce * batch["binary_observed"]).sum(1)
    start = s["categorical"].start
    for k in layout.levels:  # the one-hot rows are zero where the value is missing
        logp = torch.log_softmax(out[:, start : start + k], dim=1)
        total = total + (logp * batch["onehot"][:, start - s["categorical"].start :][:, :k]).sum(1)
        start += k
    if layout.survival is not None:
        params = survival_parameters(out[:, s["survival"]])
        loglik = censored_normal_loglik(batch["survival_u"], batch["event"], *params)
        total = total + loglik * batch["survival_observed"]
    if layout.missing:
        bce = functional.binary_cross_entropy_with_logits(
            out[:, s["missing"]], batch["missing"], reduction="none"
        )
        total = total - bce.sum(1)
    return total


# -- generation ----------------------------------------------------------------------------


def draw(
    out: torch.Tensor, layout: Layout, log_sigma: torch.Tensor, generator: torch.Generator
) -> dict[str, np.ndarray]:
    """Draw one patient per row of the decoder's output (in the heads' own scales)."""
    s = layout.output_slices()
    n, device = out.shape[0], out.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device, dtype=out.dtype)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=out.dtype)

    draws: dict[str, torch.Tensor] = {}
    mean = out[:, s["numeric"]]
    draws["numeric"] = mean + numeric_sd(log_sigma) * normal(n, len(layout.numeric))
    draws["binary"] = (uniform(n, len(layout.binary)) < torch.sigmoid(out[:, s["binary"]])).to(
        out.dtype
    )
    codes, start = [], s["categorical"].start
    for k in layout.levels:
        cumulative = torch.softmax(out[:, start : start + k], dim=1).cumsum(1)
        codes.append((cumulative < uniform(n, 1)).sum(1).clamp(max=k - 1))
        start += k
    draws["codes"] = (
        torch.stack(codes, 1) if codes else torch.zeros((n, 0), dtype=torch.long, device=device)
    )
    if layout.survival is not None:
        event_mean, event_sd, censor_mean, censor_sd = survival_parameters(out[:, s["survival"]])
        u_event = event_mean + event_sd * normal(n)
        u_censor = censor_mean + censor_sd * normal(n)
        draws["survival_u"] = torch.minimum(u_event, u_censor)
        draws["event"] = (u_event <= u_censor).to(out.dtype)
        draws["event_u"], draws["censor_u"] = u_event, u_censor
    draws["missing"] = (uniform(n, len(layout.missing)) < torch.sigmoid(out[:, s["missing"]])).to(
        out.dtype
    )
    arrays = {k: v.detach().cpu().numpy() for k, v in draws.items()}
    for key in ("numeric", "survival_u", "event_u", "censor_u"):
        if key in arrays and not np.all(np.isfinite(arrays[key])):
            raise FloatingPointError(
                "the decoder produced non-finite values; the fitted model is unusable "
                "(refit with a smaller learning_rate or beta)"
            )
    return arrays


def marginal_cdfs(out: torch.Tensor, layout: Layout) -> dict[str, np.ndarray]:
    """The marginal CDFs, on :data:`CALIBRATION_GRID`, of the latent event and censoring
    scores of patients decoded from the rows of ``out`` (the decoder's output at draws of
    the sampling distribution of the code): ``F_T(u) = mean_i Phi((u - m_i) / s_i)``,
    the mixture over the rows (Rao-Blackwellised: no noise of the heads' draws)."""
    event_mean, event_sd, censor_mean, censor_sd = survival_parameters(
        out[:, layout.output_slices()["survival"]]
    )
    grid = torch.as_tensor(CALIBRATION_GRID, dtype=torch.float64, device=out.device)

    def mixture(mean: torch.Tensor, sd: torch.Tensor) -> np.ndarray:
        total = torch.zeros_like(grid)
        for start in range(0, len(mean), 4096):  # bounded memory
            m = mean[start : start + 4096, None].double()
            s = sd[start : start + 4096, None].double()
            total += torch.special.ndtr((grid[None, :] - m) / s).sum(0)
        return np.maximum.accumulate((total / max(len(mean), 1)).cpu().numpy())

    return {"event": mixture(event_mean, event_sd), "censor": mixture(censor_mean, censor_sd)}


def _inverse_cdf(p: np.ndarray, cdf: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The smallest ``u`` with ``cdf(u) = p`` (``cdf`` piecewise linear on ``grid``,
    non-decreasing); ``+inf`` where ``p`` exceeds its last value."""
    k = np.clip(np.searchsorted(cdf, p, side="left"), 1, len(cdf) - 1)
    c0, c1 = cdf[k - 1], cdf[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(c1 > c0, (p - c0) / (c1 - c0), 1.0)
    u = grid[k - 1] + np.clip(share, 0.0, 1.0) * (grid[k] - grid[k - 1])
    return np.where(p > cdf[-1], np.inf, u)


def calibrate_survival(
    draws: dict[str, np.ndarray], unit: dict[str, Any], model_cdfs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Quantile-map the latent event and censoring scores of :func:`draw` onto the
    unit's Kaplan-Meier targets (see the module docstring): ``U_T' = F^-1(F_T(U_T))``,
    ``U_C' = G^-1(F_C(U_C))``, then ``survival_u = min(U_T', U_C')`` and ``event =
    1{U_T' <= U_C'}``. Event times beyond the last event time are beyond follow-up
    (censored); censoring mass beyond the last time sits at the end of follow-up."""
    p_event = np.interp(draws["event_u"], CALIBRATION_GRID, model_cdfs["event"])
    p_censor = np.interp(draws["censor_u"], CALIBRATION_GRID, model_cdfs["censor"])
    u_event = _inverse_cdf(p_event, np.asarray(unit["event_cdf"], dtype=float), Z_GRID)
    u_censor = _inverse_cdf(p_censor, np.asarray(unit["censor_cdf"], dtype=float), Z_GRID)
    u_censor = np.minimum(u_censor, Z_GRID[-1])
    return {
        **draws,
        "survival_u": np.minimum(u_event, u_censor),
        "event": (u_event <= u_censor).astype(draws["event"].dtype),
        "event_u": u_event,
        "censor_u": u_censor,
    }


def decode(
    draws: dict[str, np.ndarray], units: list[dict[str, Any]], columns: list[str]
) -> pd.DataFrame:
    """The virtual patients as a DataFrame with the training columns and dtypes."""
    layout = Layout.of(units)
    n = len(draws["missing"])
    missing = np.zeros((n, len(units)), dtype=bool)
    for j, i in enumerate(layout.missing):
        missing[:, i] = draws["missing"][:, j] > 0.5
    out: dict[str, Any] = {}
    for i, unit in enumerate(units):
        gone = missing[:, i]
        kind = unit["kind"]
        if kind in NUMERIC:
            values = from_scores(draws["numeric"][:, layout.numeric.index(i)], unit)
            out[unit["name"]] = _numbers(values, gone, unit["dtype"])
        elif kind == BINARY:
            values = draws["binary"][:, layout.binary.index(i)]
            out[unit["name"]] = _numbers(values, gone, unit["dtype"])
        elif kind == CATEGORICAL:
            codes = draws["codes"][:, layout.categorical.index(i)].astype(np.int64)
            out[unit["name"]] = _categories(unit, codes, gone)
        elif kind == CONSTANT:
            if unit["dtype"] == "category" or not isinstance(unit["value"], int | float):
                codes = np.where(gone, -1, 0)
                out[unit["name"]] = _categories(
                    {"declared": None, "ordered": False, **unit, "categories": [unit["value"]]},
                    codes,
                    gone,
                )
            else:
                out[unit["name"]] = _numbers(np.full(n, float(unit["value"])), gone, unit["dtype"])
        else:  # survival
            times = from_scores(draws["survival_u"], unit)
            out[unit["name"]] = _numbers(times, gone, unit["dtype"])
            out[unit["event"]] = _numbers(draws["event"], gone, unit["event_dtype"])
    return pd.DataFrame({name: out[name] for name in columns})


def _numbers(values: np.ndarray, missing: np.ndarray, dtype: str) -> pd.Series:
    values = np.asarray(values, dtype=float).copy()
    if missing.any():
        values[missing] = np.nan
        return pd.Series(values).astype(dtype)
    if dtype in ("bool", "boolean"):
        return pd.Series(values > 0.5).astype(dtype)
    return pd.Series(values).astype(dtype)


def _categories(unit: dict[str, Any], codes: np.ndarray, missing: np.ndarray) -> Any:
    categories = list(unit["categories"])
    codes = np.where(missing, -1, codes)
    if unit["dtype"] == "category":
        declared = unit.get("declared") or categories
        dtype = pd.CategoricalDtype(declared, ordered=unit["ordered"])
        positions = pd.Index(declared, dtype=object).get_indexer(pd.Index(categories, dtype=object))
        return pd.Categorical.from_codes(np.where(codes >= 0, positions[codes], -1), dtype=dtype)
    values = np.empty(len(codes), dtype=object)
    observed = codes >= 0
    values[observed] = np.asarray(categories, dtype=object)[codes[observed]]
    values[~observed] = np.nan
    return pd.Series(values, dtype=object).astype(unit["dtype"])


# -- torch plumbing ------------------------------------------------------------------------


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; ``"cuda"`` without a GPU fails."""
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA GPU is available to torch "
            f"{torch.__version__}; use device='cpu' or device='auto'"
        )
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s), "
            "numbered from 0"
        )
    return resolved


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """On CUDA, request torch's deterministic algorithms for the duration (warning where
    an operation has none) and restore the previous setting; nothing to do on the CPU,
    whose kernels are deterministic for a fixed number of threads."""
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def torch_generator(seed: np.random.SeedSequence | int, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` seeded from a SeedSequence (or an integer)."""
    if isinstance(seed, np.random.SeedSequence):
        words = seed.generate_state(2, np.uint32)
        seed = int(words[0]) << 31 | int(words[1]) >> 1
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def mlp(
    sizes: list[int], device: torch.device, generator: torch.Generator, *, last: bool = False
) -> nn.Sequential:
    """Linear layers with SiLU between them (and after the last one if ``last``),
    initialised as torch's defaults (Kaiming-uniform) but from ``generator``, never
    from torch's global random state."""
    layers: list[nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer = nn.utils.skip_init(nn.Linear, fan_in, fan_out, device=device, dtype=DTYPE)
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        layers.append(layer)
        if k < len(sizes) - 2 or last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def weights_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    return {name: p.detach().cpu().numpy().copy() for name, p in module.state_dict().items()}


def weights_from_numpy(module: nn.Module, weights: dict[str, Any]) -> None:
    expected = module.state_dict()
    if set(weights) != set(expected):
        missing, unexpected = (
            sorted(set(expected) - set(weights)),
            sorted(set(weights) - set(expected)),
        )
        raise DataError(
            f"the saved weights do not fit the network (missing {missing}, unexpected {unexpected})"
        )
    state = {}
    for name, tensor in expected.items():
        value = torch.as_tensor(np.asarray(weights[name], dtype=np.float32), device=tensor.device)
        if value.shape != tensor.shape:
            raise DataError(
                f"saved weight {name!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(tensor.shape)}"
            )
        state[name] = value
    module.load_state_dict(state)


__all__ = [
    "CALIBRATION_GRID",
    "Layout",
    "Z_GRID",
    "calibrate_survival",
    "censored_normal_loglik",
    "decode",
    "draw",
    "encode",
    "fit_quantiles",
    "from_scores",
    "infer_schema",
    "log_likelihood",
    "marginal_cdfs",
    "resolve_device",
    "survival_targets",
    "to_scores",
]
