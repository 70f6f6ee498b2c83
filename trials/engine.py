"""The trial engine: R simulated trials × N patients as arrays.

For each replicate the engine draws, from that replicate's own random stream, one block
of uniforms laid out patient by patient (screened candidates in order) and one block for
randomization. Everything else is a vectorized transform of those draws: eligibility
screening, enrollment (piecewise-constant accrual), baseline covariates, treatment
assignment, outcomes conditional on arm and covariates, dropout, intercurrent events and
the administrative censoring at the analysis cut-off, computed per replicate.

Replicate ``r`` draws from ``SeedSequence(seed, spawn_key=(r,))`` — the ``r``-th child of
``SeedSequence(seed)`` — so results are identical whatever the chunking and whichever
worker simulates the replicate. The design and null scenarios share the draws (common
random numbers), and so do the points of a power curve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from array_api_compat import device
from scipy.special import ndtri

from analysis.logrank_looks import administrative_censoring
from generators.population import CovariateModel, covariate_model
from trials import randomization as rand
from trials.accrual import enrollment_times
from trials.arrays import like, namespace
from trials.exceptions import DesignError
from trials.expressions import Expression, parse_expression
from trials.outcomes import (
    PiecewiseHazard,
    annual_rate_hazard,
    binary_responses,
    continuous_responses,
    dropout_hazard,
    event_times,
    inverse_cumulative_hazard,
    linear_predictor,
    piecewise_effect_event_times,
)
from trials.protocol import (
    BinaryEndpoint,
    CalendarTiming,
    Endpoint,
    EventsTiming,
    FollowUpTiming,
    MinimizationRandomization,
    Protocol,
    SimpleRandomization,
    StratifiedBlockRandomization,
    TimeToEventEndpoint,
    effect_distribution,
)

SCENARIOS = ("design", "null")
_CELLS_PER_CHUNK = 3_000_000


def replicate_generator(seed: int, replicate: int) -> np.random.Generator:
    """The random generator of one replicate: child ``replicate`` of ``SeedSequence(seed)``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(replicate,)))
    )


# ------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Where each draw sits in a replicate's uniform blocks (fixed by the protocol)."""

    protocol: Protocol
    n_patients: int
    n_draw: int

    @cached_property
    def covariate_model(self) -> CovariateModel:
        return covariate_model(self.protocol.population)

    @cached_property
    def eligibility(self) -> list[Expression]:
        model = self.covariate_model
        return [
            parse_expression(text, model.numeric_names(), model.categorical_levels())
            for text in self.protocol.population.eligibility
        ]

    @cached_property
    def columns(self) -> dict[str, int]:
        """Column of each per-patient draw."""
        names = ["arrival"] if self.protocol.population.accrual.process == "poisson" else []
        names += [f"latent:{name}" for name in self.covariate_model.names]
        names += ["dropout"]
        for endpoint in self.endpoints:
            names.append(f"outcome:{endpoint.name}")
            if has_cure(endpoint):
                names.append(f"cure:{endpoint.name}")
            for k, _ in enumerate(endpoint.estimand.intercurrent_events):
                names.append(f"ice:{endpoint.name}:{k}")
        return {name: i for i, name in enumerate(names)}

    @property
    def endpoints(self) -> list[Endpoint]:
        return [self.protocol.endpoints.primary, *self.protocol.endpoints.secondary]

    @cached_property
    def strata_factors(self) -> list[str]:
        scheme = self.protocol.randomization
        if isinstance(scheme, StratifiedBlockRandomization):
            return list(scheme.strata)
        if isinstance(scheme, MinimizationRandomization):
            return list(scheme.factors)
        return []

    @cached_property
    def n_strata(self) -> int:
        return int(np.prod([self.covariate_model.n_levels(f) for f in self.strata_factors]))

    @cached_property
    def eligible_fraction(self) -> float:
        """Fraction of screened patients eligible, from a fixed pilot sample."""
        if not self.eligibility:
            return 1.0
        rng = np.random.default_rng(20_260_101)
        model = self.covariate_model
        covariates = model.transform(rng.standard_normal((200_000, model.n_latent)))
        return float(_eligible(self.eligibility, covariates).mean())

    @cached_property
    def n_candidates(self) -> int:
        """Screened candidates drawn per replicate (more are drawn if too few are eligible)."""
        p = self.eligible_fraction
        if p >= 1.0:
            return self.n_draw
        if p <= 0.0:
            return self.n_draw
        spread = 4.0 * np.sqrt(self.n_draw * (1 - p)) / p
        return int(np.ceil(self.n_draw / p + spread)) + 8

    @cached_property
    def n_randomization(self) -> int:
        return rand.n_uniforms(self.protocol.randomization, self.n_draw, self.n_strata)

    @cached_property
    def uncertain_effects(self) -> list[str]:
        """Endpoints whose effect each trial draws from a distribution (one uniform each,
        after the randomization draws)."""
        return [e.name for e in self.endpoints if effect_distribution(e) is not None]

    def default_chunk_size(self) -> int:
        cells = self.n_candidates * len(self.columns) + self.n_randomization
        if isinstance(self.protocol.randomization, StratifiedBlockRandomization):
            cells += self.n_strata * self.n_draw  # one block sequence per stratum
        return max(1, min(10_000, _CELLS_PER_CHUNK // max(cells, 1)))


def _eligible(expressions: list[Expression], covariates: dict):
    """Whether each patient meets every criterion (numpy arrays or torch tensors)."""
    first = next(iter(covariates.values()), None)
    if first is None:
        eligible = np.ones((), dtype=bool)
    else:
        xp = namespace(first)
        eligible = xp.ones(first.shape, dtype=xp.bool, device=device(first))
    for expression in expressions:
        eligible = eligible & expression.evaluate(covariates)
    return eligible


# -------------------------------------------------------------------- patients


@dataclass
class Cohort:
    """Randomized patients of a chunk of replicates (arrays ``(R, N)``)."""

    replicates: np.ndarray
    uniforms: np.ndarray  # (R, N, n_columns): the draws of the randomized patients
    covariates: dict[str, np.ndarray]
    enrollment: np.ndarray
    arm: np.ndarray
    n_screened: np.ndarray
    effect_uniforms: dict[str, np.ndarray] = field(default_factory=dict)


def draw_cohort(layout: Layout, replicates: np.ndarray, seed: int) -> Cohort:
    """Screen, enroll and randomize the patients of the given replicates."""
    n_rep, n_cand, n_col = len(replicates), layout.n_candidates, len(layout.columns)
    candidates = np.empty((n_rep, n_cand, n_col))
    u_rand = np.empty((n_rep, layout.n_randomization + len(layout.uncertain_effects)))
    generators = []
    for i, r in enumerate(replicates):
        rng = replicate_generator(seed, int(r))
        rng.random(out=candidates[i])
        rng.random(out=u_rand[i])
        generators.append(rng)

    model = layout.covariate_model
    latent_cols = [layout.columns[f"latent:{name}"] for name in model.names]
    n_draw, n_patients = layout.n_draw, layout.n_patients
    if layout.eligibility:
        covariates = model.transform(ndtri(candidates[:, :, latent_cols]))
        eligible = _eligible(layout.eligibility, covariates)
        selected = np.empty((n_rep, n_draw, n_col))
        n_screened = np.empty(n_rep, dtype=np.int64)
        order = np.argsort(~eligible, axis=1, kind="stable")[:, :n_draw]
        ok = eligible.sum(axis=1) >= n_draw
        selected[ok] = np.take_along_axis(candidates[ok], order[ok, :, None], axis=1)
        n_screened[ok] = order[ok, n_patients - 1] + 1
        for i in np.flatnonzero(~ok):
            rows, screen_index = _screen_more(layout, generators[i], candidates[i], eligible[i])
            selected[i], n_screened[i] = rows, screen_index[n_patients - 1] + 1
    else:
        selected = candidates
        n_screened = np.full(n_rep, n_patients, dtype=np.int64)
    selected = selected[:, :n_patients]
    covariates = model.transform(ndtri(selected[:, :, latent_cols])) if latent_cols else {}

    accrual = layout.protocol.population.accrual
    arrival = layout.columns.get("arrival")
    exponentials = None if arrival is None else -np.log1p(-selected[:, :, arrival])
    enrollment = np.broadcast_to(
        enrollment_times(accrual, n_patients, exponentials), (n_rep, n_patients)
    )
    arm = _randomize(layout, covariates, u_rand[:, : layout.n_randomization])[:, :n_patients]
    effect_uniforms = {
        name: u_rand[:, layout.n_randomization + j]
        for j, name in enumerate(layout.uncertain_effects)
    }
    return Cohort(replicates, selected, covariates, enrollment, arm, n_screened, effect_uniforms)


def _screen_more(layout, rng, candidates, eligible):
    """A replicate with too few eligible candidates screens more from its own stream.

    Returns the first ``n_draw`` eligible candidates and each one's screening index.
    """
    model = layout.covariate_model
    latent_cols = [layout.columns[f"latent:{name}"] for name in model.names]
    rows, index = [candidates[eligible]], [np.flatnonzero(eligible)]
    screened = len(eligible)
    for _ in range(10_000):
        if sum(len(i) for i in index) >= layout.n_draw:
            return np.concatenate(rows)[: layout.n_draw], np.concatenate(index)
        more = rng.random((layout.n_candidates, candidates.shape[1]))
        ok = _eligible(layout.eligibility, model.transform(ndtri(more[:, latent_cols])))
        rows.append(more[ok])
        index.append(screened + np.flatnonzero(ok))
        screened += len(ok)
    raise DesignError(
        "population.eligibility: too few screened patients are eligible to enroll the trial"
    )


def stratum_codes(layout: Layout, covariates: dict, factors: list[str]):
    """Cross-classified stratum codes of the given binary / categorical covariates (numpy
    arrays or torch tensors)."""
    first = next(iter(covariates.values()))
    xp = namespace(first)
    codes = xp.zeros(first.shape, dtype=xp.int64, device=device(first))
    for name in factors:
        level = xp.astype(covariates[name], xp.int64)
        codes = codes * layout.covariate_model.n_levels(name) + level
    return codes


def _randomize(layout: Layout, covariates, u_rand):
    scheme = layout.protocol.randomization
    weights = np.array([arm.allocation for arm in layout.protocol.arms])
    n_draw = layout.n_draw
    if isinstance(scheme, SimpleRandomization):
        return rand.assign(scheme, weights, u_rand, n_draw)
    # covariates cover the first n_patients only; pad factors when drawing more
    xp = namespace(u_rand)
    n_rep = u_rand.shape[0]

    def padded(values):
        out = xp.zeros((n_rep, n_draw), dtype=xp.int64, device=device(u_rand))
        out[:, : values.shape[1]] = values
        return out

    if isinstance(scheme, StratifiedBlockRandomization):
        strata = padded(stratum_codes(layout, covariates, list(scheme.strata)))
        return rand.assign(scheme, weights, u_rand, n_draw, strata, layout.n_strata)
    if isinstance(scheme, MinimizationRandomization):
        factors = [
            (padded(covariates[f].astype(np.int64)), layout.covariate_model.n_levels(f))
            for f in scheme.factors
        ]
        return rand.assign(scheme, weights, u_rand, n_draw, factors=factors)
    return rand.assign(scheme, weights, u_rand, n_draw)


# -------------------------------------------------------------------- outcomes


@dataclass
class EndpointData:
    """One endpoint's simulated data before the cut-off is applied."""

    endpoint: Endpoint
    time: np.ndarray | None = None  # time to the (possibly composite) event
    censor: np.ndarray | None = None  # time to censoring by dropout or ICE
    value: np.ndarray | None = None  # binary / continuous response
    missing: np.ndarray | None = None  # response not observed (dropout, ICE)


def _arm_values(protocol: Protocol, value, transform, null_value: float) -> np.ndarray:
    """Per-arm effect array (control first in protocol order) on the model scale."""
    out = []
    for arm in protocol.arms:
        if arm.control:
            out.append(null_value)
        elif isinstance(value, dict):
            out.append(transform(value[arm.name]))
        else:
            out.append(transform(value))
    return np.array(out, dtype=float)


def has_cure(endpoint: Endpoint) -> bool:
    return isinstance(endpoint, TimeToEventEndpoint) and (
        endpoint.control.cure_fraction > 0 or endpoint.effect.cure_fraction is not None
    )


def cure_fractions(protocol: Protocol, endpoint: TimeToEventEndpoint, null: bool) -> np.ndarray:
    """Cure fraction of each arm (the control's in every arm on the null)."""
    control = endpoint.control.cure_fraction
    given = endpoint.effect.cure_fraction
    if null or given is None:
        return np.full(len(protocol.arms), control)
    return np.array(
        [
            control if arm.control else (given[arm.name] if isinstance(given, dict) else given)
            for arm in protocol.arms
        ]
    )


def piecewise_effects(protocol: Protocol, endpoint: TimeToEventEndpoint) -> list:
    """The piecewise hazard ratio of each arm (``None`` for control)."""
    spec = endpoint.effect.piecewise_hazard_ratio
    return [
        None if arm.control else (spec[arm.name] if isinstance(spec, dict) else spec)
        for arm in protocol.arms
    ]


def arm_effects(protocol: Protocol, endpoint: Endpoint, null: bool) -> np.ndarray:
    """The effect of each arm on its model scale (log HR, log OR, risk or mean difference).

    An effect drawn per trial from a distribution (see :func:`trial_effects`) and a
    piecewise (non-proportional) hazard ratio have no single value: NaN.
    """
    if effect_distribution(endpoint) is not None:
        effect = np.array([0.0 if arm.control else np.nan for arm in protocol.arms])
        return np.zeros_like(effect) if null else effect
    if isinstance(endpoint, TimeToEventEndpoint):
        if endpoint.effect.piecewise_hazard_ratio is not None:
            effect = np.array([0.0 if arm.control else np.nan for arm in protocol.arms])
            return np.zeros_like(effect) if null else effect
        effect = _arm_values(protocol, endpoint.effect.hazard_ratio, np.log, 0.0)
    elif isinstance(endpoint, BinaryEndpoint):
        if endpoint.effect.odds_ratio is not None:
            effect = _arm_values(protocol, endpoint.effect.odds_ratio, np.log, 0.0)
        else:
            effect = _arm_values(protocol, endpoint.effect.risk_difference, float, 0.0)
    else:
        effect = _arm_values(protocol, endpoint.effect.mean_difference, float, 0.0)
    return np.zeros_like(effect) if null else effect


def trial_effects(protocol: Protocol, endpoint, cohort: Cohort, null: bool) -> np.ndarray:
    """Per-patient effect on the model scale (log HR, log OR or mean difference) when each
    trial draws its own from the endpoint's distribution: the posterior draw indexed by the
    trial's uniform, or ``mean + sd * Phi^-1(u)``; zero in the control arm and on the
    null."""
    if null:
        return np.zeros(cohort.arm.shape)
    spec = effect_distribution(endpoint)
    u = cohort.effect_uniforms[endpoint.name]
    if spec.model is not None:
        draws = posterior_effect_draws(spec.model, spec.scale)
        value = draws[np.minimum((u * len(draws)).astype(np.int64), len(draws) - 1)]
    else:
        value = spec.mean + spec.sd * ndtri(u)
    control = next(i for i, arm in enumerate(protocol.arms) if arm.control)
    return np.where(cohort.arm == control, 0.0, value[:, None])


SCALE_NAMES = {
    "log_hazard_ratio": "log hazard ratio",
    "log_odds_ratio": "log odds ratio",
    "mean_difference": "mean difference",
}
SCALE_GENERATORS = {
    "log_hazard_ratio": "bayesian_weibull or bayesian_piecewise_exponential",
    "log_odds_ratio": "bayesian_logistic",
    "mean_difference": "bayesian_linear",
}


def effect_model_problem(model, scale: str) -> str | None:
    """Why a loaded model cannot give the treatment effect on ``scale`` (None if it can)."""
    if not hasattr(model, "posterior_effect"):
        return (
            f"a {model.kind} model has no treatment-effect posterior (fit one with "
            f"--generator {SCALE_GENERATORS[scale]})"
        )
    if model.effect_scale != scale:
        return (
            f"a {model.kind} model's treatment effect is a "
            f"{SCALE_NAMES.get(model.effect_scale, model.effect_scale)}, not the "
            f"{SCALE_NAMES[scale]} this endpoint needs (fit it with --generator "
            f"{SCALE_GENERATORS[scale]})"
        )
    if getattr(model, "treatment", None) is None:
        return f"the {model.kind} model was fitted without a treatment: it has no effect"
    return None


@lru_cache(maxsize=8)
def posterior_effect_draws(model_path: str, scale: str) -> np.ndarray:
    """The treatment-effect draws (``posterior_effect()``) of a fitted Bayesian model file
    whose ``effect_scale`` is ``scale``, in a fixed order (read-only)."""
    import generators  # noqa: F401  (registers the generators)
    from generators.base import load

    model = load(model_path)
    problem = effect_model_problem(model, scale)
    if problem is not None:
        raise DesignError(f"{model_path}: {problem}")
    draws = np.asarray(model.posterior_effect(), dtype=float)
    draws.setflags(write=False)
    return draws


def ice_hazards(protocol: Protocol, rate, null: bool) -> np.ndarray:
    """Monthly hazard of an intercurrent event in each arm; on the null every arm has
    the control arm's (a difference in intercurrent events is a treatment effect too)."""
    if not isinstance(rate, dict):
        return np.full(len(protocol.arms), annual_rate_hazard(rate))
    if null:
        rate = {arm.name: rate[protocol.control_arm.name] for arm in protocol.arms}
    return np.array([annual_rate_hazard(rate[arm.name]) for arm in protocol.arms])


def simulate_outcomes(layout: Layout, cohort: Cohort, null: bool) -> list[EndpointData]:
    """Outcomes of every endpoint for one scenario."""
    protocol = layout.protocol
    model = layout.covariate_model
    shape = cohort.arm.shape
    u = cohort.uniforms
    dropout = _dropout_times(layout, cohort)
    out = []
    for endpoint in layout.endpoints:
        linear = linear_predictor(endpoint.covariate_effects, cohort.covariates, model, shape)
        effect = arm_effects(protocol, endpoint, null)[cohort.arm]
        if endpoint.name in cohort.effect_uniforms:
            effect = trial_effects(protocol, endpoint, cohort, null)
        u_out = u[:, :, layout.columns[f"outcome:{endpoint.name}"]]
        ice_times = []
        for k, ice in enumerate(endpoint.estimand.intercurrent_events):
            if ice.annual_rate is None:
                continue
            hazard = ice_hazards(protocol, ice.annual_rate, null)[cohort.arm]
            e = -np.log1p(-u[:, :, layout.columns[f"ice:{endpoint.name}:{k}"]])
            with np.errstate(divide="ignore"):
                ice_times.append((ice.strategy, np.where(hazard > 0, e / hazard, np.inf)))
        if isinstance(endpoint, TimeToEventEndpoint):
            time = _event_times(layout, cohort, endpoint, u_out, linear, effect, null)
            censor = dropout.copy()
            for strategy, t_ice in ice_times:
                if strategy == "composite":
                    time = np.minimum(time, t_ice)
                elif strategy in ("hypothetical", "while_on_treatment"):
                    censor = np.minimum(censor, t_ice)
            out.append(EndpointData(endpoint, time=time, censor=censor))
            continue
        if isinstance(endpoint, BinaryEndpoint):
            scale = "risk" if endpoint.effect.risk_difference is not None else "logit"
            value = binary_responses(u_out, endpoint.control.rate, linear, effect, scale)
        else:
            value = continuous_responses(
                u_out, endpoint.control.mean, endpoint.control.sd, linear, effect
            )
        missing = dropout < endpoint.assessment_month
        for strategy, t_ice in ice_times:
            before = t_ice < endpoint.assessment_month
            if strategy == "composite":
                value = np.where(before, endpoint.better == "lower", value)
            elif strategy == "hypothetical":
                missing = missing | before
        out.append(EndpointData(endpoint, value=value, missing=missing))
    return out


def _event_times(layout, cohort, endpoint, u_out, linear, effect, null) -> np.ndarray:
    protocol = layout.protocol
    exponentials = -np.log1p(-u_out)
    if endpoint.effect.piecewise_hazard_ratio is None or null:
        time = event_times(endpoint.control, exponentials, linear + np.nan_to_num(effect))
    else:
        target = exponentials * np.exp(-linear)
        time = np.empty_like(target)
        for a, spec in enumerate(piecewise_effects(protocol, endpoint)):
            mask = cohort.arm == a
            if spec is None:
                time[mask] = inverse_cumulative_hazard(endpoint.control, target[mask])
            else:
                time[mask] = piecewise_effect_event_times(
                    endpoint.control, target[mask], spec.breaks, spec.hazard_ratios
                )
    if has_cure(endpoint):
        cured = cure_fractions(protocol, endpoint, null)[cohort.arm]
        u_cure = cohort.uniforms[:, :, layout.columns[f"cure:{endpoint.name}"]]
        time = np.where(u_cure < cured, np.inf, time)
    return time


def _dropout_times(layout: Layout, cohort: Cohort) -> np.ndarray:
    e = -np.log1p(-cohort.uniforms[:, :, layout.columns["dropout"]])
    return dropout_times(layout.protocol, e, cohort.arm)


def dropout_times(protocol: Protocol, exponentials, arm):
    """Times to dropout from standard exponential draws and arm indexes (numpy arrays or
    torch tensors)."""
    xp = namespace(exponentials)
    hazards: list[PiecewiseHazard] = [
        dropout_hazard(protocol.dropout.by_arm.get(a.name, protocol.dropout.all))
        for a in protocol.arms
    ]
    if all(len(h.starts) == 1 for h in hazards):
        rates = np.array([h.hazards[0] for h in hazards])
        if np.all(rates == rates[0]):
            return hazards[0].inverse(exponentials)
        rate = like(rates, exponentials)[arm]
        with np.errstate(divide="ignore"):
            return xp.where(rate > 0, exponentials / xp.where(rate > 0, rate, 1.0), np.inf)
    times = xp.empty_like(exponentials)
    for a, hazard in enumerate(hazards):
        mask = arm == a
        times[mask] = hazard.inverse(exponentials[mask])
    return times


# --------------------------------------------------------------------- cut-off


@dataclass
class Cutoff:
    """The analysis cut-off of each replicate.

    Patient *i* of replicate *r* is followed from ``enrollment[r, i]`` until
    ``analysis_time[r]``, and for at most ``max_follow_up`` months. Comparisons are made
    on the calendar scale, so the event that triggers an event-driven analysis is
    counted exactly.
    """

    analysis_time: np.ndarray  # (R,) calendar time of the analysis
    enrollment: np.ndarray  # (R, N)
    max_follow_up: float
    target_reached: np.ndarray  # (R,) bool

    @property
    def follow_up(self) -> np.ndarray:
        """Follow-up available per patient at the analysis (negative: not yet enrolled)."""
        return np.minimum(self.analysis_time[:, None] - self.enrollment, self.max_follow_up)

    def observed(self, time: np.ndarray) -> np.ndarray:
        """Whether something happening ``time`` after enrollment is seen at the analysis."""
        return (self.enrollment + time <= self.analysis_time[:, None]) & (
            time <= self.max_follow_up
        )


def analysis_cutoff(layout: Layout, cohort: Cohort, primary: EndpointData) -> Cutoff:
    """Cut-off per replicate from the protocol's timing of the final analysis."""
    timing = layout.protocol.analysis.timing
    enrollment = cohort.enrollment
    n_rep = enrollment.shape[0]
    everyone = np.ones(n_rep, bool)
    if isinstance(timing, EventsTiming):
        observable = primary.time <= primary.censor
        calendar = np.where(observable, enrollment + primary.time, np.inf)
        k = timing.target_events
        kth = np.partition(calendar, k - 1, axis=1)[:, k - 1]
        reached = np.isfinite(kth)
        last = np.max(np.where(observable, calendar, -np.inf), axis=1)
        analysis_time = np.where(reached, kth, last)
        return Cutoff(analysis_time, enrollment, np.inf, reached)
    if isinstance(timing, CalendarTiming):
        return Cutoff(np.full(n_rep, timing.months), enrollment, np.inf, everyone)
    assert isinstance(timing, FollowUpTiming)
    analysis_time = enrollment.max(axis=1) + timing.months
    return Cutoff(analysis_time, enrollment, timing.months, everyone)


@dataclass
class AnalysisData:
    """What the analysis sees for one endpoint."""

    endpoint: Endpoint
    valid: np.ndarray  # (R, N) included in the analysis
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    value: np.ndarray | None = None


def apply_cutoff(data: EndpointData, cutoff: Cutoff) -> AnalysisData:
    """Administrative censoring at the cut-off; responses not yet assessed are left out.

    Time-to-event data follow :func:`analysis.logrank_looks.administrative_censoring`:
    events on the calendar scale, so that the event that triggers the analysis counts.
    """
    if data.time is not None:
        time, event, enrolled = administrative_censoring(
            data.time, data.censor, cutoff.enrollment, cutoff.analysis_time, cutoff.max_follow_up
        )
        return AnalysisData(data.endpoint, valid=enrolled, time=time, event=event)
    enrolled = cutoff.analysis_time[:, None] - cutoff.enrollment >= 0
    assessed = cutoff.observed(np.full_like(cutoff.enrollment, data.endpoint.assessment_month))
    valid = enrolled & assessed & ~data.missing
    return AnalysisData(data.endpoint, valid=valid, value=data.value)


# ------------------------------------------------------------------- iteration


@dataclass
class ChunkResult:
    """Simulated analysis data of one chunk, per scenario."""

    cohort: Cohort
    scenarios: dict[str, tuple[Cutoff, list[AnalysisData]]] = field(default_factory=dict)


def simulate_chunk(
    layout: Layout, replicates: np.ndarray, seed: int, scenarios=SCENARIOS
) -> ChunkResult:
    cohort = draw_cohort(layout, replicates, seed)
    result = ChunkResult(cohort)
    for scenario in scenarios:
        endpoints = simulate_outcomes(layout, cohort, null=scenario == "null")
        cutoff = analysis_cutoff(layout, cohort, endpoints[0])
        result.scenarios[scenario] = (cutoff, [apply_cutoff(d, cutoff) for d in endpoints])
    return result


def chunks(n_replicates: int, chunk_size: int, start: int = 0) -> Iterator[np.ndarray]:
    for begin in range(start, n_replicates, chunk_size):
        yield np.arange(begin, min(begin + chunk_size, n_replicates))


def patient_table(
    protocol: Protocol, replicate: int = 0, scenario: str = "design", seed: int | None = None
) -> pd.DataFrame:
    """One simulated trial as a patient-level table (for inspection)."""
    seed = protocol.simulation.seed if seed is None else seed
    layout = Layout(protocol, protocol.population.n_patients, protocol.population.n_patients)
    chunk = simulate_chunk(layout, np.array([replicate]), seed, (scenario,))
    cohort = chunk.cohort
    cutoff, data = chunk.scenarios[scenario]
    arms = np.array([arm.name for arm in protocol.arms])
    frame = pd.DataFrame(
        {
            "patient": np.arange(1, layout.n_patients + 1),
            "enrollment_time": cohort.enrollment[0],
            "arm": arms[cohort.arm[0]],
        }
    )
    for name, values in cohort.covariates.items():
        levels = layout.covariate_model.levels(name)
        frame[name] = pd.Categorical.from_codes(values[0], levels) if levels else values[0]
    for d in data:
        name = d.endpoint.name
        frame[f"{name}_analysed"] = d.valid[0]
        if d.time is not None:
            frame[f"{name}_time"] = np.where(d.valid[0], d.time[0], np.nan)
            frame[f"{name}_event"] = d.event[0] & d.valid[0]
        else:
            frame[f"{name}_value"] = np.where(d.valid[0], d.value[0].astype(float), np.nan)
    frame.attrs["analysis_time"] = float(cutoff.analysis_time[0])
    return frame
