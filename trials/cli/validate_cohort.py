"""Compare a virtual cohort with the real data: fidelity, detection, privacy, utility."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trials.cli.cohort import validate_against_real, write_text

NAME = "validate-cohort"


def command(
    real: Path = typer.Argument(..., help="Real patient-level data (CSV or Parquet)."),
    virtual: Path = typer.Argument(..., help="Virtual patients (CSV or Parquet)."),
    time: str | None = typer.Option(None, "--time", help="Survival time column."),
    event: str | None = typer.Option(None, "--event", help="Event column (1 = event)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON report to write."),
    seed: int = typer.Option(0, "--seed", min=0),
) -> None:
    from generators.data import load_dataset

    report = validate_against_real(
        load_dataset(real), load_dataset(virtual), time=time, event=event, seed=seed
    )
    typer.echo(report.summary().to_string())
    if out is not None:
        write_text(json.dumps(report.to_dict(), indent=2, default=float) + "\n", out)
        typer.echo(f"wrote {out}")
