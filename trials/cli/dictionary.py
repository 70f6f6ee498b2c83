"""Infer the data dictionary of a CSV or Parquet file (roles, types, ranges) for the user
to check and confirm; later commands read it with --dictionary."""

from __future__ import annotations

from pathlib import Path

import typer

from generators.data import load_dataset
from generators.dictionary import dictionary_to_yaml, infer_dictionary
from trials.cli.cohort import write_text

NAME = "dictionary"


def command(
    data: Path = typer.Argument(..., help="Patient-level CSV or Parquet file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="YAML file (default: stdout)."),
) -> None:
    frame = load_dataset(data)
    text = dictionary_to_yaml(infer_dictionary(frame))
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_text(text, out)
        typer.echo(f"wrote {out}: check the roles and types, then pass it with --dictionary")
