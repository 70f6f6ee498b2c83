"""Compare a single-arm trial with an external control arm (the protocol's
``external_control`` section): eligibility, harmonisation, propensity score, balance,
weighted Kaplan-Meier and Cox, bootstrap interval, E-value; written to a directory."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trials.cli.common import command_line
from trials.exceptions import DataError, Problem, ProtocolError

NAME = "external-control"


def load_external_protocol(path: Path):
    """Load a protocol, check it and its ``external_control`` section with its data files;
    every problem is reported with the protocol's line."""
    from trials.external_data import check_external_control
    from trials.loader import load_yaml_model
    from trials.protocol import Protocol
    from trials.validation import check_protocol

    base = Path(path).parent
    protocol = load_yaml_model(
        Path(path),
        Protocol,
        checks=(lambda p: check_protocol(p, base), lambda p: check_external_control(p, base)),
    )
    if protocol.external_control is None:
        raise ProtocolError(
            [Problem(str(path), "external_control", "the protocol has no external_control "
                     "section (see protocols/rare_disease_external_control.yaml)")]
        )
    return protocol


def command(
    protocol_file: Path = typer.Argument(..., help="Protocol YAML file."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory to create (default: runs/<protocol id>-external)."
    ),
    resamples: int | None = typer.Option(
        None,
        "--resamples",
        "-r",
        min=0,
        help="Bootstrap resamples (default: protocol; a synthetic arm takes at least 2).",
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed (default: protocol)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    from trials.external_run import _now, run_external_control, write_external_control

    started = _now()
    protocol = load_external_protocol(protocol_file)
    out = out or Path("runs") / f"{protocol.id}-external"
    if resamples == 1:
        raise DataError("--resamples: give 0 (no bootstrap) or at least 2")
    run = run_external_control(
        protocol.external_control, protocol_file.parent, n_resamples=resamples, seed=seed
    )
    summary = write_external_control(
        run,
        protocol,
        protocol_file,
        out,
        overwrite=overwrite,
        command_line=command_line(),
        started=started,
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2, allow_nan=False))
        return
    print_summary(summary, out)


def _num(value, fmt: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(
        value, fmt
    )


def print_summary(summary: dict, out: Path) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)
    p = summary["protocol"]
    adjustment = summary["adjustment"]["method"]
    console.print(f"[bold]{p['id']}[/bold] v{p['version']} — {p['title']}")
    steps = ", ".join(
        f"{row['source']} {row['step']}: {row['n_patients']}" for row in summary["attrition"]
    )
    console.print(f"Patients: {steps}")
    if summary["n_trial_ineligible"]:
        console.print(
            f"[yellow]{summary['n_trial_ineligible']} trial patients do not meet the "
            "eligibility criteria as written[/yellow]"
        )
    table = Table(title=f"Balance ({adjustment}): standardized mean differences")
    for column in ("covariate", "trial mean", "external mean", "adjusted", "SMD before",
                   "SMD after", "variance ratio after"):
        table.add_column(column, justify="left" if column == "covariate" else "right")
    for row in summary["balance"]:
        table.add_row(
            row["label"],
            _num(row["mean_trial"]),
            _num(row["mean_external"]),
            _num(row["mean_external_adjusted"]),
            _num(row["smd_before"], "+.3f"),
            _num(row["smd_after"], "+.3f"),
            _num(row["variance_ratio_after"], ".2f"),
        )
    console.print(table)
    ess = summary["effective_sample_size"]
    console.print(
        f"Max |SMD| before {summary['max_abs_smd_before']:.3f}, after "
        f"{summary['max_abs_smd_after']:.3f}; effective sample size: trial {ess['trial']:.1f}, "
        f"external {ess['external']:.1f}; trial patients outside the external scores' range: "
        f"{summary['share_unsupported']:.1%}"
    )
    if "matching" in summary:
        m = summary["matching"]
        console.print(
            f"Matching 1:{m['k']}, caliper {m['caliper_sd']} SD of the logit: "
            f"{m['n_matched_trial']} trial patients matched to {m['n_matched_external']} "
            f"external patients, {m['n_unmatched']} unmatched"
        )
    level = f"{summary['level']:.0%}"
    for label, effect in (("Naive", summary["naive"]), ("Adjusted", summary["effect"])):
        name = "HR" if effect["measure"] == "hazard_ratio" else "difference"
        text = (
            f"{label} {name} {effect['estimate']:.3f} ({level} CI {effect['conf_low']:.3f} to "
            f"{effect['conf_high']:.3f}, p = {effect['p_value']:.3g})"
        )
        boot = effect.get("bootstrap")
        if boot:
            text += (
                f"; bootstrap {level} CI {boot['conf_low']:.3f} to {boot['conf_high']:.3f} "
                f"({boot['n_resamples']} resamples, {boot['n_failed']} failed)"
            )
        console.print(text)
    if "kaplan_meier" in summary:
        medians = summary["kaplan_meier"]["median"]
        console.print(
            "Median (weighted Kaplan-Meier): "
            + ", ".join(f"{k} {_num(v, '.1f')}" for k, v in medians.items())
        )
    ev = summary["e_value"]
    console.print(
        f"E-value {ev['e_value']:.2f} (CI limit nearer the null: {_num(ev['e_value_ci'], '.2f')});"
        f" {ev['conversion']}"
    )
    if "tipping_point" in summary and summary["tipping_point"]["tipping_bias_log_hr"] == 0:
        console.print("Tipping point: the confidence interval already includes 1")
    elif "tipping_point" in summary:
        rows = summary["tipping_point"]["by_confounder_hazard_ratio"]
        text = ", ".join(
            f"HR_U {r['confounder_hazard_ratio']:g}: {_num(r['prevalence_difference'], '+.2f')}"
            for r in rows
        )
        console.print(
            "Tipping point (prevalence difference of a binary unmeasured confounder that "
            f"makes the CI include 1): {text}"
        )
    synthetic = summary.get("synthetic_control")
    if synthetic:
        console.print(
            f"Synthetic control arm ({synthetic['generator']}): HR "
            f"{synthetic['hazard_ratio']:.3f} (bootstrap {level} CI {synthetic['conf_low']:.3f}"
            f" to {synthetic['conf_high']:.3f}); {synthetic['n_generated']} generated from "
            f"{synthetic['n_external_real']} real external patients"
        )
        for note in synthetic["notes"]:
            console.print(f"  {note}")
    for note in summary["notes"]:
        console.print(f"Note: {note}")
    console.print(f"Output directory: {out}")
