"""Write the report of a finished run: self-contained HTML (and PDF with --pdf), and the
ADaM-style datasets of its example trial (SAS transport v5 and CSV, with metadata). An
output directory of insilico external-control gives the report of that analysis (balance,
overlap, effective sample sizes, weighted Kaplan-Meier, sensitivity), without datasets.

A report never replaces an earlier one silently: without --force an existing report
directory is kept and the new report goes to the next free name (report-2, report-3, ...).
"""

from __future__ import annotations

from pathlib import Path

import typer

from trials.cli.common import command_line

NAME = "report"


def command(
    run_dir: Path = typer.Argument(
        ...,
        help="Run directory of insilico simulate, or output directory of insilico "
        "external-control.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Report directory (default: RUN_DIR/report)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also write report.pdf (WeasyPrint)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing report."),
    validation: list[Path] = typer.Option(
        [], "--validation", help="A cohort validation report (*.validation.json) to include."
    ),
    real: Path | None = typer.Option(
        None, "--real", help="The real data of the population generator (comparison figures)."
    ),
    replicate: int = typer.Option(
        0, "--replicate", min=0, help="Which simulated trial is the example trial."
    ),
) -> None:
    from reports import build_report

    requested = out if out is not None else run_dir / "report"
    html = build_report(
        run_dir,
        out,
        pdf=pdf,
        force=force,
        validation=validation,
        real_data=real,
        replicate=replicate,
        command_line=command_line(),
    )
    folder = html.parent
    if folder.resolve() != requested.resolve():
        typer.echo(f"{requested} holds an earlier report (kept; --force replaces it)", err=True)
    typer.echo(f"wrote {html}")
    if pdf:
        typer.echo(f"wrote {folder / 'report.pdf'}")
    if (folder / "datasets").is_dir():
        typer.echo(f"wrote the datasets in {folder / 'datasets'}")
