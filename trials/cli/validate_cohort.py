"""Compare a virtual cohort with the real data: fidelity, detection, privacy, utility."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trials.cli.cohort import write_text

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
    from generators.validation import validate_cohort

    real_frame = load_dataset(real)
    virtual_frame = load_dataset(virtual)
    dictionary = real_frame.attrs.get("dictionary")
    if dictionary is not None:
        time = time or _role(dictionary, "time")
        event = event or _role(dictionary, "event")
        drop = _role(dictionary, "id")
        if drop:
            real_frame = real_frame.drop(columns=[drop])
            virtual_frame = virtual_frame.drop(columns=[drop], errors="ignore")
    virtual_frame = virtual_frame[list(real_frame.columns)]
    report = validate_cohort(real_frame, virtual_frame, time=time, event=event, rng=seed)
    typer.echo(report.summary().to_string())
    if out is not None:
        write_text(json.dumps(report.to_dict(), indent=2, default=float) + "\n", out)
        typer.echo(f"wrote {out}")


def _role(dictionary, role: str) -> str | None:
    spec = dictionary.by_role(role)
    return spec.name if spec is not None else None
