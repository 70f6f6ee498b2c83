"""HOOK: external-control diagnostics in a report.

``build_report(..., external_control=RESULT)`` adds the section "External-control
diagnostics" from any result object of an external-control analysis (propensity weighting,
Bayesian borrowing, …). The report does not import the external-control modules and does
not recompute anything: it renders what the result offers, by duck typing —

- ``summary()`` → a DataFrame (or a mapping): the main table;
- every public field (dataclass field or attribute) that is a DataFrame, or an object
  with a DataFrame ``table`` or a ``summary()`` (e.g. a balance or a weighted Kaplan–Meier
  result) → a table (at most :data:`MAX_ROWS` rows), titled by the field's name; numbers
  of such objects (effective sample sizes, counts) → listed;
- a table with ``smd_before`` and ``smd_after`` columns → also a love plot; a table with
  ``source``, ``time`` and ``survival`` columns → Kaplan–Meier curves by source, not a table;
- any zero-argument method named ``*_table()`` → a table;
- any method named ``plot_*(ax=None)`` → drawn on new axes and embedded, titled from the
  method's name and its docstring's first line;
- numeric fields (estimate, effective sample sizes, shares) → listed;
- ``notes`` (a sequence of text) → listed; ``title`` → the analysis' name.

A list of results gives one subsection each. Whatever a method raises is reported in the
section, never swallowed. When the protocol has an ``external_control`` section but no
result is given, the section says so and shows the protocol's specification.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from reports.document import Bullets, Definitions, Figure, Paragraph, Section, Table, num
from reports.figures import new_axes, png_data_uri
from reports.palette import CONTROL, EXPERIMENTAL, REFERENCE

#: Rows shown of a table.
MAX_ROWS = 40
#: Absolute standardized difference drawn as the balance threshold of a love plot.
SMD_THRESHOLD = 0.1
SKIP = {"notes", "title"}


def _table(frame, caption: str) -> Table:
    if isinstance(frame, Mapping):
        frame = pd.DataFrame({"quantity": list(frame), "value": list(frame.values())})
    frame = pd.DataFrame(frame)
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    note = ""
    if len(frame) > MAX_ROWS:
        note = f"First {MAX_ROWS} of {len(frame)} rows."
        frame = frame.head(MAX_ROWS)
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    return Table(caption, [str(c) for c in frame.columns], rows, note=note)


def _cell(value) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float | np.floating):
        return num(value, 4)
    return str(value)


def _frame_of(value) -> pd.DataFrame | None:
    """The DataFrame a field holds or offers (itself, ``.table`` or ``summary()``)."""
    if isinstance(value, pd.DataFrame):
        return value
    table = getattr(value, "table", None)
    if isinstance(table, pd.DataFrame):
        return table
    summary = getattr(value, "summary", None)
    if callable(summary):
        frame = summary()
        return frame if isinstance(frame, pd.DataFrame) else None
    return None


def _fields(result) -> list[str]:
    if dataclasses.is_dataclass(result):
        return [f.name for f in dataclasses.fields(result)]
    return (
        [name for name in vars(result) if not name.startswith("_")]
        if hasattr(result, "__dict__")
        else []
    )


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _scalars(obj, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    names = _fields(obj) + [
        n for n in dir(type(obj)) if isinstance(getattr(type(obj), n, None), property)
    ]
    for name in dict.fromkeys(names):
        if name.startswith("_") or name in SKIP:
            continue
        try:
            value = getattr(obj, name)
        except Exception as exc:  # a failing property is reported, not swallowed
            out.append((f"{prefix}{name}".replace("_", " "), f"failed: {exc}"))
            continue
        if _number(value) and math.isfinite(float(value)):
            out.append((f"{prefix}{name}".replace("_", " "), num(value, 4)))
    return out


def _methods(result, prefix: str = "", suffix: str = "") -> list[str]:
    names = []
    for name in dir(type(result)):
        if name.startswith("_") or not name.startswith(prefix) or not name.endswith(suffix):
            continue
        if callable(getattr(type(result), name, None)):
            names.append(name)
    return sorted(names)


def love_plot(frame: pd.DataFrame, title: str) -> Figure:
    labels = frame["covariate"].astype(str) if "covariate" in frame else frame.index.astype(str)
    if "level" in frame:
        labels = [
            f"{c} = {lv}" if isinstance(lv, str) and lv else c
            for c, lv in zip(labels, frame["level"], strict=True)
        ]
    labels = list(labels)
    y = np.arange(len(labels))[::-1]
    fig, ax = new_axes(6.0, 0.3 * len(labels) + 1.4)
    ax.scatter(
        frame["smd_before"].abs(),
        y,
        marker="o",
        facecolors="none",
        edgecolors=CONTROL,
        label="before adjustment",
    )
    ax.scatter(
        frame["smd_after"].abs(), y, marker="s", color=EXPERIMENTAL[0], label="after adjustment"
    )
    ax.axvline(
        SMD_THRESHOLD,
        color=REFERENCE,
        linestyle="--",
        linewidth=1,
        label=f"|SMD| = {SMD_THRESHOLD:g}",
    )
    ax.set_yticks(y, labels)
    ax.set_xlabel("Absolute standardized mean difference (trial vs external)")
    ax.legend(loc="lower right")
    return Figure(
        png_data_uri(fig),
        f"Love plot ({title})",
        f"Covariate balance ({title}): absolute standardized differences before and "
        "after adjustment, as the analysis computed them.",
    )


def km_by_source_plot(frame: pd.DataFrame, title: str) -> Figure:
    fig, ax = new_axes(6.5, 3.4)
    colours = [CONTROL, *EXPERIMENTAL]
    for k, (source, part) in enumerate(frame.groupby("source", sort=False)):
        time = np.concatenate([[0.0], part["time"].to_numpy(float)])
        survival = np.concatenate([[1.0], part["survival"].to_numpy(float)])
        ax.step(
            time,
            survival,
            where="post",
            color=colours[k % len(colours)],
            linestyle=("-", "--", "-.", ":")[k % 4],
            label=str(source),
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Time (the analysis' time unit)")
    ax.set_ylabel("Probability event-free")
    ax.legend(loc="lower left")
    return Figure(
        png_data_uri(fig),
        f"Kaplan-Meier by source ({title})",
        f"Kaplan–Meier curves by source ({title}), as the analysis computed them "
        "(weighted where the analysis weights).",
    )


def _one(result, section: Section) -> None:
    shown = False
    if callable(getattr(result, "summary", None)):
        section.add(
            _safe(
                lambda: _table(result.summary(), "Summary of the external-control analysis"),
                "summary()",
            )
        )
        shown = True
    for name in _fields(result):
        if name.startswith("_") or name in SKIP:
            continue
        value = getattr(result, name)
        if value is None or _number(value) or isinstance(value, str | bytes):
            continue
        title = name.replace("_", " ")
        try:
            frame = _frame_of(value)
        except Exception as exc:  # reported, not swallowed
            section.add(Paragraph(f"{name}: {type(exc).__name__}: {exc}", css="omitted"))
            continue
        if frame is None:
            continue
        shown = True
        if {"source", "time", "survival"} <= set(frame.columns):
            section.add(_safe(lambda f=frame, t=title: km_by_source_plot(f, t), f"{name} (curves)"))
        else:
            section.add(_safe(lambda f=frame, t=title: _table(f, t.capitalize()), name))
            if {"smd_before", "smd_after"} <= set(frame.columns):
                section.add(_safe(lambda f=frame, t=title: love_plot(f, t), f"{name} (love)"))
        if isinstance(getattr(value, "table", None), pd.DataFrame):
            facts = _scalars(value, prefix=f"{title}: ")
            if facts:
                section.add(Definitions(facts))
    for name in _methods(result, suffix="_table"):
        method = getattr(result, name)
        title = name[: -len("_table")].replace("_", " ").capitalize()
        section.add(_safe(lambda m=method, t=title: _table(m(), t), f"{name}()"))
        shown = True
    facts = _scalars(result)
    if facts:
        section.add(Definitions(facts))
        shown = True
    for name in _methods(result, prefix="plot_"):
        method = getattr(result, name)
        doc = (inspect.getdoc(method) or "").split("\n")[0]
        title = name[len("plot_") :].replace("_", " ")

        def figure(m=method, t=title, d=doc) -> Figure:
            fig, ax = new_axes(6.5, 3.4)
            m(ax=ax)
            return Figure(png_data_uri(fig), t, d or t.capitalize())

        section.add(_safe(figure, f"{name}()"))
        shown = True
    notes = getattr(result, "notes", None)
    if isinstance(notes, Sequence) and not isinstance(notes, str) and notes:
        section.add(Paragraph("Notes of the analysis:"), Bullets([str(n) for n in notes]))
    if not shown:
        section.add(Paragraph(f"{type(result).__name__}: {result!r}"))


def _safe(make, what: str):
    """The block ``make()`` builds, or a paragraph saying what it raised (not silent)."""
    try:
        return make()
    except Exception as exc:  # a failure of a foreign result is reported, not swallowed
        return Paragraph(f"{what} failed: {type(exc).__name__}: {exc}", css="omitted")


def external_control_section(result, protocol=None) -> Section:
    """The section for an external-control result (or a list of them). Without one, it
    says that none was given — and, when the ``protocol`` has an ``external_control``
    specification, shows it and how to obtain its diagnostics."""
    section = Section("external-control", "External-control diagnostics")
    spec = getattr(protocol, "external_control", None)
    if result is None:
        if spec is None:
            section.add(
                Paragraph("This run used no external or synthetic control arm.", css="omitted")
            )
            return section
        section.add(
            Paragraph(
                "The protocol specifies an external control (below). This simulation treats "
                "the external patients as concurrent and exchangeable controls: its operating "
                "characteristics are those of that idealised comparison. The diagnostics of "
                "the external-control analysis itself (balance, propensity overlap, weighted "
                "Kaplan–Meier, effective sample size) come from insilico external-control; "
                "give its result to the report (build_report(..., external_control=RESULT)).",
                css="omitted",
            ),
            Definitions(
                [
                    (str(k).replace("_", " "), _spec_text(v))
                    for k, v in spec.model_dump(mode="json", exclude_none=True).items()
                ]
            ),
        )
        return section
    results = list(result) if isinstance(result, list | tuple) else [result]
    for k, one in enumerate(results, start=1):
        title = getattr(one, "title", None) or f"{type(one).__name__}"
        if len(results) == 1:
            section.add(Paragraph(f"Analysis: {title}."))
            _one(one, section)
        else:
            _one(one, section.child(f"external-{k}", title))
    return section


def _spec_text(value) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_spec_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_spec_text(v) for v in value)
    return str(value)
