"""Write an example dataset that a dependency ships, to try the data commands on:
``gbsg2`` (lifelines: the German Breast Cancer Study Group 2 trial, hormonal therapy
versus none, 686 patients, recurrence-free survival)."""

from __future__ import annotations

from pathlib import Path

import typer

from trials.cli.cohort import write_table
from trials.exceptions import DataError

NAME = "example-data"


def command(
    name: str = typer.Argument(..., help="Dataset: gbsg2."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV or Parquet file to write."),
) -> None:
    if name != "gbsg2":
        raise DataError(f"unknown example dataset {name!r} (available: gbsg2)")
    from lifelines.datasets import load_gbsg2

    frame = load_gbsg2()
    frame.insert(0, "patient_id", range(1, len(frame) + 1))
    write_table(frame, out)
    typer.echo(f"wrote {out}: {len(frame)} patients of the GBSG2 trial (lifelines)")
