"""A run directory read for reporting: checked to be complete and of a format this version
reads, with its manifest, summary, replicate table and protocol.

The report consumes what the run recorded; nothing is re-simulated here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from trials.exceptions import RunDirectoryError
from trials.protocol import Protocol
from trials.run import MANIFEST, PROTOCOL_COPY, REPLICATES, RUN_FORMAT, SUMMARY

#: Summary keys the report needs.
SUMMARY_KEYS = ("protocol", "n_replicates", "seed", "primary", "operating_characteristics")
MANIFEST_KEYS = ("protocol", "seed", "n_replicates", "versions")


@dataclass(frozen=True)
class RunData:
    """What a finished run recorded (see :mod:`trials.run`)."""

    path: Path
    manifest: dict
    summary: dict
    protocol: Protocol
    protocol_text: str
    problems: tuple[str, ...] = field(default=())

    @cached_property
    def replicates(self) -> pd.DataFrame:
        """One row per scenario, replicate, endpoint and comparison."""
        return pd.read_parquet(self.path / REPLICATES)

    def first_point(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of a replicate table that belong to the first point of a scenario
        grid (all rows outside a grid)."""
        if "grid_point" not in frame or not len(frame):
            return frame
        simulations = self.manifest.get("simulations") or []
        label = simulations[0].get("grid_point") if simulations else None
        if label is None or label not in set(frame["grid_point"]):
            label = frame["grid_point"].iloc[0]
        return frame[frame["grid_point"] == label]

    @cached_property
    def example_protocol(self) -> Protocol:
        """The protocol of the run's first simulation (a scenario grid's first point)."""
        simulations = self.manifest.get("simulations") or []
        if self.is_grid and simulations and simulations[0].get("protocol"):
            try:
                return Protocol.model_validate(simulations[0]["protocol"])
            except ValueError:
                return self.protocol
        return self.protocol

    @property
    def is_grid(self) -> bool:
        return bool(self.summary.get("grid"))

    @property
    def is_assurance(self) -> bool:
        return "assurance" in self.summary.get("primary", {})

    @property
    def model_files(self) -> dict[str, str]:
        """Model files the protocol named and their SHA-256 when the run started."""
        return dict(self.manifest.get("inputs") or {})


def load_run(run_dir: str | os.PathLike) -> RunData:
    """Read and check a run directory.

    Raises
    ------
    RunDirectoryError
        The directory is missing, not a run directory, incomplete (interrupted, or files
        missing), or written by a version of insilico-trials whose run format this version
        does not read.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirectoryError(f"{path}: no such run directory")
    manifest = _read_json(path, MANIFEST, "not a run directory")
    version = (
        manifest.get("versions", {}).get("insilico-trials")
        if isinstance(manifest.get("versions"), dict)
        else None
    )
    written_by = f" (written by insilico-trials {version})" if version else ""
    if "insilico_trials_run" not in manifest:
        raise RunDirectoryError(
            f"{path}: not a run directory of insilico simulate ({MANIFEST} has no run format)"
        )
    if manifest.get("insilico_trials_run") != RUN_FORMAT:
        raise RunDirectoryError(
            f"{path}: incompatible run directory{written_by}: run format "
            f"{manifest.get('insilico_trials_run')!r}, this version reports on format "
            f"{RUN_FORMAT}; simulate the protocol again with this version"
        )
    status = manifest.get("status", "complete")
    if status != "complete":
        raise RunDirectoryError(
            f"{path}: the run is incomplete (status {status!r}); finish it with "
            f"insilico simulate --resume {path}"
        )
    missing = [name for name in (SUMMARY, REPLICATES, PROTOCOL_COPY) if not (path / name).exists()]
    missing += [f"{MANIFEST}: {key}" for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RunDirectoryError(f"{path}: incomplete run directory, missing {', '.join(missing)}")
    summary = _read_json(path, SUMMARY, "incomplete run directory")
    if summary.get("grid") and "primary" not in summary and isinstance(summary["grid"], list):
        # a scenario grid: the tables show its first point, the curves every point
        first = summary["grid"][0]
        summary = summary | {
            key: first[key]
            for key in ("primary", "analytic", "operating_characteristics")
            if key in first
        }
    absent = [key for key in SUMMARY_KEYS if key not in summary]
    if absent:
        raise RunDirectoryError(
            f"{path / SUMMARY}: incompatible summary{written_by}, missing {', '.join(absent)}"
        )
    try:
        protocol = Protocol.model_validate(manifest["protocol"]["content"])
    except (KeyError, TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunDirectoryError(
            f"{path / MANIFEST}: the recorded protocol is not one this version reads"
            f"{written_by} ({first})"
        ) from None
    try:
        text = (path / PROTOCOL_COPY).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path / PROTOCOL_COPY}: cannot read ({exc})") from None
    return RunData(path, manifest, summary, protocol, text)


def _read_json(path: Path, name: str, what: str) -> dict:
    file = path / name
    if not file.is_file():
        raise RunDirectoryError(f"{path}: {what} (no {name})")
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirectoryError(f"{file}: cannot read ({exc})") from None
    if not isinstance(content, dict):
        raise RunDirectoryError(f"{file}: not a {name} of insilico-trials")
    return content
