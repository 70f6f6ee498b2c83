"""The results sections: operating characteristics and power or assurance curves.

Every number shown is read from the run's ``summary.json`` or replicate table; the
stopping probabilities per look are the library's :func:`analysis.operating.rejection_rate`
of the stopping indicators (rate, Monte Carlo SE, exact CI), checked against the summary's
own rates. Analytic curves are the library's formulas (:mod:`analysis.assurance`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports import describe
from reports.document import (
    Bullets,
    Figure,
    Paragraph,
    Section,
    Table,
    mean_cell,
    num,
    rate_cell,
    with_mcse,
)
from reports.figures import (
    new_axes,
    plot_assurance,
    plot_estimates,
    plot_power_curve,
    plot_stopping,
    png_data_uri,
)
from reports.palette import protocol_arm_styles
from reports.run_data import RunData
from trials.design import conditional_effect_text
from trials.exceptions import InsilicoError
from trials.protocol import EventsTiming, TimeToEventEndpoint, effect_distribution


def scenario_quantity(run: RunData, scenario: str) -> str:
    if scenario == "design":
        return "assurance" if run.is_assurance else "power"
    if scenario == "null":
        return "type I error"
    for row in run.summary["primary"].get("conditional_power", []):
        if row["scenario"] == scenario:
            return f"conditional power at {conditional_effect_text(row)} ({row['effect']})"
    return f"rejection rate ({scenario})"


def _records(run: RunData) -> list[dict]:
    return list(run.summary["operating_characteristics"])


def rejection_table(run: RunData) -> Table:
    rows = []
    for r in _records(run):
        cell = {
            "rate": r["rejection_rate"],
            "mcse": r["rejection_mcse"],
            "ci_lower": r["rejection_ci_lower"],
            "ci_upper": r["rejection_ci_upper"],
        }
        primary = r["endpoint"] == run.summary["primary_endpoint"]
        rows.append(
            [
                r["scenario"],
                f"{r['endpoint']}{' (primary)' if primary else ''}",
                describe.arm_label(run.protocol, r["arm"]),
                scenario_quantity(run, r["scenario"]) if primary else "rejection rate",
                rate_cell(cell),
                f"{r.get('rejection_n_rejected', '')} / {r.get('rejection_n_replicates', '')}",
            ]
        )
    for row in run.summary["primary"].get("conditional_power", []):
        if any(r["scenario"] == row["scenario"] for r in _records(run)):
            continue
        for arm, cell in row["power"].items():
            rows.append(
                [
                    row["scenario"],
                    f"{run.summary['primary_endpoint']} (primary)",
                    describe.arm_label(run.protocol, arm),
                    scenario_quantity(run, row["scenario"]),
                    rate_cell(cell),
                    "",
                ]
            )
    sided = "one-sided" if run.summary.get("sided", 1) == 1 else "two-sided"
    return Table(
        "Rejection rates: power, type I error (and assurance / conditional power)",
        [
            "Scenario",
            "Endpoint",
            "Comparison",
            "Quantity",
            "Rate (MCSE) [exact 95% CI]",
            "Rejected / trials",
        ],
        rows,
        note=f"Nominal alpha {run.summary.get('alpha')} ({sided}); multiplicity adjustment "
        f"{run.protocol.analysis.multiplicity} across experimental arms. 'any arm': at least "
        "one comparison rejected (family-wise). Secondary endpoints are tested at the same "
        "alpha without a hierarchy unless the protocol says otherwise.",
    )


def analytic_paragraph(run: RunData) -> list:
    analytic = run.summary.get("analytic")
    if not analytic:
        return [
            Paragraph(
                "No closed-form reference applies to this design (the analytic "
                "reference covers event-driven two-arm log-rank designs without "
                "interim looks or covariate effects)."
            )
        ]
    key = "assurance" if run.is_assurance else "power"
    cells = run.summary["primary"].get(key, {})
    arm, cell = next(iter(cells.items()))
    z = (cell["rate"] - analytic["power"]) / cell["mcse"] if cell["mcse"] else math.nan
    blocks = [
        Paragraph(
            f"Analytic reference ({analytic['method']}) at {analytic['events']} events: {key} "
            f"{num(analytic['power'], 4)}. Simulated: {rate_cell(cell, 4)}; the difference is "
            f"{num(z, 2)} Monte Carlo standard errors. The analytic value assumes Schoenfeld's "
            "normal approximation, proportional hazards and exactly the target events; the "
            "simulation uses the protocol's test and its accrual, dropout and randomization."
        )
    ]
    if "events_for_assurance_80" in analytic:
        blocks.append(
            Paragraph(
                f"Events for 80% / 90% assurance (closed form): "
                f"{num(analytic.get('events_for_assurance_80'), 0)} / "
                f"{num(analytic.get('events_for_assurance_90'), 0)} (an en dash: not reachable "
                "— the assurance cannot exceed the probability that the hazard ratio is below 1)."
            )
        )
    return blocks


def size_table(run: RunData) -> Table | None:
    rows = []
    for r in _records(run):
        if r.get("n_analysed_mean") is None:
            continue
        n = r.get("rejection_n_replicates")
        events = "\u2013"
        if r.get("events_mean") is not None:
            events = (
                f"{mean_cell(r['events_mean'], r.get('events_sd'), n)} "
                f"[{num(r.get('events_q05'), 0)}, {num(r.get('events_q95'), 0)}]"
            )
        duration = (
            f"{mean_cell(r.get('analysis_time_mean'), r.get('analysis_time_sd'), n)} "
            f"[{num(r.get('analysis_time_q05'), 1)}, {num(r.get('analysis_time_q95'), 1)}]"
        )
        rows.append(
            [
                r["scenario"],
                r["endpoint"],
                describe.arm_label(run.protocol, r["arm"]),
                events,
                mean_cell(r.get("n_analysed_mean"), r.get("n_analysed_sd"), n),
                duration,
                _share(r.get("target_reached_rate"), n),
            ]
        )
    if not rows:
        return None
    return Table(
        "Expected events, patients analysed and duration",
        [
            "Scenario",
            "Endpoint",
            "Comparison",
            "Events: mean (MCSE) [5th, 95th pct]",
            "Patients analysed: mean (MCSE)",
            "Analysis time, months: mean (MCSE) [5th, 95th pct]",
            "Target reached (MCSE)",
        ],
        rows,
        note="Per comparison (control and that arm). MCSE of a mean = SD / sqrt(R) (Morris, "
        "White & Crowther 2019). 'Target reached': share of trials that reached the target "
        "events (event-driven designs; otherwise 1). Group-sequential designs: at the look "
        "where the trial stopped.",
    )


def model_se_mcse(run: RunData) -> dict[tuple, float]:
    """Monte Carlo SE of the mean model-based SE per (scenario, endpoint, arm): the SD of
    the per-trial standard errors over sqrt(R) (Morris, White & Crowther 2019)."""
    data = run.first_point(run.replicates)
    data = data[np.isfinite(data["se"].to_numpy(float))]
    out = {}
    for key, frame in data.groupby(["scenario", "endpoint", "arm"], sort=False):
        n = len(frame)
        out[key] = float(frame["se"].std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return out


def _share(rate, n) -> str:
    """A simulated share with its binomial Monte Carlo SE."""
    if rate is None or not n:
        return num(rate, 3)
    return with_mcse(rate, math.sqrt(rate * (1 - rate) / n), 3)


def estimation_table(run: RunData) -> Table | None:
    rows = []
    se_mcse = model_se_mcse(run)
    for r in _records(run):
        if r.get("scale") is None or r.get("estimate_mean") is None:
            continue
        ratio = r["scale"] in ("log_hazard_ratio", "log_odds_ratio")
        true, mean = r.get("estimate_true_value"), r.get("estimate_mean")
        shown_true = num(true, 4)
        if ratio and true is not None:
            shown_true += f" (ratio {math.exp(true):.3f})"
        rows.append(
            [
                r["scenario"],
                r["endpoint"],
                describe.arm_label(run.protocol, r["arm"]),
                describe.SCALES.get(r["scale"], r["scale"]),
                shown_true,
                with_mcse(mean, r.get("estimate_bias_mcse"), 4),
                with_mcse(r.get("estimate_bias"), r.get("estimate_bias_mcse"), 4, signed=True),
                with_mcse(r.get("estimate_empirical_se"), r.get("estimate_empirical_se_mcse"), 4),
                with_mcse(
                    r.get("estimate_model_se"),
                    se_mcse.get((r["scenario"], r["endpoint"], r["arm"])),
                    4,
                ),
                with_mcse(r.get("estimate_coverage"), r.get("estimate_coverage_mcse"), 3),
                str(r.get("estimate_n_not_estimable", 0)),
            ]
        )
    if not rows:
        return None
    return Table(
        "Estimation performance: bias, standard errors and coverage of the 95% CI",
        [
            "Scenario",
            "Endpoint",
            "Comparison",
            "Scale",
            "True value",
            "Mean estimate (MCSE)",
            "Bias (MCSE)",
            "Empirical SE (MCSE)",
            "Model SE: mean (MCSE)",
            "Coverage (MCSE)",
            "Not estimable",
        ],
        rows,
        note="Ratios on the log scale. The true value is the protocol's conditional effect; "
        "with covariate effects an unadjusted hazard or odds ratio estimates a marginal "
        "effect closer to 1 (non-collapsibility), which the bias then includes. An en dash: "
        "no single true value (e.g. non-proportional hazards).",
    )


def stopping(run: RunData) -> tuple[pd.DataFrame, list[str]]:
    """Stopping rates per look, reason and scenario of the primary endpoint (rate, MCSE,
    exact CI from :func:`analysis.operating.rejection_rate`), and the discrepancies with
    the summary's rates (none expected)."""
    from analysis.operating import rejection_rate

    gs = run.protocol.analysis.group_sequential
    data = run.replicates
    primary = run.summary["primary_endpoint"]
    data = run.first_point(data)
    data = data[(data["endpoint"] == primary) & data["scenario"].isin(["design", "null"])]
    oc = {(r["scenario"], r["arm"]): r for r in _records(run)}
    rows, problems = [], []
    for (scenario, arm), frame in data.groupby(["scenario", "arm"], sort=False):
        for look in range(1, len(gs.information_fractions) + 1):
            for reason in ("efficacy", "futility"):
                hit = ((frame["stop_look"] == look) & (frame["stop_reason"] == reason)).to_numpy()
                cell = rejection_rate(hit)
                rows.append(
                    {
                        "scenario": scenario,
                        "arm": arm,
                        "look": look,
                        "reason": reason,
                        "rate": cell["rate"],
                        "mcse": cell["mcse"],
                        "ci_lower": cell["ci_lower"],
                        "ci_upper": cell["ci_upper"],
                    }
                )
                recorded = oc.get((scenario, arm), {}).get(f"stop_look{look}_{reason}")
                if recorded is not None and abs(recorded - cell["rate"]) > 1e-12:
                    problems.append(
                        f"{scenario} {arm} look {look} {reason}: replicate table "
                        f"{cell['rate']:.4f}, summary {recorded:.4f}"
                    )
    return pd.DataFrame(rows), problems


def operating_characteristics(run: RunData) -> Section:
    section = Section("operating-characteristics", "Results: operating characteristics")
    r = run.summary["n_replicates"]
    section.add(
        Paragraph(
            f"Each number is estimated from {r:,} simulated trials per scenario and is shown with "
            "its Monte Carlo standard error (MCSE); proportions also with their exact "
            "(Clopper–Pearson) 95% confidence interval."
        )
    )
    if run.is_grid:
        section.add(
            Paragraph(
                "This run is a scenario grid: the tables below are for its first grid point "
                f"({_point_label(run.summary['grid'][0]['point'])}); every point is in the "
                "curves section."
            )
        )
    rejection = section.child("rejection", "Power and type I error")
    rejection.add(rejection_table(run), *analytic_paragraph(run))
    sizes = size_table(run)
    if sizes is not None:
        section.child("sizes", "Expected events, sample size and duration").add(sizes)
    if run.protocol.analysis.group_sequential is not None:
        looks = section.child("stopping", "Stopping probabilities per look")
        table, problems = stopping(run)
        looks.add(
            Paragraph("Group-sequential plan: " + describe.group_sequential(run.protocol) + ".")
        )
        rows = [
            [
                t.scenario,
                describe.arm_label(run.protocol, t.arm),
                str(t.look),
                t.reason,
                rate_cell(t._asdict()),
            ]
            for t in table.itertuples()
        ]
        looks.add(
            Table(
                "Probability of stopping at each look (primary endpoint)",
                ["Scenario", "Comparison", "Look", "Reason", "Rate (MCSE) [exact 95% CI]"],
                rows,
                note="At the last look 'efficacy' is rejection at the final analysis. "
                "Computed from the replicate table and equal to the summary's rates.",
            )
        )
        if problems:
            looks.add(Bullets([f"Mismatch: {p}" for p in problems]))
        with_figure = table[table["arm"] == table["arm"].iloc[0]] if len(table) else table
        if len(with_figure):
            fig, ax = new_axes(6.5, 3.2)
            plot_stopping(with_figure, ax=ax)
            looks.add(
                Figure(
                    png_data_uri(fig),
                    "Bar chart of stopping probabilities per look",
                    "Probability of stopping at each look for efficacy and futility, "
                    "under the design and null scenarios (hatched: null).",
                )
            )
    estimation = estimation_table(run)
    if estimation is not None:
        est = section.child("estimation", "Estimate bias, precision and coverage")
        est.add(estimation)
        figure = estimate_figure(run)
        if figure is not None:
            est.add(figure)
    return section


def estimate_figure(run: RunData) -> Figure | None:
    primary = run.summary["primary_endpoint"]
    data = run.first_point(run.replicates)
    data = data[(data["endpoint"] == primary)]
    arm = run.protocol.experimental_arms[0].name
    data = data[data["arm"] == arm]
    if not len(data) or data["estimate"].notna().sum() == 0:
        return None
    scale = data["scale"].dropna().iloc[0] if data["scale"].notna().any() else None
    estimates, truths = {}, {}
    for scenario, frame in data.groupby("scenario", sort=False):
        estimates[scenario] = frame["estimate"].to_numpy(float)
        values = frame["true_value"].dropna().unique()
        if len(values) == 1:
            truths[scenario] = float(values[0])
    fig, ax = new_axes(6.5, 3.0)
    label = describe.SCALES.get(scale, scale or "estimate")
    plot_estimates(estimates, truths, xlabel=f"Estimate ({label}), {arm} vs control", ax=ax)
    return Figure(
        png_data_uri(fig),
        "Histogram of the primary estimates across trials",
        f"Distribution of the primary endpoint's estimate over the simulated trials "
        f"({arm} versus control), with the true value of each scenario (dashed; "
        "absent where the true value varies by trial, as in an assurance run).",
    )


# ----------------------------------------------------------------------- curves


def _point_label(point: dict) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in point.items())


def curves(run: RunData) -> Section:
    section = Section("curves", "Power and assurance curves")
    if run.is_grid:
        _grid_curves(run, section)
    elif run.is_assurance:
        _assurance_curve(run, section)
    else:
        section.add(
            Paragraph(
                "No curve: this run simulated one design (no scenario grid and no effect "
                "distribution). A power curve comes from a grid run, e.g. "
                "insilico simulate PROTOCOL --vary hazard_ratio=0.6,0.7,0.8,1.0, reported the "
                "same way.",
                css="omitted",
            )
        )
    return section


def _grid_curves(run: RunData, section: Section) -> None:
    grid = run.manifest.get("grid") or {}
    names = list(grid) or list(run.summary["grid"][0]["point"])
    x_name = next((n for n in names if len(grid.get(n, [])) > 1), names[0])
    others = [n for n in names if n != x_name]
    styles = protocol_arm_styles(run.protocol)
    series: dict[str, list[dict]] = {}
    rows = []
    for point in run.summary["grid"]:
        suffix = ", ".join(f"{n} = {point['point'][n]:g}" for n in others)
        for key, quantity in (("power", "power"), ("type_i_error", "type I error")):
            for arm, cell in point["primary"].get(key, {}).items():
                label = f"{quantity}: {arm}" + (f" ({suffix})" if suffix else "")
                series.setdefault(label, []).append({"x": point["point"][x_name], **cell})
                rows.append(
                    [
                        _point_label(point["point"]),
                        describe.arm_label(run.protocol, arm),
                        quantity,
                        rate_cell(cell),
                    ]
                )
    frames = {}
    from reports.palette import ArmStyle, arm_styles

    palette = arm_styles(list(series))
    for label, points in series.items():
        frames[label] = pd.DataFrame(points).rename(columns={"rate": "rate"})
        arm = label.split(": ")[1].split(" (")[0]
        base = styles.get(arm, palette[label])
        if label.startswith("type I"):
            palette[label] = ArmStyle(base.colour, ":", "x")
        else:
            palette[label] = base
    fig, ax = new_axes(6.5, 3.6)
    alpha = run.summary.get("alpha")
    plot_power_curve(
        frames,
        palette,
        xlabel=_parameter_label(x_name),
        references={f"nominal alpha {alpha}": alpha, "80%": 0.8, "90%": 0.9},
        ax=ax,
    )
    section.add(
        Paragraph(
            f"Scenario grid over {', '.join(names)}: every point simulated with the same "
            f"seed (common random numbers), {run.summary['n_replicates']:,} trials per "
            "point and scenario."
        ),
        Figure(
            png_data_uri(fig),
            f"Power curve over {x_name}",
            f"Simulated power (design scenario) and type I error (null scenario) of the "
            f"primary endpoint over {x_name}, with exact 95% Monte Carlo intervals.",
        ),
        Table(
            "Rejection rates at each grid point (primary endpoint)",
            ["Grid point", "Comparison", "Quantity", "Rate (MCSE) [exact 95% CI]"],
            rows,
        ),
    )


def _parameter_label(name: str) -> str:
    return {
        "hazard_ratio": "Hazard ratio (experimental / control)",
        "odds_ratio": "Odds ratio (experimental / control)",
        "risk_difference": "Risk difference (experimental − control)",
        "mean_difference": "Mean difference (experimental − control)",
        "n_patients": "Patients randomized",
        "target_events": "Target events (primary endpoint)",
    }.get(name, name)


def _assurance_curve(run: RunData, section: Section) -> None:
    from scipy import stats

    from analysis.assurance import logrank_assurance

    protocol = run.protocol
    primary = protocol.endpoints.primary
    spec = effect_distribution(primary)
    if not (
        isinstance(primary, TimeToEventEndpoint)
        and isinstance(protocol.analysis.timing, EventsTiming)
        and len(protocol.arms) == 2
    ):
        section.add(
            Paragraph(
                "No assurance curve: the closed-form conditional power curve covers "
                "event-driven two-arm log-rank designs. The simulated assurance and "
                "conditional powers are in the rejection rates above.",
                css="omitted",
            )
        )
        return
    events = protocol.analysis.timing.target_events
    ratio = protocol.experimental_arms[0].allocation / protocol.control_arm.allocation
    alpha = protocol.analysis.alpha
    if spec.model is None:
        mean, sd = spec.mean, spec.sd
        draws = None
    else:
        from trials.engine import posterior_effect_draws

        try:
            draws = posterior_effect_draws(spec.model, spec.scale)
        except (InsilicoError, ImportError, OSError) as exc:
            section.add(
                Paragraph(
                    f"No assurance curve: the effect posterior could not be read ({exc}).",
                    css="omitted",
                )
            )
            return
        mean, sd = float(np.mean(draws)), float(np.std(draws, ddof=1))
    lo, hi = math.exp(mean - 3.5 * max(sd, 0.05)), math.exp(mean + 3.5 * max(sd, 0.05))
    grid = np.linspace(min(lo, 0.4), max(hi, 1.2), 241)
    power = np.array([logrank_assurance(events, math.log(h), 0.0, alpha, ratio) for h in grid])
    if draws is None:
        density = stats.lognorm(s=max(sd, 1e-9), scale=math.exp(mean)).pdf(grid)
    else:
        density = stats.gaussian_kde(np.exp(draws))(grid)
    arm = protocol.experimental_arms[0].name
    points = pd.DataFrame(
        [
            {"hazard_ratio": row["hazard_ratio"], **row["power"][arm]}
            for row in run.summary["primary"].get("conditional_power", [])
            if arm in row["power"]
        ]
    )
    assurance = run.summary["primary"]["assurance"].get(arm)
    fig, ax = new_axes(6.5, 3.6)
    colour = protocol_arm_styles(protocol)[arm].colour
    plot_assurance(grid, power, density, points, assurance, colour=colour, ax=ax)
    section.add(
        Paragraph(
            f"The assurance averages the power of the {events}-event log-rank test over the "
            "distribution of the hazard ratio (shaded). The line is the closed-form conditional "
            "power at each hazard ratio (Schoenfeld; O'Hagan, Stevens & Campbell 2005); the "
            "points and the dashed band are simulated, with exact 95% Monte Carlo intervals."
        ),
        Figure(
            png_data_uri(fig),
            "Assurance and conditional power curve",
            "Conditional power over the hazard ratio, the hazard-ratio distribution and the "
            "simulated assurance and conditional powers.",
        ),
    )
