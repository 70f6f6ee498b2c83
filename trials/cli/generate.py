"""Draw virtual patients from a fitted generator; a similarity filter (on by default)
drops virtual rows too close to a real patient."""

from __future__ import annotations

from pathlib import Path

import typer

from generators.base import load
from trials.cli.cohort import write_table
from trials.exceptions import DataError

NAME = "generate"


def command(
    model: Path = typer.Argument(..., help="Model file written by insilico fit."),
    n_patients: int = typer.Option(..., "-n", "--n-patients", min=1, help="Virtual patients."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV or Parquet file to write."),
    seed: int = typer.Option(0, "--seed", min=0),
    real: Path | None = typer.Option(
        None, "--real", help="The real data, for the similarity filter."
    ),
    no_filter: bool = typer.Option(False, "--no-filter", help="Skip the similarity filter."),
) -> None:
    import generators  # noqa: F401  (registers the generators)
    from generators.data import load_dataset
    from generators.validation import similarity_filter

    if real is None and not no_filter:
        raise DataError(
            "the similarity filter needs the real data: give --real DATA (or --no-filter)"
        )
    generator = load(model)
    virtual = generator.sample(n_patients, rng=seed)
    if not no_filter:
        reference = load_dataset(real)[list(virtual.columns)]
        virtual, n_dropped = similarity_filter(reference, virtual)
        typer.echo(f"similarity filter: dropped {n_dropped} of {n_patients} virtual patients")
    write_table(virtual, out)
    typer.echo(f"wrote {len(virtual)} virtual patients to {out}")
