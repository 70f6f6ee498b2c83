"""The ``external_control`` section of a protocol: a single-arm trial against external patients.

The section names the trial's patient file and the external source (real-world data, a
registry, a historical trial), says how the external source is made comparable -- the
trial's eligibility criteria applied to it, its index date (time zero), the harmonisation of
names, units and categories -- and how the comparison is made: the propensity model's
covariates, the adjustment (matching, ATT weighting, overlap weighting), the endpoint, the
bootstrap and the sensitivity analysis; optionally a synthetic (generated) control arm.

:func:`prepare_external_control` reads and harmonises the two files,
:func:`run_external_control` runs :func:`analysis.external_control.analyse_external_control`
on them, :func:`external_control_summary` gives the JSON summary and
:func:`write_external_control` writes the output directory atomically.

Order of the harmonisation of the external source: (1) ``rename`` external columns to the
trial's names; (2) ``units``: multiply numeric columns by a factor (e.g. centimetres to
millimetres: 10; days to months: 1 / 30.4375); (3) ``categories``: map each external label
to the trial's label (every label seen must be mapped); (4) the index date: subtract the
time from the source's origin to the index date from the follow-up time, and leave out
patients with no follow-up after it; (5) the eligibility criteria.
"""

from __future__ import annotations

import ast
import difflib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from trials.exceptions import DataError
from trials.yamlsource import format_field

if TYPE_CHECKING:
    from analysis.external_control import ExternalControlAnalysis, SyntheticControlResult

__all__ = [
    "ExternalControl",
    "ExternalControlDataError",
    "ExternalControlRun",
    "PreparedData",
    "check_external_control",
    "external_control_summary",
    "gbsg2_external_control_example",
    "prepare_external_control",
    "run_external_control",
    "write_external_control",
]

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Column = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
FilePath = Annotated[str, Field(min_length=1, max_length=1000)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Model(BaseModel):
    """Frozen, no unknown keys, no NaN or infinity (as :class:`trials.protocol.Model`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _check_expression(text: str) -> str:
    """Syntax and allowed constructs of an eligibility expression (names are checked
    against the data when the files are read)."""
    from trials.expressions import parse_expression

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {text!r} ({exc.msg})") from None
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    parse_expression(text, names, {})
    return text


def _keys_as_text(value: object) -> object:
    """Let a category map be written ``{1: I, 2: II}`` without quotes."""
    if isinstance(value, dict):
        return {
            (str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k): v
            for k, v in value.items()
        }
    return value


Expression = Annotated[
    str, Field(min_length=1, max_length=500), AfterValidator(_check_expression)
]
CategoryMap = Annotated[dict[Label, Label], BeforeValidator(_keys_as_text), Field(min_length=1)]


class Harmonisation(Model):
    """How the external source is made to speak the trial's language (applied in order).

    ``rename`` maps external column names to the trial's; ``units`` gives, per (trial)
    column, the factor that multiplies the external values (after renaming); ``categories``
    maps, per (trial) column, every external label to a trial label.
    """

    rename: dict[Column, Name] = Field(default_factory=dict)
    units: dict[Name, Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    categories: dict[Name, CategoryMap] = Field(default_factory=dict)

    @field_validator("rename")
    @classmethod
    def _distinct_targets(cls, value: dict[str, str]) -> dict[str, str]:
        targets = list(value.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"two columns are renamed to {', '.join(map(repr, twice))}")
        return value


class TimeZero(Model):
    """The index date (time zero) of the external patients.

    The trial's times run from enrolment. An external source's follow-up may run from an
    earlier origin (diagnosis, start of an earlier line of therapy): ``index_time_column``
    names the column with the time from that origin to the index date (the date at which
    the external patient met the trial's entry conditions), and ``shift`` is a constant to
    subtract as well; both in the trial's time unit after harmonisation. External patients
    whose event or censoring is not after the index date are left out (counted).
    """

    index_time_column: Name | None = None
    shift: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0


class Matching(Model):
    """Greedy 1:k nearest-neighbour matching on the logit of the propensity score within a
    caliper (standard deviations of the logit; ``null`` for none)."""

    method: Literal["matching"]
    k: Annotated[int, Field(ge=1, le=20)] = 1
    caliper: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] | None = 0.2
    replace: bool = False
    max_unmatched: Probability = 0.1


class IptwAtt(Model):
    """Inverse probability weighting for the effect on the treated (the trial population)."""

    method: Literal["iptw_att"]


class OverlapWeighting(Model):
    """Overlap weights (Li, Morgan & Zaslavsky 2018)."""

    method: Literal["overlap"]


Adjustment = Annotated[Matching | IptwAtt | OverlapWeighting, Field(discriminator="method")]


class TimeToEventOutcome(Model):
    type: Literal["time_to_event"]
    time: Name
    event: Name


class BinaryOutcome(Model):
    type: Literal["binary"]
    outcome: Name


class ContinuousOutcome(Model):
    type: Literal["continuous"]
    outcome: Name


Outcome = Annotated[
    TimeToEventOutcome | BinaryOutcome | ContinuousOutcome, Field(discriminator="type")
]


class BootstrapSettings(Model):
    """Bootstrap resamples (0: none) and their seed."""

    n_resamples: Annotated[int, Field(ge=0, le=100_000)] = 200
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0

    @field_validator("n_resamples")
    @classmethod
    def _not_one(cls, value: int) -> int:
        if value == 1:
            raise ValueError("give 0 (no bootstrap) or at least 2 resamples")
        return value


class Sensitivity(Model):
    """E-value and tipping-point settings. ``rare_outcome``: fewer than about 15 % of the
    patients with the event by the end of follow-up (then HR ~ RR)."""

    rare_outcome: bool = False
    prevalence_differences: (
        list[Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]] | None
    ) = None
    confounder_hazard_ratios: (
        list[Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]] | None
    ) = None


class SyntheticControl(Model):
    """A synthetic control arm: a generator of kind ``generator`` fitted on the external
    patients draws ``n_per_patient`` virtual patients per trial patient, conditionally on
    that patient's covariates; the interval is a bootstrap of ``n_resamples`` over the real
    patients that refits the generator each time."""

    generator: Name = "copula"
    n_per_patient: Annotated[int, Field(ge=1, le=100)] = 5
    n_resamples: Annotated[int, Field(ge=2, le=100_000)] = 100


class ExternalControl(Model):
    """A single-arm trial compared with an external control arm.

    File paths are relative to the protocol file; CSV or Parquet. Column names are the
    trial file's (the external source's after ``harmonisation.rename``). A covariate is
    categorical when its values in the trial file are text, or when it is listed in
    ``categorical_covariates`` (categories coded by numbers); otherwise it is a number.
    ``max_unsupported`` is the largest share of trial patients allowed outside the range
    of the external patients' propensity scores; ``min_effective_sample_size`` the
    smallest Kish effective sample size of the external patients' weights.
    """

    trial_data: FilePath
    external_data: FilePath
    id_column: Name | None = None
    eligibility: list[Expression] = Field(default_factory=list)
    time_zero: TimeZero = TimeZero()
    harmonisation: Harmonisation = Harmonisation()
    covariates: list[Name] = Field(min_length=1)
    categorical_covariates: list[Name] = Field(default_factory=list)
    adjustment: Adjustment
    endpoint: Outcome
    level: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.95
    max_unsupported: Probability = 0.1
    min_effective_sample_size: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 10
    bootstrap: BootstrapSettings = BootstrapSettings()
    sensitivity: Sensitivity = Sensitivity()
    synthetic_control: SyntheticControl | None = None

    @field_validator("covariates")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        twice = sorted({c for c in value if value.count(c) > 1})
        if twice:
            raise ValueError(f"covariate {', '.join(map(repr, twice))} is given twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExternalControl:
        outcome = self.outcome_columns
        both = [c for c in self.covariates if c in outcome]
        if both:
            raise ValueError(
                f"{', '.join(map(repr, both))} is an endpoint column and cannot be a covariate"
            )
        unknown = [c for c in self.categorical_covariates if c not in self.covariates]
        if unknown:
            raise ValueError(
                f"categorical_covariates {', '.join(map(repr, unknown))} are not covariates"
            )
        if self.synthetic_control is not None and self.endpoint.type != "time_to_event":
            raise ValueError("a synthetic control arm needs a time-to-event endpoint")
        return self

    @property
    def outcome_columns(self) -> list[str]:
        if isinstance(self.endpoint, TimeToEventOutcome):
            return [self.endpoint.time, self.endpoint.event]
        return [self.endpoint.outcome]


# ----------------------------------------------------------------------------- preparation
class ExternalControlDataError(DataError):
    """The data of an external-control analysis do not fit its protocol section.

    ``problems`` holds ``(location, message)`` pairs, the location a protocol field path.
    """

    def __init__(self, problems: list[tuple[tuple, str]]):
        self.problems = list(problems)
        super().__init__(
            "\n".join(f"{format_field(loc)}: {message}" for loc, message in self.problems)
        )


@dataclass(frozen=True)
class PreparedData:
    """Trial and harmonised external patients, ready for the analysis.

    Attributes
    ----------
    data : DataFrame
        One row per patient kept: the id column (when given), the covariates, the
        endpoint columns, ``trial`` (1 trial, 0 external), ``source_row`` (the row of the
        patient in its file, the header being row 1). Categorical covariates are pandas
        Categoricals with the trial's levels.
    attrition : DataFrame
        ``source``, ``step``, ``n_patients``: how many patients each step kept.
    files : dict
        ``trial`` and ``external``: the paths read.
    n_trial_ineligible : int
        Trial patients who do not meet the eligibility criteria as written (kept).
    """

    data: pd.DataFrame
    attrition: pd.DataFrame
    files: dict[str, Path]
    n_trial_ineligible: int


_SECTION = ("external_control",)


def _resolve(base: Path | None, path: str) -> Path:
    return Path(path) if base is None else base / path


def _load(path: Path, loc: tuple, problems: list) -> pd.DataFrame | None:
    from generators.data import load_dataset

    if not path.is_file():
        problems.append((loc, f"file {str(path)!r} not found (paths are relative to the protocol)"))
        return None
    try:
        return load_dataset(path, min_events=0)
    except DataError as exc:
        problems.append((loc, str(exc)))
        return None


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )


def _as_labels(series: pd.Series) -> pd.Series:
    """Cells as text labels (whole numbers without a decimal point); missing stays NaN."""

    def label(value):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return np.nan
        if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            number = float(value)
            return str(int(number)) if number.is_integer() else repr(number)
        return str(value)

    return pd.Series([label(v) for v in series.astype(object)], index=series.index, dtype=object)


def _numbers_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose values are all numbers as floats (the data reader makes a column of
    few whole numbers categorical; here a category coded by numbers is declared in
    ``categorical_covariates``)."""
    frame = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            numbers = pd.to_numeric(_as_labels(frame[name]), errors="coerce")
            if (numbers.notna() == frame[name].notna()).all():
                frame[name] = numbers.astype(float)
    return frame


def _trial_levels(series: pd.Series) -> list[str]:
    labels = _as_labels(series)
    present = set(labels.dropna())
    if isinstance(series.dtype, pd.CategoricalDtype):
        ordered = [str(c) for c in _as_labels(pd.Series(series.cat.categories))]
        return [c for c in ordered if c in present]
    return sorted(present)


def _rows_text(rows: pd.Index | np.ndarray, limit: int = 5) -> str:
    rows = [int(r) for r in rows]
    shown = ", ".join(map(str, rows[:limit]))
    more = len(rows) - limit
    return ("row " if len(rows) == 1 else "rows ") + shown + (
        f" (and {more} more)" if more > 0 else ""
    )


def _hint(name: str, columns) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def prepare_external_control(
    section: ExternalControl, base: str | os.PathLike | None = None
) -> PreparedData:
    """Read the trial and external files, harmonise the external source, apply time zero
    and the eligibility criteria.

    Parameters
    ----------
    section : ExternalControl
    base : path, optional
        The folder the section's file paths are relative to (the protocol file's).

    Returns
    -------
    PreparedData

    Raises
    ------
    ExternalControlDataError
        With every problem found, each with the protocol field it concerns: a file that
        cannot be read, a column missing from a file, a unit factor on a text column, an
        external category not in the mapping or not a trial category, an eligibility
        expression naming an unknown column, no external patient left, missing values.
    """
    from trials.expressions import parse_expression

    base = None if base is None else Path(base)
    problems: list[tuple[tuple, str]] = []
    trial_path = _resolve(base, section.trial_data)
    external_path = _resolve(base, section.external_data)
    trial = _load(trial_path, (*_SECTION, "trial_data"), problems)
    external = _load(external_path, (*_SECTION, "external_data"), problems)
    if trial is None or external is None:
        raise ExternalControlDataError(problems)
    trial = _numbers_as_numbers(trial).assign(source_row=trial.index.to_numpy() + 2)
    external = _numbers_as_numbers(external).assign(source_row=external.index.to_numpy() + 2)
    harmonisation = section.harmonisation
    attrition = [
        ("trial", "in the file", len(trial)),
        ("external", "in the file", len(external)),
    ]

    # (1) names
    for old, new in harmonisation.rename.items():
        loc = (*_SECTION, "harmonisation", "rename", old)
        if old not in external.columns:
            problems.append((loc, f"column {old!r} is not in the external source"
                             f"{_hint(old, external.columns)}"))
        elif new in external.columns and new not in harmonisation.rename:
            problems.append((loc, f"the external source already has a column {new!r}"))
    external = external.rename(columns=dict(harmonisation.rename))

    needed = list(dict.fromkeys(
        [*section.covariates, *section.outcome_columns]
        + ([section.id_column] if section.id_column else [])
    ))
    where = {c: (*_SECTION, "covariates", i) for i, c in enumerate(section.covariates)}
    for name in section.outcome_columns:
        where[name] = (*_SECTION, "endpoint")
    if section.id_column:
        where[section.id_column] = (*_SECTION, "id_column")
    for name in needed:
        for label, frame in (("trial", trial), ("external", external)):
            if name not in frame.columns:
                renamed = " after renaming" if label == "external" else ""
                problems.append(
                    (where[name], f"column {name!r} is missing from the {label} file{renamed}"
                     f"{_hint(name, frame.columns)}")
                )
    index_column = section.time_zero.index_time_column
    if index_column and index_column not in external.columns:
        problems.append(((*_SECTION, "time_zero", "index_time_column"),
                         f"column {index_column!r} is not in the external source"))
    # (2) units
    for name, factor in harmonisation.units.items():
        loc = (*_SECTION, "harmonisation", "units", name)
        if name not in external.columns:
            problems.append((loc, f"column {name!r} is not in the external source "
                             "(after renaming)"))
        elif not _is_numeric(external[name]):
            problems.append((loc, f"column {name!r} of the external source is not numeric"))
        else:
            external[name] = external[name].astype(float) * factor
    # (3) categories
    for name, mapping in harmonisation.categories.items():
        loc = (*_SECTION, "harmonisation", "categories", name)
        if name not in external.columns:
            problems.append((loc, f"column {name!r} is not in the external source "
                             "(after renaming)"))
            continue
        labels = _as_labels(external[name])
        unknown = labels.notna() & ~labels.isin(list(mapping))
        if unknown.any():
            values = sorted(set(labels[unknown]))
            problems.append(
                (loc, f"external category {', '.join(map(repr, values))} of column {name!r} "
                 f"({_rows_text(external.loc[unknown, 'source_row'])}) is not in the mapping "
                 f"(mapped: {', '.join(map(repr, mapping))})")
            )
        external[name] = labels.map(mapping)
    if problems:
        raise ExternalControlDataError(problems)

    # kinds of the covariates, by the trial file
    categorical = [
        c for c in section.covariates
        if c in section.categorical_covariates or not _is_numeric(trial[c])
    ]
    for name in section.covariates:
        if name in categorical:
            trial[name] = _as_labels(trial[name])
            external[name] = _as_labels(external[name])
        elif not _is_numeric(external[name]):
            problems.append((where[name], f"column {name!r} is numeric in the trial file but "
                             "not in the external source; convert it (harmonisation)"))
    for name in section.outcome_columns:
        for label, frame in (("trial", trial), ("external", external)):
            if not _is_numeric(frame[name]):
                problems.append((where[name], f"endpoint column {name!r} of the {label} file "
                                 "is not numeric"))
    if problems:
        raise ExternalControlDataError(problems)

    # (4) time zero
    if isinstance(section.endpoint, TimeToEventOutcome):
        time = section.endpoint.time
        shift = section.time_zero.shift
        origin = external[index_column].astype(float) if index_column else 0.0
        external[time] = external[time].astype(float) - origin - shift
        after = external[time] > 0
        external = external.loc[after.fillna(False).to_numpy(dtype=bool)]
        if index_column or shift:
            attrition.append(("external", "followed after the index date", len(external)))

    # (5) eligibility, with the categories of both sources
    levels = {name: _trial_levels(trial[name]) for name in categorical}
    n_trial_ineligible = 0
    if section.eligibility:
        numeric = [c for c in external.columns if _is_numeric(external[c])]
        frame_levels = {}
        for c in external.columns:
            if c not in numeric and c != "source_row":
                seen = sorted(set(_as_labels(external[c]).dropna()))
                first = levels.get(c, [])
                frame_levels[c] = first + [v for v in seen if v not in first]
        keep_external = np.ones(len(external), dtype=bool)
        keep_trial = np.ones(len(trial), dtype=bool)
        for i, text in enumerate(section.eligibility):
            loc = (*_SECTION, "eligibility", i)
            try:
                expression = parse_expression(text, numeric, frame_levels)
            except ValueError as exc:
                problems.append((loc, f"{exc} (in the external source, after harmonisation)"))
                continue
            keep_external &= _evaluate(expression, external, frame_levels)
            if expression.names <= set(trial.columns):
                keep_trial &= _evaluate(expression, trial, frame_levels)
        if problems:
            raise ExternalControlDataError(problems)
        external = external.loc[keep_external]
        n_trial_ineligible = int((~keep_trial).sum())
        attrition.append(("external", "eligible", len(external)))
    if len(external) == 0:
        raise ExternalControlDataError(
            [((*_SECTION, "eligibility"), "no external patient is left after the index date "
              "and the eligibility criteria")]
        )

    # categories of the eligible external patients must be the trial's
    for name in categorical:
        labels = external[name]
        foreign = labels.notna() & ~labels.isin(levels[name])
        if foreign.any():
            values = sorted(set(labels[foreign]))
            problems.append(
                (where[name], f"category {', '.join(map(repr, values))} of column {name!r} in "
                 f"the external source ({_rows_text(external.loc[foreign, 'source_row'])}) is "
                 f"not a trial category (trial: {', '.join(map(repr, levels[name]))}); map it "
                 f"in external_control.harmonisation.categories.{name}")
            )

    # missing values
    for name in needed:
        for label, frame in (("trial", trial), ("external", external)):
            missing = frame[name].isna().to_numpy()
            if missing.any():
                problems.append(
                    (where[name], f"column {name!r} of the {label} file has missing values "
                     f"({_rows_text(frame.loc[missing, 'source_row'])}); impute or exclude "
                     "these patients before the analysis")
                )
    if problems:
        raise ExternalControlDataError(problems)

    columns = [*needed, "source_row"]
    data = pd.concat(
        [trial[columns].assign(trial=1), external[columns].assign(trial=0)], ignore_index=True
    )
    for name in categorical:
        data[name] = pd.Categorical(data[name], categories=levels[name])
    for name in section.outcome_columns:
        data[name] = data[name].astype(float)
    attrition.append(("external", "analysed", len(external)))
    attrition.append(("trial", "analysed", len(trial)))
    return PreparedData(
        data=data,
        attrition=pd.DataFrame(attrition, columns=["source", "step", "n_patients"]),
        files={"trial": trial_path, "external": external_path},
        n_trial_ineligible=n_trial_ineligible,
    )


def _evaluate(expression, frame: pd.DataFrame, levels: dict[str, list[str]]) -> np.ndarray:
    columns, present = {}, np.ones(len(frame), dtype=bool)
    for name in expression.names:
        if name in levels:
            labels = _as_labels(frame[name])
            codes = np.array([levels[name].index(v) if v in levels[name] else -1 for v in labels])
            present &= codes >= 0
            columns[name] = codes
        else:
            values = frame[name].to_numpy(dtype=float, na_value=np.nan)
            present &= ~np.isnan(values)
            columns[name] = values
    if not columns:
        columns = {"_": np.zeros(len(frame))}
    return np.asarray(expression.evaluate(columns), dtype=bool) & present


def check_external_control(protocol, base: str | os.PathLike | None = None) -> list:
    """The problems of a protocol's ``external_control`` section with its data files, as
    ``(location, message)`` pairs (the form of :func:`trials.validation.check_protocol`);
    nothing for a protocol without the section."""
    section = getattr(protocol, "external_control", None)
    if section is None:
        return []
    try:
        prepare_external_control(section, base)
    except ExternalControlDataError as exc:
        return exc.problems
    return []


# ----------------------------------------------------------------------------- run
@dataclass(frozen=True)
class ExternalControlRun:
    """An external-control analysis of a protocol: its data and results."""

    section: ExternalControl
    prepared: PreparedData
    analysis: ExternalControlAnalysis
    synthetic: SyntheticControlResult | None


def run_external_control(
    section: ExternalControl,
    base: str | os.PathLike | None = None,
    *,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> ExternalControlRun:
    """Prepare the data and run the analysis the section describes.

    Parameters
    ----------
    section : ExternalControl
    base : path, optional
        The protocol file's folder.
    n_resamples, seed : int, optional
        Override the bootstrap settings.

    Returns
    -------
    ExternalControlRun

    Raises
    ------
    DataError
        Data problems (:class:`ExternalControlDataError`), non-overlapping propensity
        scores, too many unmatched trial patients, too small an effective sample size.
    """
    from analysis.external_control import analyse_external_control, synthetic_control_comparison

    prepared = prepare_external_control(section, base)
    adjustment = section.adjustment
    matching = isinstance(adjustment, Matching)
    endpoint = section.endpoint
    seed = section.bootstrap.seed if seed is None else seed
    resamples = section.bootstrap.n_resamples if n_resamples is None else n_resamples
    analysis = analyse_external_control(
        prepared.data,
        treatment="trial",
        covariates=section.covariates,
        endpoint=endpoint.type,
        time=getattr(endpoint, "time", None),
        event=getattr(endpoint, "event", None),
        outcome=getattr(endpoint, "outcome", None),
        method=adjustment.method,
        k=adjustment.k if matching else 1,
        caliper=adjustment.caliper if matching else 0.2,
        replace=adjustment.replace if matching else False,
        max_unmatched=adjustment.max_unmatched if matching else 0.1,
        max_unsupported=section.max_unsupported,
        min_effective_sample_size=section.min_effective_sample_size,
        n_resamples=resamples,
        rng=seed,
        level=section.level,
        rare_outcome=section.sensitivity.rare_outcome,
        prevalence_differences=section.sensitivity.prevalence_differences,
        confounder_hazard_ratios=section.sensitivity.confounder_hazard_ratios,
    )
    synthetic = None
    spec = section.synthetic_control
    if spec is not None:
        synthetic = synthetic_control_comparison(
            prepared.data,
            treatment="trial",
            covariates=section.covariates,
            time=endpoint.time,
            event=endpoint.event,
            generator=spec.generator,
            n_per_patient=spec.n_per_patient,
            n_resamples=spec.n_resamples if n_resamples is None else max(n_resamples, 2),
            rng=seed,
            level=section.level,
        )
    return ExternalControlRun(section, prepared, analysis, synthetic)


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinity as None, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return _clean(frame.to_dict(orient="records"))


def external_control_summary(run: ExternalControlRun, protocol=None) -> dict:
    """The JSON summary of a run (what ``summary.json`` and ``--json`` hold)."""
    from analysis.external_control import WeightedCoxResult

    a = run.analysis
    level = a.level

    def effect(result) -> dict:
        low, high = result.conf_int(level)
        if isinstance(result, WeightedCoxResult):
            return {
                "measure": "hazard_ratio",
                "estimate": result.hazard_ratio,
                "log_hr": result.log_hr,
                "se_log_hr": result.se_log_hr,
                "conf_low": low,
                "conf_high": high,
                "p_value": result.p_value,
                "events_trial": result.events_trial,
                "events_external": result.events_external,
            }
        return {
            "measure": "difference_in_proportions" if result.binary else "difference_in_means",
            "estimate": result.estimate,
            "se": result.se,
            "conf_low": low,
            "conf_high": high,
            "p_value": result.p_value,
            "mean_trial": result.mean_trial,
            "mean_external": result.mean_external,
        }

    adjusted = effect(a.effect)
    if a.bootstrap is not None:
        low, high = a.bootstrap_conf_int()
        adjusted["bootstrap"] = {
            "conf_low": low,
            "conf_high": high,
            "n_resamples": a.bootstrap.n_resamples,
            "n_failed": a.bootstrap.n_failed,
            "seed": a.bootstrap.seed,
            "se": a.bootstrap.se,
        }
    weights = a.weights
    summary: dict[str, Any] = {
        "protocol": None
        if protocol is None
        else {"id": protocol.id, "title": protocol.title, "version": protocol.version},
        "adjustment": run.section.adjustment.model_dump(mode="json"),
        "endpoint": run.section.endpoint.model_dump(mode="json"),
        "level": level,
        "attrition": _records(run.prepared.attrition),
        "n_trial_ineligible": run.prepared.n_trial_ineligible,
        "propensity_model": _records(weights.model.summary().reset_index(names="term")),
        "overlap": _records(a.overlap.reset_index()),
        "share_unsupported": a.share_unsupported,
        "balance": _records(a.balance.table),
        "max_abs_smd_before": a.balance.max_abs_smd_before,
        "max_abs_smd_after": a.balance.max_abs_smd_after,
        "effective_sample_size": {"trial": weights.ess_trial, "external": weights.ess_external},
        "n_weighted": _records(weights.summary().reset_index()),
        "effect": adjusted,
        "naive": effect(a.naive),
        "e_value": _clean(
            {
                "measure": a.e_value.measure,
                "risk_ratio": a.e_value.risk_ratio,
                "e_value": a.e_value.e_value,
                "e_value_ci": a.e_value.e_value_ci,
                "rare_outcome": a.e_value.rare_outcome,
                "conversion": a.e_value.conversion,
            }
        ),
        "notes": list(a.notes),
    }
    if weights.matching is not None:
        m = weights.matching
        summary["matching"] = {
            "k": m.k,
            "caliper_sd": m.caliper_sd,
            "caliper_logit": m.caliper,
            "replace": m.replace,
            "n_unmatched": m.n_unmatched,
            "n_matched_trial": m.n_matched_trial,
            "n_matched_external": m.n_matched_external,
        }
    if a.kaplan_meier is not None:
        summary["kaplan_meier"] = {"median": a.kaplan_meier.medians}
    if a.tipping is not None:
        summary["tipping_point"] = {
            "tipping_bias_log_hr": a.tipping.tipping_bias_log_hr,
            "by_confounder_hazard_ratio": _records(a.tipping.tipping),
        }
    if run.synthetic is not None:
        s = run.synthetic
        low, high = s.conf_int()
        summary["synthetic_control"] = {
            "generator": s.generator,
            "hazard_ratio": s.hazard_ratio,
            "conf_low": low,
            "conf_high": high,
            "n_trial": s.n_trial,
            "n_external_real": s.n_external,
            "n_generated": s.n_generated,
            "n_resamples": s.bootstrap.n_resamples,
            "n_failed": s.bootstrap.n_failed,
            "mean_distance": s.mean_distance,
            "notes": list(s.notes),
        }
    return _clean(summary)


SUMMARY = "summary.json"
MANIFEST = "manifest.json"
BALANCE = "balance.csv"
WEIGHTS = "weights.csv"
KAPLAN_MEIER = "kaplan_meier.csv"
TIPPING = "tipping_point.csv"
PROTOCOL_COPY = "protocol.yaml"


def weights_table(run: ExternalControlRun) -> pd.DataFrame:
    """One row per analysed patient: id (when given), source, row in its file, propensity
    score, weight."""
    data = run.prepared.data
    weights = run.analysis.weights
    table = pd.DataFrame(
        {
            "source": np.where(data["trial"] == 1, "trial", "external"),
            "source_row": data["source_row"].to_numpy(),
            "propensity_score": weights.model.scores,
            "weight": weights.weights,
        }
    )
    if run.section.id_column:
        table.insert(0, run.section.id_column, data[run.section.id_column].to_numpy())
    return table


PACKAGES = ("insilico-trials", "numpy", "scipy", "pandas", "statsmodels", "lifelines", "pydantic")


def _sha256(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _write_json(path: Path, content: Any) -> None:
    import json

    path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="utf-8")


@contextmanager
def _staged_directory(target: str | os.PathLike, overwrite: bool = False):
    """A temporary sibling directory that becomes ``target`` only if the block succeeds."""
    import shutil
    import tempfile

    from trials.exceptions import RunDirectoryError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise RunDirectoryError(
            f"{target}: directory exists and is not empty (use --overwrite to replace it)"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
    except OSError as exc:
        raise RunDirectoryError(f"{target}: cannot create the directory ({exc.strerror})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def write_external_control(
    run: ExternalControlRun,
    protocol,
    protocol_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    started: str | None = None,
) -> dict:
    """Write the output directory atomically (nothing is left if writing fails); returns
    the summary.

    Files: ``summary.json``, ``balance.csv``, ``weights.csv``, ``kaplan_meier.csv`` and
    ``tipping_point.csv`` (time to event), ``protocol.yaml`` (a copy) and
    ``manifest.json`` (the protocol's and the input files' SHA-256, seed, versions).
    """
    import platform
    import shutil

    summary = external_control_summary(run, protocol)
    a = run.analysis
    files = [SUMMARY, BALANCE, WEIGHTS, PROTOCOL_COPY]
    with _staged_directory(out, overwrite=overwrite) as staging:
        a.balance.table.to_csv(staging / BALANCE, index=False)
        weights_table(run).to_csv(staging / WEIGHTS, index=False)
        if a.kaplan_meier is not None:
            a.kaplan_meier.table.to_csv(staging / KAPLAN_MEIER, index=False)
            files.append(KAPLAN_MEIER)
        if a.tipping is not None:
            a.tipping.grid.to_csv(staging / TIPPING, index=False)
            files.append(TIPPING)
        shutil.copyfile(protocol_path, staging / PROTOCOL_COPY)
        manifest = {
            "insilico_trials_external_control": 1,
            "protocol": {
                "file": str(protocol_path),
                "sha256": _sha256(protocol_path),
                "id": protocol.id,
                "version": protocol.version,
            },
            "inputs": {
                label: {"file": str(path), "sha256": _sha256(path)}
                for label, path in run.prepared.files.items()
            },
            "bootstrap": {
                "n_resamples": None if a.bootstrap is None else a.bootstrap.n_resamples,
                "seed": None if a.bootstrap is None else a.bootstrap.seed,
                "random_streams": "resample b draws from numpy PCG64, the b-th child "
                "spawned from default_rng(seed)",
            },
            "command_line": command_line or [],
            "versions": _versions(),
            "platform": platform.platform(),
            "started": started or _now(),
            "finished": _now(),
            "files": sorted([*files, MANIFEST]),
        }
        _write_json(staging / SUMMARY, summary)
        _write_json(staging / MANIFEST, manifest)
    return summary


# ----------------------------------------------------------------------------- example data
#: Days per month, to express the GBSG2 follow-up in months.
DAYS_PER_MONTH = 30.4375
EXAMPLE_TRIAL_SIZE = 60


def gbsg2_external_control_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shipped rare-disease style example, built from lifelines' GBSG2 data.

    The German Breast Cancer Study Group 2 trial (686 patients; Schumacher et al. 1994)
    compared hormonal therapy (tamoxifen) with none. Here:

    * the **single-arm trial** is 60 of the patients given hormonal therapy, aged 35 to 75,
      chosen with a covariate shift towards more positive lymph nodes and older age (a
      "higher-risk" trial): patient ``i`` is kept with probability proportional to
      ``pnodes^0.3 * exp(0.02 (age - 53))``, by weighted sampling without replacement
      (Efraimidis & Spirakis 2006) driven by SHA-256 hashes of the row numbers, so the
      selection is the same on every platform and version; recurrence-free survival in
      months;
    * the **external source** is every patient not given hormonal therapy (440), written as
      a registry would: other column names, tumour size in centimetres, grade as 1/2/3,
      menopausal status as pre/post, follow-up in days.

    Returns
    -------
    trial, external : DataFrame
    """
    import hashlib

    from lifelines.datasets import load_gbsg2

    data = load_gbsg2().reset_index(drop=True)
    uniform = np.array(
        [
            int(hashlib.sha256(f"gbsg2-single-arm-{i}".encode()).hexdigest()[:13], 16) / 16**13
            for i in range(len(data))
        ]
    )
    treated = data[(data["horTh"] == "yes") & data["age"].between(35, 75)]
    weight = treated["pnodes"] ** 0.3 * np.exp(0.02 * (treated["age"] - 53))
    keys = np.log(uniform[treated.index]) / weight.to_numpy()
    order = np.argsort(-keys, kind="stable")
    chosen = np.sort(treated.index.to_numpy()[order][:EXAMPLE_TRIAL_SIZE])
    selected = data.loc[chosen]
    trial = pd.DataFrame(
        {
            "patient_id": [f"T{i + 1:03d}" for i in range(len(selected))],
            "age": selected["age"].to_numpy(),
            "menostat": selected["menostat"].to_numpy(),
            "tsize": selected["tsize"].to_numpy(),
            "tgrade": selected["tgrade"].to_numpy(),
            "pnodes": selected["pnodes"].to_numpy(),
            "progrec": selected["progrec"].to_numpy(),
            "estrec": selected["estrec"].to_numpy(),
            "rfs_months": np.round(selected["time"].to_numpy() / DAYS_PER_MONTH, 3),
            "rfs_event": selected["cens"].to_numpy(),
        }
    )
    untreated = data[data["horTh"] == "no"]
    external = pd.DataFrame(
        {
            "registry_id": [f"R{i + 1:04d}" for i in range(len(untreated))],
            "age_years": untreated["age"].to_numpy(),
            "menopause": untreated["menostat"].map({"Pre": "pre", "Post": "post"}).to_numpy(),
            "tumour_size_cm": untreated["tsize"].to_numpy() / 10,
            "grade": untreated["tgrade"].map({"I": 1, "II": 2, "III": 3}).to_numpy(),
            "positive_nodes": untreated["pnodes"].to_numpy(),
            "pgr_fmol": untreated["progrec"].to_numpy(),
            "er_fmol": untreated["estrec"].to_numpy(),
            "rfs_days": untreated["time"].to_numpy(),
            "recurrence": untreated["cens"].to_numpy(),
        }
    )
    return trial, external
