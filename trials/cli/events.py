"""Events a log-rank test needs for a target power (Schoenfeld or Freedman), or the
power after a given number of events."""

from __future__ import annotations

import json

import typer

from analysis.power import freedman_events, logrank_power, schoenfeld_events

NAME = "events"


def command(
    hazard_ratio: float = typer.Option(..., "--hazard-ratio", help="Experimental / control."),
    alpha: float = typer.Option(0.025, "--alpha", help="One-sided unless --sided 2."),
    power: float = typer.Option(0.8, "--power", help="Target power."),
    allocation_ratio: float = typer.Option(
        1.0, "--allocation-ratio", help="n experimental / n control."
    ),
    sided: int = typer.Option(1, "--sided", help="1 or 2."),
    method: str = typer.Option("schoenfeld", "--method", help="schoenfeld or freedman."),
    events: float | None = typer.Option(
        None, "--events", help="Give the events to get the power instead."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from trials.exceptions import DesignError

    if method not in ("schoenfeld", "freedman"):
        raise DesignError(f"--method {method!r}: schoenfeld or freedman")
    if events is not None:
        value = logrank_power(events, hazard_ratio, alpha, allocation_ratio, sided, method)
        out = {"events": events, "power": value}
    else:
        formula = schoenfeld_events if method == "schoenfeld" else freedman_events
        value = formula(hazard_ratio, alpha, power, allocation_ratio, sided)
        out = {"events": value, "power": power}
    out |= {
        "hazard_ratio": hazard_ratio,
        "alpha": alpha,
        "sided": sided,
        "allocation_ratio": allocation_ratio,
        "method": method,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    elif events is not None:
        typer.echo(f"power after {events:g} events: {out['power']:.4f} ({method})")
    else:
        typer.echo(
            f"events for power {power:g}: {out['events']:.1f} ({method}); "
            f"round up to {int(-(-out['events'] // 1))}"
        )
