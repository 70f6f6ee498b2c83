"""Power curve over a grid of effects or sizes (common random numbers), and the value
that reaches a target power."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trials.cli.common import load_protocol
from trials.curve import PARAMETERS, power_curve
from trials.exceptions import DesignError

NAME = "curve"


def parse_values(text: str) -> list[float]:
    """``0.6,0.7,0.8`` or ``start:stop:step`` (stop included)."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(round((stop - start) / step)) + 1
            return [round(start + i * step, 10) for i in range(n)]
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DesignError(
            f"--values {text!r}: give numbers separated by commas, or start:stop:step"
        ) from None


def command(
    protocol_file: Path = typer.Argument(..., help="Protocol YAML file."),
    parameter: str = typer.Option(
        ..., "--parameter", "-p", help=f"One of {', '.join(PARAMETERS)}."
    ),
    values: str = typer.Option(..., "--values", help="0.6,0.7,0.8 or start:stop:step."),
    replicates: int | None = typer.Option(None, "--replicates", "-r", min=1),
    seed: int | None = typer.Option(None, "--seed", min=0),
    target_power: float | None = typer.Option(
        None, "--target-power", min=0.0, max=1.0, help="Solve for the value reaching this power."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the curve as JSON."),
) -> None:
    if parameter not in PARAMETERS:
        raise DesignError(f"--parameter {parameter!r}: one of {', '.join(PARAMETERS)}")
    protocol = load_protocol(protocol_file)
    grid = parse_values(values)
    curve = power_curve(protocol, parameter, grid, n_replicates=replicates, seed=seed)
    solved = curve.solve(target_power) if target_power is not None else None
    if as_json:
        out = {"parameter": parameter, "curve": curve.table.to_dict("records"), "solution": solved}
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(curve.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if solved:
        typer.echo(
            f"\n{parameter} reaching power {target_power}: {solved['value']:g} "
            f"(first grid value reaching it: {solved['grid_value']:g})"
        )
