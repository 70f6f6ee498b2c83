"""Run directories: everything a simulation used and produced, durable and resumable.

A run directory holds

- ``manifest.json``: the protocol (file, SHA-256, parsed content), the SHA-256 of every
  model file it names, seed, replicates, chunk size, the simulations of the run (the
  protocol's own; one per conditional power; one per point of a scenario grid), the
  random-stream scheme, command line, package versions, timings and ``status``
  (``running`` until the summary is written, then ``complete``);
- ``protocol.yaml``: a copy of the protocol file as it was run;
- ``replicates.parquet/``: one Parquet part per finished chunk of replicates (one row per
  scenario, replicate, endpoint and comparison), each written atomically, so a run that
  is killed keeps every finished chunk;
- ``summary.json``: the operating characteristics with their Monte Carlo errors, written
  last from the parts.

``insilico simulate --resume RUN_DIR`` simulates the chunks that are missing and ends with
exactly the files of an uninterrupted run: a chunk's rows depend only on the seed and its
replicate indices, and the summary is computed from the parts in blocks of replicates
that do not depend on the chunking (:class:`analysis.operating.OperatingCharacteristicsBuilder`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trials.exceptions import RunDirectoryError
from trials.execution import Chunk, Simulation, executor

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
REPLICATES = "replicates.parquet"
PROTOCOL_COPY = "protocol.yaml"
RUN_FORMAT = 2

PACKAGES = (
    "insilico-trials",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "pydantic",
    "statsmodels",
    "lifelines",
    "PyYAML",
    "typer",
)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: str | os.PathLike, content) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = json.dumps(content, indent=2, allow_nan=False, default=str) + "\n"
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunDirectoryError(f"{path}: cannot write ({exc.strerror or exc})") from None


def read_summary(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / SUMMARY
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunDirectoryError(f"{path}: cannot read ({exc.strerror})") from None


def result_summary(result, conditional: list[dict] | None = None) -> dict:
    """The JSON summary of a simulation (what ``summary.json`` and ``--json`` hold);
    ``conditional``: the conditional powers that go with an assurance."""
    protocol = result.protocol
    oc = result.operating_characteristics
    primary = protocol.endpoints.primary.name
    rows = oc.table[oc.table["endpoint"] == primary]
    headline = {}
    for scenario, key in (("design", "power"), ("null", "type_i_error")):
        for _, row in rows[rows["scenario"] == scenario].iterrows():
            headline.setdefault(key, {})[row["arm"]] = {
                "rate": float(row["rejection_rate"]),
                "mcse": float(row["rejection_mcse"]),
                "ci_lower": float(row["rejection_ci_lower"]),
                "ci_upper": float(row["rejection_ci_upper"]),
            }
    if conditional:
        headline["assurance"] = headline.pop("power")
        headline["conditional_power"] = conditional
    return {
        "protocol": {"id": protocol.id, "title": protocol.title, "version": protocol.version},
        "n_replicates": result.n_replicates,
        "seed": result.seed,
        "scenarios": list(result.scenarios),
        "primary_endpoint": primary,
        "alpha": protocol.analysis.alpha,
        "sided": protocol.analysis.sided,
        "primary": headline,
        "analytic": analytic_reference(protocol),
        "operating_characteristics": oc.to_records(),
    }


def analytic_reference(protocol) -> dict | None:
    """Schoenfeld's power at the target events, for an event-driven two-arm log-rank design."""
    from analysis.power import logrank_power
    from trials.protocol import EventsTiming, TimeToEventEndpoint, effect_distribution

    primary = protocol.endpoints.primary
    timing = protocol.analysis.timing
    if not (
        isinstance(primary, TimeToEventEndpoint)
        and isinstance(timing, EventsTiming)
        and len(protocol.arms) == 2
        and protocol.analysis.group_sequential is None
        and not primary.covariate_effects
    ):
        return None
    if effect_distribution(primary) is not None:
        from trials.design import assurance_summary

        design = assurance_summary(protocol)
        return {
            "method": "assurance (Schoenfeld)",
            "events": timing.target_events,
            "power": design["assurance"],
            "conditional_power": design["conditional_power"],
            "events_for_assurance_80": design["events_for_assurance_80"],
            "events_for_assurance_90": design["events_for_assurance_90"],
        }
    if not isinstance(primary.effect.hazard_ratio, float):
        return None
    ratio = protocol.experimental_arms[0].allocation / protocol.control_arm.allocation
    power = logrank_power(
        timing.target_events,
        primary.effect.hazard_ratio,
        alpha=protocol.analysis.alpha,
        allocation_ratio=ratio,
        sided=protocol.analysis.sided,
    )
    return {"method": "Schoenfeld", "events": timing.target_events, "power": float(power)}


def _primary_rates(result) -> dict:
    """The rejection rates of the primary endpoint's comparisons, by arm."""
    table = result.operating_characteristics.table
    rows = table[table["endpoint"] == result.protocol.endpoints.primary.name]
    return {
        "power": {
            row["arm"]: {
                "rate": float(row["rejection_rate"]),
                "mcse": float(row["rejection_mcse"]),
                "ci_lower": float(row["rejection_ci_lower"]),
                "ci_upper": float(row["rejection_ci_upper"]),
            }
            for _, row in rows.iterrows()
        }
    }


# ---------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RunPlan:
    """The simulations of a run and how their replicates are chunked."""

    simulations: list[Simulation]
    points: list[dict | None]  # grid values per simulation (None outside a grid)
    n_replicates: int
    seed: int
    chunk_size: int
    device: str | None = None

    def chunks(self) -> list[Chunk]:
        out = []
        for item in range(len(self.simulations)):
            for index, start in enumerate(range(0, self.n_replicates, self.chunk_size)):
                stop = min(start + self.chunk_size, self.n_replicates)
                out.append(Chunk(item, index, start, stop))
        return out


def plan_run(
    protocol,
    *,
    n_replicates: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    grid: dict[str, list[float]] | None = None,
    device: str | None = None,
) -> RunPlan:
    """The simulations of a run: the protocol's design and null scenarios and one
    conditional power per fixed effect of an assurance design — or, for a scenario
    ``grid`` (parameter -> values), the design and null scenarios of every point of the
    grid (the cartesian product), all with the same seed (common random numbers). A
    ``device`` runs them on the torch engine (:mod:`trials.torch_engine`)."""
    from trials.design import conditional_effects, with_fixed_effect
    from trials.engine import SCENARIOS, Layout
    from trials.simulation import default_chunk_size

    sim = protocol.simulation
    n_replicates = sim.n_replicates if n_replicates is None else n_replicates
    seed = sim.seed if seed is None else seed
    simulations, points = [], []
    if grid:
        from trials.curve import SIZES, with_parameter

        names = list(grid)
        n_draw = _grid_draws(protocol, grid)
        for values in itertools.product(*(grid[n] for n in names)):
            point = {
                n: int(v) if n in SIZES else float(v) for n, v in zip(names, values, strict=True)
            }
            changed = protocol
            for name, value in point.items():
                changed = with_parameter(changed, name, value)
            label = ", ".join(f"{n}={v:g}" for n, v in point.items())
            simulations.append(
                Simulation(changed, SCENARIOS, n_draw=n_draw, point=label, device=device)
            )
            points.append(point)
    else:
        simulations.append(Simulation(protocol, SCENARIOS, device=device))
        points.append(None)
        for k, (_, value) in enumerate(conditional_effects(protocol)):
            fixed = with_fixed_effect(protocol, value)
            simulations.append(
                Simulation(fixed, ("design",), label=f"conditional_{k + 1}", device=device)
            )
            points.append(None)
    if chunk_size is None:
        chunk_size = sim.chunk_size or min(
            default_chunk_size(
                Layout(
                    s.protocol,
                    s.protocol.population.n_patients,
                    s.n_draw or s.protocol.population.n_patients,
                ),
                device,
            )
            for s in simulations
        )
    return RunPlan(simulations, points, n_replicates, seed, chunk_size, device)


def _grid_draws(protocol, grid: dict) -> int | None:
    """Patients laid out per replicate when the grid varies the sample size, so that the
    points share their patients (a larger trial adds patients to a smaller one)."""
    if "n_patients" not in grid:
        return None
    return int(max(max(grid["n_patients"]), protocol.population.n_patients))


# ----------------------------------------------------------------- the directory


class RunDirectory:
    """A run directory on disk (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.parts = self.path / REPLICATES

    @classmethod
    def create(cls, path, overwrite: bool = False) -> RunDirectory:
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirectoryError(f"{path}: exists and is not a directory")
        if path.exists() and any(path.iterdir()):
            if not overwrite:
                raise RunDirectoryError(
                    f"{path}: run directory exists and is not empty (use --overwrite to "
                    "replace it, or --resume to finish an interrupted run)"
                )
            shutil.rmtree(path)
        try:
            (path / REPLICATES).mkdir(parents=True)
        except OSError as exc:
            raise RunDirectoryError(
                f"{path}: cannot create the run directory ({exc.strerror})"
            ) from None
        return cls(path)

    @classmethod
    def open(cls, path) -> RunDirectory:
        run = cls(path)
        if not (run.path / MANIFEST).is_file():
            raise RunDirectoryError(f"{run.path}: not a run directory (no {MANIFEST})")
        return run

    def manifest(self) -> dict:
        try:
            manifest = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirectoryError(f"{self.path / MANIFEST}: cannot read ({exc})") from None
        if manifest.get("insilico_trials_run") != RUN_FORMAT:
            raise RunDirectoryError(
                f"{self.path}: a run directory of format {manifest.get('insilico_trials_run')}"
                f" (this version reads format {RUN_FORMAT})"
            )
        return manifest

    def part(self, chunk: Chunk) -> Path:
        return self.parts / f"part-{chunk.item:03d}-{chunk.index:06d}.parquet"

    def write_part(self, chunk: Chunk, frame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        try:
            _atomic_write(
                self.part(chunk),
                lambda tmp: pq.write_table(table, tmp, compression="zstd"),
            )
        except RunDirectoryError as error:
            raise RunDirectoryError(
                f"{error}; the finished chunks are kept: once there is room, finish the run "
                f"with insilico simulate --resume {self.path}"
            ) from None

    def finished(self, chunks: list[Chunk]) -> set[Chunk]:
        return {c for c in chunks if self.part(c).is_file()}

    def read_part(self, chunk: Chunk):
        return pq.read_table(self.part(chunk)).to_pandas()


# --------------------------------------------------------------------- running


def simulate_to_directory(
    protocol,
    protocol_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    n_replicates: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    overwrite: bool = False,
    progress=None,
    command_line: list[str] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    grid: dict[str, list[float]] | None = None,
    device: str | None = None,
):
    """Simulate a protocol into a new run directory; returns ``(result, summary)``
    (``result``: the :class:`trials.simulation.SimulationResult` of the protocol's own
    simulation, or of the first grid point). ``device``: the torch engine's device
    (``None``: the numpy engine)."""
    plan = plan_run(
        protocol,
        n_replicates=n_replicates,
        seed=seed,
        chunk_size=chunk_size,
        grid=grid,
        device=device,
    )
    pool = executor(workers, scheduler)  # an unreachable scheduler fails before any file
    try:
        run = RunDirectory.create(out, overwrite=overwrite)
    except BaseException:
        pool.close()
        raise
    shutil.copyfile(protocol_path, run.path / PROTOCOL_COPY)
    manifest = {
        "insilico_trials_run": RUN_FORMAT,
        "status": "running",
        "protocol": {
            "file": str(protocol_path),
            "sha256": file_sha256(protocol_path),
            "id": protocol.id,
            "version": protocol.version,
            "content": protocol.model_dump(mode="json"),
        },
        "inputs": _input_hashes(protocol),
        "seed": plan.seed,
        "n_replicates": plan.n_replicates,
        "chunk_size": plan.chunk_size,
        "grid": grid,
        "simulations": [
            {
                "label": s.label,
                "scenarios": list(s.scenarios),
                "point": point,
                "n_draw": s.n_draw,
                "grid_point": s.point,
                "protocol": s.protocol.model_dump(mode="json"),
            }
            for s, point in zip(plan.simulations, plan.points, strict=True)
        ],
        "scenarios": _scenario_names(plan),
        "device": plan.device,
        "random_streams": random_streams(plan.device),
        "command_line": command_line,
        "versions": package_versions(),
        "platform": platform.platform(),
        "started": now(),
        "files": [PROTOCOL_COPY, REPLICATES, SUMMARY],
    }
    write_json(run.path / MANIFEST, manifest)
    return _complete(run, plan, manifest, progress, pool)


def resume_run(
    out: str | os.PathLike,
    *,
    protocol_path: str | os.PathLike | None = None,
    progress=None,
    workers: int = 1,
    scheduler: str | None = None,
    command_line: list[str] | None = None,
):
    """Finish an interrupted run: simulate its missing chunks, then summarise.

    Refuses when the protocol file (the one given, or the one recorded in the manifest if
    it still exists) or a model file it names has changed since the run started.
    """
    from trials.protocol import Protocol

    run = RunDirectory.open(out)
    manifest = run.manifest()
    recorded = manifest["protocol"]
    given = Path(protocol_path) if protocol_path is not None else Path(recorded["file"])
    if protocol_path is not None or given.is_file():
        if file_sha256(given) != recorded["sha256"]:
            raise RunDirectoryError(
                f"{given}: the protocol changed since the run started (SHA-256 "
                f"{file_sha256(given)[:12]}… instead of {recorded['sha256'][:12]}…); "
                "start a new run"
            )
    for path, digest in manifest["inputs"].items():
        if not Path(path).is_file() or file_sha256(path) != digest:
            raise RunDirectoryError(
                f"{path}: this model file changed or is missing since the run started"
            )
    from trials.torch_engine import engine_device

    device = engine_device(manifest.get("device"))
    simulations = [
        Simulation(
            Protocol.model_validate(s["protocol"]),
            tuple(s["scenarios"]),
            s["label"],
            s["n_draw"],
            s["grid_point"],
            device,
        )
        for s in manifest["simulations"]
    ]
    plan = RunPlan(
        simulations,
        [s["point"] for s in manifest["simulations"]],
        manifest["n_replicates"],
        manifest["seed"],
        manifest["chunk_size"],
        device,
    )
    resumed = {"at": now(), "command_line": command_line}
    manifest["resumed"] = [*manifest.get("resumed", []), resumed]
    return _complete(run, plan, manifest, progress, executor(workers, scheduler))


def random_streams(device: str | None) -> str:
    """How the run's replicates draw their random numbers (for the manifest)."""
    if device is None:
        return "replicate r draws from numpy PCG64 seeded by SeedSequence(seed, spawn_key=(r,))"
    return (
        "torch engine: draw k of replicate r is output k+1 of SplitMix64 seeded with "
        "output r+1 of SplitMix64 seeded with the seed"
    )


def _complete(run: RunDirectory, plan: RunPlan, manifest: dict, progress, pool):
    """Simulate the chunks not yet on disk, then summarise the run from its parts."""
    from trials.simulation import SimulationResult

    chunks = plan.chunks()
    done = run.finished(chunks)
    if progress is not None and done:
        progress(sum(c.stop - c.start for c in done))
    todo = [c for c in chunks if c not in done]
    started = time.perf_counter()
    try:
        for chunk in pool.map(plan.simulations, todo, plan.seed, run.write_part):
            if progress is not None:
                progress(chunk.stop - chunk.start)
    finally:
        pool.close()
    simulated = time.perf_counter()
    results = []
    for item, simulation in enumerate(plan.simulations):
        oc = _summarise(run, [c for c in chunks if c.item == item])
        results.append(
            SimulationResult(
                simulation.protocol,
                plan.n_replicates,
                plan.seed,
                plan.chunk_size,
                tuple(simulation.scenarios),
                None,
                oc,
            )
        )
    timings = {
        "simulate_seconds": simulated - started,
        "summarise_seconds": time.perf_counter() - simulated,
        "workers": pool.n_workers,
    }
    summary = _run_summary(plan, results)
    write_json(run.path / SUMMARY, summary)
    manifest |= {"status": "complete", "finished": now(), "timings": timings}
    write_json(run.path / MANIFEST, manifest)
    main = results[0]
    main = SimulationResult(
        main.protocol,
        main.n_replicates,
        main.seed,
        main.chunk_size,
        main.scenarios,
        None,
        main.operating_characteristics,
        timings,
    )
    return main, summary


def _summarise(run: RunDirectory, chunks: list[Chunk]):
    from analysis.operating import OperatingCharacteristicsBuilder
    from trials.simulation import _warn_target_not_reached

    builder = OperatingCharacteristicsBuilder()
    for chunk in sorted(chunks, key=lambda c: c.start):
        frame = run.read_part(chunk)
        builder.add(frame.drop(columns=["grid_point"], errors="ignore"))
    oc = builder.result()
    _warn_target_not_reached(oc)
    return oc


def _run_summary(plan: RunPlan, results: list) -> dict:
    if plan.points[0] is None:
        from trials.design import conditional_effect

        protocol = plan.simulations[0].protocol
        conditional = [
            {"scenario": s.label, "effect": label}
            | conditional_effect(protocol, value)
            | _primary_rates(result)
            for s, result, (label, value) in zip(
                plan.simulations[1:],
                results[1:],
                _conditional(protocol),
                strict=True,
            )
        ]
        return result_summary(results[0], conditional)
    first = result_summary(results[0])
    summary = {
        key: first[key]
        for key in (
            "protocol",
            "n_replicates",
            "seed",
            "scenarios",
            "primary_endpoint",
            "alpha",
            "sided",
        )
    }
    summary["grid"] = [
        {"point": point}
        | {
            key: value
            for key, value in result_summary(result).items()
            if key in ("primary", "analytic", "operating_characteristics")
        }
        for point, result in zip(plan.points, results, strict=True)
    ]
    return summary


def _conditional(protocol):
    from trials.design import conditional_effects

    return conditional_effects(protocol)


def _scenario_names(plan: RunPlan) -> list[str]:
    names: list[str] = []
    for s in plan.simulations:
        for scenario in [s.label] if s.label else s.scenarios:
            if scenario not in names:
                names.append(scenario)
    return names


def _input_hashes(protocol) -> dict[str, str]:
    """SHA-256 of every model file the protocol names (absolute paths, as resolved)."""
    paths = []
    if protocol.population.generator is not None:
        paths.append(protocol.population.generator.model)
    from trials.protocol import effect_distribution

    for endpoint in [protocol.endpoints.primary, *protocol.endpoints.secondary]:
        spread = effect_distribution(endpoint)
        if spread is not None and spread.model is not None:
            paths.append(spread.model)
    return {path: file_sha256(path) for path in paths}
