"""The data of a protocol's ``external_control`` section, made ready for the analysis.

:func:`prepare_external_control` reads the trial's and the external source's files,
harmonises the external source (names, units, categories), applies its index date (time
zero) and the eligibility criteria, in the order given in :mod:`trials.external`, and
reports every problem it finds with the protocol field it concerns
(:class:`ExternalControlDataError`); :func:`check_external_control` gives those problems in
the form of :func:`trials.validation.check_protocol`.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trials.exceptions import DataError
from trials.external import ExternalControl, TimeToEventOutcome
from trials.yamlsource import format_field

__all__ = [
    "ExternalControlDataError",
    "PreparedData",
    "check_external_control",
    "prepare_external_control",
]


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
