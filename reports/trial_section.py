"""The report section of the example trial: one simulated trial analysed as in a clinical
study report (disposition, Kaplan–Meier plots with numbers at risk, Cox and log-rank
tables, rates or means, a subgroup forest plot) and its analysis datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import describe
from reports.document import Bullets, Figure, Paragraph, Section, Table, num, p_value
from reports.example_trial import ExampleTrial
from reports.figures import (
    new_axes,
    plot_at_risk,
    plot_forest,
    plot_km,
    plot_rates_by_arm,
    plot_values_by_arm,
    png_data_uri,
)
from reports.palette import protocol_arm_styles
from reports.run_data import RunData


def example_trial_section(
    run: RunData, trial: ExampleTrial | None, datasets: list[dict], problem: str | None
) -> Section:
    section = Section("example-trial", "One simulated trial, analysed as in a study report")
    if trial is None:
        section.add(
            Paragraph(f"The example trial could not be simulated: {problem}", css="omitted")
        )
        return section
    protocol = trial.protocol
    styles = protocol_arm_styles(protocol)
    device = run.manifest.get("device")
    if device is None:
        origin = (
            f"Trial {trial.replicate} of the {trial.scenario} scenario, drawn again from the "
            f"run's seed {trial.seed} (the same random stream as in the simulation)."
        )
    else:
        origin = (
            f"A trial of the {trial.scenario} scenario drawn by the CPU (numpy) engine from the "
            f"run's seed {trial.seed}: the run itself was simulated by the torch engine "
            f"(--device {device}), whose random streams differ, so this trial illustrates the "
            "design and is not one of the run's trials."
        )
    section.add(
        Paragraph(
            f"{origin} Data cut-off at "
            f"month {trial.analysis_time:.2f} after the first randomization. Calendar dates are "
            "not simulated; times are months from randomization."
            + (
                " Design of the grid's first point "
                f"({run.manifest['simulations'][0]['grid_point']})."
                if run.is_grid
                else ""
            )
        )
    )
    if device is None:
        section.add(_recorded(run, trial))
    section.child("disposition", "Patients").add(_disposition(trial))
    for endpoint in describe.endpoints(protocol):
        child = section.child(
            f"trial-{endpoint.name}",
            f"Endpoint {endpoint.name} "
            f"({'primary' if endpoint is protocol.endpoints.primary else 'secondary'})",
        )
        child.add(Paragraph(f"Variable: {endpoint.estimand.variable or endpoint.name}."))
        analyses = [a for a in trial.analyses if a.endpoint == endpoint.name]
        if endpoint.type == "time_to_event":
            km = next(k for k in trial.kaplan_meier if k.endpoint == endpoint.name)
            child.add(_km_figure(protocol, km, styles))
            child.add(_median_table(protocol, analyses), _cox_table(protocol, analyses))
        else:
            child.add(*_difference_blocks(protocol, trial, endpoint, analyses, styles))
    forest = section.child("subgroups", "Subgroup analysis of the primary endpoint")
    primary = protocol.endpoints.primary
    for arm, rows in trial.subgroups.items():
        forest.add(*_forest_blocks(protocol, primary, arm, rows))
    if trial.notes:
        forest.add(
            Paragraph("Notes from the analyses (warnings of the fitting routines):"),
            Bullets(trial.notes),
        )
    data = section.child("datasets", "Analysis datasets")
    data.add(
        Paragraph(
            "ADaM-style datasets of this trial (CDISC variable names), as SAS transport v5 (XPT) "
            "and CSV files, with define-like metadata (define.json, define.csv; Appendix B). No "
            "dates are simulated: timing variables are integer study days (day 1 = the start of "
            "the study; a month is 30.4375 days) in --DY variables in place of --DT dates."
        )
    )
    data.add(
        Table(
            "Dataset files",
            ["Dataset", "Format", "File", "SHA-256"],
            [[f["dataset"], f["format"], f["file"], f["sha256"]] for f in datasets],
            css="hashes",
        )
    )
    return section


def _recorded(run: RunData, trial: ExampleTrial) -> Paragraph:
    """What the simulation itself recorded for this trial (the pre-specified test)."""
    data = run.first_point(run.replicates)
    primary = run.summary["primary_endpoint"]
    rows = data[
        (data["scenario"] == trial.scenario)
        & (data["replicate"] == trial.replicate)
        & (data["endpoint"] == primary)
    ]
    parts = []
    for row in rows.itertuples():
        if row.arm == "any":
            continue
        text = (
            f"{row.arm}: estimate {num(row.estimate, 3)} (95% CI {num(row.ci_lower, 3)} to "
            f"{num(row.ci_upper, 3)}; {describe.SCALES.get(row.scale, row.scale)}), "
            f"p = {p_value(row.p_value)}, "
            f"{'rejected' if row.reject else 'not rejected'}"
        )
        if run.protocol.analysis.group_sequential is not None:
            text += f", stopped at look {row.stop_look} ({row.stop_reason})"
        parts.append(text)
    test = describe.analysis(run.protocol.analysis.primary)
    return Paragraph(
        f"In the simulation this trial was analysed by the pre-specified {test}: "
        + "; ".join(parts)
        + ". The analyses below are the study-report presentation "
        "(Kaplan–Meier, unstratified Cox model and log-rank test, or rates / means) and may "
        "differ from the pre-specified test (stratification, covariates, weights, interim looks)."
    )


def _disposition(trial: ExampleTrial) -> Table:
    table = trial.table
    protocol = trial.protocol
    enrolled = table["enrollment_time"] <= trial.analysis_time
    rows = []
    for arm in protocol.arms:
        mask = table["arm"] == arm.name
        row = [describe.arm_label(protocol, arm.name), str(int((mask & enrolled).sum()))]
        for endpoint in describe.endpoints(protocol):
            analysed = table[f"{endpoint.name}_analysed"] & mask
            text = str(int(analysed.sum()))
            if endpoint.type == "time_to_event":
                text += f" ({int((table[f'{endpoint.name}_event'] & mask).sum())} events)"
            row.append(text)
        rows.append(row)
    columns = ["Arm", "Randomized by the cut-off"] + [
        f"Analysed: {e.name}" for e in describe.endpoints(protocol)
    ]
    return Table(
        "Patient disposition",
        columns,
        rows,
        note="Patients enrolled after the data cut-off are not in the datasets.",
    )


def _km_figure(protocol, km, styles) -> Figure:
    fig, (ax, risk) = new_axes(
        6.5, 4.2, nrows=2, gridspec_kw={"height_ratios": [4, 1]}, sharex=True
    )
    plot_km(km.curves, styles, ax=ax, xlabel="")
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Time from randomization (months)")
    labels = {c["style"]: c["label"] for c in km.curves}
    plot_at_risk(km.at_risk_times, km.at_risk, styles, labels, ax=risk)
    risk.set_xlim(ax.get_xlim())
    return Figure(
        png_data_uri(fig),
        f"Kaplan-Meier plot of {km.endpoint} by arm",
        f"Kaplan–Meier estimates of {km.endpoint} by arm with 95% pointwise confidence bands "
        "and censoring marks; numbers at risk below.",
    )


def _median_table(protocol, analyses) -> Table:
    rows, seen = [], set()
    for analysis in analyses:
        for arm in analysis.report.arms.itertuples():
            if arm.arm in seen:
                continue
            seen.add(arm.arm)
            rows.append(
                [
                    describe.arm_label(protocol, arm.arm),
                    str(arm.n),
                    str(arm.events),
                    num(arm.median, 2),
                    f"{num(arm.median_ci_lower, 2)} to {num(arm.median_ci_upper, 2)}",
                ]
            )
    return Table(
        "Kaplan–Meier median time to event (months)",
        ["Arm", "Patients", "Events", "Median", "95% CI"],
        rows,
        note="An en dash: not reached. CI: Brookmeyer–Crowley (lifelines).",
    )


def _cox_table(protocol, analyses) -> Table:
    rows = []
    for a in analyses:
        r = a.report
        rows.append(
            [
                f"{describe.arm_label(protocol, a.arm)} vs {protocol.control_arm.name}",
                num(r.hazard_ratio, 3),
                f"{num(r.hr_ci_lower, 3)} to {num(r.hr_ci_upper, 3)}",
                num(r.logrank_chi2, 3),
                p_value(r.logrank_p_value),
            ]
        )
    return Table(
        "Cox proportional-hazards model and log-rank test",
        ["Comparison", "Hazard ratio", "95% CI (Wald)", "Log-rank chi-square", "Two-sided p"],
        rows,
        note="Unstratified Cox model with treatment as the only covariate (lifelines).",
    )


def _difference_blocks(protocol, trial, endpoint, analyses, styles) -> list:
    name = endpoint.name
    table = trial.table
    rows = table[table[f"{name}_analysed"]]
    arms = [protocol.control_arm.name, *(a.name for a in protocol.experimental_arms)]
    blocks = []
    summary_rows, diff_rows = [], []
    seen = set()
    for a in analyses:
        r = a.report
        for row in r.arms.to_dict("records"):
            if row["arm"] in seen:
                continue
            seen.add(row["arm"])
            if endpoint.type == "binary":
                summary_rows.append(
                    [
                        describe.arm_label(protocol, row["arm"]),
                        str(row["n"]),
                        str(row["responders"]),
                        num(row["rate"], 3),
                    ]
                )
            else:
                summary_rows.append(
                    [
                        describe.arm_label(protocol, row["arm"]),
                        str(row["n"]),
                        num(row["mean"], 3),
                        num(row["sd"], 3),
                    ]
                )
        diff_rows.append(
            [
                f"{describe.arm_label(protocol, a.arm)} vs {protocol.control_arm.name}",
                r.measure,
                num(r.difference, 4),
                f"{num(r.ci_lower, 4)} to {num(r.ci_upper, 4)}",
                p_value(r.p_value),
            ]
        )
    if endpoint.type == "binary":
        blocks.append(
            Table(
                f"Response ({name}) by arm", ["Arm", "Analysed", "Responders", "Rate"], summary_rows
            )
        )
        fig, ax = new_axes(5.0, 3.0)
        rates = {
            arm: float((rows.loc[rows["arm"] == arm, f"{name}_value"] > 0.5).mean())
            for arm in arms
            if (rows["arm"] == arm).any()
        }
        plot_rates_by_arm(rates, styles, ylabel=f"Proportion responding ({name})", ax=ax)
        caption = f"Observed proportion of responders ({name}) by arm."
        note = "Wald CI; pooled z-test (statsmodels)."
    else:
        blocks.append(Table(f"{name} by arm", ["Arm", "Analysed", "Mean", "SD"], summary_rows))
        fig, ax = new_axes(5.0, 3.0)
        values = {
            arm: rows.loc[rows["arm"] == arm, f"{name}_value"].to_numpy(float)
            for arm in arms
            if (rows["arm"] == arm).any()
        }
        plot_values_by_arm(values, styles, ylabel=f"{name} (protocol units)", ax=ax)
        caption = f"Observed {name} by arm (box: quartiles and median; whiskers: 1.5 IQR)."
        note = "Student's t (pooled variance), unadjusted."
    blocks.append(
        Table(
            f"Treatment effect on {name}",
            ["Comparison", "Measure", "Estimate", "95% CI", "Two-sided p"],
            diff_rows,
            note=note,
        )
    )
    blocks.append(Figure(png_data_uri(fig), f"Plot of {name} by arm", caption, wide=False))
    return blocks


def _forest_blocks(protocol, endpoint, arm, rows: pd.DataFrame) -> list:
    tte = endpoint.type == "time_to_event"
    measure = (
        "Hazard ratio"
        if tte
        else ("Difference in proportions" if endpoint.type == "binary" else "Difference in means")
    )
    shown = rows.copy()
    shown["label"] = [
        f"{r.label} (n={r.n}{f', {int(r.events)} ev' if tte and np.isfinite(r.events) else ''})"
        for r in rows.itertuples()
    ]
    fig, ax = new_axes(6.5, 0.32 * len(rows) + 1.4)
    colour = protocol_arm_styles(protocol)[arm].colour
    plot_forest(
        shown,
        null_value=1.0 if tte else 0.0,
        log_scale=tte,
        xlabel=f"{measure}, {arm} vs {protocol.control_arm.name} (95% CI)",
        colour=colour,
        ax=ax,
    )
    table_rows = [
        [
            r.label,
            str(r.n),
            "" if not tte else num(r.events, 0),
            num(r.estimate, 3),
            f"{num(r.lower, 3)} to {num(r.upper, 3)}",
            r.note,
        ]
        for r in rows.itertuples()
    ]
    return [
        Figure(
            png_data_uri(fig),
            f"Forest plot of subgroups, {arm}",
            f"{measure} of the primary endpoint ({endpoint.name}), {arm} versus control, "
            "overall and by subgroup (exploratory; no multiplicity adjustment).",
        ),
        Table(
            f"Subgroup estimates, {arm} versus control",
            ["Subgroup", "Patients", "Events", measure, "95% CI", "Note"],
            table_rows,
        ),
    ]
