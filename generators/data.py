"""Patient-level data in: a data dictionary, and CSV or Parquet files validated against it.

A :class:`DataDictionary` says what each column of a data set is: its role in the analysis
(``id``, ``arm``, ``time``, ``event``, ``covariate``, ``outcome``), its type (``continuous``,
``integer``, ``binary``, ``categorical``, ``ordinal``), its unit, bounds, categories and
whether it may hold missing values. It is written as YAML (:func:`dictionary_to_yaml`) and
read back through the protocol loader (:func:`load_dictionary`), so that a bad dictionary
is reported like a bad protocol: file, line, field, what is wrong.

:func:`load_dataset` reads a ``.csv`` or ``.parquet`` file, checks every value against the
dictionary (guessed with :func:`infer_dictionary` when none is given) and either returns a
typed DataFrame or raises one :class:`DatasetError` listing *every* problem, one line each::

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
``#N/A``…, see :data:`MISSING_TOKENS`), or is null in a Parquet file.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import yaml

from trials.exceptions import DataError
from trials.loader import load_yaml_model

__all__ = [
    "MISSING_TOKENS",
    "ColumnSpec",
    "DataDictionary",
    "DatasetError",
    "dictionary_to_yaml",
    "infer_dictionary",
    "load_dataset",
    "load_dictionary",
]

Role = Literal["id", "arm", "time", "event", "covariate", "outcome"]
ColumnType = Literal["continuous", "integer", "binary", "categorical", "ordinal"]

#: Cell contents (after stripping blanks) read as a missing value.
MISSING_TOKENS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)

_SINGLE_ROLES = ("id", "arm", "time", "event")
_SHOWN_ROWS = 5  # row numbers listed before "(and N more)"
_SHOWN_VALUES = 3  # offending values quoted in a message
_LARGEST_WHOLE = 2**53  # whole numbers beyond this are not exact as floats
_MAX_INFERRED_LEVELS = 10  # integer columns with at most this many values are categorical


class DatasetError(DataError):
    """A data file or data dictionary has problems; ``problems`` lists every one.

    Parameters
    ----------
    problems : list of str
        One line per problem, ``FILE: column 'x': rows 3, 7: what is wrong; what is allowed``.
    """

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ----------------------------------------------------------------------------- the dictionary
class ColumnSpec(pydantic.BaseModel):
    """One column of a data set.

    Parameters
    ----------
    name : str
        The column's name in the file (the header cell).
    role : {"id", "arm", "time", "event", "covariate", "outcome"}, default "covariate"
        What the column is in the analysis. ``time`` is the time to the event or to
        censoring (positive); ``event`` is 1 for an event, 0 for censoring.
    type : {"continuous", "integer", "binary", "categorical", "ordinal"}
        How its values are read. ``binary`` values are 0 and 1; ``categorical`` and
        ``ordinal`` values are labels from ``categories``.
    unit : str, optional
        Unit of measurement (``"years"``, ``"mm"``).
    minimum, maximum : float, optional
        Bounds (inclusive) of a ``continuous`` or ``integer`` column.
    categories : list of str, optional
        The allowed labels of a ``categorical`` or ``ordinal`` column (required for those,
        except for an ``id`` column, whose labels are free); for ``ordinal`` the order of
        the list is the order of the levels, lowest first.
    allow_missing : bool, default False
        Whether the column may hold missing values.
    description : str, optional
        Free text.

    Notes
    -----
    ``time`` columns are ``continuous`` or ``integer``; ``event`` columns are ``binary``;
    ``arm`` columns are ``categorical``, ``ordinal`` (dose levels) or ``binary``.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    name: str = pydantic.Field(min_length=1)
    role: Role = "covariate"
    type: ColumnType
    unit: str | None = None
    minimum: float | None = pydantic.Field(default=None, allow_inf_nan=False)
    maximum: float | None = pydantic.Field(default=None, allow_inf_nan=False)
    categories: list[str] | None = None
    allow_missing: bool = False
    description: str | None = None

    @pydantic.field_validator("categories", mode="before")
    @classmethod
    def _categories_are_text(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        labels = []
        for item in value:
            if isinstance(item, bool):
                raise ValueError(
                    f"category {str(item).lower()} was read as a boolean: YAML reads yes, no, "
                    "on, off, true and false unquoted as booleans; quote it ('yes')"
                )
            if isinstance(item, int | float):
                item = _label(item)
            labels.append(item)
        return labels

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        problems: list[str] = []
        levels = self.type in ("categorical", "ordinal")
        if levels and self.categories is None and self.role != "id":
            problems.append(f"a {self.type} column needs 'categories' (the allowed labels)")
        if not levels and self.categories is not None:
            problems.append(
                f"'categories' are for categorical and ordinal columns, not {self.type}"
            )
        if self.categories is not None:
            if not self.categories:
                problems.append("'categories' must list at least one label")
            repeated = sorted({c for c in self.categories if self.categories.count(c) > 1})
            if repeated:
                problems.append(f"'categories' lists {_values(repeated)} more than once")
        bounded = self.minimum is not None or self.maximum is not None
        if bounded and self.type not in ("continuous", "integer"):
            problems.append(
                f"'minimum' and 'maximum' are for continuous and integer columns, not {self.type}"
            )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            problems.append(
                f"'minimum' ({_number(self.minimum)}) is greater than "
                f"'maximum' ({_number(self.maximum)})"
            )
        allowed = {
            "time": ("continuous", "integer"),
            "event": ("binary",),
            "arm": ("categorical", "ordinal", "binary"),
        }.get(self.role)
        if allowed and self.type not in allowed:
            problems.append(
                f"a column with role {self.role!r} must have type "
                f"{' or '.join(repr(t) for t in allowed)} (got {self.type!r})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DataDictionary(pydantic.BaseModel):
    """What every column of a patient-level data set is.

    Parameters
    ----------
    columns : list of ColumnSpec
        One entry per column, names unique. At most one column each has the role ``id``,
        ``arm``, ``time`` and ``event``; a ``time`` column needs an ``event`` column and
        the other way round.

    Examples
    --------
    >>> d = DataDictionary(columns=[
    ...     ColumnSpec(name="time", role="time", type="continuous", unit="days"),
    ...     ColumnSpec(name="event", role="event", type="binary"),
    ... ])
    >>> d.column("time").unit
    'days'
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    columns: list[ColumnSpec] = pydantic.Field(min_length=1)

    @pydantic.field_validator("columns")
    @classmethod
    def _roles(cls, columns: list[ColumnSpec]) -> list[ColumnSpec]:
        problems: list[str] = []
        names = [c.name for c in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"column names must be unique: {_values(repeated)} repeated")
        for role in _SINGLE_ROLES:
            holders = [c.name for c in columns if c.role == role]
            if len(holders) > 1:
                problems.append(
                    f"at most one column may have role {role!r} (got {_values(holders)})"
                )
        roles = {c.role for c in columns}
        if "time" in roles and "event" not in roles:
            problems.append("a 'time' column needs an 'event' column (1 = event, 0 = censored)")
        if "event" in roles and "time" not in roles:
            problems.append("an 'event' column needs a 'time' column (time to event or censoring)")
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    def column(self, name: str) -> ColumnSpec:
        """The specification of the column ``name``."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def by_role(self, role: str) -> ColumnSpec | None:
        """The column with a single-column role (``id``, ``arm``, ``time``, ``event``)."""
        return next((c for c in self.columns if c.role == role), None)


def dictionary_to_yaml(dictionary: DataDictionary) -> str:
    """Write a data dictionary as YAML that :func:`load_dictionary` reads back equal.

    Parameters
    ----------
    dictionary : DataDictionary

    Returns
    -------
    str
        The YAML document; unset fields and ``allow_missing: false`` are omitted.
    """
    document = dictionary.model_dump(mode="json", exclude_none=True)
    for column in document["columns"]:
        if not column["allow_missing"]:
            del column["allow_missing"]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def load_dictionary(path: str | os.PathLike[str]) -> DataDictionary:
    """Read a data dictionary from a YAML file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    DataDictionary

    Raises
    ------
    trials.exceptions.ProtocolError
        With every problem of the file (file:line:column, field, what is wrong).
    """
    return load_yaml_model(path, DataDictionary)


# ----------------------------------------------------------------------------- values
_ARROW_TEXT = pd.ArrowDtype(pa.string())
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: float) -> str:
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _label(value: Any) -> str:
    """A value as a category label (``1`` and ``1.0`` are both ``"1"``)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _number(float(value))
    return str(value)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _label(value)
    return text if len(text) <= 30 else text[:29] + "…"


def _values(values: Iterable[Any], limit: int = _SHOWN_VALUES) -> str:
    """Distinct values for a message: the first few, then how many more."""
    shown = list(dict.fromkeys(_show(v) for v in values))
    more = len(shown) - limit
    return ", ".join(shown[:limit]) + (f" and {more} more" if more > 0 else "")


def _texts(series: pd.Series) -> pd.Series | None:
    """The cells stripped of blanks (null where null), when all the cells are text or null.

    The result is Arrow-backed text, so that the string operations on it are vectorised.
    """
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return None
    return series.astype(_ARROW_TEXT).str.strip()


def _missing(series: pd.Series) -> np.ndarray:
    """Which cells hold a missing value."""
    mask = series.isna().to_numpy(dtype=bool)
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        texts = _texts(series)
        if texts is not None:
            mask |= texts.isin(list(MISSING_TOKENS)).to_numpy(dtype=bool, na_value=False)
        else:
            mask |= np.array(
                [isinstance(v, str) and v.strip() in MISSING_TOKENS for v in series.to_numpy()],
                dtype=bool,
            )
    return mask


def _numbers(series: pd.Series, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read a column as numbers: the values (NaN where not a number) and where text failed.

    Booleans read as 0 and 1. Text must be a decimal number (``12``, ``-0.5``, ``1e3``);
    infinite values count as not numbers.
    """
    n = len(series)
    values = np.full(n, np.nan)
    bad = np.zeros(n, dtype=bool)
    dtype = series.dtype
    numeric = pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)
    if numeric and not isinstance(dtype, pd.CategoricalDtype):
        raw = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(raw)
        values[finite] = raw[finite]
        return values, ~finite & ~missing
    texts = _texts(series)
    if texts is not None:
        ok = texts.str.fullmatch(_NUMBER.pattern).to_numpy(dtype=bool, na_value=False)
        ok &= ~missing
        with np.errstate(over="ignore"):
            parsed = texts[ok].to_numpy(dtype=object).astype(float)
        finite = np.isfinite(parsed)
        values[np.flatnonzero(ok)[finite]] = parsed[finite]
        return values, ~missing & np.isnan(values)
    for i, item in enumerate(series.to_numpy(dtype=object)):
        if missing[i]:
            continue
        number = _as_number(item)
        if number is None:
            bad[i] = True
        else:
            values[i] = number
    return values, bad


def _as_number(item: Any) -> float | None:
    if isinstance(item, bool | np.bool_):
        return float(item)
    if isinstance(item, int | np.integer):
        try:
            number = float(item)
        except OverflowError:
            return None
    elif isinstance(item, float | np.floating):
        number = float(item)
    elif isinstance(item, str) and _NUMBER.fullmatch(item.strip()):
        number = float(item.strip())
    else:
        return None
    return number if math.isfinite(number) else None


def _labels(series: pd.Series, missing: np.ndarray) -> np.ndarray:
    """A column as text labels (None where missing)."""
    texts = _texts(series)
    if texts is not None:
        out = texts.to_numpy(dtype=object, na_value=None)
    else:
        out = np.array([_label(item) for item in series.to_numpy(dtype=object)], dtype=object)
    out[missing] = None
    return out


# ----------------------------------------------------------------------------- inference
def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


_ROLE_NAMES = {
    "id": {
        "id",
        "patient",
        "patientid",
        "patid",
        "pid",
        "ptid",
        "subject",
        "subjectid",
        "subjid",
        "usubjid",
        "participant",
        "participantid",
    },
    "arm": {"arm", "treatment", "trt", "treat", "group", "tx", "rx", "therapy", "armcd"},
    "time": {
        "time",
        "duration",
        "survival",
        "timetoevent",
        "futime",
        "survtime",
        "stime",
        "followup",
        "tte",
    },
    "event": {
        "event",
        "status",
        "death",
        "dead",
        "died",
        "cens",
        "censor",
        "censored",
        "censoring",
        "fustat",
    },
}
# Words inside a longer name (``event_time``, ``horTh``) that suggest a role.
_ROLE_TOKENS = {
    "id": {"id"},
    "arm": {"arm", "treatment", "trt", "treat", "therapy", "th", "tx", "rx", "group"},
    "time": {"time", "duration", "futime", "survtime"},
    "event": {"event", "status", "death", "cens", "censor", "censored", "fustat"},
}
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9}


def _role_rank(name: str, role: str) -> int | None:
    """How well ``name`` suggests ``role``: 0 for the whole name, 1 for a word in it."""
    tokens = _tokens(name)
    if "".join(tokens) in _ROLE_NAMES[role]:
        return 0
    if role == "id":
        return 1 if tokens and tokens[-1] == "id" else None
    return 1 if any(t in _ROLE_TOKENS[role] for t in tokens) else None


def _ordered_labels(labels: Iterable[str]) -> tuple[list[str], bool]:
    """Labels in order, and whether they are ordinal (roman numerals: tumour grades)."""
    labels = sorted(set(labels))
    if labels and all(label.upper() in _ROMAN for label in labels):
        return sorted(labels, key=lambda label: _ROMAN[label.upper()]), True
    numbers = [_as_number(label) for label in labels]
    if labels and all(v is not None for v in numbers):
        return [label for _, label in sorted(zip(numbers, labels, strict=True))], False
    return labels, False


def infer_dictionary(frame: pd.DataFrame) -> DataDictionary:
    """Guess a data dictionary from a DataFrame.

    Roles come from the column names; types and bounds from the values.

    - ``id``: a name like ``id``, ``patient``, ``subject``, ``usubjid`` or ending in ``_id``;
    - ``arm``: a name like ``arm``, ``treatment``, ``trt``, ``group`` or with such a word in it
      (``horTh``: hormonal therapy), with at most 10 distinct values; always categorical;
    - ``time``: a numeric column named like ``time``, ``duration``, ``survival``,
      ``time_to_event``, ``futime``;
    - ``event``: a column named like ``event``, ``status``, ``death`` or ``cens``/``censored``
      whose values are all 0 or 1. A censoring indicator is *not* inverted: 1 is taken as
      the event, and the column's description says to check it;
    - a ``time`` without an ``event`` (or the reverse) is left a covariate; among several
      candidates for a role the best named, then the first, wins.

    Types: ``binary`` for values all 0/1 (or booleans); ``categorical`` for text, or for
    integers with at most 10 distinct values (roman numerals such as tumour grades I, II,
    III are ``ordinal``); ``integer`` for other whole numbers; ``continuous`` otherwise.
    ``minimum`` and ``maximum`` are the observed range (not for an id); ``allow_missing`` is
    set when the column has a missing value.

    Parameters
    ----------
    frame : pandas.DataFrame
        Column names must be distinct non-empty strings.

    Returns
    -------
    DataDictionary

    Raises
    ------
    DatasetError
        When the frame has no columns or its column names are not distinct non-empty text.

    Examples
    --------
    >>> frame = pd.DataFrame({"futime": [3.5, 7.0, 2.2], "death": [1, 0, 1]})
    >>> [(c.name, c.role, c.type) for c in infer_dictionary(frame).columns]
    [('futime', 'time', 'continuous'), ('death', 'event', 'binary')]
    """
    _check_names(list(frame.columns), "the DataFrame")
    facts = {name: _facts(frame[name]) for name in frame.columns}
    roles: dict[str, str] = {}
    for role in _SINGLE_ROLES:
        candidates = []
        for position, name in enumerate(frame.columns):
            rank = _role_rank(name, role)
            if name in roles or rank is None or not _fits_role(role, facts[name]):
                continue
            candidates.append((rank, position, name))
        if candidates:
            roles[min(candidates)[2]] = role
    if ("time" in roles.values()) != ("event" in roles.values()):
        roles = {name: role for name, role in roles.items() if role not in ("time", "event")}
    return DataDictionary(
        columns=[_spec(name, roles.get(name, "covariate"), facts[name]) for name in frame.columns]
    )


def _facts(series: pd.Series) -> dict[str, Any]:
    missing = _missing(series)
    values, bad = _numbers(series, missing)
    present = ~missing
    numeric = bool(present.any()) and not bad.any()
    observed = values[present] if numeric else np.array([])
    return {
        "missing": bool(missing.any()),
        "numeric": numeric,
        "values": observed,
        "labels": [label for label in _labels(series, missing) if label is not None],
        "binary": numeric and bool(np.isin(observed, (0.0, 1.0)).all()),
        "whole": numeric and bool((observed == np.round(observed)).all()),
    }


def _fits_role(role: str, facts: dict[str, Any]) -> bool:
    if role == "arm":
        return 0 < len(set(facts["labels"])) <= _MAX_INFERRED_LEVELS
    if role == "time":
        return facts["numeric"]
    if role == "event":
        return facts["binary"]
    return True


def _spec(name: str, role: str, facts: dict[str, Any]) -> ColumnSpec:
    fields: dict[str, Any] = {"name": name, "role": role, "allow_missing": facts["missing"]}
    observed = facts["values"]
    few = len(set(facts["labels"])) <= _MAX_INFERRED_LEVELS
    if role == "event":
        fields["type"] = "binary"
        if _tokens(name) and _tokens(name)[0].startswith("cens"):
            fields["description"] = (
                "named like a censoring indicator: read as 1 = event, 0 = censored; "
                "check this, the inversion is not done automatically"
            )
    elif not facts["labels"]:  # no value at all
        fields["type"] = "continuous"
    elif role == "id" and not facts["numeric"]:
        fields["type"] = "categorical"  # free labels
    elif role == "arm" or (
        role not in ("time", "id")
        and not facts["binary"]
        and (not facts["numeric"] or (facts["whole"] and few))
    ):
        categories, ordinal = _ordered_labels(facts["labels"])
        fields["type"] = "ordinal" if ordinal and role != "arm" else "categorical"
        fields["categories"] = categories
    elif facts["binary"] and role not in ("time", "id"):
        fields["type"] = "binary"
    else:
        fields["type"] = "integer" if facts["whole"] else "continuous"
        if role != "id":
            fields["minimum"] = float(observed.min())
            fields["maximum"] = float(observed.max())
    return ColumnSpec(**fields)


# ----------------------------------------------------------------------------- reading
def _check_names(names: list[Any], where: str) -> None:
    problems = []
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: column {position} has no name (got {_show(name)})")
    text = [n for n in names if isinstance(n, str)]
    repeated = sorted({n for n in text if text.count(n) > 1})
    if repeated:
        problems.append(f"{where}: column names must be unique: {_values(repeated)} repeated")
    if not names:
        problems.append(f"{where}: no columns")
    if problems:
        raise DatasetError(problems)


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
        What the columns are; guessed from the file by :func:`infer_dictionary` when not
        given (so only the checks the guess implies are made: positive times, 0/1 events,
        unique ids, enough events).
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
