"""The building blocks of a report: sections holding paragraphs, lists, tables and figures.

The builder assembles a tree of :class:`Section` objects; the template renders each block
by its ``kind``. Tables and figures are numbered in the order they appear, and the table of
contents is the section tree. Number formatting helpers live here too, so that every
simulated number is shown the same way: the value, its Monte Carlo standard error and,
for proportions, the exact 95% confidence interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class Block:
    """A piece of a section; the template renders it by its ``kind``."""

    kind = ""
    number = 0


class Paragraph(Block):
    kind = "paragraph"

    def __init__(self, text: str, css: str = ""):
        self.text, self.css = text, css


class Bullets(Block):
    kind = "bullets"

    def __init__(self, items: list[str]):
        self.items = list(items)


class Definitions(Block):
    """Term and description pairs."""

    kind = "definitions"

    def __init__(self, items: list[tuple[str, str]]):
        self.items = list(items)


class Table(Block):
    kind = "table"

    def __init__(
        self, caption: str, columns: list[str], rows: list[list[Any]], note: str = "", css: str = ""
    ):
        self.caption, self.columns, self.note, self.css = caption, list(columns), note, css
        self.rows = [list(r) for r in rows]


class Figure(Block):
    kind = "figure"

    def __init__(self, uri: str, alt: str, caption: str, wide: bool = True):
        self.uri, self.alt, self.caption, self.wide = uri, alt, caption, wide


class Callout(Block):
    """A highlighted box; ``css`` ``sponsor`` marks a field for the sponsor to complete."""

    kind = "callout"

    def __init__(self, title: str, text: str, css: str = "sponsor"):
        self.title, self.text, self.css = title, text, css


class Preformatted(Block):
    kind = "pre"

    def __init__(self, text: str):
        self.text = text


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    number: str = ""

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self

    def child(self, id: str, title: str) -> Section:
        section = Section(id, title)
        self.children.append(section)
        return section


def number_document(sections: list[Section]) -> None:
    """Number sections (1, 1.1, …; appendices A, B, …), tables and figures in order."""
    counters = {"table": 0, "figure": 0}
    letters = iter("ABCDEFGHIJ")
    main = 0

    def visit(section: Section, number: str) -> None:
        section.number = number
        for block in section.blocks:
            if block.kind in counters:
                counters[block.kind] += 1
                block.number = counters[block.kind]
        for k, child in enumerate(section.children, start=1):
            visit(child, f"{number}.{k}")

    for section in sections:
        if section.id.startswith("appendix"):
            visit(section, next(letters))
        else:
            main += 1
            visit(section, str(main))


# ------------------------------------------------------------------ formatting


def num(value, digits: int = 3, signed: bool = False) -> str:
    """A number with ``digits`` decimals; an en dash for a missing value."""
    if value is None:
        return "\u2013"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "\u2013"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def rate_cell(cell: dict | None, digits: int = 3) -> str:
    """``rate (MCSE m) [lower, upper]`` of a simulated proportion."""
    if not cell:
        return "\u2013"
    return (
        f"{num(cell.get('rate'), digits)} (MCSE {num(cell.get('mcse'), digits)}) "
        f"[{num(cell.get('ci_lower'), digits)}, {num(cell.get('ci_upper'), digits)}]"
    )


def mean_cell(mean, sd, n, digits: int = 1) -> str:
    """``mean (MCSE m)`` of a simulated quantity, with ``MCSE = SD / sqrt(R)`` (Morris,
    White & Crowther 2019, table 6)."""
    if mean is None or sd is None or not n:
        return num(mean, digits)
    return f"{num(mean, digits)} (MCSE {num(float(sd) / math.sqrt(n), digits + 1)})"


def p_value(value) -> str:
    """A p-value with 4 decimals, ``<0.0001`` below."""
    if value is None or not math.isfinite(float(value)):
        return "\u2013"
    return "<0.0001" if float(value) < 1e-4 else f"{float(value):.4f}"


def with_mcse(value, mcse, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "\u2013"
    return f"{num(value, digits, signed)} (MCSE {num(mcse, digits)})"
