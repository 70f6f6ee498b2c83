"""Operating characteristics of a hybrid design (randomized controls plus borrowed external
controls) over a grid of drift between external and concurrent controls: type I error,
power, bias, RMSE and interval coverage of each borrowing approach, with Monte Carlo SEs,
written to a directory (CSV, JSON and a figure). With an ``external_control`` section
instead of ``design``, the same for a single-arm trial against propensity-score-adjusted
external controls (naive, IPTW-ATT, overlap weights, matching;
:mod:`analysis.external_drift`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal

import pandas as pd
import typer
from pydantic import BaseModel, ConfigDict, Field

from analysis.borrowing import (
    CommensuratePrior,
    HalfCauchy,
    HalfNormal,
    NoBorrowing,
    PowerPrior,
    RobustMAP,
    SpikeAndSlab,
)
from analysis.external_drift import ExternalControlApproach, ExternalControlDesign
from analysis.external_drift import design_problems as external_design_problems
from analysis.hybrid_design import (
    HybridDesign,
    ProcovaApproach,
    design_problems,
    plot_drift,
    simulate_drift,
)
from trials.exceptions import DesignError, RunDirectoryError
from trials.loader import load_yaml_model

NAME = "drift"
CURVES_CSV = "drift_curves.csv"
CURVES_JSON = "drift_curves.json"
FIGURE = "drift_curves.png"

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=2, le=1_000_000)]
Nodes = Annotated[int, Field(ge=1, le=200)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class EndpointConfig(_Model):
    """``control``: mean, rate or hazard of the concurrent controls; ``effect``: difference
    of means, difference of rates, or hazard ratio under the design scenario."""

    type: Literal["normal", "binary", "time_to_event"]
    control: Finite
    effect: Finite
    sd: Positive = 1.0
    sd_known: bool = True
    follow_up: Positive | None = None
    dropout_rate: NonNegative = 0.0
    higher_is_better: bool | None = None


class DesignConfig(_Model):
    n_treated: Count
    n_control: Count
    n_external: Count
    study_shares: list[Annotated[float, Field(gt=0, le=1)]] = Field(default=[1.0], min_length=1)
    heterogeneity_sd: NonNegative = 0.0


class ExternalControlConfig(_Model):
    """A single-arm trial against propensity-score-adjusted external controls
    (:class:`analysis.external_drift.ExternalControlDesign`): ``covariate_shift`` is the
    trial minus external mean of each measured covariate (in SDs), ``covariate_effects``
    its effect on the outcome; ``control`` (endpoint) is the external mean at covariates 0."""

    n_trial: Count
    n_external: Count
    covariate_shift: list[Finite] = Field(min_length=1, max_length=20)
    covariate_effects: list[Finite] = Field(min_length=1, max_length=20)


class UnmeasuredFactorConfig(_Model):
    prevalence: Unit
    strength: Finite


class PrognosticScoreConfig(_Model):
    correlation: Annotated[float, Field(ge=0, lt=1)]


class DriftGrid(_Model):
    kind: Literal["shift", "prevalence_difference"] = "shift"
    values: list[Finite] = Field(min_length=1, max_length=200)


class HalfNormalConfig(_Model):
    distribution: Literal["half_normal"]
    scale: Positive


class HalfCauchyConfig(_Model):
    distribution: Literal["half_cauchy"]
    scale: Positive


class FixedSDConfig(_Model):
    distribution: Literal["fixed"]
    sd: NonNegative


class SpikeAndSlabConfig(_Model):
    distribution: Literal["spike_and_slab"]
    spike_precision: Positive
    slab_lower: NonNegative
    slab_upper: Positive
    spike_probability: Unit


SDPriorConfig = Annotated[
    HalfNormalConfig | HalfCauchyConfig | FixedSDConfig | SpikeAndSlabConfig,
    Field(discriminator="distribution"),
]


class NoBorrowingConfig(_Model):
    method: Literal["no_borrowing"]


class PoolingConfig(_Model):
    method: Literal["pooling"]


class PowerPriorConfig(_Model):
    method: Literal["power_prior"]
    a0: Unit


class CommensurateConfig(_Model):
    method: Literal["commensurate"]
    sd_prior: SDPriorConfig
    n_nodes: Nodes = 24


class RobustMAPConfig(_Model):
    method: Literal["robust_map"]
    heterogeneity_prior: SDPriorConfig
    vague_weight: Unit = 0.2
    vague_sd: Positive | None = None
    n_nodes: Nodes = 24


class ProcovaConfig(_Model):
    method: Literal["procova"]
    cov_type: Literal["HC0", "HC1", "HC2", "HC3"] = "HC3"


class ExternalApproachConfig(_Model):
    """An external-control analysis; ``caliper`` (matching) in SDs of the logit score."""

    method: Literal["naive", "iptw_att", "overlap", "matching"]
    caliper: Positive = 0.2


ApproachConfig = Annotated[
    NoBorrowingConfig | PoolingConfig | PowerPriorConfig | CommensurateConfig | RobustMAPConfig
    | ProcovaConfig | ExternalApproachConfig,
    Field(discriminator="method"),
]


class DecisionConfig(_Model):
    """Success when P(benefit | data) > ``threshold`` (default ``1 - alpha``), or a
    threshold calibrated to one-sided ``alpha`` at ``calibration_drift``."""

    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.025
    threshold: Annotated[float, Field(gt=0, lt=1)] | None = None
    calibrate: bool = False
    calibration_drift: Finite = 0.0
    level: Annotated[float, Field(gt=0, lt=1)] = 0.95


class SimulationConfig(_Model):
    n_replicates: Count = 1000
    seed: Annotated[int, Field(ge=0)] = 0
    chunk_size: Annotated[int, Field(ge=1)] = 1000
    calibration_replicates: Count | None = None


class DriftConfig(_Model):
    """The ``insilico drift`` configuration file."""

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    title: str | None = None
    description: str | None = None
    endpoint: EndpointConfig
    design: DesignConfig | None = None
    external_control: ExternalControlConfig | None = None
    unmeasured_factor: UnmeasuredFactorConfig | None = None
    prognostic_score: PrognosticScoreConfig | None = None
    drift: DriftGrid
    approaches: list[ApproachConfig] = Field(min_length=1)
    decision: DecisionConfig = DecisionConfig()
    simulation: SimulationConfig = SimulationConfig()

    def design_settings(self) -> dict:
        """The keyword arguments of :class:`~analysis.hybrid_design.HybridDesign` (or of
        :class:`~analysis.external_drift.ExternalControlDesign` with an
        ``external_control`` section)."""
        e, d = self.endpoint, self.design
        factor, score = self.unmeasured_factor, self.prognostic_score
        if self.external_control is not None:
            x = self.external_control
            return {
                "endpoint": e.type, "n_trial": x.n_trial, "n_external": x.n_external,
                "control": e.control, "effect": e.effect, "sd": e.sd,
                "covariate_shift": tuple(x.covariate_shift),
                "covariate_effects": tuple(x.covariate_effects),
                "unmeasured_prevalence": factor.prevalence if factor else 0.0,
                "unmeasured_strength": factor.strength if factor else 0.0,
                "higher_is_better": e.higher_is_better,
            }  # fmt: skip
        if d is None:
            raise DesignError("the configuration needs a design or an external_control section")
        return {
            "endpoint": e.type, "n_treated": d.n_treated, "n_control": d.n_control,
            "n_external": d.n_external, "control": e.control, "effect": e.effect, "sd": e.sd,
            "sd_known": e.sd_known, "follow_up": e.follow_up or float("inf"),
            "dropout_rate": e.dropout_rate, "study_shares": tuple(d.study_shares),
            "heterogeneity_sd": d.heterogeneity_sd,
            "unmeasured_prevalence": factor.prevalence if factor else 0.0,
            "unmeasured_strength": factor.strength if factor else 0.0,
            "prognostic_correlation": score.correlation if score else 0.0,
            "higher_is_better": e.higher_is_better,
        }  # fmt: skip

    def hybrid_design(self) -> HybridDesign | ExternalControlDesign:
        """The simulated design: hybrid, or external control (``external_control``)."""
        if self.external_control is not None:
            return ExternalControlDesign(**self.design_settings())
        return HybridDesign(**self.design_settings())

    def approach_objects(self) -> list:
        return [_approach(a) for a in self.approaches]


def _sd_prior(config) -> float | HalfNormal | HalfCauchy | SpikeAndSlab:
    if isinstance(config, HalfNormalConfig):
        return HalfNormal(config.scale)
    if isinstance(config, HalfCauchyConfig):
        return HalfCauchy(config.scale)
    if isinstance(config, FixedSDConfig):
        return config.sd
    return SpikeAndSlab(config.spike_precision, config.slab_lower, config.slab_upper,
                        config.spike_probability)  # fmt: skip


def _approach(config):
    if isinstance(config, ExternalApproachConfig):
        return ExternalControlApproach(config.method, config.caliper)
    if isinstance(config, NoBorrowingConfig):
        return NoBorrowing()
    if isinstance(config, PoolingConfig):
        return PowerPrior(1.0)
    if isinstance(config, PowerPriorConfig):
        return PowerPrior(config.a0)
    if isinstance(config, CommensurateConfig):
        return CommensuratePrior(_sd_prior(config.sd_prior), config.n_nodes)
    if isinstance(config, RobustMAPConfig):
        return RobustMAP(_sd_prior(config.heterogeneity_prior), config.vague_weight,
                         config.vague_sd, config.n_nodes)  # fmt: skip
    return ProcovaApproach(config.cov_type)


_DESIGN_FIELDS = {
    "endpoint": "endpoint.type", "control": "endpoint.control", "effect": "endpoint.effect",
    "sd": "endpoint.sd", "follow_up": "endpoint.follow_up", "n_treated": "design.n_treated",
    "n_control": "design.n_control", "n_external": "design.n_external",
    "study_shares": "design.study_shares", "heterogeneity_sd": "design.heterogeneity_sd",
    "unmeasured_prevalence": "unmeasured_factor.prevalence",
    "unmeasured_factor": "unmeasured_factor.strength",
    "prognostic_correlation": "prognostic_score.correlation", "drift": "drift.values",
    "drift.kind": "drift.kind",
}  # fmt: skip
_EXTERNAL_FIELDS = {
    **_DESIGN_FIELDS, "n_trial": "external_control.n_trial",
    "n_external": "external_control.n_external",
}  # fmt: skip


def check_config(config: DriftConfig):
    """Semantic checks across fields: ``(field, message)`` pairs."""
    e, d = config.endpoint, config.design
    if (d is None) == (config.external_control is None):
        yield "design", "give either a design section (hybrid design) or an " \
            "external_control section (single-arm trial with external controls), not both"
        return
    external = config.external_control is not None
    for i, approach in enumerate(config.approaches):
        if external != isinstance(approach, ExternalApproachConfig):
            allowed = "naive, iptw_att, overlap, matching" if external else \
                "no_borrowing, pooling, power_prior, commensurate, robust_map, procova"
            yield f"approaches[{i}].method", f"{approach.method} does not apply to this " \
                f"design (allowed: {allowed})"
    if external:
        x = config.external_control
        if len(x.covariate_shift) != len(x.covariate_effects):
            yield "external_control.covariate_effects", "needs one effect per covariate " \
                f"shift ({len(x.covariate_shift)} shifts, {len(x.covariate_effects)} effects)"
        if config.drift.kind == "prevalence_difference" and config.unmeasured_factor is None:
            yield "drift.kind", "prevalence_difference needs an unmeasured_factor section"
        if config.decision.threshold is not None and config.decision.calibrate:
            yield "decision.threshold", "give a threshold or calibrate: true, not both"
        design = SimpleNamespace(**config.design_settings())
        for name, message in external_design_problems(design, config.drift.values,
                                                      config.drift.kind):  # fmt: skip
            if name == "covariate_effects":
                continue  # reported above
            field = "drift.values" + name[5:] if name.startswith("drift[") else name
            yield _EXTERNAL_FIELDS.get(field, field), message
        return
    if abs(sum(d.study_shares) - 1) > 1e-6:
        yield "design.study_shares", f"must sum to 1 (got {sum(d.study_shares):.6g})"
    if config.drift.kind == "prevalence_difference" and config.unmeasured_factor is None:
        yield "drift.kind", "prevalence_difference needs an unmeasured_factor section"
    if config.decision.threshold is not None and config.decision.calibrate:
        yield "decision.threshold", "give a threshold or calibrate: true, not both"
    for i, approach in enumerate(config.approaches):
        if isinstance(approach, ProcovaConfig) and e.type != "normal":
            yield f"approaches[{i}].method", "procova applies to a normal endpoint only"
        if isinstance(approach, ProcovaConfig) and config.prognostic_score is None:
            yield f"approaches[{i}].method", "procova needs a prognostic_score section"
        for key in ("sd_prior", "heterogeneity_prior"):
            prior = getattr(approach, key, None)
            if isinstance(prior, SpikeAndSlabConfig) and prior.slab_lower >= prior.slab_upper:
                yield f"approaches[{i}].{key}.slab_upper", "must be above slab_lower"
    labels = [_approach(a).label for a in config.approaches]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            yield f"approaches[{i}]", f"the approach {label} is listed twice"
    design = SimpleNamespace(**config.design_settings())
    for name, message in design_problems(design, config.drift.values, config.drift.kind):
        if name != "study_shares" or "must sum" not in message:
            field = "drift.values" + name[5:] if name.startswith("drift[") else name
            yield _DESIGN_FIELDS.get(field, field), message


def load_drift_config(path: str | Path) -> DriftConfig:
    """Read and validate a drift configuration file (every problem reported with its
    file:line, field and what is allowed)."""
    return load_yaml_model(path, DriftConfig, [check_config])


def run_drift(config: DriftConfig, *, n_replicates: int | None = None, seed: int | None = None):
    """:func:`analysis.hybrid_design.simulate_drift` with the settings of ``config``."""
    s, dec = config.simulation, config.decision
    return simulate_drift(
        config.hybrid_design(), config.approach_objects(), config.drift.values,
        kind=config.drift.kind, n_replicates=n_replicates or s.n_replicates,
        seed=s.seed if seed is None else seed, alpha=dec.alpha, threshold=dec.threshold,
        calibrate=dec.calibrate, calibration_drift=dec.calibration_drift,
        calibration_replicates=s.calibration_replicates, level=dec.level,
        chunk_size=s.chunk_size,
    )  # fmt: skip


def command(
    config_file: Path = typer.Argument(..., help="Drift configuration YAML file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory to create."),
    replicates: int | None = typer.Option(None, "--replicates", "-r", min=2),
    seed: int | None = typer.Option(None, "--seed", min=0),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write drift_curves.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the curves as JSON."),
) -> None:
    config = load_drift_config(config_file)
    result = run_drift(config, n_replicates=replicates, seed=seed)
    content = {"id": config.id, "title": config.title, **result.to_dict()}
    with _staged(out, overwrite) as staging:
        result.table.to_csv(staging / CURVES_CSV, index=False)
        text = json.dumps(content, indent=2, allow_nan=False)
        (staging / CURVES_JSON).write_text(text + "\n", encoding="utf-8")
        shutil.copyfile(config_file, staging / "config.yaml")
        if plot:
            _figure(result, staging / FIGURE)
    if as_json:
        typer.echo(json.dumps(content, indent=2, allow_nan=False))
        return
    summary = result.summary()
    typer.echo(f"{config.id}: {result.settings['n_replicates']} replicates per drift point "
               f"and scenario; thresholds: "
               + ", ".join(f"{k} {v:.4f}" for k, v in result.thresholds.items()))  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        typer.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"\nwritten: {out / CURVES_CSV}, {out / CURVES_JSON}"
               + (f", {out / FIGURE}" if plot else ""))  # fmt: skip


@contextmanager
def _staged(target: Path, overwrite: bool):
    """A sibling temporary directory renamed to ``target`` only when the block succeeds,
    so that a failed run leaves nothing half-written."""
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise RunDirectoryError(f"{target}: exists and is not empty (use --overwrite)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    except OSError as exc:
        raise RunDirectoryError(f"{target}: cannot create ({exc.strerror})") from None
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _figure(result, path: Path) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DesignError(
            "--plot needs matplotlib (pip install matplotlib), or use --no-plot"
        ) from None
    fig = Figure(figsize=(11, 7), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, metric in zip(fig.subplots(2, 2).ravel(), ("type_i_error", "power", "bias", "rmse"),
                          strict=True):  # fmt: skip
        plot_drift(result, metric, ax=ax)
    fig.savefig(path, dpi=120)
