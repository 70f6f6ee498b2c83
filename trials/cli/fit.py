"""Fit a virtual-patient generator to patient-level data and save it (no raw rows)."""

from __future__ import annotations

from pathlib import Path

import typer

from generators.base import REGISTRY, DataRoles
from generators.data import load_dataset, load_dictionary
from trials.exceptions import DataError

NAME = "fit"


def command(
    data: Path = typer.Argument(..., help="Patient-level CSV or Parquet file."),
    generator: str = typer.Option("copula", "--generator", "-g", help="Generator kind."),
    dictionary: Path | None = typer.Option(
        None, "--dictionary", "-d", help="Data dictionary YAML (default: inferred)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (JSON)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed (Bayesian sampling)."),
) -> None:
    import generators  # noqa: F401  (registers the generators)

    if generator not in REGISTRY:
        raise DataError(f"--generator {generator!r}: one of {', '.join(sorted(REGISTRY))}")
    spec = load_dictionary(dictionary) if dictionary is not None else None
    frame = load_dataset(data, spec)
    model = REGISTRY[generator].for_data(DataRoles.of(frame), seed=seed)
    model.fit(frame)
    model.save(out)
    typer.echo(f"fitted {generator} on {len(frame)} rows of {data}; wrote {out}")
