"""The run catalog: list the runs of a folder, show one, compare two."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trials.catalog import Catalog

NAME = "runs"

app = typer.Typer(
    name=NAME, help=__doc__, no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("list")
def list_runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder of run directories."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every run of the folder with its headline results (newest first)."""
    table = Catalog(folder).list()
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
        return
    _print(table[["run", "protocol_id", "status", "finished", "n_replicates", "seed", "power",
                  "type_i_error"]], "Runs")


@app.command("show")
def show(
    run: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rejection rates of one run, computed from its Parquet parts."""
    table = Catalog(run.parent).show(run)
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
        return
    _print(table, f"{run}: rejection rates (from the per-replicate table)")


@app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Run directory A."),
    run_b: Path = typer.Argument(..., help="Run directory B."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rejection rates of two runs and their difference (B - A) with its Monte Carlo SE."""
    table = Catalog(run_a.parent).compare(run_a, run_b)
    if as_json:
        typer.echo(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
        return
    _print(table, f"B = {run_b} versus A = {run_a}")


def _print(frame, title: str) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
