"""Cells of a patient-level data file: which are missing, how they read as numbers and as
category labels, how values are quoted in the messages of a :class:`DatasetError`, and the
check of the column names (the header cells).

Shared by the data dictionary (:mod:`generators.dictionary`, which guesses a dictionary from
the values) and the data files' reader (:mod:`generators.data`).

Missing values
--------------
A cell is missing when it is empty or blank, or holds one of the usual spellings of a
missing value (``NA``, ``N/A``, ``NaN``, ``nan``, ``null``, ``NULL``, ``None``, ``<NA>``,
``#N/A``…, see :data:`MISSING_TOKENS`), or is null in a Parquet file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from trials.exceptions import DataError

__all__ = ["MISSING_TOKENS", "DatasetError"]

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

_SHOWN_VALUES = 3  # offending values quoted in a message


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
