"""Simulate a protocol: power and type I error with Monte Carlo error, events, duration
and estimates, written to a run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from trials.cli.common import command_line, load_protocol
from trials.exceptions import DesignError, RunDirectoryError
from trials.run import RunDirectory, plan_run, resume_run, simulate_to_directory
from trials.torch_engine import engine_device

NAME = "simulate"


def command(
    protocol_file: Path | None = typer.Argument(
        None, help="Protocol YAML file (optional with --resume)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory to create (default: runs/<protocol id>)."
    ),
    replicates: int | None = typer.Option(
        None, "--replicates", "-r", min=1, help="Number of simulated trials (default: protocol)."
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed (default: protocol)."),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", min=1, help="Replicates per chunk (memory; results unchanged)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Worker processes (a local Dask cluster when > 1)."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Address of an existing Dask scheduler (tcp://host:8786)."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Finish an interrupted run in this run directory."
    ),
    vary: list[str] = typer.Option(
        [], "--vary", help="A scenario grid axis: PARAMETER=v1,v2,... (repeatable)."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="cpu (numpy engine), cuda, cuda:N or torch-cpu (torch engine)."
    ),
    report: bool = typer.Option(
        False, "--report", help="Also write the report (RUN_DIR/report: HTML and datasets)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    if resume is not None:
        if (
            out is not None
            or replicates
            or seed is not None
            or chunk_size
            or vary
            or (device != "cpu")
        ):
            raise RunDirectoryError(
                "--resume takes the settings of the run it finishes: drop --out, "
                "--replicates, --seed, --chunk-size, --vary and --device"
            )
        manifest = RunDirectory.open(resume).manifest()
        n_total = manifest["n_replicates"] * len(manifest["simulations"])
        label = f"resuming {manifest['protocol']['id']}"
    else:
        if protocol_file is None:
            raise RunDirectoryError("give a protocol file (or --resume RUN_DIR)")
        protocol = load_protocol(protocol_file)
        grid = parse_grid(vary)
        engine = engine_device(device)
        out = out or Path("runs") / protocol.id
        plan = plan_run(protocol, n_replicates=replicates, seed=seed, grid=grid, device=engine)
        n_total = plan.n_replicates * len(plan.simulations)
        label = f"simulating {protocol.id}"
    console = Console(stderr=True)
    show = not quiet and not as_json and sys.stderr.isatty()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=n_total)
        settings = {
            "progress": lambda n: bar.advance(task, n),
            "command_line": command_line(),
            "workers": workers,
            "scheduler": scheduler,
        }
        if resume is not None:
            result, summary = resume_run(resume, protocol_path=protocol_file, **settings)
            out = resume
        else:
            result, summary = simulate_to_directory(
                protocol,
                protocol_file,
                out,
                n_replicates=replicates,
                seed=seed,
                chunk_size=chunk_size,
                overwrite=overwrite,
                grid=grid,
                device=engine,
                **settings,
            )
    _register(out)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, allow_nan=False))
    else:
        print_summary(summary, result.timings, out)
    if report:
        from reports import build_report

        html = build_report(out, Path(out) / "report", command_line=command_line())
        typer.echo(f"wrote the report {html}", err=as_json)


def _register(out: Path) -> None:
    """Add the run to the catalog of its folder (a warning if that fails: the run is
    complete without it, and ``insilico runs list`` registers it later)."""
    import warnings

    from trials.catalog import Catalog
    from trials.exceptions import InsilicoWarning

    try:
        Catalog(Path(out).parent).register(out)
    except (RunDirectoryError, OSError, ImportError) as exc:
        warnings.warn(f"the run was not added to the catalog: {exc}", InsilicoWarning, stacklevel=2)


def parse_grid(vary: list[str]) -> dict[str, list[float]] | None:
    """``PARAMETER=v1,v2,...`` options as a grid (``start:stop:step`` ranges allowed)."""
    from trials.cli.curve import parse_values
    from trials.curve import PARAMETERS

    grid = {}
    for item in vary:
        name, sep, values = item.partition("=")
        if not sep or name not in PARAMETERS:
            raise DesignError(
                f"--vary {item!r}: write PARAMETER=v1,v2,... with PARAMETER one of "
                f"{', '.join(PARAMETERS)}"
            )
        if name in grid:
            raise DesignError(f"--vary {name}: given twice")
        grid[name] = parse_values(values)
    return grid or None


def _rate(cell: dict | None) -> str:
    if not cell:
        return "-"
    return (
        f"{cell['rate']:.4f} ± {cell['mcse']:.4f} [{cell['ci_lower']:.4f}, {cell['ci_upper']:.4f}]"
    )


def print_summary(summary: dict, timings: dict, out: Path) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)
    p = summary["protocol"]
    console.print(
        f"[bold]{p['id']}[/bold] v{p['version']} — {p['title']}\n"
        f"{summary['n_replicates']:,} replicates, seed {summary['seed']}, "
        f"alpha {summary['alpha']} ({'one' if summary['sided'] == 1 else 'two'}-sided)"
    )
    if "grid" in summary:
        _print_grid(console, summary["grid"])
        console.print(f"Simulated in {timings['simulate_seconds']:.2f} s. Run directory: {out}")
        return
    table = Table(title="Operating characteristics (rate ± Monte Carlo SE \\[exact 95% CI])")
    for column in (
        "scenario",
        "endpoint",
        "arm",
        "rejection rate",
        "events",
        "analysed",
        "duration (months)",
        "estimate (true)",
        "bias",
        "CI coverage",
    ):
        table.add_column(
            column, justify="left" if column in ("scenario", "endpoint", "arm") else "right"
        )
    for row in summary["operating_characteristics"]:
        cell = {
            "rate": row["rejection_rate"],
            "mcse": row["rejection_mcse"],
            "ci_lower": row["rejection_ci_lower"],
            "ci_upper": row["rejection_ci_upper"],
        }
        table.add_row(
            row["scenario"],
            row["endpoint"],
            row["arm"],
            _rate(cell),
            _num(row.get("events_mean"), ".1f"),
            _num(row.get("n_analysed_mean"), ".1f"),
            _num(row.get("analysis_time_mean"), ".1f"),
            _estimate(row),
            _num(row.get("estimate_bias"), "+.4f"),
            _num(row.get("estimate_coverage"), ".3f"),
        )
    console.print(table)
    from trials.design import conditional_effect_text

    for row in summary["primary"].get("conditional_power", []):
        rates = ", ".join(f"{arm} {_rate(cell)}" for arm, cell in row["power"].items())
        console.print(
            f"Conditional power at the {row['effect']} ({conditional_effect_text(row)}; "
            f"scenario {row['scenario']}): {rates}"
        )
    analytic = summary.get("analytic")
    if analytic:
        label = "assurance" if analytic["method"].startswith("assurance") else "power"
        console.print(
            f"Analytic ({analytic['method']}) {label} at {analytic['events']} events: "
            f"{analytic['power']:.4f}"
        )
        if "events_for_assurance_80" in analytic:
            console.print(
                "Events for 80 % / 90 % assurance: "
                f"{_num(analytic['events_for_assurance_80'], '.0f')} / "
                f"{_num(analytic['events_for_assurance_90'], '.0f')}"
            )
    console.print(f"Simulated in {timings['simulate_seconds']:.2f} s. Run directory: {out}")


def _print_grid(console: Console, grid: list[dict]) -> None:
    names = list(grid[0]["point"])
    table = Table(title="Scenario grid: primary endpoint (rate ± Monte Carlo SE)")
    for column in [*names, "arm", "power", "type I error", "events", "duration (months)"]:
        table.add_column(column, justify="left" if column == "arm" else "right")
    for point in grid:
        rows = {
            (r["scenario"], r["arm"]): r
            for r in point["operating_characteristics"]
            if r["endpoint"] == point["operating_characteristics"][0]["endpoint"]
        }
        for arm, cell in point["primary"]["power"].items():
            null = point["primary"].get("type_i_error", {}).get(arm)
            design = rows.get(("design", arm), {})
            table.add_row(
                *(f"{point['point'][n]:g}" for n in names),
                arm,
                f"{cell['rate']:.4f} ± {cell['mcse']:.4f}",
                "-" if null is None else f"{null['rate']:.4f} ± {null['mcse']:.4f}",
                _num(design.get("events_mean"), ".1f"),
                _num(design.get("analysis_time_mean"), ".1f"),
            )
    console.print(table)


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _estimate(row: dict) -> str:
    mean, true = row.get("estimate_mean"), row.get("estimate_true_value")
    if mean is None or true is None:
        return "-"
    if row.get("scale") in ("log_hazard_ratio", "log_odds_ratio"):
        import math

        label = "HR" if row["scale"] == "log_hazard_ratio" else "OR"
        return f"{label} {math.exp(mean):.3f} ({math.exp(true):.3f})"
    return f"{mean:.4f} ({true:.4f})"
