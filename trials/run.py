"""Run directories: everything a simulation used and produced, written atomically.

A run directory holds

- ``manifest.json``: the protocol (file, SHA-256, parsed content), seed, replicates, chunk
  size, scenarios, random-stream scheme, command line, package versions and timings;
- ``protocol.yaml``: a copy of the protocol file as it was run;
- ``replicates.parquet``: one row per scenario, replicate, endpoint and comparison;
- ``summary.json``: the operating characteristics with their Monte Carlo errors.

Files are written to a temporary sibling directory that is renamed into place at the end,
so an interrupted or failed run leaves no half-written run directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trials.exceptions import RunDirectoryError

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
REPLICATES = "replicates.parquet"
PROTOCOL_COPY = "protocol.yaml"

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


@contextmanager
def staged_directory(target: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary directory that becomes ``target`` only if the block succeeds."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise RunDirectoryError(
            f"{target}: run directory exists and is not empty (use --overwrite to replace it)"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
    except OSError as exc:
        raise RunDirectoryError(
            f"{target}: cannot create the run directory ({exc.strerror})"
        ) from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


class ParquetSink:
    """Appends per-replicate chunks to one Parquet file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._writer: pq.ParquetWriter | None = None

    def __call__(self, frame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def write_json(path: str | os.PathLike, content) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, allow_nan=False, default=str)
        handle.write("\n")


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
    from trials.protocol import EventsTiming, TimeToEventEndpoint

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
    spread = primary.effect.log_hazard_ratio_distribution
    if spread is not None:
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


def _relabelled(sink, scenario: str):
    """A sink that files a chunk under another scenario name."""
    def write(frame) -> None:
        sink(frame.assign(scenario=scenario))

    return write


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
):
    """Simulate a protocol and write its run directory; returns (result, summary)."""
    from trials.design import conditional_effects, with_fixed_effect
    from trials.simulation import simulate

    started = now()
    with staged_directory(out, overwrite=overwrite) as staging:
        shutil.copyfile(protocol_path, staging / PROTOCOL_COPY)
        sink = ParquetSink(staging / REPLICATES)
        settings = {
            "n_replicates": n_replicates,
            "seed": seed,
            "chunk_size": chunk_size,
            "progress": progress,
        }
        conditional = []
        try:
            result = simulate(protocol, sink=sink, **settings)
            # conditional power: the same trials (same draws) at one fixed effect each
            for k, (label, log_hr) in enumerate(conditional_effects(protocol)):
                name = f"conditional_{k + 1}"
                fixed = simulate(
                    with_fixed_effect(protocol, log_hr),
                    scenarios=("design",),
                    sink=_relabelled(sink, name),
                    **settings,
                )
                conditional.append(
                    {"scenario": name, "effect": label, "hazard_ratio": math.exp(log_hr)}
                    | _primary_rates(fixed)
                )
        finally:
            sink.close()
        summary = result_summary(result, conditional)
        manifest = {
            "insilico_trials_run": 1,
            "protocol": {
                "file": str(protocol_path),
                "sha256": file_sha256(protocol_path),
                "id": protocol.id,
                "version": protocol.version,
                "content": protocol.model_dump(mode="json"),
            },
            "seed": result.seed,
            "n_replicates": result.n_replicates,
            "chunk_size": result.chunk_size,
            "scenarios": list(result.scenarios),
            "random_streams": (
                "replicate r draws from numpy PCG64 seeded by SeedSequence(seed, spawn_key=(r,))"
            ),
            "command_line": command_line,
            "versions": package_versions(),
            "platform": platform.platform(),
            "started": started,
            "finished": now(),
            "timings": result.timings,
            "files": [PROTOCOL_COPY, REPLICATES, SUMMARY],
        }
        write_json(staging / SUMMARY, summary)
        write_json(staging / MANIFEST, manifest)
    return result, summary
