"""Load a YAML file into a frozen pydantic model, reporting every problem at once.

This is the boundary of the product's input files: whatever the bytes of the file, the
loader either returns a validated model instance or raises one
:class:`~trials.exceptions.ProtocolError` holding *all* the problems it found, each
naming the file, the line, the column and the field (``arms[1].allocation``).

The document is read by :mod:`trials.yamlsource` (:func:`parse_yaml`), which keeps the
line and column of every value; this module validates the data against the model and
words pydantic's errors for the person who wrote the file.

The loader is generic over the model class: it knows nothing about protocols. Semantic
rules that need the whole validated model (``600 target events but only 500 patients``)
are passed as *checks*, callables that take the model instance and yield
``(loc, message)`` pairs; the loader maps each ``loc`` to its line like any schema error.

Unions
------
A value that matches no member of a plain union (``float | Literal["auto"]``) gives one
problem listing what each member expected. When the members differ in shape (a number
or a mapping, as ``hazard_ratio: 0.7`` or ``hazard_ratio: {drug_x: 0.7}``), the shape of
the value written tells which member was meant, and only that member's problems are
reported: ``hazard_ratio: -0.7`` is ``must be greater than 0``, not also ``expected a
mapping``.
"""

from __future__ import annotations

import collections.abc
import difflib
import enum
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic

from trials.exceptions import Problem, ProtocolError
from trials.yamlsource import (
    MAX_DEPTH,
    MAX_VALUES,
    Loc,
    LocatedYAML,
    format_field,
    parse_field,
    parse_yaml,
    sort_problems,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "Check",
    "Loc",
    "LocatedYAML",
    "format_field",
    "load_yaml_model",
    "load_yaml_string",
    "parse_field",
    "parse_yaml",
    "validate_located",
]

Check = Callable[[Any], Iterable[tuple[Loc | Sequence[str | int] | str, str]]]
"""A semantic check: takes the validated model, yields ``(loc, message)`` problems."""

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


# ----------------------------------------------------------------------------- model types
def _leaves(annotation: Any) -> list[Any]:
    """Flatten Annotated, Optional and Union into the member types."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _names(model: type[pydantic.BaseModel]) -> dict[str, str]:
    """The keys a model accepts (field names and string aliases), to their field names."""
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        names[name] = name
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names[alias] = name
    return names


_SEQUENCES = {
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.Set,
    collections.abc.MutableSequence,
}
_MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}


def _step(tp: Any, item: Any) -> list[Any]:
    if _is_model(tp):
        name = _names(tp).get(item) if isinstance(item, str) else None
        return [] if name is None else _leaves(tp.model_fields[name].annotation)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _SEQUENCES and isinstance(item, int) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return _leaves(args[item]) if 0 <= item < len(args) else []
        return _leaves(args[0])
    if origin in _MAPPINGS and isinstance(item, str) and len(args) == 2:
        return _leaves(args[1])
    return []


def _is_tag_of(tp: Any, item: Any) -> bool:
    """Whether ``item`` is pydantic's tag for union member ``tp``."""
    if not isinstance(item, str):
        return False
    if getattr(tp, "__name__", None) == item:
        return True
    if _is_model(tp):
        for info in tp.model_fields.values():
            for leaf in _leaves(info.annotation):
                if typing.get_origin(leaf) is typing.Literal and item in typing.get_args(leaf):
                    return True
    return False


def _types_at(model_cls: type, loc: Iterable[Any]) -> list[Any]:
    """The types the schema allows at ``loc`` (pydantic's loc, tags included)."""
    candidates = _leaves(model_cls)
    for item in loc:
        following = [leaf for tp in candidates for leaf in _step(tp, item)]
        if following:
            candidates = following
            continue
        tagged = [tp for tp in candidates if _is_tag_of(tp, item)]
        if tagged:
            candidates = tagged
        elif not isinstance(item, str):
            return []
        # else: a tag we cannot interpret (e.g. 'function-after[...]'): keep the candidates
    return candidates


def _allowed_keys(model_cls: type, loc: Iterable[Any]) -> list[str]:
    keys: dict[str, None] = {}
    for tp in _types_at(model_cls, loc):
        if _is_model(tp):
            keys.update(dict.fromkeys(_names(tp)))
    return list(keys)


def _allowed_values(model_cls: type, loc: Iterable[Any]) -> list[Any]:
    values: list[Any] = []
    for tp in _types_at(model_cls, loc):
        if typing.get_origin(tp) is typing.Literal:
            values.extend(typing.get_args(tp))
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            values.extend(member.value for member in tp)
    return values


# ----------------------------------------------------------------------------- messages
def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return _describe(value)


def _describe(value: Any) -> str:
    """Show a YAML value in a message."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        try:
            text = repr(value)
        except ValueError:  # more digits than Python will print
            return "a very large integer"
        return text if len(text) <= 40 else "a very large integer"
    if isinstance(value, float | str):
        return _clip(repr(value), 60)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    if hasattr(value, "isoformat"):
        return f"the date {value.isoformat()}"
    return f"a {type(value).__name__}"


def _choices(values: Sequence[Any], fallback: str) -> str:
    if values:
        return ", ".join(repr(v.value if isinstance(v, enum.Enum) else v) for v in values)
    head, sep, tail = fallback.rpartition(" or ")
    return f"{head}, {tail}" if sep else fallback


def _did_you_mean(given: Any, allowed: Iterable[Any]) -> str:
    if not isinstance(given, str):
        return ""
    names = [a for a in allowed if isinstance(a, str)]
    close = difflib.get_close_matches(given, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def _message(error: Mapping[str, Any], model_cls: type) -> str:
    """Human wording of one pydantic error."""
    kind = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    given = error.get("input")
    got = _describe(given)
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        key = loc[-1] if loc else ""
        allowed = _allowed_keys(model_cls, loc[:-1])
        hint = _did_you_mean(key, allowed)
        if not hint and allowed:
            hint = "; allowed keys: " + ", ".join(sorted(allowed))
        return f"unknown key {key!r}{hint}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {got}"
    if kind in ("int_type", "int_parsing", "int_parsing_size"):
        return f"expected an integer, got {got}"
    if kind == "int_from_float":
        return f"expected a whole number, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}"
    if kind == "string_type":
        scalar = given is not None and not isinstance(given, dict | list | bytes)
        quote = " (quote it to make it text)" if scalar else ""
        return f"expected text, got {got}{quote}"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"):
        return f"expected a list, got {got}"
    if kind in (
        "dict_type",
        "model_type",
        "model_attributes_type",
        "dataclass_type",
        "mapping_type",
    ):
        return f"expected a mapping of keys to values, got {got}"
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "greater than or equal to"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "less than or equal to"),
        "multiple_of": ("multiple_of", "a multiple of"),
    }
    if kind in bounds and bounds[kind][0] in ctx:
        name, words = bounds[kind]
        return f"must be {words} {_number(ctx[name])} (got {got})"
    if kind == "finite_number":
        return f"must be a finite number (got {got})"
    if kind in ("literal_error", "enum"):
        values = _allowed_values(model_cls, loc)
        choices = _choices(values, str(ctx.get("expected", "")))
        allowed = [v.value if isinstance(v, enum.Enum) else v for v in values]
        return f"must be one of {choices} (got {got}){_did_you_mean(given, allowed)}"
    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        expected = str(ctx.get("expected_tags", ""))
        tags = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
        tag = ctx.get("tag")
        return (
            f"{discriminator!r} must be one of {expected} (got {_describe(tag)})"
            f"{_did_you_mean(tag, tags)}"
        )
    if kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        return f"missing required field {discriminator!r}, which says what kind of entry this is"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        words = "at least" if kind == "too_short" else "at most"
        unit = "item" if bound == 1 else "items"
        return f"must have {words} {bound} {unit} (got {ctx['actual_length']})"
    message = str(error.get("msg", kind))
    for prefix in _PYDANTIC_PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


# ----------------------------------------------------------------------------- validation
def _starts_with(path: Loc, prefix: Loc) -> bool:
    return path[: len(prefix)] == prefix


@dataclass(frozen=True)
class _Drop:
    """An item of pydantic's loc that is not a key of the data: a union member's tag."""

    at: tuple[Any, ...]  # pydantic's loc before the tag: names the union it selects in
    real: Loc  # the path of the union's value in the data
    tag: Any


@dataclass
class _Located:
    real: Loc
    drops: tuple[_Drop, ...]  # outermost first
    kind: str  # pydantic's error type
    problem: Problem


def _drops(located: LocatedYAML, loc: tuple[Any, ...], is_key: bool) -> tuple[_Drop, ...]:
    drops = []
    prefix = located.resolve((), last_is_key=False)
    for end in range(1, len(loc) + 1):
        shorter = located.resolve(loc[:end], last_is_key=is_key and end == len(loc))
        if len(shorter) == len(prefix):
            drops.append(_Drop(loc[: end - 1], prefix, loc[end - 1]))
        prefix = shorter
    return tuple(drops)


def _validation_problems(
    located: LocatedYAML, error: pydantic.ValidationError, model_cls: type
) -> list[Problem]:
    items: list[_Located] = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        is_key = kind in ("missing", "extra_forbidden")
        real = located.resolve(loc, last_is_key=is_key)
        if any(_starts_with(real, bad) for bad in located.bad_paths):
            continue
        drops = _drops(located, loc, is_key)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
            real = located.resolve((*real, discriminator), last_is_key=True)
        line, column = located.mark(real, key=kind == "extra_forbidden")
        problem = Problem(
            located.source_name, format_field(real), _message(err, model_cls), line, column
        )
        items.append(_Located(real, drops, kind, problem))
    return _merge_unions(located, items, frozenset())


# Error types by which a union member rejects a value for its shape.
_MAPPING_KINDS = frozenset(
    {"dict_type", "mapping_type", "model_type", "model_attributes_type", "dataclass_type"}
)
_LIST_KINDS = frozenset({"list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"})
_SCALAR_KINDS = frozenset(
    {
        "float_type",
        "int_type",
        "string_type",
        "bool_type",
        "bytes_type",
        "date_type",
        "datetime_type",
        "time_type",
        "timedelta_type",
        "decimal_type",
        "complex_type",
        "literal_error",
        "enum",
    }
)


def _other_shapes(value: Any) -> frozenset[str]:
    """The error types that say a member wants another shape than ``value``'s."""
    if isinstance(value, dict):
        return _SCALAR_KINDS | _LIST_KINDS
    if isinstance(value, list):
        return _SCALAR_KINDS | _MAPPING_KINDS
    if value is None:  # an empty value could have been meant as any shape
        return frozenset()
    return _MAPPING_KINDS | _LIST_KINDS


def _value_at(data: Any, path: Loc) -> Any:
    for item in path:
        data = data[item]
    return data


def _fitting_members(
    located: LocatedYAML, real: Loc, members: dict[str, list[_Located]]
) -> dict[str, list[_Located]]:
    """The union members whose shape (scalar, mapping, list) is that of the value.

    A member that rejects the value for its shape (``expected a mapping, got -0.7``) is
    left out when another member has the value's shape; when none has, all are kept.
    """
    other = _other_shapes(_value_at(located.data, real))
    fitting = {
        tag: group
        for tag, group in members.items()
        if not any(item.real == real and item.kind in other for item in group)
    }
    return fitting or members


def _merge_unions(
    located: LocatedYAML, items: list[_Located], done: frozenset[tuple[Any, ...]]
) -> list[Problem]:
    """One problem for a value that matches none of the members of a plain union.

    A plain union is one whose errors come with several member tags at the same place
    (a discriminated union validates one member only, so its errors share one tag).
    Unions in ``done`` have been resolved by the caller.
    """
    tags: dict[tuple[Any, ...], set[str]] = {}
    for item in items:
        for drop in item.drops:
            if drop.at not in done:
                tags.setdefault(drop.at, set()).add(repr(drop.tag))
    plain = {at for at, seen in tags.items() if len(seen) > 1}
    problems: list[Problem] = []
    unions: dict[tuple[Any, ...], tuple[Loc, dict[str, list[_Located]]]] = {}
    for item in items:
        drop = next((d for d in item.drops if d.at in plain), None)  # the outermost
        if drop is None:
            problems.append(item.problem)
            continue
        _, members = unions.setdefault(drop.at, (drop.real, {}))
        members.setdefault(repr(drop.tag), []).append(item)
    for at, (real, members) in unions.items():
        fitting = _fitting_members(located, real, members)
        if len(fitting) == 1:
            [group] = fitting.values()
            problems.extend(_merge_unions(located, group, done | {at}))
            continue
        parts: list[str] = []
        for group in fitting.values():
            for item in group:
                sub = format_field(item.real[len(real) :]).lstrip(".")
                part = f"{sub}: {item.problem.message}" if sub else item.problem.message
                if part not in parts:
                    parts.append(part)
        problems.append(
            located.problem(real, "does not match any of the allowed forms: " + "; or ".join(parts))
        )
    return problems


def _check_loc(loc: Any) -> Loc:
    if isinstance(loc, str):
        return parse_field(loc)
    return tuple(loc)


def validate_located(
    located: LocatedYAML,
    model_cls: type[ModelT],
    checks: Iterable[Check] = (),
) -> ModelT:
    """Validate located data against a pydantic model and run semantic checks.

    Parameters
    ----------
    located : LocatedYAML
        Data read by :func:`parse_yaml`.
    model_cls : type of pydantic.BaseModel
        The model to validate against.
    checks : iterable of callable, default ()
        Run, in order, on the model instance when validation passed and the document had
        no reading problems. Each takes the instance and returns an iterable of
        ``(loc, message)`` pairs; ``loc`` is a tuple of keys and indexes (or a dotted
        string such as ``"arms[1].allocation"``). Exceptions a check raises are not
        caught: a check that fails is a bug, not a problem of the file.

    Returns
    -------
    model_cls
        The validated instance.

    Raises
    ------
    ProtocolError
        With every reading problem, validation problem and check problem, by line.
    """
    problems = list(located.problems)
    try:
        instance = model_cls.model_validate(located.data)
    except pydantic.ValidationError as error:
        problems.extend(_validation_problems(located, error, model_cls))
        raise ProtocolError(sort_problems(problems)) from None
    if problems:
        raise ProtocolError(sort_problems(problems))
    for check in checks:
        for loc, message in check(instance):
            problems.append(located.problem(_check_loc(loc), str(message)))
    if problems:
        raise ProtocolError(sort_problems(problems))
    return instance


def load_yaml_string(
    text: str | bytes,
    model_cls: type[ModelT],
    checks: Iterable[Check] = (),
    *,
    source_name: str = "<string>",
) -> ModelT:
    """Load a YAML document given as text into a validated pydantic model.

    Parameters
    ----------
    text : str or bytes
        The document (bytes must be UTF-8).
    model_cls : type of pydantic.BaseModel
        The model class.
    checks : iterable of callable, default ()
        Semantic checks, see :func:`validate_located`.
    source_name : str, default "<string>"
        The name used in problems.

    Returns
    -------
    model_cls
        The validated instance.

    Raises
    ------
    ProtocolError
        With every problem found.
    """
    located = parse_yaml(text, source_name=source_name)
    return validate_located(located, model_cls, checks)


def load_yaml_model(
    path: str | os.PathLike[str],
    model_cls: type[ModelT],
    checks: Iterable[Check] = (),
    *,
    source_name: str | None = None,
) -> ModelT:
    """Load a YAML file into a validated pydantic model, reporting every problem.

    Parameters
    ----------
    path : str or path-like
        The YAML file (UTF-8).
    model_cls : type of pydantic.BaseModel
        The model class (typically frozen, with ``extra="forbid"``).
    checks : iterable of callable, default ()
        Semantic checks run on the validated instance: each takes the instance and
        returns an iterable of ``(loc, message)`` pairs, e.g.
        ``(("analysis", "target_events"), "600 target events but only 500 patients")``.
        See :func:`validate_located`.
    source_name : str, optional
        The name used in problems; defaults to ``str(path)``.

    Returns
    -------
    model_cls
        The validated instance.

    Raises
    ------
    ProtocolError
        When the file cannot be read, is not UTF-8, is not valid YAML, does not match
        the model, or fails a check; ``.problems`` holds every problem found, sorted by
        line, each with the file, field, line and column.

    Examples
    --------
    >>> import pydantic
    >>> class Design(pydantic.BaseModel):
    ...     model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    ...     n_patients: int
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "design.yaml").write_text("n_patients: many\\n")
    >>> try:
    ...     load_yaml_model(folder / "design.yaml", Design, source_name="design.yaml")
    ... except ProtocolError as error:
    ...     print(error)
    design.yaml:1:13: n_patients: expected an integer, got 'many'
    """
    name = str(path) if source_name is None else source_name
    try:
        raw = os.fspath(path)
        with open(raw, "rb") as handle:
            content = handle.read()
    except (OSError, TypeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProtocolError([Problem(name, "", f"cannot read the file: {reason}")]) from None
    return load_yaml_string(content, model_cls, checks, source_name=name)
