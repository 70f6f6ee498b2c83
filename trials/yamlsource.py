"""Read a YAML document into plain data, keeping the line and column of every value.

This is the reading half of the input boundary (:mod:`trials.loader` validates what is
read here against a pydantic model). Whatever the bytes of the document,
:func:`parse_yaml` either returns a :class:`LocatedYAML` or raises one
:class:`~trials.exceptions.ProtocolError` naming the file, the line and the column.

How a document is read
----------------------
YAML is parsed with PyYAML's safe loader into a node tree (``yaml.compose``), and plain
Python data is built from the nodes here, so that the line and column of every key and
value is kept. On top of PyYAML's safe loading the reader

- rejects duplicate keys in a mapping (PyYAML silently keeps the last one);
- rejects keys that YAML does not read as strings (``1:``, ``null:``, ``on:``);
- rejects tags other than YAML's standard scalar tags (``!!python/object``, ``!!set``);
- limits nesting depth (:data:`MAX_DEPTH`) and the number of values a document may
  expand to through aliases (:data:`MAX_VALUES`), so that an alias bomb or a recursive
  alias is a problem, not a hang or a crash.

Anchors, aliases and merge keys (``<<: *defaults``) are supported.

Field paths
-----------
A field path (``loc``) is a tuple of mapping keys (``str``) and list indexes (``int``),
as in pydantic: ``("arms", 1, "allocation")``. It is written as ``arms[1].allocation``
(:func:`format_field`) and read back with :func:`parse_field`; the whole document is
``()`` and ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from trials.exceptions import Problem, ProtocolError

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "Loc",
    "LocatedYAML",
    "format_field",
    "parse_field",
    "parse_yaml",
    "sort_problems",
]

#: Deepest nesting of mappings and lists a document may have.
MAX_DEPTH = 64

#: Most values (scalars, mappings and lists) a document may expand to, aliases included.
MAX_VALUES = 200_000

Loc = tuple[str | int, ...]
"""A field path: mapping keys and list indexes from the top of the document."""

_TAG = "tag:yaml.org,2002:"
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"
_AS_TEXT_TAGS = {_TAG + "value", _MERGE_TAG}  # '=' and '<<' outside a key: plain text
_TAG_WORDS = {
    "null": "null",
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "binary": "base64 binary data",
    "timestamp": "a date",
}
_SCALAR_TAGS = {_TAG + name for name in _TAG_WORDS}


# ----------------------------------------------------------------------------- field paths
def format_field(loc: Iterable[str | int]) -> str:
    """Write a field path the way messages show it.

    Parameters
    ----------
    loc : iterable of str or int
        Mapping keys and list indexes, from the top of the document.

    Returns
    -------
    str
        Keys joined by dots, indexes in brackets; ``""`` for the whole document.

    Examples
    --------
    >>> format_field(("arms", 1, "allocation"))
    'arms[1].allocation'
    >>> format_field(())
    ''
    """
    out = ""
    for item in loc:
        if isinstance(item, int) and not isinstance(item, bool):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_field(text: str) -> Loc:
    """Read a field path written by :func:`format_field`.

    Parameters
    ----------
    text : str
        A dotted path such as ``"arms[1].allocation"``.

    Returns
    -------
    tuple of str or int
        The path as a tuple.

    Examples
    --------
    >>> parse_field("arms[1].allocation")
    ('arms', 1, 'allocation')
    """
    return tuple(name if name else int(index) for name, index in _FIELD_PART.findall(text))


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without repeats, in the order of the document (line, then column).

    Parameters
    ----------
    problems : iterable of Problem

    Returns
    -------
    list of Problem
        Problems with a line first, by line, column, field and message; those without a
        line last.
    """
    unique = list(dict.fromkeys(problems))
    return sorted(
        unique, key=lambda p: (p.line is None, p.line or 0, p.column or 0, p.field, p.message)
    )


# ----------------------------------------------------------------------------- located data
@dataclass(frozen=True)
class _Where:
    """Where one value sits: its key (for a mapping entry) and the value itself."""

    key: tuple[int, int] | None
    value: tuple[int, int]
    prefer_key: bool


@dataclass(frozen=True)
class LocatedYAML:
    """Plain data read from a YAML document, with the line and column of every value.

    Parameters
    ----------
    data : dict
        The document as plain Python data (dicts with string keys, lists, scalars).
    source_name : str
        The name of the file, used in problems.
    problems : tuple of Problem
        Problems found while reading that did not stop the reading (duplicate keys,
        keys that are not strings, unsupported tags). Validation still runs, so that
        every problem is reported together.
    bad_paths : tuple of Loc
        Paths whose value could not be read (their validation errors are not reported,
        the reading problem is).

    Notes
    -----
    Lines and columns are 1-based.
    """

    data: Any
    source_name: str
    problems: tuple[Problem, ...] = ()
    bad_paths: tuple[Loc, ...] = ()
    _where: Mapping[Loc, _Where] = field(default_factory=dict, repr=False)

    def resolve(self, loc: Iterable[Any], *, last_is_key: bool = False) -> Loc:
        """Keep the items of ``loc`` that are real keys or indexes of the data.

        Pydantic puts union member tags into its error locations (``("endpoint",
        "survival", "hazard_ratio")`` where ``survival`` selects the member); those are
        dropped here.

        Parameters
        ----------
        loc : iterable
            A location, as pydantic or a check gives it.
        last_is_key : bool, default False
            Keep the last item even when the data has no such key (a missing field).

        Returns
        -------
        Loc
            The path of real keys and indexes.
        """
        items = tuple(loc)
        path: list[str | int] = []
        current: Any = self.data
        for position, item in enumerate(items):
            if isinstance(current, dict) and isinstance(item, str) and item in current:
                path.append(item)
                current = current[item]
            elif (
                isinstance(current, list)
                and isinstance(item, int)
                and not isinstance(item, bool)
                and 0 <= item < len(current)
            ):
                path.append(item)
                current = current[item]
            elif (
                last_is_key
                and position == len(items) - 1
                and isinstance(current, dict)
                and isinstance(item, str)
            ):
                path.append(item)
        return tuple(path)

    def mark(self, loc: Iterable[Any], *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of the deepest value of ``loc`` that the document has.

        Parameters
        ----------
        loc : iterable
            A location; union tags are dropped (:meth:`resolve`). For a path the
            document lacks (a missing field), the line of the nearest enclosing value.
        key : bool, default False
            Point at the key of the entry rather than its value (an unknown key).

        Returns
        -------
        (int or None, int or None)
            1-based line and column; ``(None, None)`` when unknown.
        """
        path = self.resolve(loc, last_is_key=True)
        for end in range(len(path), -1, -1):
            where = self._where.get(path[:end])
            if where is None:
                continue
            if where.key is not None and (where.prefer_key or (key and end == len(path))):
                return where.key
            return where.value
        return None, None

    def problem(self, loc: Iterable[Any], message: str, *, key: bool = False) -> Problem:
        """Make a :class:`Problem` for ``loc``, located in this document.

        Parameters
        ----------
        loc : iterable
            The field path; written with :func:`format_field` as given.
        message : str
            What is wrong.
        key : bool, default False
            Point at the key rather than the value.

        Returns
        -------
        Problem
        """
        loc = tuple(loc)
        line, column = self.mark(loc, key=key)
        return Problem(self.source_name, format_field(loc), message, line, column)


# ----------------------------------------------------------------------------- YAML reading
class _Fatal(Exception):
    """Reading cannot go on; carries the problem."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def _pos(mark: yaml.Mark | None) -> tuple[int, int] | tuple[None, None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _short_tag(tag: str | None) -> str:
    if tag is None:
        return "?"
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _TooDeep(yaml.YAMLError):
    """The document nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self, mark: yaml.Mark):
        super().__init__(f"nesting deeper than {MAX_DEPTH} levels")
        self.mark = mark


class _Composer(yaml.SafeLoader):
    """PyYAML's safe composer with a depth limit; an alias gets the mark of its use."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            target = self.anchors[event.anchor]
            # A new node that shares the target's content but sits where the alias is.
            if isinstance(target, ScalarNode):
                return ScalarNode(
                    target.tag, target.value, event.start_mark, event.end_mark, style=target.style
                )
            return type(target)(
                target.tag,
                target.value,
                event.start_mark,
                event.end_mark,
                flow_style=target.flow_style,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """Build plain data from a node tree, recording where each value is."""

    def __init__(self, source_name: str):
        self.source_name = source_name
        self.where: dict[Loc, _Where] = {}
        self.problems: list[Problem] = []
        self.bad_paths: list[Loc] = []
        self._count = 0
        self._open: set[int] = set()  # ids of collections being built (recursive aliases)
        self._constructor = yaml.SafeLoader("")

    def problem(self, node: Node | yaml.Mark, loc: Loc, message: str) -> Problem:
        mark = node if isinstance(node, yaml.Mark) else node.start_mark
        line, column = _pos(mark)
        return Problem(self.source_name, format_field(loc), message, line, column)

    def record(self, loc: Loc, key_node: Node | None, value_node: Node) -> None:
        key = _pos(key_node.start_mark) if key_node is not None else None
        empty = (
            isinstance(value_node, ScalarNode)
            and value_node.value == ""
            and (value_node.style is None)
        )
        prefer_key = not isinstance(value_node, ScalarNode) or empty
        self.where[loc] = _Where(key, _pos(value_node.start_mark), prefer_key)

    def build(self, node: Node, loc: Loc, depth: int) -> Any:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _Fatal(
                self.problem(
                    node,
                    loc,
                    f"the document expands to more than {MAX_VALUES} values (through aliases); "
                    "it is too large to be a protocol",
                )
            )
        if depth > MAX_DEPTH:
            raise _Fatal(
                self.problem(node, loc, f"nesting deeper than {MAX_DEPTH} levels is not allowed")
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        expected = _MAP_TAG if isinstance(node, MappingNode) else _SEQ_TAG
        if node.tag != expected:
            self.problems.append(
                self.problem(node, loc, f"unsupported YAML tag {_short_tag(node.tag)!r}")
            )
            self.bad_paths.append(loc)
            return None
        if id(node.value) in self._open:
            raise _Fatal(self.problem(node, loc, "an alias refers to itself (recursive alias)"))
        self._open.add(id(node.value))
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, loc, depth)
            return self.mapping(node, loc, depth)
        finally:
            self._open.discard(id(node.value))

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        if node.tag in _AS_TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self.problems.append(
                self.problem(node, loc, f"unsupported YAML tag {_short_tag(node.tag)!r}")
            )
            self.bad_paths.append(loc)
            return None
        construct = yaml.SafeLoader.yaml_constructors[node.tag]
        try:
            return construct(self._constructor, node)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, LookupError, OverflowError):
            word = _TAG_WORDS[node.tag[len(_TAG) :]]
            digits = sum(ch.isdigit() for ch in node.value)
            hint = " (too many digits)" if node.tag.endswith(":int") and digits > 4000 else ""
            self.problems.append(
                self.problem(node, loc, f"cannot read {_clip(node.value)!r} as {word}{hint}")
            )
            self.bad_paths.append(loc)
            return None

    def sequence(self, node: SequenceNode, loc: Loc, depth: int) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            child_loc = (*loc, index)
            self.record(child_loc, None, child)
            items.append(self.build(child, child_loc, depth + 1))
        return items

    def key(self, key_node: Node, parent: Loc) -> str | None:
        """The key as a string, or ``None`` (and a problem) when it is not a name."""
        if not isinstance(key_node, ScalarNode):
            kind = "a mapping" if isinstance(key_node, MappingNode) else "a list"
            self.problems.append(
                self.problem(key_node, parent, f"a key must be a name, not {kind}")
            )
            return None
        if key_node.tag == _TAG + "str":
            return key_node.value
        text = _clip(key_node.value)
        loc = (*parent, text)
        n_problems = len(self.problems)
        value = self.scalar(key_node, loc)
        if isinstance(value, str):
            return value
        if len(self.problems) > n_problems:  # an unreadable key, already reported
            return None
        if value is None:
            read = "null (no value)"
        elif isinstance(value, bool):
            read = f"the boolean {str(value).lower()}"
        elif isinstance(value, int | float):
            read = "a number"
        else:
            read = f"a {type(value).__name__}"
        self.problems.append(
            self.problem(
                key_node,
                loc,
                f"key {text!r} is read by YAML as {read}, not as a name; "
                f"quote it ('{text}') if it is a name",
            )
        )
        self.bad_paths.append(loc)
        return None

    def mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
                if isinstance(value_node, MappingNode):
                    merges.append(value_node)
                elif isinstance(value_node, SequenceNode) and all(
                    isinstance(item, MappingNode) for item in value_node.value
                ):
                    merges.extend(value_node.value)
                else:
                    self.problems.append(
                        self.problem(
                            value_node,
                            loc,
                            "a merge key '<<' needs a mapping or a list of mappings",
                        )
                    )
        # Earlier merge sources win over later ones, explicit keys over all of them.
        for source in reversed(merges):
            merged = self.build(source, loc, depth)
            if isinstance(merged, dict):
                result.update(merged)
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
                continue
            name = self.key(key_node, loc)
            if name is None:
                continue
            child_loc = (*loc, name)
            if name in first_seen:
                line = first_seen[name].start_mark.line + 1
                self.problems.append(
                    self.problem(
                        key_node, child_loc, f"duplicate key {name!r} (first given at line {line})"
                    )
                )
            else:
                first_seen[name] = key_node
            self.record(child_loc, key_node, value_node)
            result[name] = self.build(value_node, child_loc, depth + 1)
        return result


def _decode(raw: bytes | str, source_name: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ProtocolError(
            [
                Problem(
                    source_name,
                    "",
                    f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot be decoded)",
                    line,
                    column,
                )
            ]
        ) from None


def _yaml_problem(exc: yaml.YAMLError, text: str, source_name: str) -> Problem:
    if isinstance(exc, _TooDeep):
        line, column = _pos(exc.mark)
        return Problem(
            source_name, "", f"nesting deeper than {MAX_DEPTH} levels is not allowed", line, column
        )
    if isinstance(exc, yaml.reader.ReaderError):
        position = min(max(exc.position, 0), len(text))
        before = text[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return Problem(
            source_name, "", f"character {char!r} is not allowed in a YAML file", line, column
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = _pos(mark)
        what = exc.problem or exc.context or "invalid syntax"
        message = f"invalid YAML: {what}"
        if "'\\t'" in what:
            message += " (indent with spaces, not tabs)"
        if exc.context and exc.problem:
            context = exc.context
            if exc.context_mark is not None:
                context += f" that starts at line {exc.context_mark.line + 1}"
            message += f" ({context})"
        return Problem(source_name, "", message, line, column)
    return Problem(source_name, "", f"invalid YAML: {_clip(str(exc), 200)}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a single value"


def parse_yaml(text: str | bytes, *, source_name: str = "<string>") -> LocatedYAML:
    """Read a YAML document whose top level is a mapping, keeping where each value is.

    Parameters
    ----------
    text : str or bytes
        The document; bytes must be UTF-8 (a byte-order mark is allowed).
    source_name : str, default "<string>"
        The name used in problems (usually the file path).

    Returns
    -------
    LocatedYAML
        The data with its locations, and the problems that did not stop the reading
        (in ``.problems``; :func:`validate_located` reports them).

    Raises
    ------
    ProtocolError
        When the document cannot be read at all: not UTF-8, a YAML syntax error, empty,
        a top level that is not a mapping, too deep, or too large through aliases.
    """
    text = _decode(text, source_name)
    try:
        composer = _Composer(text)
        try:
            root = composer.get_single_node()
        finally:
            composer.dispose()
    except yaml.YAMLError as exc:
        raise ProtocolError([_yaml_problem(exc, text, source_name)]) from None
    except RecursionError:  # a safety net: the composer's depth limit comes first
        raise ProtocolError(
            [Problem(source_name, "", f"nesting deeper than {MAX_DEPTH} levels is not allowed")]
        ) from None
    if root is None or (
        isinstance(root, ScalarNode) and root.tag == _TAG + "null" and root.value in ("", "~")
    ):
        raise ProtocolError(
            [
                Problem(
                    source_name, "", "the document is empty; expected a mapping of keys to values"
                )
            ]
        )
    builder = _Builder(source_name)
    builder.record((), None, root)
    try:
        data = builder.build(root, (), 0)
    except _Fatal as fatal:
        raise ProtocolError(sort_problems([*builder.problems, fatal.problem])) from None
    except RecursionError:
        raise ProtocolError(
            [Problem(source_name, "", f"nesting deeper than {MAX_DEPTH} levels is not allowed")]
        ) from None
    if not isinstance(data, dict):
        line, column = _pos(root.start_mark)
        raise ProtocolError(
            sort_problems(
                [
                    *builder.problems,
                    Problem(
                        source_name,
                        "",
                        f"expected a mapping of keys to values at the top level, got {_kind(data)}",
                        line,
                        column,
                    ),
                ]
            )
        )
    return LocatedYAML(
        data, source_name, tuple(builder.problems), tuple(builder.bad_paths), builder.where
    )
