"""Patient-level data in: CSV or Parquet files validated against a data dictionary.

The data dictionary, which says what each column is, is
:class:`generators.dictionary.DataDictionary`.

:func:`load_dataset` reads a ``.csv`` or ``.parquet`` file, checks every value against the
dictionary (guessed with :func:`generators.dictionary.infer_dictionary` when none is given)
and either returns a typed DataFrame or raises one :class:`DatasetError` listing *every*
problem, one line each::

    trial.csv: column 'time': rows 3, 7, 12 (and 40 more): must be greater than 0 (got 0, -2)

Row numbers
-----------
Rows are numbered as a spreadsheet numbers them: the header is row 1 and the first data row
is row 2. Parquet files, which have no header line, are numbered the same way (the first
record is row 2), so that one convention holds for both formats. CSV rows in which every
cell is empty (blank lines, or lines of delimiters only) are skipped without changing the
numbers of the other rows; a cell reading ``NA`` is not empty but missing.

Missing values
--------------
A cell is missing when it is empty or blank, or holds one of the usual spellings of a
missing value (``NA``, ``N/A``, ``NaN``, ``nan``, ``null``, ``NULL``, ``None``, ``<NA>``,
``#N/A``…, see :data:`generators.cells.MISSING_TOKENS`), or is null in a Parquet file.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generators.cells import (
    _ARROW_TEXT,
    DatasetError,
    _check_names,
    _labels,
    _missing,
    _number,
    _numbers,
    _values,
)
from generators.dictionary import ColumnSpec, DataDictionary, infer_dictionary

__all__ = [
    "load_dataset",
    # defined in generators.cells and generators.dictionary, importable from here
    "ColumnSpec",
    "DataDictionary",
    "DatasetError",
    "infer_dictionary",
]

_SHOWN_ROWS = 5  # row numbers listed before "(and N more)"
_LARGEST_WHOLE = 2**53  # whole numbers beyond this are not exact as floats


# ----------------------------------------------------------------------------- reading
def _read(path: Path, source: str) -> pd.DataFrame:
    """The file's cells, indexed by spreadsheet row number; CSV cells are text."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DatasetError(
            [
                f"{source}: cannot read files ending {path.suffix or '(no extension)'!r}; "
                "use a .csv or .parquet file"
            ]
        )
    if not path.is_file():
        raise DatasetError([f"{source}: no such file"])
    try:
        if suffix == ".csv":
            cells = pd.read_csv(
                path,
                header=None,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
            header = [_header(v) for v in cells.iloc[0]] if len(cells) else []
            frame = cells.iloc[1:].copy()
            frame.columns = header
            frame.index = pd.RangeIndex(2, len(cells) + 1)
        else:
            frame = pd.read_parquet(path)
            frame.index = pd.RangeIndex(2, len(frame) + 2)
    except pd.errors.EmptyDataError:
        raise DatasetError([f"{source}: the file is empty; expected a header row"]) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(
            [f"{source}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8"]
        ) from None
    except (OSError, ValueError, TypeError, pd.errors.ParserError) as exc:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatasetError([f"{source}: cannot read as {kind}: {reason}"]) from None
    _check_names(list(frame.columns), source)
    if suffix == ".parquet":
        return frame
    blank = np.ones(len(frame), dtype=bool)
    for name in frame.columns:  # CSV cells are text, or null in a short row
        cells = frame[name].astype(_ARROW_TEXT).str.strip()
        blank &= (cells == "").to_numpy(dtype=bool, na_value=True)
    return frame.loc[~blank]


def _header(cell: Any) -> Any:
    return cell.strip() if isinstance(cell, str) else cell


# ----------------------------------------------------------------------------- validation
def _rows(numbers: Iterable[int]) -> str:
    numbers = list(numbers)
    shown = ", ".join(str(n) for n in numbers[:_SHOWN_ROWS])
    more = len(numbers) - _SHOWN_ROWS
    word = "row" if len(numbers) == 1 else "rows"
    return f"{word} {shown}" + (f" (and {more} more)" if more > 0 else "")


class _Report:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def add(self, column: str, message: str, rows: Iterable[int] | None = None) -> None:
        where = f"{self.source}: column {column!r}:"
        if rows is not None:
            where += f" {_rows(rows)}:"
        self.problems.append(f"{where} {message}")


def _bounds_text(spec: ColumnSpec) -> str:
    if spec.minimum is not None and spec.maximum is not None:
        return f"between {_number(spec.minimum)} and {_number(spec.maximum)}"
    if spec.minimum is not None:
        return f"at least {_number(spec.minimum)}"
    return f"at most {_number(spec.maximum)}"


def _check_column(
    series: pd.Series, spec: ColumnSpec, rows: np.ndarray, report: _Report
) -> tuple[np.ndarray, np.ndarray]:
    """Check one column; return its values (numbers, or labels) and where they are valid."""
    name = spec.name
    missing = _missing(series)
    if missing.any() and not spec.allow_missing:
        report.add(
            name,
            "missing value; this column must have a value in every row "
            "(or allow_missing: true in the data dictionary)",
            rows[missing],
        )
    present = ~missing
    if spec.type in ("categorical", "ordinal"):
        labels = _labels(series, missing)
        valid = present.copy()
        if spec.categories is not None:
            allowed = list(spec.categories)
            known = pd.Series(labels, dtype=object).isin(allowed).to_numpy(dtype=bool)
            unknown = present & ~known
            if unknown.any():
                report.add(
                    name,
                    f"unknown category {_values(labels[unknown])}; allowed: "
                    f"{', '.join(repr(c) for c in spec.categories)}",
                    rows[unknown],
                )
            valid &= ~unknown
        return labels, valid

    values, bad = _numbers(series, missing)
    kind = {"continuous": "a number", "integer": "a whole number", "binary": "0 or 1"}[spec.type]
    if bad.any():
        given = series.to_numpy(dtype=object)[bad]
        infinite = all(isinstance(v, float | np.floating) for v in given)
        report.add(
            name,
            f"not a {'finite ' if infinite else ''}number (got {_values(given)}); expected {kind}",
            rows[bad],
        )
    valid = present & ~bad
    if spec.type == "binary":
        wrong = valid & ~np.isin(values, (0.0, 1.0))
        if wrong.any():
            what = "an event indicator" if spec.role == "event" else "a binary column"
            allowed = "1 (event) or 0 (censored)" if spec.role == "event" else "0 or 1"
            report.add(
                name,
                f"{what} must be {allowed} (got {_values(values[wrong])})",
                rows[wrong],
            )
        return values, valid & ~wrong
    if spec.type == "integer":
        fraction = valid & (values != np.round(values))
        if fraction.any():
            report.add(
                name, f"not a whole number (got {_values(values[fraction])})", rows[fraction]
            )
            valid &= ~fraction
        huge = valid & (np.abs(values) > _LARGEST_WHOLE)
        if huge.any():
            report.add(
                name,
                f"whole number too large to be read exactly (got {_values(values[huge])}); "
                f"allowed: at most {_LARGEST_WHOLE} in absolute value",
                rows[huge],
            )
            valid &= ~huge
    if spec.role == "time":
        nonpositive = valid & (values <= 0)
        if nonpositive.any():
            report.add(
                name,
                f"zero or negative time (got {_values(values[nonpositive])}); "
                "a time to event or censoring must be greater than 0",
                rows[nonpositive],
            )
            valid &= ~nonpositive
    low = -np.inf if spec.minimum is None else spec.minimum
    high = np.inf if spec.maximum is None else spec.maximum
    outside = valid & ((values < low) | (values > high))
    if outside.any():
        report.add(
            name,
            f"out of range (got {_values(values[outside])}); allowed: {_bounds_text(spec)}",
            rows[outside],
        )
        valid &= ~outside
    return values, valid


def _check_ids(
    spec: ColumnSpec, values: np.ndarray, valid: np.ndarray, rows: np.ndarray, report: _Report
) -> None:
    keys = pd.Series(values[valid], dtype=object)
    duplicated = keys.duplicated(keep=False).to_numpy()
    if duplicated.any():
        report.add(
            spec.name,
            f"duplicated id {_values(keys[duplicated])}; each patient must appear once",
            rows[valid][duplicated],
        )


def _typed(values: np.ndarray, spec: ColumnSpec, present: np.ndarray) -> Any:
    if spec.type in ("categorical", "ordinal"):
        if spec.categories is None:  # an id with free labels
            return pd.array(values, dtype=object)
        return pd.Categorical(values, categories=spec.categories, ordered=spec.type == "ordinal")
    if spec.role == "time" or spec.type == "continuous":
        return values.astype(float)
    if present.all():
        return values.astype(np.int64)
    return pd.array(
        [int(v) if ok else pd.NA for v, ok in zip(values, present, strict=True)], dtype="Int64"
    )


def load_dataset(
    path: str | os.PathLike[str],
    dictionary: DataDictionary | None = None,
    *,
    min_events: int = 10,
) -> pd.DataFrame:
    """Read a patient-level data file and check it against a data dictionary.

    Every problem of the file is found before raising, and reported together, one line
    each: ``FILE: column 'x': rows 3, 7, 12 (and 40 more): what is wrong; what is allowed``.
    Rows are numbered as in a spreadsheet: the header is row 1, the first data row is
    row 2 (a Parquet file's first record is row 2 too). CSV rows where every cell is empty
    (blank lines) are skipped, the others keep their numbers.

    The checks: columns named in the dictionary but absent from the file; columns in the
    file not in the dictionary; missing values where ``allow_missing`` is false; text in
    numeric columns; whole numbers in ``integer`` columns; values outside ``minimum`` and
    ``maximum``; labels not in ``categories``; ``binary`` and ``event`` values other than
    0 and 1; zero or negative times; duplicated ids; and, when the dictionary has a time
    and an event column, fewer than ``min_events`` events.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` (UTF-8, comma-separated, header row) or ``.parquet`` file.
    dictionary : DataDictionary, optional
        What the columns are; guessed from the file by
        :func:`~generators.dictionary.infer_dictionary` when not given (so only the checks
        the guess implies are made: positive times, 0/1 events, unique ids, enough events).
    min_events : int, default 10
        The fewest events (rows with ``event == 1``) that are enough to fit a model.

    Returns
    -------
    pandas.DataFrame
        One row per data row (index from 0), in the file's column order, typed by the
        dictionary: ``continuous`` and ``time`` as float; ``integer``, ``binary`` and
        ``event`` as int64 (nullable ``Int64`` where values are missing); ``categorical``
        as :class:`pandas.Categorical` with the dictionary's categories, ``ordinal`` the
        same and ordered. ``attrs["dictionary"]`` holds the dictionary and
        ``attrs["source"]`` the path.

    Raises
    ------
    DatasetError
        (a :class:`~trials.exceptions.DataError`) with every problem in ``.problems``;
        also when the file cannot be read or is neither ``.csv`` nor ``.parquet``.

    Examples
    --------
    >>> import tempfile
    >>> from trials.exceptions import DataError
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "trial.csv").write_text("time,event\\n5.0,1\\n-1,1\\n3,2\\n")
    >>> dictionary = DataDictionary(columns=[
    ...     ColumnSpec(name="time", role="time", type="continuous", unit="months"),
    ...     ColumnSpec(name="event", role="event", type="binary"),
    ... ])
    >>> try:
    ...     load_dataset(folder / "trial.csv", dictionary, min_events=1)
    ... except DataError as error:
    ...     for problem in error.problems:
    ...         print(problem.removeprefix(str(folder / "trial.csv") + ": "))
    column 'time': row 3: zero or negative time (got -1); a time to event or censoring must be greater than 0
    column 'event': row 4: an event indicator must be 1 (event) or 0 (censored) (got 2)
    """  # noqa: E501
    source = str(path)
    path = Path(os.fspath(path))
    frame = _read(path, source)
    if dictionary is None:
        dictionary = infer_dictionary(frame)
    report = _Report(source)
    rows = frame.index.to_numpy()
    declared = {spec.name for spec in dictionary.columns}
    for spec in dictionary.columns:
        if spec.name not in frame.columns:
            close = difflib.get_close_matches(spec.name, list(frame.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            report.add(
                spec.name,
                "missing from the file; the data dictionary names it "
                f"(columns in the file: {_values(frame.columns, limit=12)}){hint}",
            )
    for name in frame.columns:
        if name not in declared:
            report.add(
                name,
                "not in the data dictionary; describe it there (e.g. role: covariate) "
                "or remove it from the file",
            )
    if frame.empty:
        report.problems.append(f"{source}: no data rows; expected a row per patient")
    typed: dict[str, Any] = {}
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for spec in dictionary.columns:
        if spec.name not in frame.columns:
            continue
        series = frame[spec.name]
        values, valid = _check_column(series, spec, rows, report)
        checked[spec.name] = (values, valid)
        if spec.role == "id":
            _check_ids(spec, values, valid, rows, report)
        typed[spec.name] = (values, ~_missing(series))
    event = dictionary.by_role("event")
    if (
        event is not None
        and dictionary.by_role("time") is not None
        and event.name in checked
        and not frame.empty
    ):
        values, valid = checked[event.name]
        n_events = int((valid & (values == 1.0)).sum())
        if n_events < min_events:
            report.add(
                event.name,
                f"too few events to fit a model: {n_events} "
                f"{'event' if n_events == 1 else 'events'} (rows with 1), "
                f"at least {min_events} needed (min_events)",
            )
    if report.problems:
        raise DatasetError(report.problems)
    out = pd.DataFrame(
        {
            name: _typed(typed[name][0], dictionary.column(name), typed[name][1])
            for name in frame.columns
        }
    )
    out.attrs["dictionary"] = dictionary
    out.attrs["source"] = source
    return out
