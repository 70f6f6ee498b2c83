"""Fit a virtual-patient generator to patient-level data and save it (no raw rows).

A mechanistic generator learns nothing from data: ``insilico fit --generator
tumour_growth --param growth_rate=0.05 -o tgi.json`` takes its parameters from the
command line (or its defaults) and needs no data file.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import typer
import yaml

from generators.base import REGISTRY, DataRoles
from generators.data import load_dataset
from generators.dictionary import load_dictionary
from trials.exceptions import DataError, InsilicoError

NAME = "fit"


def command(
    data: Path | None = typer.Argument(
        None, help="Patient-level CSV or Parquet file (not for a mechanistic generator)."
    ),
    generator: str = typer.Option("copula", "--generator", "-g", help="Generator kind."),
    dictionary: Path | None = typer.Option(
        None, "--dictionary", "-d", help="Data dictionary YAML (default: inferred)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (JSON)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed (Bayesian sampling, training)."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A generator setting NAME=VALUE (repeatable)."
    ),
    device: str | None = typer.Option(
        None, "--device", help="torch device of a deep generator: cpu, cuda or auto."
    ),
) -> None:
    import generators  # noqa: F401  (registers the generators)

    if generator not in REGISTRY:
        raise DataError(f"--generator {generator!r}: one of {', '.join(sorted(REGISTRY))}")
    cls = REGISTRY[generator]
    settings = _settings(cls, param, device)
    if not cls.learns_from_data:
        if data is not None:
            raise DataError(f"the {generator} generator learns nothing from data: drop {data}")
        with user_settings(generator):
            model = cls(**settings).fit()
        model.save(out)
        typer.echo(f"set up {generator}; wrote {out}")
        return
    if data is None:
        raise DataError(f"the {generator} generator is fitted to data: give a data file")
    spec = load_dictionary(dictionary) if dictionary is not None else None
    frame = load_dataset(data, spec)
    with user_settings(generator):
        model = cls.for_data(DataRoles.of(frame), seed=seed)
        if settings:
            model = cls(**(model.get_params() | settings))
        model.fit(frame)
    model.save(out)
    typer.echo(f"fitted {generator} on {len(frame)} rows of {data}; wrote {out}")


@contextmanager
def user_settings(kind: str):
    """A generator's refusal of its settings or data (a bad value, a device that is not
    there, training that diverged) is the user's to fix: a message, not a traceback."""
    try:
        yield
    except InsilicoError:
        raise
    except (ValueError, TypeError, FloatingPointError) as exc:
        raise DataError(f"the {kind} generator: {exc}") from None


def _settings(cls, param: list[str], device: str | None) -> dict:
    """Constructor settings from ``NAME=VALUE`` options (values read as YAML scalars)."""
    allowed = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    settings = {}
    for item in param:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise DataError(f"--param {item!r}: write NAME=VALUE")
        if name not in allowed:
            raise DataError(
                f"--param {name!r}: not a setting of the {cls.kind} generator "
                f"(settings: {', '.join(allowed) or 'none'})"
            )
        try:
            settings[name] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise DataError(f"--param {item!r}: {text!r} is not a value") from None
    if device is not None:
        if "device" not in allowed:
            raise DataError(f"--device: the {cls.kind} generator does not use torch")
        settings["device"] = device
    return settings
