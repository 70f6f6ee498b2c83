"""Design quantities without simulation: group-sequential boundaries on the z, p and
hazard-ratio scales, alpha and beta spent, inflation factor, stopping probabilities and
expected events and duration under the null and the design hazard ratio."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from trials.cli.common import load_protocol
from trials.design import design_summary

NAME = "design"


def command(
    protocol_file: Path = typer.Argument(..., help="Protocol YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    summary = design_summary(load_protocol(protocol_file))
    if "assurance" in summary:
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            conditional = "; ".join(
                f"{c['effect']} (HR {c['hazard_ratio']:.3f}) {c['power']:.4f}"
                for c in summary["conditional_power"]
            )
            typer.echo(
                f"{summary['protocol']['id']}: at {summary['target_events']} events, assurance "
                f"{summary['assurance']:.4f}; conditional power at the {conditional}; "
                f"events for 80 % / 90 % assurance: "
                f"{_events(summary['events_for_assurance_80'])} / "
                f"{_events(summary['events_for_assurance_90'])}"
            )
        return
    if "looks" not in summary:  # non-proportional hazards: one analysis
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            typer.echo(
                f"{summary['protocol']['id']}: {summary['test']} "
                f"FH({summary['rho']:g}, {summary['gamma']:g}) at "
                f"{summary['target_events']} events (month {summary['analysis_time']:.1f}): "
                f"power {summary['power']:.4f} ({summary['method']})"
            )
        return
    looks = summary.pop("looks")
    if as_json:
        records = [
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in row.items()
            }
            for row in looks.to_dict("records")
        ]
        typer.echo(json.dumps(summary | {"looks": records}, indent=2, default=float))
        return
    p = summary["protocol"]
    typer.echo(
        f"{p['id']} v{p['version']}: hazard ratio {summary['hazard_ratio']}, "
        f"{summary['target_events']} events, alpha {summary['alpha']} "
        f"({'one' if summary['sided'] == 1 else 'two'}-sided)"
    )
    typer.echo(looks.T.to_string(float_format=lambda v: f"{v:.4f}"))
    typer.echo(
        f"\npower {summary['power']:.4f}, type I error {summary['type_i_error']:.4f}, "
        f"inflation factor {summary['inflation_factor']:.4f}\n"
        f"expected events: {summary['expected_events_h0']:.1f} under H0, "
        f"{summary['expected_events_h1']:.1f} under the design hazard ratio"
    )
    if "expected_duration_h1" in summary:
        typer.echo(
            f"expected duration: {summary['expected_duration_h0']:.1f} months under H0, "
            f"{summary['expected_duration_h1']:.1f} under the design hazard ratio\n"
            f"expected patients randomized: {summary['expected_sample_size_h0']:.1f} under "
            f"H0, {summary['expected_sample_size_h1']:.1f} under the design hazard ratio"
        )


def _events(value: float | None) -> str:
    return "not reachable" if value is None else f"{value:.1f}"
