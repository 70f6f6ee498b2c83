"""Write an example dataset that a dependency ships, to try the data commands on:
``gbsg2`` (lifelines: the German Breast Cancer Study Group 2 trial, hormonal therapy
versus none, 686 patients, recurrence-free survival); ``gbsg2-single-arm`` and
``gbsg2-external`` (the two files of the external-control example
``protocols/rare_disease_external_control.yaml``: 60 patients given hormonal therapy as a
single-arm trial, and the 440 untreated patients written as a registry would)."""

from __future__ import annotations

from pathlib import Path

import typer

from trials.cli.cohort import write_table
from trials.exceptions import DataError

NAME = "example-data"
DATASETS = ("gbsg2", "gbsg2-single-arm", "gbsg2-external")


def command(
    name: str = typer.Argument(..., help="Dataset: gbsg2, gbsg2-single-arm, gbsg2-external."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV or Parquet file to write."),
) -> None:
    if name not in DATASETS:
        raise DataError(f"unknown example dataset {name!r} (available: {', '.join(DATASETS)})")
    if name != "gbsg2":
        from trials.external_example import gbsg2_external_control_example

        trial, external = gbsg2_external_control_example()
        frame = trial if name == "gbsg2-single-arm" else external
        write_table(frame, out)
        what = "single-arm trial" if name == "gbsg2-single-arm" else "external source"
        typer.echo(f"wrote {out}: {len(frame)} patients, the GBSG2 example's {what}")
        return
    from lifelines.datasets import load_gbsg2

    frame = load_gbsg2()
    frame.insert(0, "patient_id", range(1, len(frame) + 1))
    write_table(frame, out)
    typer.echo(f"wrote {out}: {len(frame)} patients of the GBSG2 trial (lifelines)")
