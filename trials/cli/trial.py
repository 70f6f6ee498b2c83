"""Simulate one trial and print its patient-level data and its analysis as in a study
report (Kaplan–Meier medians, Cox hazard ratio, log-rank test; or rates / means)."""

from __future__ import annotations

from pathlib import Path

import typer

from trials.cli.common import load_protocol
from trials.engine import patient_table
from trials.single import analyse_trial

NAME = "trial"


def command(
    protocol_file: Path = typer.Argument(..., help="Protocol YAML file."),
    replicate: int = typer.Option(0, "--replicate", min=0, help="Which replicate to show."),
    scenario: str = typer.Option("design", "--scenario", help="design or null."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed (default: protocol)."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the patient-level table here."),
) -> None:
    if scenario not in ("design", "null"):
        raise typer.BadParameter("scenario must be 'design' or 'null'", param_hint="--scenario")
    protocol = load_protocol(protocol_file)
    table = patient_table(protocol, replicate=replicate, scenario=scenario, seed=seed)
    if csv is not None:
        table.to_csv(csv, index=False)
        typer.echo(f"wrote {csv} ({len(table)} patients)")
    else:
        typer.echo(table.head(10).to_string(index=False))
        typer.echo(f"... {len(table)} patients")
    typer.echo(f"\nAnalysis at month {table.attrs['analysis_time']:.2f}")
    for endpoint, arm, report in analyse_trial(protocol, table):
        typer.echo(f"\n{endpoint}: {arm} versus {protocol.control_arm.name}")
        typer.echo(report.to_text())
