"""The protocol model: the single description of a simulated trial design.

A protocol file (YAML) is parsed into these frozen pydantic models, which forbid unknown
keys. Time is in months throughout; rates of accrual are patients per month; hazards are
per month. The primary endpoint carries its estimand (ICH E9(R1)): population, treatment
conditions, variable, intercurrent events with their strategies and the population-level
summary measure; the engine and the analysis follow from it.

Semantic rules that involve several fields (one control arm, strata that are covariates,
target events not above the number of patients, ...) live in :mod:`trials.validation`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from trials.external import ExternalControl

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
OpenProbability = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(ge=-1e9, le=1e9, allow_inf_nan=False)]
Scale = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Level = Annotated[str, Field(min_length=1, max_length=64)]


def _number_as_text(value: object) -> object:
    """Let ``phase: 3`` and ``version: 2`` be written without quotes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


TextOrNumber = Annotated[str, BeforeValidator(_number_as_text), Field(min_length=1)]


class Model(BaseModel):
    """Base of every protocol model: frozen, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- arms


class Arm(Model):
    """A treatment arm.

    ``allocation`` is the arm's share in the allocation ratio (``1`` and ``1`` for 1:1,
    ``2`` and ``1`` for 2:1). Exactly one arm is the control.
    """

    name: Name
    label: str | None = None
    control: bool = False
    allocation: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 1.0


# --------------------------------------------------------------------- population


class AccrualPeriod(Model):
    """A period of constant accrual rate (patients per month).

    ``duration`` is omitted for the last period, which lasts until enrolment is complete.
    """

    rate: PositiveFloat
    duration: PositiveFloat | None = None


class Accrual(Model):
    """Piecewise-constant accrual (a ramp-up is a sequence of increasing rates).

    ``process: poisson`` draws arrivals from a non-homogeneous Poisson process;
    ``deterministic`` places patient *i* at the time the cumulative expected accrual
    reaches *i* (as rpact does).
    """

    process: Literal["poisson", "deterministic"] = "poisson"
    periods: list[AccrualPeriod] = Field(min_length=1)


class NormalCovariate(Model):
    name: Name
    distribution: Literal["normal"]
    mean: FiniteFloat = 0.0
    sd: Scale = 1.0


class LogNormalCovariate(Model):
    name: Name
    distribution: Literal["lognormal"]
    meanlog: Annotated[float, Field(ge=-50, le=50, allow_inf_nan=False)] = 0.0
    sdlog: Annotated[float, Field(gt=0, le=5, allow_inf_nan=False)] = 1.0


class BinaryCovariate(Model):
    name: Name
    distribution: Literal["binary"]
    p: OpenProbability


class CategoricalCovariate(Model):
    """A categorical covariate; ``categories`` maps each level to its probability.

    The first level is the reference level for covariate effects.
    """

    name: Name
    distribution: Literal["categorical"]
    categories: dict[Level, OpenProbability] = Field(min_length=2)


Covariate = Annotated[
    NormalCovariate | LogNormalCovariate | BinaryCovariate | CategoricalCovariate,
    Field(discriminator="distribution"),
]


class Correlation(Model):
    """Correlation of the latent normal variables of two covariates (Gaussian copula)."""

    between: tuple[Name, Name]
    rho: Annotated[float, Field(gt=-1, lt=1, allow_inf_nan=False)]


class PopulationGenerator(Model):
    """Baseline covariates from a fitted virtual-patient generator: ``model`` is a Gaussian
    copula file written by ``insilico fit DATA --generator copula`` (relative to the
    protocol file), ``covariates`` the columns used as the trial's covariates."""

    model: Annotated[str, Field(min_length=1)]
    covariates: list[Name] = Field(min_length=1)


class Population(Model):
    """Who is enrolled, how fast, and with which baseline covariates.

    Covariates are drawn from a Gaussian copula: each covariate is a transform of a
    latent standard normal variable (a threshold for binary and categorical ones), and
    ``correlations`` set the correlations of the latent variables. They are given here
    (``covariates``, ``correlations``) or come from a copula fitted to real patients
    (``generator``, e.g. the phase-2 study). Screened patients who fail an
    ``eligibility`` expression are not randomized; ``n_patients`` counts randomized
    patients.
    """

    n_patients: Annotated[int, Field(ge=2, le=1_000_000)]
    accrual: Accrual
    covariates: list[Covariate] = Field(default_factory=list)
    correlations: list[Correlation] = Field(default_factory=list)
    generator: PopulationGenerator | None = None
    eligibility: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list
    )


# ------------------------------------------------------------------ randomization


class SimpleRandomization(Model):
    """Each patient assigned independently with the allocation probabilities."""

    method: Literal["simple"]


class BlockRandomization(Model):
    """Permuted blocks; a block size is drawn at random from ``block_sizes`` per block.

    Each block size must be a multiple of the sum of the (integer) allocations.
    """

    method: Literal["blocks"]
    block_sizes: list[Annotated[int, Field(ge=2, le=1000)]] = Field(min_length=1)


class StratifiedBlockRandomization(Model):
    """Permuted blocks within each stratum (the cross-classification of ``strata``)."""

    method: Literal["stratified_blocks"]
    block_sizes: list[Annotated[int, Field(ge=2, le=1000)]] = Field(min_length=1)
    strata: list[Name] = Field(min_length=1)


class MinimizationRandomization(Model):
    """Pocock–Simon minimization over ``factors`` (range of the allocation-weighted counts).

    The arm that minimizes the imbalance is given with probability ``p_best``; ties are
    broken at random with the allocation probabilities.
    """

    method: Literal["minimization"]
    factors: list[Name] = Field(min_length=1)
    p_best: Annotated[float, Field(gt=0.5, le=1, allow_inf_nan=False)] = 0.8


Randomization = Annotated[
    SimpleRandomization
    | BlockRandomization
    | StratifiedBlockRandomization
    | MinimizationRandomization,
    Field(discriminator="method"),
]


# ------------------------------------------------------------------------ dropout


class HazardPiece(Model):
    """A piece of a piecewise-constant rate; ``until`` is omitted for the last piece."""

    annual_rate: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
    until: PositiveFloat | None = None


class DropoutModel(Model):
    """Loss to follow-up, exponential (``annual_rate``) or piecewise exponential.

    ``annual_rate`` is the proportion lost within 12 months in the absence of the event
    (rpact's ``dropoutRate`` with ``dropoutTime = 12``): hazard ``-log(1 - rate) / 12``.
    """

    annual_rate: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None
    piecewise: list[HazardPiece] | None = None


class Dropout(Model):
    """Dropout in every arm (``all``) with optional per-arm overrides (``by_arm``)."""

    all: DropoutModel = DropoutModel(annual_rate=0.0)
    by_arm: dict[Name, DropoutModel] = Field(default_factory=dict)


# ---------------------------------------------------------------------- estimands


IceStrategy = Literal["treatment_policy", "hypothetical", "composite", "while_on_treatment"]


class IntercurrentEvent(Model):
    """An intercurrent event, its strategy (ICH E9(R1)) and how often it occurs.

    ``annual_rate`` (overall, or by arm) makes the engine simulate it: exponential time to
    the event with that proportion within 12 months. What happens next follows the
    strategy: ``treatment_policy`` keeps the outcome as observed; ``composite`` makes the
    event a failure (an event at that time, or a non-response); ``hypothetical`` and
    ``while_on_treatment`` take the outcome up to the event (time-to-event: censored
    there; binary and continuous: not observed, analysed as missing for
    ``hypothetical`` and as observed for ``while_on_treatment``).
    """

    event: Annotated[str, Field(min_length=1)]
    strategy: IceStrategy
    annual_rate: (
        Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
        | dict[Name, Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]]
        | None
    ) = None


SummaryMeasure = Literal[
    "hazard_ratio",
    "rmst_difference",
    "difference_in_proportions",
    "odds_ratio",
    "difference_in_means",
]


class Estimand(Model):
    """The estimand of an endpoint (ICH E9(R1) attributes)."""

    population: str = "all randomized patients"
    treatment: str = "as randomized"
    variable: str | None = None
    intercurrent_events: list[IntercurrentEvent] = Field(default_factory=list)
    summary_measure: SummaryMeasure


# ---------------------------------------------------------------------- endpoints


class ExponentialControl(Model):
    """Exponential control-arm time to event, by ``median`` or monthly ``hazard``."""

    distribution: Literal["exponential"]
    median: PositiveFloat | None = None
    hazard: PositiveFloat | None = None
    cure_fraction: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0


class WeibullControl(Model):
    """Weibull control: ``S(t) = exp(-(t / scale) ** shape)``; ``median`` may replace scale."""

    distribution: Literal["weibull"]
    shape: PositiveFloat
    scale: PositiveFloat | None = None
    median: PositiveFloat | None = None
    cure_fraction: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0


class PiecewiseExponentialControl(Model):
    """Piecewise-constant monthly ``hazards`` changing at ``breaks`` (months, increasing)."""

    distribution: Literal["piecewise_exponential"]
    breaks: list[PositiveFloat] = Field(min_length=1)
    hazards: list[PositiveFloat] = Field(min_length=2)
    cure_fraction: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0


SurvivalControl = Annotated[
    ExponentialControl | WeibullControl | PiecewiseExponentialControl,
    Field(discriminator="distribution"),
]

CovariateEffect = FiniteFloat | dict[Level, FiniteFloat]
ArmValue = PositiveFloat | dict[Name, PositiveFloat]


class PiecewiseHazardRatio(Model):
    """A hazard ratio that changes at ``breaks`` (months from randomization).

    A delayed effect is ``breaks: [3]``, ``hazard_ratios: [1.0, 0.6]``; crossing hazards
    ``hazard_ratios: [1.3, 0.7]``.
    """

    breaks: list[PositiveFloat] = Field(min_length=1)
    hazard_ratios: list[PositiveFloat] = Field(min_length=2)


CureFraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


LogScaleSd = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class EffectDistribution(Model):
    """An uncertain treatment effect on its model scale (:attr:`scale`): each simulated
    trial draws its own effect, ``N(mean, sd^2)``, or one of the posterior draws of the
    treatment effect of a fitted Bayesian model (``model``: a file written by ``insilico
    fit``, relative to the protocol file, whose ``effect_scale`` must be this scale). The
    same drawn effect applies to every experimental arm of the trial; the design
    scenario's rejection rate is then the assurance.

    Besides the assurance, a simulation reports the conditional power at the median of
    the distribution and, when given, at the effect chosen by the subclass's
    ``power_at_*`` field. Endpoints name their distribution by the scale:
    ``log_hazard_ratio_distribution`` (time to event), ``log_odds_ratio_distribution``
    (binary), ``mean_difference_distribution`` (continuous); see
    :func:`effect_distribution`.
    """

    #: The effect's scale: the ``effect_scale`` of the Bayesian models that fit it.
    scale: ClassVar[str] = ""
    #: The effect key this distribution replaces for a conditional power at one value.
    fixed_key: ClassVar[str] = ""
    #: The key of the user-chosen effect of a conditional power (natural scale).
    power_at_key: ClassVar[str] = ""

    mean: FiniteFloat | None = None
    sd: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None
    model: Annotated[str, Field(min_length=1)] | None = None

    @property
    def power_at(self) -> float | None:
        """The user-chosen effect of a conditional power on the model scale, or None."""
        value = getattr(self, self.power_at_key, None)
        return None if value is None else self.to_scale(value)

    @staticmethod
    def to_scale(value: float) -> float:
        """A natural-scale value (a ratio, a difference) on the model scale."""
        return float(value)

    @staticmethod
    def from_scale(value: float) -> float:
        """A model-scale value on the natural scale of ``fixed_key``."""
        return float(value)


class _LogScaleDistribution(EffectDistribution):
    """An effect on the log scale of a ratio (the natural scale of ``fixed_key``)."""

    sd: LogScaleSd | None = None

    @staticmethod
    def to_scale(value: float) -> float:
        return float(np.log(value))

    @staticmethod
    def from_scale(value: float) -> float:
        return float(np.exp(value))


class LogHazardRatioDistribution(_LogScaleDistribution):
    """An uncertain log hazard ratio (``model``: ``insilico fit --generator
    bayesian_weibull`` or ``bayesian_piecewise_exponential``); ``power_at_hazard_ratio``
    adds a conditional power at that hazard ratio."""

    scale: ClassVar[str] = "log_hazard_ratio"
    fixed_key: ClassVar[str] = "hazard_ratio"
    power_at_key: ClassVar[str] = "power_at_hazard_ratio"

    power_at_hazard_ratio: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None


class LogOddsRatioDistribution(_LogScaleDistribution):
    """An uncertain log odds ratio (``model``: ``insilico fit --generator
    bayesian_logistic``); ``power_at_odds_ratio`` adds a conditional power at that odds
    ratio."""

    scale: ClassVar[str] = "log_odds_ratio"
    fixed_key: ClassVar[str] = "odds_ratio"
    power_at_key: ClassVar[str] = "power_at_odds_ratio"

    power_at_odds_ratio: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None


class MeanDifferenceDistribution(EffectDistribution):
    """An uncertain mean difference, experimental minus control, in the outcome's units
    (``model``: ``insilico fit --generator bayesian_linear``); ``power_at_mean_difference``
    adds a conditional power at that difference."""

    scale: ClassVar[str] = "mean_difference"
    fixed_key: ClassVar[str] = "mean_difference"
    power_at_key: ClassVar[str] = "power_at_mean_difference"

    power_at_mean_difference: FiniteFloat | None = None


class TimeToEventEffect(Model):
    """The effect of each experimental arm on the hazard.

    Give ``hazard_ratio`` (proportional hazards), ``piecewise_hazard_ratio``
    (non-proportional: delayed or crossing effects), for every experimental arm or per
    arm, or ``log_hazard_ratio_distribution``: each simulated trial then draws its own
    hazard ratio (the same for every experimental arm), so that the design scenario's
    rejection rate is the assurance — the probability of success averaged over what is
    known of the effect. ``cure_fraction`` (one, or per arm) replaces the control's cure
    fraction in the experimental arms: a mixture-cure model in which cured patients never
    have the event.
    """

    hazard_ratio: ArmValue | None = None
    log_hazard_ratio_distribution: LogHazardRatioDistribution | None = None
    piecewise_hazard_ratio: PiecewiseHazardRatio | dict[Name, PiecewiseHazardRatio] | None = None
    cure_fraction: CureFraction | dict[Name, CureFraction] | None = None


class TimeToEventEndpoint(Model):
    """A time-to-event endpoint with proportional hazards.

    ``covariate_effects`` are log hazard ratios: per unit for normal and log-normal
    covariates (centred at their mean), for ``1`` vs ``0`` for binary ones, and per level
    against the first (reference) level for categorical ones.
    """

    name: Name
    type: Literal["time_to_event"]
    estimand: Estimand
    control: SurvivalControl
    effect: TimeToEventEffect
    covariate_effects: dict[Name, CovariateEffect] = Field(default_factory=dict)


class BinaryControl(Model):
    rate: OpenProbability


class BinaryEffect(Model):
    """Odds ratio (one, or per arm), risk difference (one, or per arm), or
    ``log_odds_ratio_distribution``: each simulated trial then draws its own odds ratio
    (the same for every experimental arm), so that the design scenario's rejection rate is
    the assurance. Give one."""

    odds_ratio: ArmValue | None = None
    risk_difference: (
        Annotated[float, Field(gt=-1, lt=1, allow_inf_nan=False)]
        | dict[Name, Annotated[float, Field(gt=-1, lt=1, allow_inf_nan=False)]]
        | None
    ) = None
    log_odds_ratio_distribution: LogOddsRatioDistribution | None = None


class BinaryEndpoint(Model):
    """A binary endpoint assessed at ``assessment_month``; effects on the logit scale."""

    name: Name
    type: Literal["binary"]
    estimand: Estimand
    better: Literal["higher", "lower"] = "higher"
    assessment_month: NonNegativeFloat = 0.0
    control: BinaryControl
    effect: BinaryEffect
    covariate_effects: dict[Name, CovariateEffect] = Field(default_factory=dict)


class ContinuousControl(Model):
    mean: FiniteFloat
    sd: PositiveFloat


class ContinuousEffect(Model):
    """Mean difference, experimental minus control (one, or per arm), or
    ``mean_difference_distribution``: each simulated trial then draws its own difference
    (the same for every experimental arm), so that the design scenario's rejection rate is
    the assurance. Give one."""

    mean_difference: FiniteFloat | dict[Name, FiniteFloat] | None = None
    mean_difference_distribution: MeanDifferenceDistribution | None = None


class ContinuousEndpoint(Model):
    """A normally distributed endpoint assessed at ``assessment_month``."""

    name: Name
    type: Literal["continuous"]
    estimand: Estimand
    better: Literal["higher", "lower"]
    assessment_month: NonNegativeFloat = 0.0
    control: ContinuousControl
    effect: ContinuousEffect
    covariate_effects: dict[Name, CovariateEffect] = Field(default_factory=dict)


Endpoint = Annotated[
    TimeToEventEndpoint | BinaryEndpoint | ContinuousEndpoint,
    Field(discriminator="type"),
]


#: The key of each endpoint type's effect distribution (in ``effect``).
DISTRIBUTION_KEYS = {
    "time_to_event": "log_hazard_ratio_distribution",
    "binary": "log_odds_ratio_distribution",
    "continuous": "mean_difference_distribution",
}


def effect_distribution(endpoint) -> EffectDistribution | None:
    """The distribution an endpoint's effect is drawn from per trial, or None (a fixed
    effect)."""
    return getattr(endpoint.effect, DISTRIBUTION_KEYS[endpoint.type], None)


class Endpoints(Model):
    primary: Endpoint
    secondary: list[Endpoint] = Field(default_factory=list)


# ----------------------------------------------------------------------- analysis


TestName = Literal[
    "logrank",
    "stratified_logrank",
    "cox",
    "weighted_logrank",
    "maxcombo",
    "rmst",
    "average_hazard_ratio",
    "difference_in_proportions",
    "cmh",
    "t_test",
    "ancova",
]


class EndpointAnalysis(Model):
    """The test of one endpoint; ``strata`` for stratified log-rank, Cox and CMH;
    ``covariates`` for ANCOVA; ``rho`` and ``gamma`` for the Fleming–Harrington weighted
    log-rank test FH(rho, gamma); ``tau`` (months) for the restricted mean survival time
    and the (Kalbfleisch–Prentice) average hazard ratio over ``[0, tau]``.
    MaxCombo combines FH(0,0), FH(0,1), FH(1,0) and FH(1,1)."""

    test: TestName
    strata: list[Name] = Field(default_factory=list)
    covariates: list[Name] = Field(default_factory=list)
    rho: NonNegativeFloat | None = None
    gamma: NonNegativeFloat | None = None
    tau: PositiveFloat | None = None


class EventsTiming(Model):
    """Event-driven: the analysis when ``target_events`` primary events have occurred."""

    type: Literal["events"]
    target_events: Annotated[int, Field(ge=1)]


class CalendarTiming(Model):
    """At ``months`` after the first patient was randomized."""

    type: Literal["calendar"]
    months: PositiveFloat


class FollowUpTiming(Model):
    """Each patient followed for ``months`` from randomization; analysis after the last."""

    type: Literal["follow_up"]
    months: NonNegativeFloat


Timing = Annotated[EventsTiming | CalendarTiming | FollowUpTiming, Field(discriminator="type")]


EfficacyBoundary = Literal["OF", "P", "asOF", "asP", "asKD", "asHSD"]
FutilityBoundary = Literal["bsOF", "bsP", "bsKD", "bsHSD"]


class GroupSequential(Model):
    """Interim analyses of the primary endpoint at fractions of the target events.

    ``efficacy``: classical O'Brien–Fleming (``OF``) or Pocock (``P``) boundaries, or
    Lan–DeMets alpha spending of O'Brien–Fleming type (``asOF``), Pocock type (``asP``),
    the Kim–DeMets power family (``asKD``, parameter rho > 0) or Hwang–Shih–DeCani
    (``asHSD``, parameter gamma). ``futility``: beta spending of the same families,
    ``binding`` or not, for the design power ``1 - beta``. Boundaries are recomputed in
    each simulated trial at the information (events) actually observed at each look.
    """

    information_fractions: list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = Field(
        min_length=2, max_length=10
    )
    efficacy: EfficacyBoundary | None = "asOF"
    efficacy_parameter: FiniteFloat | None = None
    futility: FutilityBoundary | None = None
    futility_parameter: FiniteFloat | None = None
    binding: bool = False
    beta: Annotated[float, Field(gt=0, lt=0.5, allow_inf_nan=False)] = 0.2


class Analysis(Model):
    """The analysis plan: tests, one-sided ``alpha`` (or two-sided), timing, interims.

    With several experimental arms each is compared with control; ``multiplicity``
    controls the family-wise error: ``bonferroni`` (alpha / k each), ``holm`` (step-down
    Bonferroni), ``dunnett`` (single-step, from the joint normal distribution of the
    comparisons sharing the control) or ``none``.
    """

    primary: EndpointAnalysis
    secondary: dict[Name, EndpointAnalysis] = Field(default_factory=dict)
    alpha: OpenProbability = 0.025
    sided: Literal[1, 2] = 1
    multiplicity: Literal["bonferroni", "holm", "dunnett", "none"] = "bonferroni"
    timing: Timing
    group_sequential: GroupSequential | None = None


class Simulation(Model):
    n_replicates: Annotated[int, Field(ge=1, le=100_000_000)] = 1000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class Protocol(Model):
    """A trial protocol: design, population, randomization, endpoints, analysis, simulation."""

    id: Annotated[str, Field(min_length=1, max_length=100)]
    title: Annotated[str, Field(min_length=1)]
    phase: Annotated[Literal["1", "2", "2/3", "3", "4"], BeforeValidator(_number_as_text)]
    version: TextOrNumber
    description: str | None = None
    arms: list[Arm] = Field(min_length=2)
    population: Population
    randomization: Randomization
    dropout: Dropout = Dropout()
    endpoints: Endpoints
    analysis: Analysis
    simulation: Simulation = Simulation()
    external_control: ExternalControl | None = None

    # -- convenience -----------------------------------------------------------------

    @property
    def control_arm(self) -> Arm:
        return next(arm for arm in self.arms if arm.control)

    @property
    def experimental_arms(self) -> list[Arm]:
        return [arm for arm in self.arms if not arm.control]

    def covariate(self, name: str):
        """The covariate called ``name``, or ``None``."""
        return next((c for c in self.population.covariates if c.name == name), None)
