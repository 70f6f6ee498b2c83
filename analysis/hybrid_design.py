"""Operating characteristics of a hybrid design under drift between external and concurrent
controls.

A hybrid trial randomizes ``n_treated`` patients to treatment and ``n_control`` to a
concurrent control arm, and has ``n_external`` external controls (one or more historical
studies). For each approach (no borrowing, pooling, power prior, commensurate prior, robust
MAP prior — :mod:`analysis.borrowing` — and PROCOVA, :mod:`analysis.procova`) and each point
of a grid of drift, :func:`simulate_drift` reports the type I error, power, bias, RMSE and
credible (confidence) interval coverage of the treatment effect, with their Monte Carlo
standard errors (Morris, White & Crowther 2019), as a tidy table; :func:`plot_drift` draws
the curves.

Data-generating model (concurrent population; the external one differs by the drift):

- ``normal``: ``y = mu + delta z + gamma (U - pi) + sd_e (rho' x + sqrt(1 - rho'^2) e)``,
  with ``U ~ Bernoulli(pi)`` an unmeasured prognostic factor of strength ``gamma``, ``x`` the
  standardized prognostic score (PROCOVA) and ``sd_e`` chosen so that the outcome SD is
  ``sd`` and the score's correlation with the outcome is ``rho``;
- ``binary``: ``P(y = 1) = expit(alpha_g + gamma U)``, ``alpha_g`` solved so that the arm's
  marginal rate is the control rate (plus ``delta`` for the treated arm);
- ``time_to_event``: exponential with hazard ``lambda_g exp(gamma U)``, administrative
  censoring at ``follow_up`` and exponential dropout; ``lambda_treated = HR lambda_c``.
  With ``gamma != 0`` the true log HR is the conditional one (the marginal exponential
  model is then misspecified; its non-collapsibility shows as bias at every drift).

Drift kinds: ``shift`` moves the external control parameter (mean difference; rate
difference; log hazard ratio external/concurrent); ``prevalence_difference`` raises the
unmeasured factor's prevalence among external controls by the drift value. External studies
also differ from each other by ``heterogeneity_sd`` (normal offsets on the analysis scale:
mean, logit, log hazard).

Randomness: replicate ``r`` draws all its variates from its own stream
(:func:`trials.engine.replicate_generator`), so results do not depend on the chunking; the
drift grid and the two scenarios (no effect, design effect) use the same variates (common
random numbers). A calibration of the decision threshold (``calibrate=True``) simulates
separate trials without effect from the streams ``SeedSequence(seed, spawn_key=(r, 1))``.

References
----------
Morris, T. P., White, I. R. and Crowther, M. J. (2019). Using simulation studies to evaluate
statistical methods. *Statistics in Medicine* 38, 2074-2102.
Viele, K. et al. (2014). Use of historical control data for assessing treatment effects in
clinical trials. *Pharmaceutical Statistics* 13, 41-54 (drift and operating characteristics).
FDA (2023). Considerations for the Design and Conduct of Externally Controlled Trials for Drug
and Biological Products. Draft guidance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analysis.borrowing import (
    ENDPOINTS,
    ArmData,
    CommensuratePrior,
    NoBorrowing,
    PowerPrior,
    RobustMAP,
    calibrate_threshold,
    posterior_effect,
)
from analysis.borrowing_pymc import fit_pymc
from analysis.procova import COV_TYPES, ols_hc
from trials.engine import replicate_generator
from trials.exceptions import DesignError

if TYPE_CHECKING:
    from analysis.external_drift import ExternalControlDesign

__all__ = [
    "DRIFT_KINDS",
    "METRICS",
    "DriftResult",
    "HybridDesign",
    "ProcovaApproach",
    "compare_with_pymc",
    "plot_drift",
    "simulate_drift",
]

DRIFT_KINDS = ("shift", "prevalence_difference")
METRICS = ("type_i_error", "power", "bias", "rmse", "coverage")


@dataclass(frozen=True)
class ProcovaApproach:
    """PROCOVA in the hybrid design: ANCOVA of the randomized patients on the prognostic
    score (normal endpoint); the external controls only train the prognostic model."""

    cov_type: str = "HC3"

    def __post_init__(self):
        if self.cov_type not in COV_TYPES:
            raise DesignError(f"cov_type must be one of {', '.join(COV_TYPES)}")

    @property
    def label(self) -> str:
        return "procova"


Approach = NoBorrowing | PowerPrior | CommensuratePrior | RobustMAP | ProcovaApproach


@dataclass(frozen=True)
class HybridDesign:
    """A hybrid design and its data-generating model (see the module docstring).

    Parameters
    ----------
    endpoint : {"normal", "binary", "time_to_event"}
    n_treated, n_control, n_external : int
        Randomized treated, randomized (concurrent) control and external control patients.
    control : float
        Concurrent control mean, rate, or hazard (per time unit).
    effect : float
        Design effect: difference of means, difference of rates, or hazard ratio.
    sd : float
        Outcome SD (normal); ``sd_known``: analyse with it, else with the sample SDs.
    follow_up, dropout_rate : float
        Administrative censoring time and exponential dropout rate (time to event).
    study_shares : tuple of float
        Shares of the external controls in each historical study (sum to 1).
    heterogeneity_sd : float
        Between-study SD of the external studies' control parameter (analysis scale).
    unmeasured_prevalence, unmeasured_strength : float
        Prevalence of the unmeasured factor among concurrent patients and its effect (mean
        shift; log odds ratio; log hazard ratio).
    prognostic_correlation : float
        Correlation of the prognostic score with the outcome (normal endpoint, PROCOVA).
    higher_is_better : bool, optional
        Direction of benefit (default: higher for normal and binary, lower hazard).
    """

    endpoint: str
    n_treated: int
    n_control: int
    n_external: int
    control: float
    effect: float
    sd: float = 1.0
    sd_known: bool = True
    follow_up: float = math.inf
    dropout_rate: float = 0.0
    study_shares: tuple[float, ...] = (1.0,)
    heterogeneity_sd: float = 0.0
    unmeasured_prevalence: float = 0.0
    unmeasured_strength: float = 0.0
    prognostic_correlation: float = 0.0
    higher_is_better: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "study_shares", tuple(float(s) for s in self.study_shares))
        problems = [f"{name}: {message}" for name, message in design_problems(self)]
        if problems:
            raise DesignError("; ".join(problems))

    @property
    def study_sizes(self) -> np.ndarray:
        """External patients per study (largest remainders)."""
        raw = np.asarray(self.study_shares) * self.n_external
        sizes = np.floor(raw).astype(int)
        order = np.argsort(raw - sizes)[::-1]
        sizes[order[: self.n_external - sizes.sum()]] += 1
        return sizes

    @property
    def higher(self) -> bool:
        if self.higher_is_better is not None:
            return self.higher_is_better
        return self.endpoint != "time_to_event"

    def true_effect(self, scenario: str) -> float:
        """The effect on the analysis scale (difference of means or rates; log HR)."""
        if scenario == "null":
            return 0.0
        return math.log(self.effect) if self.endpoint == "time_to_event" else self.effect

    @property
    def _residual_sd(self) -> float:
        return _residual_sd(self)


def _residual_sd(design) -> float:
    """Outcome SD left when the unmeasured factor's variance is taken out (normal)."""
    pi, gamma = design.unmeasured_prevalence, design.unmeasured_strength
    return math.sqrt(max(design.sd**2 - gamma**2 * pi * (1 - pi), 0.0))


def design_problems(design: HybridDesign, drift: Sequence[float] = (), kind: str = "shift"):
    """``(field, message)`` for each impossible setting of a design (and drift grid);
    ``design`` is anything with the attributes of :class:`HybridDesign`."""
    d = design
    if d.endpoint not in ENDPOINTS:
        yield "endpoint", f"must be one of {', '.join(ENDPOINTS)} (got {d.endpoint!r})"
        return
    for name in ("n_treated", "n_control", "n_external"):
        if int(getattr(d, name)) < 2:
            yield name, "must be at least 2"
    shares = np.asarray(d.study_shares, float)
    if shares.size == 0 or np.any(~(shares > 0)):
        yield "study_shares", "must be positive numbers"
    elif abs(shares.sum() - 1) > 1e-6:
        yield "study_shares", f"must sum to 1 (got {shares.sum():.6g})"
    elif d.n_external < 2 * shares.size:
        yield "study_shares", f"{shares.size} studies need at least {2 * shares.size} patients"
    if not 0 <= d.unmeasured_prevalence <= 1:
        yield "unmeasured_prevalence", "must lie in [0, 1]"
    if d.heterogeneity_sd < 0:
        yield "heterogeneity_sd", "must be >= 0"
    if d.endpoint == "binary":
        for name, rate in (("control", d.control), ("effect", d.control + d.effect)):
            if not 0 < rate < 1:
                yield name, f"the {'treated' if name == 'effect' else 'control'} rate must lie " \
                    f"in (0, 1) (got {rate:g})"
        if kind == "shift":
            for i, value in enumerate(drift):
                if not 0 < d.control + value < 1:
                    yield f"drift[{i}]", f"the external rate {d.control + value:g} is outside " \
                        "(0, 1)"
    if d.endpoint == "time_to_event":
        if not (d.control > 0 and d.effect > 0):
            yield "effect", "the control hazard and the hazard ratio must be > 0"
        if not (d.follow_up > 0 and d.dropout_rate >= 0):
            yield "follow_up", "needs follow_up > 0 and dropout_rate >= 0"
    if d.endpoint == "normal":
        if not d.sd > 0:
            yield "sd", "must be > 0"
        elif _residual_sd(d) <= 0:
            yield "unmeasured_factor", "its variance strength^2 p (1 - p) must be below sd^2"
        elif not 0 <= d.prognostic_correlation * d.sd / _residual_sd(d) < 1:
            yield "prognostic_correlation", "too large for the outcome SD left by the " \
                "unmeasured factor (needs 0 <= rho sd / residual sd < 1)"
    if kind not in DRIFT_KINDS:
        yield "drift.kind", f"must be one of {', '.join(DRIFT_KINDS)}"
    elif kind == "prevalence_difference":
        for i, value in enumerate(drift):
            if not 0 <= d.unmeasured_prevalence + value <= 1:
                external = d.unmeasured_prevalence + value
                yield f"drift[{i}]", f"the external prevalence {external:g} is outside [0, 1]"


# ----------------------------------------------------------------------------- simulation
def _calibration_generator(seed: int, replicate: int) -> np.random.Generator:
    sequence = np.random.SeedSequence(seed, spawn_key=(replicate, 1))
    return np.random.Generator(np.random.PCG64(sequence))


def _variates(design: HybridDesign, seed: int, replicates: range, calibration: bool):
    """Uniforms (R, 4, N) — outcome, unmeasured factor, score, dropout — and study
    offsets (R, J), each replicate from its own stream."""
    n_total = design.n_treated + design.n_control + design.n_external
    n_studies = len(design.study_shares)
    make = _calibration_generator if calibration else replicate_generator
    uniforms = np.empty((len(replicates), 4, n_total))
    offsets = np.empty((len(replicates), n_studies))
    for i, r in enumerate(replicates):
        rng = make(seed, r)
        uniforms[i] = rng.random((4, n_total))
        offsets[i] = rng.standard_normal(n_studies)
    return uniforms, offsets


def _binary_intercept(rate: float, prevalence: float, strength: float) -> float:
    """``alpha`` with marginal rate ``(1 - p) expit(alpha) + p expit(alpha + gamma) = rate``."""
    if strength == 0 or prevalence == 0:
        return float(special.logit(rate))

    def gap(alpha: float) -> float:
        return (1 - prevalence) * special.expit(alpha) + prevalence * special.expit(
            alpha + strength
        ) - rate

    return float(optimize.brentq(gap, -50, 50, xtol=1e-12))


class _Simulator:
    """Arm data of the replicates of one chunk, by group and drift."""

    def __init__(self, design: HybridDesign, uniforms: np.ndarray, offsets: np.ndarray):
        d = self.design = design
        n_t, n_c = d.n_treated, d.n_control
        self.slices = {"treated": slice(0, n_t), "control": slice(n_t, n_t + n_c),
                       "external": slice(n_t + n_c, None)}  # fmt: skip
        self.u = uniforms
        self.offsets = offsets
        sizes = d.study_sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.sizes = sizes
        self.study_offset = np.repeat(offsets * d.heterogeneity_sd, sizes, axis=1)
        if d.endpoint == "normal":
            self.normal = special.ndtri(uniforms[:, (0, 2)])
        self._cache: dict[tuple, ArmData] = {}

    def _part(self, row: int, group: str) -> np.ndarray:
        return self.u[:, row, self.slices[group]]

    def arm(self, group: str, scenario: str = "null", drift: float = 0.0, kind: str = "shift"):
        """ArmData of ``group`` (``external``: last axis studies; others: one per replicate)."""
        key = (group, scenario, drift, kind)
        if group != "external" and key in self._cache:
            return self._cache[key]
        d = self.design
        if d.endpoint == "normal":
            data = self._reduce(group, "normal", self.outcome(group, scenario, drift, kind))
        elif d.endpoint == "binary":
            data = self._reduce(group, "binary", self.outcome(group, scenario, drift, kind))
        else:
            data = self._reduce(group, "time_to_event", *self.outcome(group, scenario, drift, kind))
        if group != "external":
            self._cache[key] = data
        return data

    def outcome(self, group: str, scenario: str, drift: float = 0.0, kind: str = "shift"):
        """Patient-level outcomes (R, n): values; responses; (time, event) for time to event."""
        d = self.design
        external = group == "external"
        prevalence = d.unmeasured_prevalence + (drift if external and kind != "shift" else 0.0)
        shift = drift if external and kind == "shift" else 0.0
        treat = group == "treated" and scenario == "design"
        factor = (self._part(1, group) < prevalence).astype(float)
        offset = self.study_offset if external else 0.0
        gamma = d.unmeasured_strength
        if d.endpoint == "normal":
            rho = d.prognostic_correlation * d.sd / d._residual_sd
            noise = self.normal[:, :, self.slices[group]]
            residual = rho * noise[:, 1] + math.sqrt(1 - rho**2) * noise[:, 0]
            return (d.control + shift + (d.effect if treat else 0.0) + offset
                    + gamma * (factor - d.unmeasured_prevalence) + d._residual_sd * residual)
        if d.endpoint == "binary":
            rate = d.control + shift + (d.effect if treat else 0.0)
            alpha = _binary_intercept(rate, d.unmeasured_prevalence, gamma)
            p = special.expit(alpha + gamma * factor + offset)
            return (self._part(0, group) < p).astype(float)
        hazard = d.control * math.exp(shift) * (d.effect if treat else 1.0)
        rate = hazard * np.exp(gamma * factor + offset)
        t = -np.log1p(-self._part(0, group)) / rate
        censor = np.full_like(t, d.follow_up)
        if d.dropout_rate > 0:
            censor = np.minimum(censor, -np.log1p(-self._part(3, group)) / d.dropout_rate)
        return np.minimum(t, censor), (t <= censor) * 1.0

    def _reduce(self, group: str, endpoint: str, values: np.ndarray, events=None) -> ArmData:
        """Sufficient statistics: per replicate, or per replicate and study (external)."""
        if group == "external":
            n = np.broadcast_to(self.sizes.astype(float), (values.shape[0], self.sizes.size))

            def total(x):
                return np.add.reduceat(x, self.starts, axis=1)
        else:
            n = np.full(values.shape[0], float(values.shape[1]))

            def total(x):
                return x.sum(axis=1)
        if endpoint == "normal":
            mean = total(values) / n
            if self.design.sd_known:
                sd = np.full_like(mean, self.design.sd)
            else:
                centred = values - (np.repeat(mean, self.sizes, axis=1) if group == "external"
                                    else mean[:, None])  # fmt: skip
                sd = np.sqrt(total(centred**2) / (n - 1))
            return ArmData.normal(n, mean, sd)
        if endpoint == "binary":
            return ArmData.binary(n, total(values))
        return ArmData.time_to_event(total(events), total(values), n)

    def procova(self, scenario: str, higher: bool, level: float, cov_type: str):
        """ANCOVA of the randomized patients on the score, per replicate."""
        d = self.design
        y = np.concatenate([self.outcome("treated", scenario), self.outcome("control", scenario)],
                           axis=1)  # fmt: skip
        z = np.concatenate([np.ones(d.n_treated), np.zeros(d.n_control)])
        score = self.normal[:, 1, : d.n_treated + d.n_control]
        x = np.stack([np.ones_like(score), np.broadcast_to(z, score.shape), score], -1)
        coef, se = ols_hc(y, x, cov_type)
        est, se = coef[:, 1], se[:, 1]
        df = y.shape[1] - 3
        p_greater = stats.t.cdf(est / se, df)  # 1 - one-sided p-value for "higher"
        crit = stats.t.ppf((1 + level) / 2, df)
        return {"probability": p_greater if higher else 1 - p_greater, "effect": est,
                "lower": est - crit * se, "upper": est + crit * se}  # fmt: skip


def _analyse(sim: _Simulator, approach: Approach, scenario: str, external, level: float):
    d = sim.design
    if isinstance(approach, ProcovaApproach):
        return sim.procova(scenario, d.higher, level, approach.cov_type)
    unit = d.sd if d.endpoint == "normal" else 1.0
    prior = approach.prior(external, d.endpoint, unit)
    out, _ = posterior_effect(prior, sim.arm("treated", scenario), sim.arm("control", scenario),
                              higher_is_better=d.higher, level=level)  # fmt: skip
    return out


def _uses_external(approach: Approach) -> bool:
    return not isinstance(approach, NoBorrowing | ProcovaApproach)


@dataclass(frozen=True)
class DriftResult:
    """Operating characteristics over the drift grid.

    ``table`` (tidy): one row per approach, drift and scenario (``null``: no effect;
    ``design``: the design effect) with ``rejection_rate`` (type I error under ``null``,
    power under ``design``), ``bias``, ``rmse``, ``coverage``, ``empirical_se`` and
    ``mean_interval_width`` of the effect's posterior mean and central interval, each rate
    and mean with its Monte Carlo SE (``*_mcse``). ``thresholds``: the posterior-probability
    threshold of each approach (calibrated or fixed).
    """

    table: pd.DataFrame
    design: HybridDesign | ExternalControlDesign
    thresholds: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per approach and drift: type I error, power (with MCSEs), and bias, RMSE
        and coverage under the design effect."""
        key = ["approach", "drift"]
        null = self.table[self.table.scenario == "null"].set_index(key)
        alt = self.table[self.table.scenario == "design"].set_index(key)
        out = pd.DataFrame({
            "type_i_error": null.rejection_rate, "type_i_error_mcse": null.rejection_mcse,
            "power": alt.rejection_rate, "power_mcse": alt.rejection_mcse,
            "bias": alt.bias, "bias_mcse": alt.bias_mcse, "rmse": alt.rmse,
            "coverage": alt.coverage, "coverage_mcse": alt.coverage_mcse,
        })  # fmt: skip
        return out.reset_index()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: design, settings, thresholds and the tidy table's records."""
        if isinstance(self.design, HybridDesign):
            design = asdict(self.design)
            design["study_shares"] = list(design["study_shares"])
            if math.isinf(design["follow_up"]):
                design["follow_up"] = None
        else:  # an external-control design (analysis.external_drift)
            from analysis.external_drift import describe

            design = describe(self.design)
        return {
            "design": design,
            "settings": self.settings,
            "thresholds": self.thresholds,
            "curves": _records(self.table),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def simulate_drift(
    design: HybridDesign | ExternalControlDesign,
    approaches: Sequence[Approach],
    drift: Sequence[float],
    *,
    kind: str = "shift",
    n_replicates: int = 1000,
    seed: int = 0,
    alpha: float = 0.025,
    threshold: float | None = None,
    calibrate: bool = False,
    calibration_drift: float = 0.0,
    calibration_replicates: int | None = None,
    level: float = 0.95,
    chunk_size: int = 1000,
) -> DriftResult:
    """Simulate the hybrid design over a grid of drift, for each approach.

    Parameters
    ----------
    design : HybridDesign or ExternalControlDesign
        A hybrid design, or a single-arm trial with a propensity-score external control
        arm (:class:`analysis.external_drift.ExternalControlDesign`).
    approaches : sequence
        Hybrid design: :class:`~analysis.borrowing.NoBorrowing`,
        :class:`~analysis.borrowing.PowerPrior` (``a0 = 1``: pooling),
        :class:`~analysis.borrowing.CommensuratePrior`,
        :class:`~analysis.borrowing.RobustMAP`, :class:`ProcovaApproach` (normal only).
        External-control design: :class:`~analysis.external_drift.ExternalControlApproach`
        (``naive``, ``iptw_att``, ``overlap``, ``matching``; success when the one-sided
        p-value is below ``1 - threshold``).
    drift : sequence of float
        Drift values (see ``kind``); 0 is no drift.
    kind : {"shift", "prevalence_difference"}
        A shift of the external control parameter, or a difference in the prevalence of
        the unmeasured prognostic factor (external minus concurrent).
    n_replicates, seed : int
        Simulated trials per drift point and scenario, and the root seed.
    alpha : float
        One-sided type I error aimed at (default threshold ``1 - alpha``).
    threshold : float, optional
        Success when P(benefit | data) > threshold (PROCOVA: 1 - one-sided p-value).
    calibrate : bool
        Calibrate each approach's threshold to ``alpha`` on ``calibration_replicates``
        separate trials without effect at drift ``calibration_drift``.
    level : float
        Level of the credible (PROCOVA: confidence) interval.
    chunk_size : int
        Replicates simulated at once (memory only: results do not depend on it).

    Returns
    -------
    DriftResult
    """
    from analysis import external_drift

    drift = [float(v) for v in drift]
    external = external_drift.is_external(design)
    check = external_drift.design_problems if external else design_problems
    problems = [f"{name}: {msg}" for name, msg in check(design, drift, kind)]
    labels = [a.label for a in approaches]
    if not approaches or len(set(labels)) != len(labels):
        problems.append(f"approaches must be given, each once (got {labels})")
    if external:
        problems += external_drift.approach_problems(approaches)
    elif any(isinstance(a, external_drift.ExternalControlApproach) for a in approaches):
        problems.append("external-control approaches need an ExternalControlDesign")
    if any(isinstance(a, ProcovaApproach) for a in approaches) and design.endpoint != "normal":
        problems.append("procova: applies to a normal endpoint only")
    if not drift or not 0 < alpha < 0.5 or not 0 < level < 1 or n_replicates < 2:
        problems.append("need drift values, 0 < alpha < 0.5, 0 < level < 1, n_replicates >= 2")
    if threshold is not None and (calibrate or not 0 < threshold < 1):
        problems.append("threshold must lie in (0, 1), and not be given with calibrate")
    if problems:
        raise DesignError("; ".join(problems))
    thresholds = {label: threshold if threshold is not None else 1 - alpha for label in labels}
    run = external_drift.run_replicates if external else _run
    if calibrate:
        n_cal = calibration_replicates or n_replicates
        probs = run(design, approaches, [calibration_drift], kind, n_cal, seed, level,
                     chunk_size, calibration=True, scenarios=("null",))  # fmt: skip
        thresholds = {a.label: calibrate_threshold(probs[(a.label, 0, "null")]["probability"],
                                                   alpha) for a in approaches}  # fmt: skip
    results = run(design, approaches, drift, kind, n_replicates, seed, level, chunk_size)
    rows = []
    for a in approaches:
        for i, value in enumerate(drift):
            for scenario in ("null", "design"):
                out = results[(a.label, i, scenario)]
                rows.append({"approach": a.label, "drift": value, "scenario": scenario,
                             "threshold": thresholds[a.label],
                             **_performance(out, design.true_effect(scenario),
                                            thresholds[a.label])})  # fmt: skip
                if external:
                    rows[-1]["n_ps_not_converged"] = external_drift.ps_not_converged(out)
    settings = {
        "kind": kind, "drift": drift, "n_replicates": n_replicates, "seed": seed,
        "alpha": alpha, "level": level, "calibrated": calibrate,
        "calibration_drift": calibration_drift if calibrate else None,
        "calibration_replicates": (calibration_replicates or n_replicates) if calibrate else None,
        "approaches": labels,
        "random_streams": "replicate r: SeedSequence(seed, spawn_key=(r,)); calibration: "
                          "spawn_key=(r, 1)",
    }  # fmt: skip
    return DriftResult(pd.DataFrame(rows), design, thresholds, settings)


def _run(design, approaches, drift, kind, n_replicates, seed, level, chunk_size,
         calibration=False, scenarios=("null", "design")):  # fmt: skip
    """Per-replicate probability, estimate and interval for every approach, drift, scenario."""
    parts: dict[tuple, list[dict]] = {}
    for start in range(0, n_replicates, chunk_size):
        chunk = range(start, min(start + chunk_size, n_replicates))
        sim = _Simulator(design, *_variates(design, seed, chunk, calibration))
        for scenario in scenarios:
            cache: dict[str, dict] = {}
            for i, value in enumerate(drift):
                external = sim.arm("external", drift=value, kind=kind)
                for a in approaches:
                    if _uses_external(a) or a.label not in cache:
                        cache[a.label] = _analyse(sim, a, scenario, external, level)
                    parts.setdefault((a.label, i, scenario), []).append(cache[a.label])
    return {
        key: {name: np.concatenate([p[name] for p in chunks]) for name in chunks[0]}
        for key, chunks in parts.items()
    }


def _performance(out: dict[str, np.ndarray], true: float, threshold: float) -> dict[str, float]:
    """Rejection rate, bias, RMSE, coverage with Monte Carlo SEs (Morris et al. 2019)."""
    n = len(out["effect"])
    reject = out["probability"] > threshold
    err = out["effect"] - true
    covered = (out["lower"] <= true) & (true <= out["upper"])
    rate, cover = reject.mean(), covered.mean()
    mse = np.mean(err**2)
    rmse = math.sqrt(mse)
    return {
        "true_effect": true,
        "rejection_rate": rate,
        "rejection_mcse": math.sqrt(rate * (1 - rate) / n),
        "bias": err.mean(),
        "bias_mcse": err.std(ddof=1) / math.sqrt(n),
        "rmse": rmse,
        "rmse_mcse": (err**2).std(ddof=1) / math.sqrt(n) / (2 * rmse) if rmse > 0 else 0.0,
        "coverage": cover,
        "coverage_mcse": math.sqrt(cover * (1 - cover) / n),
        "empirical_se": err.std(ddof=1),
        "mean_interval_width": float(np.mean(out["upper"] - out["lower"])),
        "n_replicates": n,
    }


# ----------------------------------------------------------------------------- PyMC check
def compare_with_pymc(
    design: HybridDesign,
    approach: Approach,
    replicates: Sequence[int] = (0, 1, 2),
    *,
    drift: float = 0.0,
    kind: str = "shift",
    scenario: str = "design",
    seed: int = 0,
    level: float = 0.95,
    **pymc_options: Any,
) -> pd.DataFrame:
    """The fast path and the PyMC path on the same simulated trials.

    One row per replicate: P(benefit | data), the effect's posterior mean and SD by both
    paths, and the Monte Carlo SEs of the PyMC estimates (``pymc_options`` as in
    :func:`analysis.borrowing.fit_pymc`).
    """
    if isinstance(approach, ProcovaApproach):
        raise DesignError("procova has no PyMC path: it is a frequentist analysis")
    rows = []
    for r in replicates:
        sim = _Simulator(design, *_variates(design, seed, range(r, r + 1), False))
        external = sim.arm("external", drift=drift, kind=kind)
        treated, control = sim.arm("treated", scenario), sim.arm("control", scenario)
        fast = _analyse(sim, approach, scenario, external, level)
        one = {k: ArmData(v.endpoint, **{f: None if x is None else x[0]
                                         for f, x in vars(v).items() if f != "endpoint"})
               for k, v in (("t", treated), ("c", control), ("e", external))}  # fmt: skip
        res = fit_pymc(approach, one["t"], one["c"], one["e"], higher_is_better=design.higher,
                       level=level, **pymc_options)  # fmt: skip
        rows.append({
            "replicate": r, "fast_probability": float(fast["probability"][0]),
            "pymc_probability": res.probability,
            "mcse_probability": res.diagnostics["mcse_probability"],
            "fast_effect": float(fast["effect"][0]), "pymc_effect": res.effect,
            "mcse_effect": res.diagnostics["mcse_effect"],
            "fast_effect_sd": float(fast["effect_sd"][0]), "pymc_effect_sd": res.effect_sd,
            "converged": res.diagnostics["converged"],
        })  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- plot
def plot_drift(result: DriftResult, metric: str = "type_i_error", ax=None):
    """Curves of one operating characteristic against drift, one line per approach, with
    bars of +-1.96 Monte Carlo SEs.

    ``metric``: ``type_i_error``, ``power``, ``bias``, ``rmse`` or ``coverage`` (the last
    three under the design effect). Draws on ``ax`` (new axes on an Agg canvas when None)
    and returns it; never calls ``show()``.
    """
    if metric not in METRICS:
        raise DesignError(f"metric must be one of {', '.join(METRICS)} (got {metric!r})")
    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.5, 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
    scenario = "null" if metric == "type_i_error" else "design"
    column = {"type_i_error": "rejection_rate", "power": "rejection_rate"}.get(metric, metric)
    table = result.table[result.table.scenario == scenario]
    for label, rows in table.groupby("approach", sort=False):
        mcse = rows["rejection_mcse" if column == "rejection_rate" else f"{column}_mcse"]
        ax.errorbar(rows.drift, rows[column], yerr=1.96 * mcse, marker="o",
                    markersize=3, capsize=2, label=label)  # fmt: skip
    reference = {"type_i_error": result.settings.get("alpha"), "bias": 0.0,
                 "coverage": result.settings.get("level")}.get(metric)  # fmt: skip
    if reference is not None:
        ax.axhline(reference, color="0.5", linestyle="--", linewidth=0.8)
    kind = result.settings.get("kind", "shift")
    ax.set_xlabel("drift (external - concurrent)" if kind == "shift"
                  else "prevalence difference of the unmeasured factor")  # fmt: skip
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=7)
    return ax
