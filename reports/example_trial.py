"""One simulated trial of a run, analysed as a clinical study report would present it.

The trial is replicate ``replicate`` of the run's design scenario, drawn again from the
run's seed by :func:`trials.engine.patient_table` (the same random stream as in the run),
and analysed by the library's single-trial analyses (:func:`trials.single.analyse_trial`,
:mod:`analysis.single_trial`): Kaplan–Meier medians, the Cox hazard ratio and the log-rank
test, or rates / means and their difference. Subgroup estimates are the same analyses on
the patients of each subgroup. The Kaplan–Meier curves drawn are lifelines' estimates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.single_trial import means_report, proportions_report, survival_report
from trials.engine import patient_table
from trials.protocol import BinaryEndpoint, Protocol, TimeToEventEndpoint
from trials.single import analyse_trial

#: Fewest patients per arm, and events per arm (time to event), to estimate in a subgroup.
MIN_PATIENTS, MIN_EVENTS = 5, 2


@dataclass(frozen=True)
class EndpointAnalysis:
    """The analysis of one endpoint, one experimental arm against control."""

    endpoint: str
    kind: str  # time_to_event, binary, continuous
    arm: str
    report: object  # SurvivalReport or DifferenceReport


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan–Meier curves of one time-to-event endpoint, by arm, and numbers at risk."""

    endpoint: str
    curves: list[dict]
    at_risk_times: list[float]
    at_risk: dict[str, list[int]]


@dataclass(frozen=True)
class ExampleTrial:
    """One simulated trial and its analyses."""

    protocol: Protocol
    table: pd.DataFrame
    replicate: int
    scenario: str
    seed: int
    analysis_time: float
    analyses: list[EndpointAnalysis]
    kaplan_meier: list[KaplanMeier]
    subgroups: dict[str, pd.DataFrame]  # experimental arm -> forest rows
    notes: list[str] = field(default_factory=list)

    @property
    def n_randomized(self) -> int:
        return int((self.table["enrollment_time"] <= self.analysis_time).sum())


def simulate_example(
    protocol: Protocol, *, seed: int, replicate: int = 0, scenario: str = "design"
) -> ExampleTrial:
    """Simulate and analyse one trial of ``protocol`` (replicate ``replicate`` of the run
    with seed ``seed``)."""
    table = patient_table(protocol, replicate=replicate, scenario=scenario, seed=seed)
    cutoff = float(table.attrs["analysis_time"])
    notes: list[str] = []
    analyses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for endpoint, arm, report in analyse_trial(protocol, table):
            kind = _endpoint(protocol, endpoint).type
            analyses.append(EndpointAnalysis(endpoint, kind, arm, report))
    notes += [f"analysis: {w.message}" for w in caught]
    kaplan_meier = [
        _kaplan_meier(protocol, table, endpoint.name)
        for endpoint in [protocol.endpoints.primary, *protocol.endpoints.secondary]
        if isinstance(endpoint, TimeToEventEndpoint)
    ]
    subgroups = {
        arm.name: subgroup_analyses(protocol, table, arm.name, notes)
        for arm in protocol.experimental_arms
    }
    return ExampleTrial(
        protocol,
        table,
        replicate,
        scenario,
        seed,
        cutoff,
        analyses,
        kaplan_meier,
        subgroups,
        notes,
    )


def _endpoint(protocol: Protocol, name: str):
    return next(
        e for e in [protocol.endpoints.primary, *protocol.endpoints.secondary] if e.name == name
    )


def _kaplan_meier(protocol: Protocol, table: pd.DataFrame, name: str) -> KaplanMeier:
    from lifelines import KaplanMeierFitter
    from matplotlib.ticker import MaxNLocator

    rows = table[table[f"{name}_analysed"]]
    time = rows[f"{name}_time"].to_numpy(float)
    event = rows[f"{name}_event"].to_numpy(bool)
    arm = rows["arm"].to_numpy()
    curves = []
    arms = [protocol.control_arm.name, *(a.name for a in protocol.experimental_arms)]
    for name_ in arms:
        mask = arm == name_
        if not mask.any():
            continue
        km = KaplanMeierFitter().fit(time[mask], event[mask], label=name_)
        sf = km.survival_function_[name_]
        ci = km.confidence_interval_
        censored = np.sort(time[mask & ~event])
        curves.append(
            {
                "label": _arm_label(protocol, name_),
                "style": name_,
                "time": sf.index.to_numpy(float),
                "survival": sf.to_numpy(float),
                "lower": ci.iloc[:, 0].to_numpy(float),
                "upper": ci.iloc[:, 1].to_numpy(float),
                "censored_time": censored,
                "censored_survival": km.predict(censored).to_numpy(float)
                if censored.size
                else censored,
            }
        )
    horizon = float(time.max()) if time.size else 1.0
    ticks = [t for t in MaxNLocator(nbins=7).tick_values(0, horizon) if 0 <= t <= horizon]
    at_risk = {
        name_: [int(((arm == name_) & (time >= t)).sum()) for t in ticks]
        for name_ in arms
        if (arm == name_).any()
    }
    return KaplanMeier(name, curves, [float(t) for t in ticks], at_risk)


def _arm_label(protocol: Protocol, name: str) -> str:
    arm = next(a for a in protocol.arms if a.name == name)
    return arm.label or name


# ------------------------------------------------------------------ subgroups


def subgroup_definitions(
    protocol: Protocol, table: pd.DataFrame
) -> list[tuple[str, str, pd.Series]]:
    """``(factor, level label, mask)`` of each subgroup: every level of a categorical or
    binary covariate, the halves of a continuous covariate at its median, and the first
    and second half of the patients by order of randomization."""
    from reports.adam import _covariate_columns

    out = []
    for name in _covariate_columns(protocol, table):
        column = table[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            column
        ):
            for level in pd.unique(column.dropna().astype(str)):
                out.append((name, f"{name} = {level}", column.astype(str) == level))
        elif set(pd.unique(column.dropna())) <= {0, 1}:
            for level in (0, 1):
                out.append((name, f"{name} = {level}", column == level))
        else:
            median = float(column.median())
            out.append((name, f"{name} < {median:.3g}", column < median))
            out.append((name, f"{name} \u2265 {median:.3g}", column >= median))
    order = table["patient"].rank()
    half = len(table) / 2
    out.append(("enrolment", "randomized in the first half", order <= half))
    out.append(("enrolment", "randomized in the second half", order > half))
    return out


def subgroup_analyses(
    protocol: Protocol, table: pd.DataFrame, arm: str, notes: list[str]
) -> pd.DataFrame:
    """The primary endpoint's effect (experimental ``arm`` against control) overall and in
    every subgroup: ``factor``, ``label``, ``n``, ``events`` (time to event),
    ``estimate``, ``lower``, ``upper`` (95% CI) and ``note`` (why it is not estimated)."""
    endpoint = protocol.endpoints.primary
    name = endpoint.name
    control = protocol.control_arm.name
    base = table[table[f"{name}_analysed"] & table["arm"].isin([control, arm])]
    rows = [_subgroup_row(endpoint, base, control, arm, "all", "All patients", notes)]
    for factor, label, mask in subgroup_definitions(protocol, table):
        rows.append(
            _subgroup_row(endpoint, base[mask.loc[base.index]], control, arm, factor, label, notes)
        )
    return pd.DataFrame(rows)


def _subgroup_row(endpoint, rows, control, arm, factor, label, notes) -> dict:
    name = endpoint.name
    per_arm = rows["arm"].value_counts()
    out = {
        "factor": factor,
        "label": label,
        "n": int(len(rows)),
        "events": np.nan,
        "estimate": np.nan,
        "lower": np.nan,
        "upper": np.nan,
        "note": "",
    }
    is_tte = isinstance(endpoint, TimeToEventEndpoint)
    if is_tte:
        events = rows.groupby("arm", observed=True)[f"{name}_event"].sum()
        out["events"] = int(events.sum())
        if min(events.get(control, 0), events.get(arm, 0)) < MIN_EVENTS:
            out["note"] = f"fewer than {MIN_EVENTS} events in an arm"
            return out
    if min(per_arm.get(control, 0), per_arm.get(arm, 0)) < MIN_PATIENTS:
        out["note"] = f"fewer than {MIN_PATIENTS} patients in an arm"
        return out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if is_tte:
                report = survival_report(
                    rows[f"{name}_time"], rows[f"{name}_event"], rows["arm"], control, arm
                )
                estimate = (report.hazard_ratio, report.hr_ci_lower, report.hr_ci_upper)
            elif isinstance(endpoint, BinaryEndpoint):
                report = proportions_report(rows[f"{name}_value"] > 0.5, rows["arm"], control, arm)
                estimate = (report.difference, report.ci_lower, report.ci_upper)
            else:
                report = means_report(rows[f"{name}_value"], rows["arm"], control, arm)
                estimate = (report.difference, report.ci_lower, report.ci_upper)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
            out["note"] = f"not estimable ({type(exc).__name__})"
            notes.append(f"subgroup {label}: {exc}")
            return out
    for w in caught:
        notes.append(f"subgroup {label}: {w.message}")
    if not all(math.isfinite(v) for v in estimate):
        out["note"] = "not estimable"
        return out
    out["estimate"], out["lower"], out["upper"] = estimate
    if caught:
        out["note"] = "the fit warned (see the notes)"
    return out
