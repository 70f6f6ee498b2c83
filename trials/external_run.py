"""Running a protocol's ``external_control`` section and writing its results.

:func:`run_external_control` runs :func:`analysis.external_control.analyse_external_control`
(and :func:`analysis.synthetic_control.synthetic_control_comparison` when the section asks
for a synthetic control arm) on the data of
:func:`trials.external_data.prepare_external_control`; :func:`external_control_summary`
gives the JSON summary and :func:`write_external_control` writes the output directory
atomically.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from trials.external import ExternalControl, Matching
from trials.external_data import PreparedData, prepare_external_control

if TYPE_CHECKING:
    from analysis.external_control import ExternalControlAnalysis
    from analysis.synthetic_control import SyntheticControlResult

__all__ = [
    "ExternalControlRun",
    "external_control_summary",
    "run_external_control",
    "write_external_control",
]


@dataclass(frozen=True)
class ExternalControlRun:
    """An external-control analysis of a protocol: its data and results."""

    section: ExternalControl
    prepared: PreparedData
    analysis: ExternalControlAnalysis
    synthetic: SyntheticControlResult | None


def run_external_control(
    section: ExternalControl,
    base: str | os.PathLike | None = None,
    *,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> ExternalControlRun:
    """Prepare the data and run the analysis the section describes.

    Parameters
    ----------
    section : ExternalControl
    base : path, optional
        The protocol file's folder.
    n_resamples, seed : int, optional
        Override the bootstrap settings.

    Returns
    -------
    ExternalControlRun

    Raises
    ------
    DataError
        Data problems (:class:`~trials.external_data.ExternalControlDataError`),
        non-overlapping propensity scores, too many unmatched trial patients, too small an
        effective sample size.
    """
    from analysis.external_control import analyse_external_control
    from analysis.synthetic_control import synthetic_control_comparison

    prepared = prepare_external_control(section, base)
    adjustment = section.adjustment
    matching = isinstance(adjustment, Matching)
    endpoint = section.endpoint
    seed = section.bootstrap.seed if seed is None else seed
    resamples = section.bootstrap.n_resamples if n_resamples is None else n_resamples
    analysis = analyse_external_control(
        prepared.data,
        treatment="trial",
        covariates=section.covariates,
        endpoint=endpoint.type,
        time=getattr(endpoint, "time", None),
        event=getattr(endpoint, "event", None),
        outcome=getattr(endpoint, "outcome", None),
        method=adjustment.method,
        k=adjustment.k if matching else 1,
        caliper=adjustment.caliper if matching else 0.2,
        replace=adjustment.replace if matching else False,
        max_unmatched=adjustment.max_unmatched if matching else 0.1,
        max_unsupported=section.max_unsupported,
        min_effective_sample_size=section.min_effective_sample_size,
        n_resamples=resamples,
        rng=seed,
        level=section.level,
        rare_outcome=section.sensitivity.rare_outcome,
        prevalence_differences=section.sensitivity.prevalence_differences,
        confounder_hazard_ratios=section.sensitivity.confounder_hazard_ratios,
    )
    synthetic = None
    spec = section.synthetic_control
    if spec is not None:
        synthetic = synthetic_control_comparison(
            prepared.data,
            treatment="trial",
            covariates=section.covariates,
            time=endpoint.time,
            event=endpoint.event,
            generator=spec.generator,
            n_per_patient=spec.n_per_patient,
            n_resamples=spec.n_resamples if n_resamples is None else max(n_resamples, 2),
            rng=seed,
            level=section.level,
        )
    return ExternalControlRun(section, prepared, analysis, synthetic)


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinity as None, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return _clean(frame.to_dict(orient="records"))


def external_control_summary(run: ExternalControlRun, protocol=None) -> dict:
    """The JSON summary of a run (what ``summary.json`` and ``--json`` hold)."""
    from analysis.external_control import WeightedCoxResult

    a = run.analysis
    level = a.level

    def effect(result) -> dict:
        low, high = result.conf_int(level)
        if isinstance(result, WeightedCoxResult):
            return {
                "measure": "hazard_ratio",
                "estimate": result.hazard_ratio,
                "log_hr": result.log_hr,
                "se_log_hr": result.se_log_hr,
                "conf_low": low,
                "conf_high": high,
                "p_value": result.p_value,
                "events_trial": result.events_trial,
                "events_external": result.events_external,
            }
        return {
            "measure": "difference_in_proportions" if result.binary else "difference_in_means",
            "estimate": result.estimate,
            "se": result.se,
            "conf_low": low,
            "conf_high": high,
            "p_value": result.p_value,
            "mean_trial": result.mean_trial,
            "mean_external": result.mean_external,
        }

    adjusted = effect(a.effect)
    if a.bootstrap is not None:
        low, high = a.bootstrap_conf_int()
        adjusted["bootstrap"] = {
            "conf_low": low,
            "conf_high": high,
            "n_resamples": a.bootstrap.n_resamples,
            "n_failed": a.bootstrap.n_failed,
            "seed": a.bootstrap.seed,
            "se": a.bootstrap.se,
        }
    weights = a.weights
    summary: dict[str, Any] = {
        "protocol": None
        if protocol is None
        else {"id": protocol.id, "title": protocol.title, "version": protocol.version},
        "adjustment": run.section.adjustment.model_dump(mode="json"),
        "endpoint": run.section.endpoint.model_dump(mode="json"),
        "level": level,
        "attrition": _records(run.prepared.attrition),
        "n_trial_ineligible": run.prepared.n_trial_ineligible,
        "propensity_model": _records(weights.model.summary().reset_index(names="term")),
        "overlap": _records(a.overlap.reset_index()),
        "share_unsupported": a.share_unsupported,
        "balance": _records(a.balance.table),
        "max_abs_smd_before": a.balance.max_abs_smd_before,
        "max_abs_smd_after": a.balance.max_abs_smd_after,
        "effective_sample_size": {"trial": weights.ess_trial, "external": weights.ess_external},
        "n_weighted": _records(weights.summary().reset_index()),
        "effect": adjusted,
        "naive": effect(a.naive),
        "e_value": _clean(
            {
                "measure": a.e_value.measure,
                "risk_ratio": a.e_value.risk_ratio,
                "e_value": a.e_value.e_value,
                "e_value_ci": a.e_value.e_value_ci,
                "rare_outcome": a.e_value.rare_outcome,
                "conversion": a.e_value.conversion,
            }
        ),
        "notes": list(a.notes),
    }
    if weights.matching is not None:
        m = weights.matching
        summary["matching"] = {
            "k": m.k,
            "caliper_sd": m.caliper_sd,
            "caliper_logit": m.caliper,
            "replace": m.replace,
            "n_unmatched": m.n_unmatched,
            "n_matched_trial": m.n_matched_trial,
            "n_matched_external": m.n_matched_external,
        }
    if a.kaplan_meier is not None:
        summary["kaplan_meier"] = {"median": a.kaplan_meier.medians}
    if a.tipping is not None:
        summary["tipping_point"] = {
            "tipping_bias_log_hr": a.tipping.tipping_bias_log_hr,
            "by_confounder_hazard_ratio": _records(a.tipping.tipping),
        }
    if run.synthetic is not None:
        s = run.synthetic
        low, high = s.conf_int()
        summary["synthetic_control"] = {
            "generator": s.generator,
            "hazard_ratio": s.hazard_ratio,
            "conf_low": low,
            "conf_high": high,
            "n_trial": s.n_trial,
            "n_external_real": s.n_external,
            "n_generated": s.n_generated,
            "n_resamples": s.bootstrap.n_resamples,
            "n_failed": s.bootstrap.n_failed,
            "mean_distance": s.mean_distance,
            "notes": list(s.notes),
        }
    return _clean(summary)


SUMMARY = "summary.json"
MANIFEST = "manifest.json"
BALANCE = "balance.csv"
WEIGHTS = "weights.csv"
KAPLAN_MEIER = "kaplan_meier.csv"
TIPPING = "tipping_point.csv"
PROTOCOL_COPY = "protocol.yaml"


def weights_table(run: ExternalControlRun) -> pd.DataFrame:
    """One row per analysed patient: id (when given), source, row in its file, propensity
    score, weight."""
    data = run.prepared.data
    weights = run.analysis.weights
    table = pd.DataFrame(
        {
            "source": np.where(data["trial"] == 1, "trial", "external"),
            "source_row": data["source_row"].to_numpy(),
            "propensity_score": weights.model.scores,
            "weight": weights.weights,
        }
    )
    if run.section.id_column:
        table.insert(0, run.section.id_column, data[run.section.id_column].to_numpy())
    return table


PACKAGES = ("insilico-trials", "numpy", "scipy", "pandas", "statsmodels", "lifelines", "pydantic")


def _sha256(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _write_json(path: Path, content: Any) -> None:
    import json

    path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="utf-8")


@contextmanager
def _staged_directory(target: str | os.PathLike, overwrite: bool = False):
    """A temporary sibling directory that becomes ``target`` only if the block succeeds."""
    import shutil
    import tempfile

    from trials.exceptions import RunDirectoryError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise RunDirectoryError(
            f"{target}: directory exists and is not empty (use --overwrite to replace it)"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
    except OSError as exc:
        raise RunDirectoryError(f"{target}: cannot create the directory ({exc.strerror})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def write_external_control(
    run: ExternalControlRun,
    protocol,
    protocol_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    started: str | None = None,
) -> dict:
    """Write the output directory atomically (nothing is left if writing fails); returns
    the summary.

    Files: ``summary.json``, ``balance.csv``, ``weights.csv``, ``kaplan_meier.csv`` and
    ``tipping_point.csv`` (time to event), ``protocol.yaml`` (a copy) and
    ``manifest.json`` (the protocol's and the input files' SHA-256, seed, versions).
    """
    import platform
    import shutil

    summary = external_control_summary(run, protocol)
    a = run.analysis
    files = [SUMMARY, BALANCE, WEIGHTS, PROTOCOL_COPY]
    with _staged_directory(out, overwrite=overwrite) as staging:
        a.balance.table.to_csv(staging / BALANCE, index=False)
        weights_table(run).to_csv(staging / WEIGHTS, index=False)
        if a.kaplan_meier is not None:
            a.kaplan_meier.table.to_csv(staging / KAPLAN_MEIER, index=False)
            files.append(KAPLAN_MEIER)
        if a.tipping is not None:
            a.tipping.grid.to_csv(staging / TIPPING, index=False)
            files.append(TIPPING)
        shutil.copyfile(protocol_path, staging / PROTOCOL_COPY)
        manifest = {
            "insilico_trials_external_control": 1,
            "protocol": {
                "file": str(protocol_path),
                "sha256": _sha256(protocol_path),
                "id": protocol.id,
                "version": protocol.version,
            },
            "inputs": {
                label: {"file": str(path), "sha256": _sha256(path)}
                for label, path in run.prepared.files.items()
            },
            "bootstrap": {
                "n_resamples": None if a.bootstrap is None else a.bootstrap.n_resamples,
                "seed": None if a.bootstrap is None else a.bootstrap.seed,
                "random_streams": "resample b draws from numpy PCG64, the b-th child "
                "spawned from default_rng(seed)",
            },
            "command_line": command_line or [],
            "versions": _versions(),
            "platform": platform.platform(),
            "started": started or _now(),
            "finished": _now(),
            "files": sorted([*files, MANIFEST]),
        }
        _write_json(staging / SUMMARY, summary)
        _write_json(staging / MANIFEST, manifest)
    return summary
