"""An output directory of ``insilico external-control`` read for reporting: checked to be
complete, with its manifest, summary, tables and protocol copy.

The report consumes what the analysis wrote (:func:`trials.external_run.write_external_control`);
nothing is re-estimated here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from trials.exceptions import RunDirectoryError
from trials.external_run import (
    BALANCE,
    KAPLAN_MEIER,
    MANIFEST,
    PROTOCOL_COPY,
    SUMMARY,
    TIPPING,
    WEIGHTS,
)

__all__ = ["ExternalControlOutput", "is_external_control_output", "load_external_control"]

#: The manifest key (and its value) that marks an external-control output directory.
FORMAT_KEY = "insilico_trials_external_control"
#: Files every external-control output directory holds.
REQUIRED = (MANIFEST, SUMMARY, BALANCE, WEIGHTS, PROTOCOL_COPY)
#: Files of a time-to-event analysis.
TIME_TO_EVENT = (KAPLAN_MEIER, TIPPING)
#: Summary and manifest keys the report needs.
SUMMARY_KEYS = ("effect", "balance", "effective_sample_size", "e_value", "max_abs_smd_after")
BALANCE_COLUMNS = ("covariate", "smd_before", "smd_after")
WEIGHTS_COLUMNS = ("source", "weight")


@dataclass(frozen=True)
class ExternalControlOutput:
    """What an external-control analysis wrote (see :mod:`trials.external_run`).

    Attributes
    ----------
    path : Path
    manifest, summary : dict
        ``manifest.json`` and ``summary.json``.
    balance, weights : DataFrame
        ``balance.csv`` (one row per covariate or level) and ``weights.csv`` (one row per
        analysed patient: source, propensity score, weight).
    kaplan_meier, tipping : DataFrame or None
        ``kaplan_meier.csv`` and ``tipping_point.csv`` (time-to-event endpoints).
    protocol : dict
        The protocol copy, parsed (as written; not re-validated).
    protocol_text : str
        The protocol copy, verbatim.
    """

    path: Path
    manifest: dict
    summary: dict
    balance: pd.DataFrame
    weights: pd.DataFrame
    kaplan_meier: pd.DataFrame | None
    tipping: pd.DataFrame | None
    protocol: dict
    protocol_text: str

    @property
    def time_to_event(self) -> bool:
        return self.summary.get("effect", {}).get("measure") == "hazard_ratio"

    @property
    def external_control(self) -> dict:
        """The protocol's ``external_control`` section (empty when absent)."""
        section = self.protocol.get("external_control")
        return section if isinstance(section, dict) else {}


def _manifest(path: Path) -> dict | None:
    file = path / MANIFEST
    if not file.is_file():
        return None
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def is_external_control_output(run_dir: str | os.PathLike) -> bool:
    """Whether a directory is an output directory of ``insilico external-control``.

    Its manifest says so (``insilico_trials_external_control``, or ``kind:
    external-control``); a directory whose manifest is missing or unreadable, or carries
    neither that marker nor a simulation run format, counts as one when it holds the
    external-control files (``summary.json`` with ``balance.csv`` or ``weights.csv``).
    """
    path = Path(run_dir)
    if not path.is_dir():
        return False
    manifest = _manifest(path)
    if manifest is not None:
        if FORMAT_KEY in manifest or manifest.get("kind") == "external-control":
            return True
        if "insilico_trials_run" in manifest:
            return False
    return (path / SUMMARY).is_file() and any((path / f).is_file() for f in (BALANCE, WEIGHTS))


def _read_csv(path: Path, name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    file = path / name
    try:
        frame = pd.read_csv(file)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirectoryError(f"{file}: cannot read ({exc})") from None
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise RunDirectoryError(f"{file}: missing column(s) {', '.join(absent)}")
    return frame


def _read_json(path: Path, name: str) -> dict:
    file = path / name
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirectoryError(f"{file}: cannot read ({exc})") from None
    if not isinstance(content, dict):
        raise RunDirectoryError(f"{file}: not a {name} of insilico external-control")
    return content


def load_external_control(run_dir: str | os.PathLike) -> ExternalControlOutput:
    """Read and check an output directory of ``insilico external-control``.

    Raises
    ------
    RunDirectoryError
        The directory is missing or incomplete (the missing files named), or a file in it
        cannot be read or lacks what the report shows.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirectoryError(f"{path}: no such directory")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    manifest = _manifest(path) if (path / MANIFEST).is_file() else None
    listed = set(manifest.get("files") or []) if manifest else set()
    missing += [name for name in TIME_TO_EVENT if name in listed and not (path / name).is_file()]
    if missing:
        raise RunDirectoryError(
            f"{path}: incomplete external-control output directory, missing "
            f"{', '.join(missing)} (run insilico external-control again)"
        )
    manifest = _read_json(path, MANIFEST)
    summary = _read_json(path, SUMMARY)
    absent = [key for key in SUMMARY_KEYS if key not in summary]
    if absent:
        raise RunDirectoryError(f"{path / SUMMARY}: missing {', '.join(absent)}")
    try:
        text = (path / PROTOCOL_COPY).read_text(encoding="utf-8")
        protocol = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirectoryError(f"{path / PROTOCOL_COPY}: cannot read ({exc})") from None
    kaplan_meier = tipping = None
    if (path / KAPLAN_MEIER).is_file():
        kaplan_meier = _read_csv(path, KAPLAN_MEIER, ("source", "time", "survival"))
    if (path / TIPPING).is_file():
        tipping = _read_csv(
            path,
            TIPPING,
            ("prevalence_difference", "confounder_hazard_ratio", "hazard_ratio_adjusted"),
        )
    return ExternalControlOutput(
        path=path,
        manifest=manifest,
        summary=summary,
        balance=_read_csv(path, BALANCE, BALANCE_COLUMNS),
        weights=_read_csv(path, WEIGHTS, WEIGHTS_COLUMNS),
        kaplan_meier=kaplan_meier,
        tipping=tipping,
        protocol=protocol if isinstance(protocol, dict) else {},
        protocol_text=text,
    )
