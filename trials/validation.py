"""Semantic checks of a protocol: rules that involve several fields.

Each check returns ``(location, message)`` pairs; the loader maps each location to the
line of the protocol file and reports every problem at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trials.exceptions import DataError, InsilicoError
from trials.protocol import (
    DISTRIBUTION_KEYS,
    BinaryCovariate,
    BinaryEndpoint,
    CategoricalCovariate,
    ContinuousEndpoint,
    EffectDistribution,
    Endpoint,
    EndpointAnalysis,
    EventsTiming,
    ExponentialControl,
    FollowUpTiming,
    MinimizationRandomization,
    PiecewiseExponentialControl,
    Protocol,
    SimpleRandomization,
    StratifiedBlockRandomization,
    TimeToEventEndpoint,
    WeibullControl,
    effect_distribution,
)

Loc = tuple[str | int, ...]

TESTS_FOR_MEASURE = {
    "hazard_ratio": {
        "logrank",
        "stratified_logrank",
        "cox",
        "weighted_logrank",
        "maxcombo",
        "average_hazard_ratio",
    },
    "rmst_difference": {"rmst"},
    "difference_in_proportions": {"difference_in_proportions"},
    "odds_ratio": {"cmh"},
    "difference_in_means": {"t_test", "ancova"},
}
MEASURES_FOR_TYPE = {
    "time_to_event": {"hazard_ratio", "rmst_difference"},
    "binary": {"difference_in_proportions", "odds_ratio"},
    "continuous": {"difference_in_means"},
}
DEFAULT_TEST = {
    "time_to_event": "logrank",
    "binary": "difference_in_proportions",
    "continuous": "t_test",
}


def check_protocol(protocol: Protocol, base: Path | None = None) -> list[tuple[Loc, str]]:
    """Every semantic problem of a protocol that parsed; ``base`` is the folder that
    relative model paths start from (the protocol file's)."""
    problems: list[tuple[Loc, str]] = []
    info = _CovariateInfo.of(protocol, base)
    problems.extend(info.problems)
    problems.extend(_arms(protocol))
    problems.extend(_covariates(protocol))
    for check in (_eligibility, _randomization, _endpoints, _analysis):
        problems.extend(check(protocol, info))
    problems.extend(_dropout(protocol))
    problems.extend(_effect_models(protocol, base))
    if not problems:  # boundaries only for an otherwise valid design
        problems.extend(_group_sequential_boundaries(protocol))
    if not problems and protocol.external_control is not None:
        from trials.external_data import check_external_control

        problems.extend(check_external_control(protocol, base))
    return problems


class _CovariateInfo:
    """Names, kinds and levels of the covariates (the protocol's or its generator's)."""

    def __init__(self, kinds: dict[str, str], levels: dict[str, list[str]], model=None):
        self.kinds, self.levels, self.model = kinds, levels, model
        self.problems: list[tuple[Loc, str]] = []

    @classmethod
    def of(cls, p: Protocol, base: Path | None) -> _CovariateInfo:
        spec = p.population.generator
        if spec is None:
            kinds = {
                c.name: "categorical"
                if isinstance(c, CategoricalCovariate)
                else "binary"
                if isinstance(c, BinaryCovariate)
                else "continuous"
                for c in p.population.covariates
            }
            levels = {
                c.name: list(c.categories)
                for c in p.population.covariates
                if isinstance(c, CategoricalCovariate)
            }
            return cls(kinds, levels)
        info = cls({}, {})
        if p.population.covariates or p.population.correlations:
            info.problems.append(
                (
                    ("population", "generator"),
                    "give the covariates ('covariates', 'correlations') or a 'generator', not both",
                )
            )
        path = Path(spec.model) if base is None else base / spec.model
        if not path.is_file():
            info.problems.append(
                (
                    ("population", "generator", "model"),
                    f"model file {spec.model!r} not found (paths are relative to the "
                    "protocol file)",
                )
            )
            return info
        from generators.population import GeneratorCovariates, _generator_covariates

        try:
            model = _generator_covariates(str(path.resolve()), tuple(spec.covariates))
        except (DataError, ValueError) as exc:
            info.problems.append((("population", "generator"), f"{spec.model}: {exc}"))
            return info
        assert isinstance(model, GeneratorCovariates)
        info.kinds = {name: model.kind(name) for name in model.names}
        info.levels = model.categorical_levels()
        info.model = model
        return info


def endpoint_analysis(protocol: Protocol, endpoint: Endpoint) -> EndpointAnalysis:
    """The analysis of an endpoint: the protocol's, or the default for its type."""
    if endpoint.name == protocol.endpoints.primary.name:
        return protocol.analysis.primary
    given = protocol.analysis.secondary.get(endpoint.name)
    return given or EndpointAnalysis(test=DEFAULT_TEST[endpoint.type])


def _arms(p: Protocol) -> Iterator[tuple[Loc, str]]:
    controls = [i for i, arm in enumerate(p.arms) if arm.control]
    if len(controls) != 1:
        yield ("arms",), f"exactly one arm must have 'control: true' (found {len(controls)})"
    seen: set[str] = set()
    for i, arm in enumerate(p.arms):
        if arm.name in seen:
            yield ("arms", i, "name"), f"arm name {arm.name!r} is used twice"
        seen.add(arm.name)


def _covariates(p: Protocol) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for i, cov in enumerate(p.population.covariates):
        if cov.name in seen:
            yield ("population", "covariates", i, "name"), f"covariate {cov.name!r} twice"
        seen.add(cov.name)
        if isinstance(cov, CategoricalCovariate):
            total = sum(cov.categories.values())
            if abs(total - 1.0) > 1e-6:
                yield (
                    ("population", "covariates", i, "categories"),
                    f"category probabilities must sum to 1 (they sum to {total:.6g})",
                )
    pairs: set[frozenset[str]] = set()
    for i, corr in enumerate(p.population.correlations):
        for name in corr.between:
            if name not in seen:
                yield (
                    ("population", "correlations", i, "between"),
                    f"unknown covariate {name!r} (covariates: {_list(seen)})",
                )
        if corr.between[0] == corr.between[1]:
            yield ("population", "correlations", i, "between"), "a covariate with itself"
        key = frozenset(corr.between)
        if key in pairs:
            yield ("population", "correlations", i), "this pair is given twice"
        pairs.add(key)
    duplicates = len(seen) != len(p.population.covariates)
    if (
        p.population.correlations
        and not duplicates
        and all(set(c.between) <= seen for c in p.population.correlations)
    ):
        from generators.parametric import ParametricCovariates

        try:
            ParametricCovariates(p.population.covariates, p.population.correlations)
        except ValueError as exc:
            yield ("population", "correlations"), str(exc)


def _eligibility(p: Protocol, info: _CovariateInfo) -> Iterator[tuple[Loc, str]]:
    names = [c.name for c in p.population.covariates]
    if not p.population.eligibility or len(set(names)) != len(names) or info.problems:
        return
    from generators.population import covariate_model
    from trials.expressions import parse_expression

    model = info.model
    if model is None:
        try:
            model = covariate_model(p.population)
        except (ValueError, KeyError):
            return
    parsed = []
    for i, text in enumerate(p.population.eligibility):
        try:
            parsed.append(parse_expression(text, model.numeric_names(), model.categorical_levels()))
        except ValueError as exc:
            yield ("population", "eligibility", i), str(exc)
    if len(parsed) != len(p.population.eligibility):
        return
    rng = np.random.default_rng(0)
    covariates = model.transform(rng.standard_normal((100_000, model.n_latent)))
    eligible = np.ones(100_000, dtype=bool)
    for i, expression in enumerate(parsed):
        try:
            ok = expression.evaluate(covariates)
        except ValueError as exc:
            yield ("population", "eligibility", i), str(exc)
            return
        if not ok.any():
            yield (
                ("population", "eligibility", i),
                "no simulated patient meets this criterion (0 of 100,000 screened)",
            )
            return
        eligible &= ok
    if not eligible.any():
        yield (
            ("population", "eligibility"),
            "no simulated patient meets all criteria together (0 of 100,000 screened)",
        )
    elif eligible.mean() < 1e-3:
        yield (
            ("population", "eligibility"),
            f"only {eligible.mean():.2e} of screened patients are eligible (at least 0.001)",
        )


def _factor_problems(info: _CovariateInfo, names, loc: Loc) -> Iterator[tuple[Loc, str]]:
    for j, name in enumerate(names):
        kind = info.kinds.get(name)
        if kind is None:
            yield (*loc, j), f"unknown covariate {name!r} (covariates: {_list(info.kinds)})"
        elif kind == "continuous":
            yield (*loc, j), f"{name!r} must be a binary or categorical covariate"


def _randomization(p: Protocol, info: _CovariateInfo) -> Iterator[tuple[Loc, str]]:
    scheme = p.randomization
    if isinstance(scheme, SimpleRandomization):
        return
    if isinstance(scheme, MinimizationRandomization):
        yield from _factor_problems(info, scheme.factors, ("randomization", "factors"))
        return
    allocations = [arm.allocation for arm in p.arms]
    if any(a != int(a) for a in allocations):
        yield (
            ("randomization", "method"),
            "permuted blocks need whole-number allocations (e.g. 2 and 1, not 0.67 and 0.33)",
        )
        return
    total = int(sum(allocations))
    for j, size in enumerate(scheme.block_sizes):
        if size % total:
            yield (
                ("randomization", "block_sizes", j),
                f"block size {size} is not a multiple of the allocation total {total}",
            )
        elif size > 12:
            yield (("randomization", "block_sizes", j), "block sizes of at most 12 are supported")
    if isinstance(scheme, StratifiedBlockRandomization):
        yield from _factor_problems(info, scheme.strata, ("randomization", "strata"))


def _dropout(p: Protocol) -> Iterator[tuple[Loc, str]]:
    arms = {arm.name for arm in p.arms}
    models = [(("dropout", "all"), p.dropout.all)]
    for name, model in p.dropout.by_arm.items():
        if name not in arms:
            yield ("dropout", "by_arm", name), f"unknown arm {name!r} (arms: {_list(arms)})"
        models.append((("dropout", "by_arm", name), model))
    for loc, model in models:
        if (model.annual_rate is None) == (model.piecewise is None):
            yield loc, "give either 'annual_rate' or 'piecewise'"
        elif model.piecewise:
            yield from _pieces(model.piecewise, (*loc, "piecewise"))


def _pieces(pieces, loc: Loc) -> Iterator[tuple[Loc, str]]:
    last = 0.0
    for j, piece in enumerate(pieces):
        if j < len(pieces) - 1:
            if piece.until is None:
                yield (*loc, j, "until"), "every piece but the last needs 'until'"
            elif piece.until <= last:
                yield (*loc, j, "until"), "'until' must increase from piece to piece"
            else:
                last = piece.until
        elif piece.until is not None:
            yield (*loc, j, "until"), "the last piece lasts for ever: leave out 'until'"


def _endpoints(p: Protocol, info: _CovariateInfo) -> Iterator[tuple[Loc, str]]:
    endpoints = [(("endpoints", "primary"), p.endpoints.primary)]
    endpoints += [(("endpoints", "secondary", i), e) for i, e in enumerate(p.endpoints.secondary)]
    names: set[str] = set()
    for loc, endpoint in endpoints:
        if endpoint.name in names:
            yield (*loc, "name"), f"endpoint name {endpoint.name!r} is used twice"
        names.add(endpoint.name)
        yield from _endpoint(p, info, endpoint, loc)


def _arm_mapping(p: Protocol, value, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if not isinstance(value, dict):
        return
    experimental = {arm.name for arm in p.experimental_arms}
    for name in value:
        if name not in experimental:
            yield (
                (*loc, name),
                (f"{name!r} is not an experimental arm (experimental arms: {_list(experimental)})"),
            )
    for name in experimental - set(value):
        yield loc, f"no value for arm {name!r}"


def _endpoint(
    p: Protocol, info: _CovariateInfo, endpoint: Endpoint, loc: Loc
) -> Iterator[tuple[Loc, str]]:
    measure = endpoint.estimand.summary_measure
    if measure not in MEASURES_FOR_TYPE[endpoint.type]:
        allowed = " or ".join(sorted(MEASURES_FOR_TYPE[endpoint.type]))
        yield (
            (*loc, "estimand", "summary_measure"),
            (f"{measure!r} does not summarise a {endpoint.type} endpoint (use {allowed})"),
        )
    for name, effect in endpoint.covariate_effects.items():
        kind = info.kinds.get(name)
        where = (*loc, "covariate_effects", name)
        if kind is None:
            yield where, f"unknown covariate {name!r} (covariates: {_list(info.kinds)})"
        elif kind == "categorical":
            if not isinstance(effect, dict):
                yield (
                    where,
                    (
                        f"categorical covariate {name!r} takes one effect per level "
                        f"(levels: {_list(info.levels[name])})"
                    ),
                )
            else:
                for level in effect:
                    if level not in info.levels[name]:
                        yield (
                            (*where, level),
                            (
                                f"{level!r} is not a level of {name!r} "
                                f"(levels: {_list(info.levels[name])})"
                            ),
                        )
        elif isinstance(effect, dict):
            yield where, f"numeric covariate {name!r} takes a single effect (a number)"
    for k, ice in enumerate(endpoint.estimand.intercurrent_events):
        where = (*loc, "estimand", "intercurrent_events", k)
        if isinstance(ice.annual_rate, dict):
            arms = {arm.name for arm in p.arms}
            for name in ice.annual_rate:
                if name not in arms:
                    yield (*where, "annual_rate", name), f"unknown arm {name!r}"
            for name in arms - set(ice.annual_rate):
                yield (*where, "annual_rate"), f"no rate for arm {name!r}"
        if ice.strategy == "composite" and isinstance(endpoint, ContinuousEndpoint):
            yield (
                (*where, "strategy"),
                ("a composite strategy needs a binary or time-to-event variable"),
            )
    if isinstance(endpoint, TimeToEventEndpoint):
        effect, where = endpoint.effect, (*loc, "effect")
        given = [
            effect.hazard_ratio is not None,
            effect.piecewise_hazard_ratio is not None,
            effect.log_hazard_ratio_distribution is not None,
        ]
        if sum(given) != 1:
            yield (
                where,
                (
                    "give one of 'hazard_ratio', 'piecewise_hazard_ratio' or "
                    "'log_hazard_ratio_distribution'"
                ),
            )
        yield from _arm_mapping(p, effect.hazard_ratio, (*where, "hazard_ratio"))
        yield from _arm_mapping(p, effect.cure_fraction, (*where, "cure_fraction"))
        piecewise = effect.piecewise_hazard_ratio
        if piecewise is not None:
            yield from _arm_mapping(p, piecewise, (*where, "piecewise_hazard_ratio"))
            items = piecewise.items() if isinstance(piecewise, dict) else [(None, piecewise)]
            for name, spec in items:
                at = (*where, "piecewise_hazard_ratio") + ((name,) if name else ())
                if len(spec.hazard_ratios) != len(spec.breaks) + 1:
                    yield (
                        (*at, "hazard_ratios"),
                        (
                            f"{len(spec.breaks)} breaks need {len(spec.breaks) + 1} hazard ratios "
                            f"(got {len(spec.hazard_ratios)})"
                        ),
                    )
                if any(b <= a for a, b in zip(spec.breaks, spec.breaks[1:], strict=False)):
                    yield (*at, "breaks"), "breaks must increase"
        control = endpoint.control
        where = (*loc, "control")
        if isinstance(control, ExponentialControl):
            if (control.median is None) == (control.hazard is None):
                yield where, "give either 'median' or 'hazard'"
        elif isinstance(control, WeibullControl):
            if (control.median is None) == (control.scale is None):
                yield where, "give either 'median' or 'scale'"
        elif isinstance(control, PiecewiseExponentialControl):
            if len(control.hazards) != len(control.breaks) + 1:
                yield (
                    (*where, "hazards"),
                    (
                        f"{len(control.breaks)} breaks need {len(control.breaks) + 1} hazards "
                        f"(got {len(control.hazards)})"
                    ),
                )
            if any(b <= a for a, b in zip(control.breaks, control.breaks[1:], strict=False)):
                yield (*where, "breaks"), "breaks must increase"
    elif isinstance(endpoint, BinaryEndpoint):
        effect, where = endpoint.effect, (*loc, "effect")
        given = [
            effect.odds_ratio is not None,
            effect.risk_difference is not None,
            effect.log_odds_ratio_distribution is not None,
        ]
        if sum(given) != 1:
            yield (
                where,
                "give one of 'odds_ratio', 'risk_difference' or 'log_odds_ratio_distribution'",
            )
        elif effect.odds_ratio is not None:
            yield from _arm_mapping(p, effect.odds_ratio, (*where, "odds_ratio"))
        elif effect.risk_difference is not None:
            yield from _arm_mapping(p, effect.risk_difference, (*where, "risk_difference"))
            values = effect.risk_difference
            values = values.values() if isinstance(values, dict) else [values]
            for value in values:
                rate = endpoint.control.rate + value
                if not 0.0 < rate < 1.0:
                    yield (
                        (*where, "risk_difference"),
                        (
                            f"control rate {endpoint.control.rate} plus risk difference {value} "
                            f"is {rate:.4g}, not a probability in (0, 1)"
                        ),
                    )
            if endpoint.covariate_effects:
                yield (
                    (*loc, "covariate_effects"),
                    ("covariate effects act on the logit: give the effect as 'odds_ratio'"),
                )
    else:
        effect, where = endpoint.effect, (*loc, "effect")
        if (effect.mean_difference is None) == (effect.mean_difference_distribution is None):
            yield where, "give either 'mean_difference' or 'mean_difference_distribution'"
        yield from _arm_mapping(p, effect.mean_difference, (*where, "mean_difference"))
    spread = effect_distribution(endpoint)
    if spread is not None:
        yield from _effect_distribution(spread, (*loc, "effect", DISTRIBUTION_KEYS[endpoint.type]))


def _effect_distribution(spread: EffectDistribution, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """A normal (``mean`` and ``sd``) or a model file; the model file is checked (exists,
    effect on the endpoint's scale) by :func:`_effect_models`."""
    normal = spread.mean is not None and spread.sd is not None
    if normal == (spread.model is not None) or (
        spread.model is None and (spread.mean is None) != (spread.sd is None)
    ):
        yield loc, "give 'mean' and 'sd', or 'model' (a fitted Bayesian model file)"


def _effect_models(p: Protocol, base: Path | None) -> Iterator[tuple[Loc, str]]:
    """Every effect-distribution model file exists and is a Bayesian model whose treatment
    effect is on the endpoint's scale (a log hazard ratio for a time-to-event endpoint, a
    log odds ratio for a binary one, a mean difference for a continuous one)."""
    endpoints = [(("endpoints", "primary"), p.endpoints.primary)]
    endpoints += [(("endpoints", "secondary", i), e) for i, e in enumerate(p.endpoints.secondary)]
    for loc, endpoint in endpoints:
        spread = effect_distribution(endpoint)
        if spread is None or spread.model is None:
            continue
        where = (*loc, "effect", DISTRIBUTION_KEYS[endpoint.type], "model")
        path = Path(spread.model) if base is None else base / spread.model
        if not path.is_file():
            yield (
                where,
                f"model file {spread.model!r} not found (paths are relative to the protocol file)",
            )
            continue
        import generators  # noqa: F401  (registers the generators)
        from generators.base import load
        from trials.engine import effect_model_problem

        try:
            problem = effect_model_problem(load(path.resolve()), spread.scale)
        except (InsilicoError, OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"cannot be read ({exc})"
        if problem is not None:
            yield where, f"model file {spread.model!r}: {problem}"


def _analysis(p: Protocol, info: _CovariateInfo) -> Iterator[tuple[Loc, str]]:
    analysis = p.analysis
    primary = p.endpoints.primary
    yield from _endpoint_analysis(p, info, primary, analysis.primary, ("analysis", "primary"))
    secondary = {e.name: e for e in p.endpoints.secondary}
    for name, spec in analysis.secondary.items():
        if name not in secondary:
            yield (
                ("analysis", "secondary", name),
                (f"unknown secondary endpoint {name!r} (secondary endpoints: {_list(secondary)})"),
            )
        else:
            yield from _endpoint_analysis(
                p, info, secondary[name], spec, ("analysis", "secondary", name)
            )
    timing = analysis.timing
    n_patients = p.population.n_patients
    if isinstance(timing, EventsTiming):
        if not isinstance(primary, TimeToEventEndpoint):
            yield (
                ("analysis", "timing", "type"),
                ("an event-driven analysis needs a time-to-event primary endpoint"),
            )
        elif timing.target_events > n_patients:
            yield (
                ("analysis", "timing", "target_events"),
                (f"{timing.target_events} target events but only {n_patients} patients"),
            )
    if analysis.group_sequential is not None:
        yield from _group_sequential(p)
    for loc, endpoint in [(("endpoints", "primary"), primary)] + [
        (("endpoints", "secondary", i), e) for i, e in enumerate(p.endpoints.secondary)
    ]:
        if isinstance(timing, FollowUpTiming) and not isinstance(endpoint, TimeToEventEndpoint):
            if endpoint.assessment_month > timing.months:
                yield (
                    (*loc, "assessment_month"),
                    (
                        f"assessed at month {endpoint.assessment_month} but patients are followed "
                        f"for {timing.months} months only"
                    ),
                )


GROUP_SEQUENTIAL_TESTS = {"logrank", "stratified_logrank", "cox", "weighted_logrank"}


def _group_sequential(p: Protocol) -> Iterator[tuple[Loc, str]]:
    gs, loc = p.analysis.group_sequential, ("analysis", "group_sequential")
    timing = p.analysis.timing
    fractions = gs.information_fractions
    if any(b <= a for a, b in zip(fractions, fractions[1:], strict=False)):
        yield (*loc, "information_fractions"), "information fractions must increase"
    if fractions[-1] != 1.0:
        yield (
            (*loc, "information_fractions"),
            (
                "the last information fraction is the final analysis and must be 1 "
                f"(got {fractions[-1]})"
            ),
        )
    if not isinstance(timing, EventsTiming):
        yield (
            (*loc,),
            "interim analyses are planned at fractions of target events: use timing type 'events'",
        )
    else:
        for j, fraction in enumerate(fractions):
            if round(fraction * timing.target_events) < 1:
                yield (
                    (*loc, "information_fractions", j),
                    (f"a look at {fraction} of {timing.target_events} events has no events"),
                )
    if len(p.arms) > 2 and p.analysis.multiplicity not in ("bonferroni", "none"):
        yield (
            ("analysis", "multiplicity"),
            (
                "with interim looks and several arms, use 'bonferroni' (each arm's boundaries at "
                "alpha / k) or 'none'"
            ),
        )
    if p.analysis.primary.test not in GROUP_SEQUENTIAL_TESTS:
        yield (
            ("analysis", "primary", "test"),
            (f"interim analyses support the tests {_list(GROUP_SEQUENTIAL_TESTS)}"),
        )
    if gs.efficacy is None and gs.futility is None:
        yield (*loc,), "give an efficacy boundary, a futility boundary, or both"
    for kind, family, parameter in (
        ("efficacy", gs.efficacy, gs.efficacy_parameter),
        ("futility", gs.futility, gs.futility_parameter),
    ):
        if family is None:
            if parameter is not None:
                yield (*loc, f"{kind}_parameter"), f"no {kind} boundary takes this parameter"
            continue
        if family.endswith("KD"):
            if parameter is None or parameter <= 0:
                yield (*loc, f"{kind}_parameter"), f"{family} needs a parameter rho > 0"
        elif family.endswith("HSD"):
            if parameter is None:
                yield (*loc, f"{kind}_parameter"), f"{family} needs a parameter gamma"
        elif parameter is not None:
            yield (*loc, f"{kind}_parameter"), f"{family} takes no parameter"
    if p.analysis.sided == 2 and gs.futility is not None:
        yield (*loc, "futility"), "futility bounds are supported for one-sided designs"


def _group_sequential_boundaries(p: Protocol) -> Iterator[tuple[Loc, str]]:
    """Whether the boundaries can be computed (e.g. futility bounds not above efficacy)."""
    if p.analysis.group_sequential is None:
        return
    from trials.exceptions import DesignError
    from trials.sequential import design_of

    try:
        design_of(p)
    except DesignError as exc:
        yield ("analysis", "group_sequential"), str(exc)


def _endpoint_analysis(
    p: Protocol, info: _CovariateInfo, endpoint: Endpoint, spec: EndpointAnalysis, loc: Loc
) -> Iterator[tuple[Loc, str]]:
    measure = endpoint.estimand.summary_measure
    allowed = TESTS_FOR_MEASURE[measure]
    if spec.test not in allowed:
        yield (
            (*loc, "test"),
            (
                f"test {spec.test!r} does not estimate the {measure.replace('_', ' ')} of "
                f"endpoint {endpoint.name!r} (use {_list(allowed)})"
            ),
        )
    stratified = spec.test in ("stratified_logrank", "cmh")
    if stratified and not spec.strata:
        yield (*loc, "strata"), f"test {spec.test!r} needs 'strata'"
    if spec.strata and spec.test not in ("stratified_logrank", "cmh", "cox"):
        yield (*loc, "strata"), f"test {spec.test!r} takes no strata"
    yield from _factor_problems(info, spec.strata, (*loc, "strata"))
    if spec.covariates and spec.test != "ancova":
        yield (*loc, "covariates"), "only 'ancova' takes covariates"
    if (spec.rho is not None or spec.gamma is not None) and spec.test != "weighted_logrank":
        yield (*loc, "rho"), "only 'weighted_logrank' takes rho and gamma"
    horizon_tests = ("rmst", "average_hazard_ratio")
    if spec.test in horizon_tests and spec.tau is None:
        yield (*loc, "tau"), f"test {spec.test!r} needs 'tau', the time horizon in months"
    if spec.tau is not None and spec.test not in horizon_tests:
        yield (*loc, "tau"), "only 'rmst' and 'average_hazard_ratio' take tau"
    for j, name in enumerate(spec.covariates):
        if name not in info.kinds:
            yield (
                (*loc, "covariates", j),
                (f"unknown covariate {name!r} (covariates: {_list(info.kinds)})"),
            )


def _list(names) -> str:
    names = sorted(names)
    return ", ".join(repr(n) for n in names) if names else "none"


def load_protocol(path: str | os.PathLike) -> Protocol:
    """Load a protocol file and check it; raises ProtocolError with every problem."""
    from trials.loader import load_yaml_model

    base = Path(path).parent
    protocol = load_yaml_model(Path(path), Protocol, checks=(lambda p: check_protocol(p, base),))
    return _resolve_model_files(protocol, base)


def _resolve_model_files(protocol: Protocol, base: Path) -> Protocol:
    """Model files named in the protocol are relative to the protocol file (their
    existence was checked with the protocol)."""
    content = protocol.model_dump(mode="python", exclude_unset=True)
    endpoints = [content["endpoints"]["primary"], *content["endpoints"].get("secondary", [])]
    changed = False
    for endpoint in endpoints:
        spread = endpoint.get("effect", {}).get(DISTRIBUTION_KEYS[endpoint["type"]])
        if spread and spread.get("model"):
            spread["model"] = str((base / spread["model"]).resolve())
            changed = True
    generator = content["population"].get("generator")
    if generator:
        generator["model"] = str((base / generator["model"]).resolve())
        changed = True
    return Protocol.model_validate(content) if changed else protocol
