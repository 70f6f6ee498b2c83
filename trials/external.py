"""The ``external_control`` section of a protocol: a single-arm trial against external patients.

The section names the trial's patient file and the external source (real-world data, a
registry, a historical trial), says how the external source is made comparable -- the
trial's eligibility criteria applied to it, its index date (time zero), the harmonisation of
names, units and categories -- and how the comparison is made: the propensity model's
covariates, the adjustment (matching, ATT weighting, overlap weighting), the endpoint, the
bootstrap and the sensitivity analysis; optionally a synthetic (generated) control arm.

This module holds the section's models (:class:`ExternalControl`).
:mod:`trials.external_data` reads and harmonises the two files,
:mod:`trials.external_run` runs the analysis and writes its output directory, and
:mod:`trials.external_example` builds the shipped GBSG2 example.

Order of the harmonisation of the external source: (1) ``rename`` external columns to the
trial's names; (2) ``units``: multiply numeric columns by a factor (e.g. centimetres to
millimetres: 10; days to months: 1 / 30.4375); (3) ``categories``: map each external label
to the trial's label (every label seen must be mapped); (4) the index date: subtract the
time from the source's origin to the index date from the follow-up time, and leave out
patients with no follow-up after it; (5) the eligibility criteria.
"""

from __future__ import annotations

import ast
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = ["ExternalControl"]

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Column = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
FilePath = Annotated[str, Field(min_length=1, max_length=1000)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Model(BaseModel):
    """Frozen, no unknown keys, no NaN or infinity (as :class:`trials.protocol.Model`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _check_expression(text: str) -> str:
    """Syntax and allowed constructs of an eligibility expression (names are checked
    against the data when the files are read)."""
    from trials.expressions import parse_expression

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {text!r} ({exc.msg})") from None
    names = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    parse_expression(text, names, {})
    return text


def _keys_as_text(value: object) -> object:
    """Let a category map be written ``{1: I, 2: II}`` without quotes."""
    if isinstance(value, dict):
        return {
            (str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k): v
            for k, v in value.items()
        }
    return value


Expression = Annotated[
    str, Field(min_length=1, max_length=500), AfterValidator(_check_expression)
]
CategoryMap = Annotated[dict[Label, Label], BeforeValidator(_keys_as_text), Field(min_length=1)]


class Harmonisation(Model):
    """How the external source is made to speak the trial's language (applied in order).

    ``rename`` maps external column names to the trial's; ``units`` gives, per (trial)
    column, the factor that multiplies the external values (after renaming); ``categories``
    maps, per (trial) column, every external label to a trial label.
    """

    rename: dict[Column, Name] = Field(default_factory=dict)
    units: dict[Name, Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    categories: dict[Name, CategoryMap] = Field(default_factory=dict)

    @field_validator("rename")
    @classmethod
    def _distinct_targets(cls, value: dict[str, str]) -> dict[str, str]:
        targets = list(value.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"two columns are renamed to {', '.join(map(repr, twice))}")
        return value


class TimeZero(Model):
    """The index date (time zero) of the external patients.

    The trial's times run from enrolment. An external source's follow-up may run from an
    earlier origin (diagnosis, start of an earlier line of therapy): ``index_time_column``
    names the column with the time from that origin to the index date (the date at which
    the external patient met the trial's entry conditions), and ``shift`` is a constant to
    subtract as well; both in the trial's time unit after harmonisation. External patients
    whose event or censoring is not after the index date are left out (counted).
    """

    index_time_column: Name | None = None
    shift: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0


class Matching(Model):
    """Greedy 1:k nearest-neighbour matching on the logit of the propensity score within a
    caliper (standard deviations of the logit; ``null`` for none)."""

    method: Literal["matching"]
    k: Annotated[int, Field(ge=1, le=20)] = 1
    caliper: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] | None = 0.2
    replace: bool = False
    max_unmatched: Probability = 0.1


class IptwAtt(Model):
    """Inverse probability weighting for the effect on the treated (the trial population)."""

    method: Literal["iptw_att"]


class OverlapWeighting(Model):
    """Overlap weights (Li, Morgan & Zaslavsky 2018)."""

    method: Literal["overlap"]


Adjustment = Annotated[Matching | IptwAtt | OverlapWeighting, Field(discriminator="method")]


class TimeToEventOutcome(Model):
    type: Literal["time_to_event"]
    time: Name
    event: Name


class BinaryOutcome(Model):
    type: Literal["binary"]
    outcome: Name


class ContinuousOutcome(Model):
    type: Literal["continuous"]
    outcome: Name


Outcome = Annotated[
    TimeToEventOutcome | BinaryOutcome | ContinuousOutcome, Field(discriminator="type")
]


class BootstrapSettings(Model):
    """Bootstrap resamples (0: none) and their seed."""

    n_resamples: Annotated[int, Field(ge=0, le=100_000)] = 200
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0

    @field_validator("n_resamples")
    @classmethod
    def _not_one(cls, value: int) -> int:
        if value == 1:
            raise ValueError("give 0 (no bootstrap) or at least 2 resamples")
        return value


class Sensitivity(Model):
    """E-value and tipping-point settings. ``rare_outcome``: fewer than about 15 % of the
    patients with the event by the end of follow-up (then HR ~ RR)."""

    rare_outcome: bool = False
    prevalence_differences: (
        list[Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]] | None
    ) = None
    confounder_hazard_ratios: (
        list[Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]] | None
    ) = None


class SyntheticControl(Model):
    """A synthetic control arm: a generator of kind ``generator`` fitted on the external
    patients draws ``n_per_patient`` virtual patients per trial patient, conditionally on
    that patient's covariates; the interval is a bootstrap of ``n_resamples`` over the real
    patients that refits the generator each time."""

    generator: Name = "copula"
    n_per_patient: Annotated[int, Field(ge=1, le=100)] = 5
    n_resamples: Annotated[int, Field(ge=2, le=100_000)] = 100


class ExternalControl(Model):
    """A single-arm trial compared with an external control arm.

    File paths are relative to the protocol file; CSV or Parquet. Column names are the
    trial file's (the external source's after ``harmonisation.rename``). A covariate is
    categorical when its values in the trial file are text, or when it is listed in
    ``categorical_covariates`` (categories coded by numbers); otherwise it is a number.
    ``max_unsupported`` is the largest share of trial patients allowed outside the range
    of the external patients' propensity scores; ``min_effective_sample_size`` the
    smallest Kish effective sample size of the external patients' weights.
    """

    trial_data: FilePath
    external_data: FilePath
    id_column: Name | None = None
    eligibility: list[Expression] = Field(default_factory=list)
    time_zero: TimeZero = TimeZero()
    harmonisation: Harmonisation = Harmonisation()
    covariates: list[Name] = Field(min_length=1)
    categorical_covariates: list[Name] = Field(default_factory=list)
    adjustment: Adjustment
    endpoint: Outcome
    level: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.95
    max_unsupported: Probability = 0.1
    min_effective_sample_size: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 10
    bootstrap: BootstrapSettings = BootstrapSettings()
    sensitivity: Sensitivity = Sensitivity()
    synthetic_control: SyntheticControl | None = None

    @field_validator("covariates")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        twice = sorted({c for c in value if value.count(c) > 1})
        if twice:
            raise ValueError(f"covariate {', '.join(map(repr, twice))} is given twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExternalControl:
        outcome = self.outcome_columns
        both = [c for c in self.covariates if c in outcome]
        if both:
            raise ValueError(
                f"{', '.join(map(repr, both))} is an endpoint column and cannot be a covariate"
            )
        unknown = [c for c in self.categorical_covariates if c not in self.covariates]
        if unknown:
            raise ValueError(
                f"categorical_covariates {', '.join(map(repr, unknown))} are not covariates"
            )
        if self.synthetic_control is not None and self.endpoint.type != "time_to_event":
            raise ValueError("a synthetic control arm needs a time-to-event endpoint")
        return self

    @property
    def outcome_columns(self) -> list[str]:
        if isinstance(self.endpoint, TimeToEventOutcome):
            return [self.endpoint.time, self.endpoint.event]
        return [self.endpoint.outcome]
