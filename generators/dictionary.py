"""The data dictionary of a patient-level data set: what each column is.

A :class:`DataDictionary` says what each column of a data set is: its role in the analysis
(``id``, ``arm``, ``time``, ``event``, ``covariate``, ``outcome``), its type (``continuous``,
``integer``, ``binary``, ``categorical``, ``ordinal``), its unit, bounds, categories and
whether it may hold missing values. It is written as YAML (:func:`dictionary_to_yaml`) and
read back through the protocol loader (:func:`load_dictionary`), so that a bad dictionary
is reported like a bad protocol: file, line, field, what is wrong.

The dictionary of a data set without one is guessed from its values and column names by
:func:`infer_dictionary`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
import pydantic
import yaml

from generators.cells import (
    _as_number,
    _check_names,
    _label,
    _labels,
    _missing,
    _number,
    _numbers,
    _values,
)
from trials.loader import load_yaml_model

__all__ = [
    "ColumnSpec",
    "DataDictionary",
    "dictionary_to_yaml",
    "infer_dictionary",
    "load_dictionary",
]

Role = Literal["id", "arm", "time", "event", "covariate", "outcome"]
ColumnType = Literal["continuous", "integer", "binary", "categorical", "ordinal"]

_SINGLE_ROLES = ("id", "arm", "time", "event")
_MAX_INFERRED_LEVELS = 10  # integer columns with at most this many values are categorical


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

