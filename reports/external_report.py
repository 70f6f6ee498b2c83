"""The report of an external-control analysis (``insilico external-control``): its sections,
built from the files of the output directory only (:mod:`reports.external_output`).

The sections follow what the FDA draft guidance on externally controlled trials (2023) and
the EMA reflection paper on single-arm trials (2023) ask a sponsor to show: the estimand,
the provenance of the external data, the design diagnostics (covariate balance, propensity
score overlap, effective sample size), the weighted survival curves, the sensitivity to
unmeasured confounding, and the limitations. Every number is the analysis' own; nothing is
re-estimated — the figures draw the tables the analysis wrote.

References
----------
U.S. Food and Drug Administration (2023). Considerations for the Design and Conduct of
Externally Controlled Trials for Drug and Biological Products. Draft guidance.
European Medicines Agency (2023). Reflection paper on establishing efficacy based on
single-arm trials submitted as pivotal evidence in a marketing authorisation application.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd

from reports.document import (
    Bullets,
    Callout,
    Definitions,
    Figure,
    Paragraph,
    Preformatted,
    Section,
    Table,
    num,
    p_value,
)
from reports.external import SMD_THRESHOLD, km_by_source_plot, love_plot
from reports.external_output import ExternalControlOutput
from reports.figures import new_axes, plot_propensity_overlap, plot_tipping_point, png_data_uri

__all__ = ["external_control_report_sections", "title_page"]

DASH = "\u2013"
SPONSOR = "Sponsor to complete"

METHODS = {
    "iptw_att": "inverse probability of treatment weighting for the average treatment effect "
    "in the treated (ATT): trial patients weigh 1, external patients e/(1 \u2212 e)",
    "overlap": "overlap weighting: trial patients weigh 1 \u2212 e, external patients e",
    "matching": "propensity-score matching of external to trial patients",
}
TARGET = {
    "iptw_att": "the trial's population (the patients the single-arm trial enrolled)",
    "overlap": "the overlap population (patients who could plausibly be in either source)",
    "matching": "the matched trial patients",
}


def _method(output: ExternalControlOutput) -> str:
    return str(output.summary.get("adjustment", {}).get("method", DASH))


def _level(output: ExternalControlOutput) -> str:
    return f"{float(output.summary.get('level', 0.95)):.0%}"


def _measure(effect: dict) -> str:
    return {
        "hazard_ratio": "hazard ratio",
        "difference_in_proportions": "difference in proportions",
        "difference_in_means": "difference in means",
    }.get(effect.get("measure"), str(effect.get("measure")))


def _interval(low, high) -> str:
    return f"{num(low)} to {num(high)}"


def effect_text(output: ExternalControlOutput) -> str:
    """The adjusted estimate with its robust and bootstrap confidence intervals."""
    e = output.summary["effect"]
    level = _level(output)
    text = (
        f"{_measure(e)} {num(e.get('estimate'))} (robust {level} CI "
        f"{_interval(e.get('conf_low'), e.get('conf_high'))}"
    )
    boot = e.get("bootstrap")
    if boot:
        text += (
            f"; bootstrap {level} CI {_interval(boot.get('conf_low'), boot.get('conf_high'))}, "
            f"{boot.get('n_resamples')} resamples, {boot.get('n_failed')} failed"
        )
    return text + f"; p = {p_value(e.get('p_value'))})"


def _source_counts(output: ExternalControlOutput) -> dict[str, int]:
    """Analysed patients per source (the attrition table's last step of each source)."""
    counts: dict[str, int] = {}
    for row in output.summary.get("attrition") or []:
        counts[row["source"]] = row["n_patients"]
    return counts


def _inputs(output: ExternalControlOutput) -> dict[str, dict]:
    return {k: v for k, v in (output.manifest.get("inputs") or {}).items() if isinstance(v, dict)}


def title_page(output: ExternalControlOutput, info: dict) -> dict:
    """What the template's title page shows for an external-control report."""
    s, m = output.summary, output.manifest
    p = s.get("protocol") or m.get("protocol") or {}
    boot = m.get("bootstrap") or {}
    return {
        "title": p.get("title") or output.protocol.get("title") or "External-control analysis",
        "doc_id": str(p.get("id", DASH)),
        "kind": "External-control analysis report",
        "subtitle": f"Protocol {p.get('id', DASH)}, version {p.get('version', DASH)}: a "
        "single-arm trial compared with an external control arm",
        "facts": [
            ("Output directory", str(output.path)),
            (
                "Analysis",
                f"{_method(output)}; bootstrap {boot.get('n_resamples', DASH)} resamples, seed "
                f"{boot.get('seed', DASH)}",
            ),
            ("Generated", f"{info['date']} by insilico-trials {info['version']}"),
        ],
        "structure": "Structured after the FDA draft guidance on externally controlled trials "
        "(2023) and the EMA reflection paper on single-arm trials (2023): estimand, data "
        "provenance, design diagnostics, sensitivity analyses. Every number is the "
        "analysis' own, read from its output directory; nothing is recomputed.",
        "running_head": f"{p.get('id', DASH)} v{p.get('version', DASH)} \u2014 "
        "external-control analysis report",
    }


# ------------------------------------------------------------------ sections


def synopsis(output: ExternalControlOutput) -> Section:
    s = output.summary
    spec = output.external_control
    inputs = _inputs(output)
    counts = _source_counts(output)
    ess = s["effective_sample_size"]
    p = s.get("protocol") or {}
    ev = s["e_value"]
    facts = [
        ["Trial", f"{p.get('id', DASH)} version {p.get('version', DASH)}: {p.get('title', DASH)}"],
        [
            "Trial data",
            f"{inputs.get('trial', {}).get('file', spec.get('trial_data', DASH))} "
            f"({counts.get('trial', DASH)} patients analysed)",
        ],
        [
            "External source",
            f"{inputs.get('external', {}).get('file', spec.get('external_data', DASH))} "
            f"({counts.get('external', DASH)} patients analysed)",
        ],
        ["Method", f"{_method(output)}: {METHODS.get(_method(output), _method(output))}"],
        ["Endpoint", _endpoint_text(s.get("endpoint") or {})],
        ["Covariates", ", ".join(map(str, spec.get("covariates") or [])) or DASH],
    ]
    key = [
        ["Adjusted effect (trial vs external)", effect_text(output)],
        [
            "Naive effect (unadjusted)",
            f"{num(s['naive'].get('estimate'))} ({_level(output)} CI "
            f"{_interval(s['naive'].get('conf_low'), s['naive'].get('conf_high'))})",
        ]
        if s.get("naive")
        else ["Naive effect (unadjusted)", DASH],
        [
            "E-value (estimate; CI limit nearer the null)",
            f"{num(ev.get('e_value'), 2)}; {num(ev.get('e_value_ci'), 2)}",
        ],
        [
            "Max |SMD| before / after adjustment",
            f"{num(s.get('max_abs_smd_before'))} / {num(s['max_abs_smd_after'])}",
        ],
        [
            "Effective sample size (trial / external)",
            f"{num(ess.get('trial'), 1)} / {num(ess.get('external'), 1)}",
        ],
        ["Trial patients outside the external scores' range", _share(s.get("share_unsupported"))],
    ]
    synthetic = s.get("synthetic_control")
    if synthetic:
        key.append(
            [
                f"Synthetic control arm ({synthetic.get('generator')})",
                f"hazard ratio {num(synthetic.get('hazard_ratio'))} (bootstrap "
                f"{_level(output)} CI "
                f"{_interval(synthetic.get('conf_low'), synthetic.get('conf_high'))}); "
                f"{synthetic.get('n_generated')} generated from "
                f"{synthetic.get('n_external_real')} real external patients",
            ]
        )
    section = Section("synopsis", "Synopsis")
    section.add(
        Table("Trial, external source and method", ["Item", "Value"], facts, css="facts"),
        Table(
            "Key results",
            ["Quantity", "Value"],
            key,
            css="facts",
            note="SMD: standardized mean difference; CI: confidence interval. The robust "
            "interval treats the weights as known, the bootstrap one re-estimates them.",
        ),
    )
    return section


def _share(value) -> str:
    if value is None or not math.isfinite(float(value)):
        return DASH
    return f"{float(value):.1%}"


def _endpoint_text(endpoint: dict) -> str:
    kind = str(endpoint.get("type", DASH)).replace("_", " ")
    columns = ", ".join(f"{k} {v}" for k, v in endpoint.items() if k != "type")
    return f"{kind} ({columns})" if columns else kind


def estimand(output: ExternalControlOutput) -> Section:
    spec = output.external_control
    primary = (output.protocol.get("endpoints") or {}).get("primary") or {}
    stated = primary.get("estimand") or {}
    method = _method(output)
    items = [
        ("Target population", TARGET.get(method, method)),
        (
            "Population (protocol)",
            str(stated.get("population", DASH)),
        ),
        ("Treatment condition", str(stated.get("treatment", DASH))),
        (
            "Comparator",
            "external patients meeting the trial's eligibility as written ("
            + "; ".join(map(str, spec.get("eligibility") or []))
            + "), harmonised to the "
            "trial's definitions, adjusted for the covariates",
        ),
        (
            "Variable (endpoint)",
            str(stated.get("variable", _endpoint_text(output.summary.get("endpoint") or {}))),
        ),
        ("Time zero", _spec_text(spec.get("time_zero", DASH))),
        ("Population-level summary", _measure(output.summary["effect"])),
        ("Adjusted for", ", ".join(map(str, spec.get("covariates") or [])) or DASH),
    ]
    section = Section("estimands", "Estimand")
    section.add(Definitions(items))
    notes = [n for n in output.summary.get("notes") or [] if "estimand" in n.lower()]
    if notes:
        section.add(Paragraph(" ".join(notes)))
    return section


def _spec_text(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_spec_text(v)}" for k, v in value.items()) or DASH
    if isinstance(value, list | tuple):
        return ", ".join(_spec_text(v) for v in value)
    return str(value)


def file_sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def provenance(output: ExternalControlOutput) -> Section:
    m, s = output.manifest, output.summary
    protocol = m.get("protocol") or {}
    rows = [["protocol", str(protocol.get("file", DASH)), str(protocol.get("sha256", DASH))]]
    rows += [
        [label, str(entry.get("file", DASH)), str(entry.get("sha256", DASH))]
        for label, entry in _inputs(output).items()
    ]
    section = Section("provenance", "Data provenance")
    section.add(
        Table(
            "Input files and their SHA-256 (as recorded in manifest.json)",
            ["Role", "File", "SHA-256"],
            rows,
            css="hashes",
        )
    )
    copy = file_sha256(output.path / "protocol.yaml")
    if protocol.get("sha256"):
        section.add(
            Paragraph(
                "The protocol copy in the output directory is "
                + (
                    "identical to the protocol analysed."
                    if copy == protocol["sha256"]
                    else f"DIFFERENT from the protocol analysed (SHA-256 {copy})."
                )
            )
        )
    attrition = s.get("attrition") or []
    if attrition:
        section.add(
            Table(
                "Patients by source and step (eligibility, harmonisation, analysis)",
                ["Source", "Step", "Patients"],
                [[r["source"], r["step"], str(r["n_patients"])] for r in attrition],
            )
        )
    if s.get("n_trial_ineligible"):
        section.add(
            Paragraph(
                f"{s['n_trial_ineligible']} trial patients do not meet the eligibility "
                "criteria as written (analysed as enrolled).",
                css="omitted",
            )
        )
    harmonisation = output.external_control.get("harmonisation")
    if harmonisation:
        section.add(
            Definitions([(f"Harmonisation: {k}", _spec_text(v)) for k, v in harmonisation.items()])
        )
    section.add(
        Callout(
            SPONSOR,
            "Origin of the external data (registry, trial, real-world source), its period, "
            "the data-collection standards and how they compare with the trial's.",
        )
    )
    return section


def _rows(frame: pd.DataFrame, columns: list[tuple[str, str, int]]) -> list[list[str]]:
    rows = []
    for record in frame.to_dict(orient="records"):
        row = []
        for key, _title, digits in columns:
            value = record.get(key)
            if digits < 0:
                row.append(
                    DASH
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else str(value)
                )
            else:
                row.append(num(value, digits, signed=key.startswith("smd")))
        rows.append(row)
    return rows


def diagnostics(output: ExternalControlOutput) -> Section:
    s = output.summary
    section = Section("diagnostics", "Design diagnostics")
    model = s.get("propensity_model") or []
    if model:
        child = section.child("propensity-model", "Propensity score model")
        child.add(
            Table(
                "Logistic regression of trial membership on the covariates",
                ["Term", "Coefficient", "SE", "z", "p-value"],
                [
                    [
                        r.get("term"),
                        num(r.get("coef")),
                        num(r.get("se")),
                        num(r.get("z"), 2),
                        p_value(r.get("p_value")),
                    ]
                    for r in model
                ],
            )
        )
    balance = section.child("balance", "Covariate balance")
    label = "label" if "label" in output.balance else "covariate"
    columns = [
        (label, "Covariate", -1),
        ("mean_trial", "Trial mean", 3),
        ("mean_external", "External mean", 3),
        ("mean_external_adjusted", "External mean, adjusted", 3),
        ("smd_before", "SMD before", 3),
        ("smd_after", "SMD after", 3),
        ("variance_ratio_before", "Variance ratio before", 2),
        ("variance_ratio_after", "Variance ratio after", 2),
    ]
    columns = [c for c in columns if c[0] in output.balance]
    balance.add(
        Table(
            f"Balance ({_method(output)}): standardized mean differences and variance ratios",
            [c[1] for c in columns],
            _rows(output.balance, columns),
            note=f"Max |SMD| before {num(s.get('max_abs_smd_before'))}, after "
            f"{num(s['max_abs_smd_after'])}; |SMD| below {SMD_THRESHOLD:g} is the usual "
            "balance criterion. Variance ratios are given for continuous covariates.",
        ),
        love_plot(output.balance, _method(output)),
    )
    overlap = section.child("overlap", "Propensity score overlap")
    rows = s.get("overlap") or []
    if rows:
        keys = ["n_patients", "min", "q05", "q25", "median", "q75", "q95", "max", "share_outside"]
        overlap.add(
            Table(
                "Distribution of the estimated propensity scores by source",
                [
                    "Source",
                    "Patients",
                    "Min",
                    "5%",
                    "25%",
                    "Median",
                    "75%",
                    "95%",
                    "Max",
                    "Outside the other source's range",
                ],
                [
                    [r.get("source")]
                    + [
                        str(r.get(k))
                        if k == "n_patients"
                        else (_share(r.get(k)) if k == "share_outside" else num(r.get(k), 3))
                        for k in keys
                    ]
                    for r in rows
                ],
            )
        )
    if "propensity_score" in output.weights:
        scores = {
            str(source): part["propensity_score"].to_numpy(float)
            for source, part in output.weights.groupby("source", sort=False)
        }
        fig, ax = new_axes(6.0, 3.0)
        plot_propensity_overlap(scores, ax=ax)
        overlap.add(
            Figure(
                png_data_uri(fig),
                "Propensity score distributions by source",
                "Estimated propensity scores of the trial and the external patients "
                "(weights.csv): the sources can be compared only where the distributions "
                "overlap.",
            )
        )
    else:
        overlap.add(
            Paragraph(
                "weights.csv holds no propensity scores (an older output): the "
                "distribution is shown by its quantiles only.",
                css="omitted",
            )
        )
    overlap.add(
        Paragraph(
            f"Trial patients outside the range of the external patients' scores: "
            f"{_share(s.get('share_unsupported'))}."
        )
    )
    ess = section.child("effective-sample-size", "Weights and effective sample sizes")
    n_weighted = s.get("n_weighted") or []
    if n_weighted:
        ess.add(
            Table(
                "Weights by source and effective sample size (Kish)",
                [
                    "Source",
                    "Patients",
                    "Weighted",
                    "Sum of weights",
                    "ESS",
                    "Min weight",
                    "Max weight",
                ],
                [
                    [
                        r.get("source"),
                        str(r.get("n_patients")),
                        str(r.get("n_weighted")),
                        num(r.get("sum_weights"), 1),
                        num(r.get("ess"), 1),
                        num(r.get("min_weight"), 4),
                        num(r.get("max_weight"), 3),
                    ]
                    for r in n_weighted
                ],
            )
        )
    e = s["effective_sample_size"]
    ess.add(
        Paragraph(
            f"Effective sample size: trial {num(e.get('trial'), 1)}, external "
            f"{num(e.get('external'), 1)}."
        )
    )
    matching = s.get("matching")
    if matching:
        ess.add(Definitions([(k.replace("_", " "), str(v)) for k, v in matching.items()]))
    if output.kaplan_meier is not None:
        km = section.child("kaplan-meier", "Weighted Kaplan\u2013Meier curves")
        curves = output.kaplan_meier
        # the external (control) source first: it takes the control arm's colour
        curves = pd.concat(
            [curves[curves["source"] == "external"], curves[curves["source"] != "external"]]
        )
        km.add(km_by_source_plot(curves, f"{_method(output)} weights"))
        medians = (s.get("kaplan_meier") or {}).get("median") or {}
        if medians:
            km.add(
                Table(
                    "Median time to event by source (weighted Kaplan\u2013Meier)",
                    ["Source", "Median"],
                    [[k, num(v, 1)] for k, v in medians.items()],
                    css="facts",
                )
            )
    return section


def results(output: ExternalControlOutput) -> Section:
    s = output.summary
    level = _level(output)
    section = Section("results", "Comparative effect")
    rows = []
    for label, effect in (("Adjusted", s["effect"]), ("Naive (unadjusted)", s.get("naive"))):
        if not effect:
            continue
        rows.append(
            [
                label,
                _measure(effect),
                num(effect.get("estimate")),
                _interval(effect.get("conf_low"), effect.get("conf_high")),
                p_value(effect.get("p_value")),
                DASH
                if "events_trial" not in effect
                else f"{effect['events_trial']} / {effect['events_external']}",
            ]
        )
    section.add(
        Table(
            "Trial versus external control",
            [
                "Analysis",
                "Measure",
                "Estimate",
                f"Robust {level} CI",
                "p-value",
                "Events (trial / external)",
            ],
            rows,
        )
    )
    boot = s["effect"].get("bootstrap")
    if boot:
        section.add(
            Paragraph(
                f"Bootstrap {level} CI {_interval(boot.get('conf_low'), boot.get('conf_high'))} "
                f"({boot.get('n_resamples')} resamples, {boot.get('n_failed')} failed, seed "
                f"{boot.get('seed')}): each resample re-estimates the propensity model and the "
                "weights."
            )
        )
    synthetic = s.get("synthetic_control")
    if synthetic:
        section.child("synthetic-control", "Synthetic control arm").add(
            Definitions(
                [
                    ("Generator", str(synthetic.get("generator"))),
                    ("Hazard ratio", num(synthetic.get("hazard_ratio"))),
                    (
                        f"Bootstrap {level} CI",
                        _interval(synthetic.get("conf_low"), synthetic.get("conf_high")),
                    ),
                    ("Trial patients", str(synthetic.get("n_trial"))),
                    ("Real external patients", str(synthetic.get("n_external_real"))),
                    ("Generated patients", str(synthetic.get("n_generated"))),
                    (
                        "Resamples (failed)",
                        f"{synthetic.get('n_resamples')} ({synthetic.get('n_failed')})",
                    ),
                    ("Mean distance to the trial patients", num(synthetic.get("mean_distance"))),
                ]
            )
        )
    return section


def sensitivity(output: ExternalControlOutput) -> Section:
    s = output.summary
    ev = s["e_value"]
    section = Section("sensitivity", "Sensitivity to unmeasured confounding")
    section.child("e-value", "E-value").add(
        Definitions(
            [
                ("E-value (estimate)", num(ev.get("e_value"), 2)),
                ("E-value (CI limit nearer the null)", num(ev.get("e_value_ci"), 2)),
                ("Risk ratio used", num(ev.get("risk_ratio"))),
                ("Conversion", str(ev.get("conversion", DASH))),
            ]
        ),
        Paragraph(
            "The E-value is the minimum strength of association, on the risk-ratio scale, "
            "that an unmeasured confounder would need with both the source and the outcome to "
            "explain away the estimate (VanderWeele & Ding 2017)."
        ),
    )
    tipping = s.get("tipping_point")
    if tipping is not None or output.tipping is not None:
        child = section.child("tipping-point", "Tipping-point analysis")
        if tipping is not None:
            if tipping.get("tipping_bias_log_hr") == 0:
                child.add(
                    Paragraph(
                        "The confidence interval already includes 1: no "
                        "confounding is needed to make the result non-significant."
                    )
                )
            child.add(
                Table(
                    "Prevalence difference of a binary unmeasured confounder that makes the "
                    "confidence interval include 1",
                    ["Confounder-outcome hazard ratio", "Prevalence difference"],
                    [
                        [
                            num(r.get("confounder_hazard_ratio"), 2),
                            num(r.get("prevalence_difference"), 2, signed=True),
                        ]
                        for r in tipping.get("by_confounder_hazard_ratio") or []
                    ],
                    css="facts",
                )
            )
        if output.tipping is not None and len(output.tipping):
            fig, ax = new_axes(6.0, 3.4)
            plot_tipping_point(output.tipping, ax=ax)
            child.add(
                Figure(
                    png_data_uri(fig),
                    "Tipping-point grid",
                    "Hazard ratio corrected for a binary unmeasured confounder, over the grid "
                    "of tipping_point.csv (open markers: the corrected CI includes 1).",
                )
            )
    return section


def notes(output: ExternalControlOutput) -> Section:
    s = output.summary
    items = [str(n) for n in s.get("notes") or []]
    synthetic = s.get("synthetic_control") or {}
    items += [f"Synthetic control arm: {n}" for n in synthetic.get("notes") or []]
    section = Section("notes", "Notes of the analysis")
    section.add(Bullets(items) if items else Paragraph("The analysis recorded no notes."))
    return section


def limitations(output: ExternalControlOutput) -> Section:
    s = output.summary
    items = [
        "Adjustment removes only the differences in the measured covariates: the comparison "
        "rests on the assumption of no unmeasured confounding, which the E-value and the "
        "tipping-point analysis probe but cannot verify.",
        "The external patients were not randomized, and their data were not collected "
        "under the trial's protocol: differences in assessment schedules, endpoint "
        "definitions and time zero can bias the comparison beyond what harmonisation "
        "corrects.",
        "The robust interval treats the estimated weights as known; the bootstrap interval "
        "accounts for their estimation.",
        "The effective sample size of the weighted external arm, not its number of "
        "patients, measures the information it contributes.",
    ]
    if (s.get("max_abs_smd_after") or 0) >= SMD_THRESHOLD:
        items.append(
            f"Balance is incomplete: the largest |SMD| after adjustment is "
            f"{num(s['max_abs_smd_after'])} (at or above {SMD_THRESHOLD:g})."
        )
    if s.get("share_unsupported"):
        items.append(
            f"{_share(s['share_unsupported'])} of the trial patients lie outside the range of "
            "the external patients' propensity scores: for them the comparison extrapolates."
        )
    if s.get("synthetic_control"):
        items.append(
            "Generated (synthetic) control patients add no information: inference rests on "
            "the real external patients, as the bootstrap over them reflects."
        )
    section = Section("limitations", "Limitations")
    section.add(
        Bullets(items),
        Callout(
            SPONSOR,
            "Further limitations (fitness of the external source for the "
            "question, missing data, changes in standard of care over time).",
        ),
    )
    return section


def reproducibility(output: ExternalControlOutput, report: dict) -> Section:
    m = output.manifest
    protocol = m.get("protocol") or {}
    boot = m.get("bootstrap") or {}
    command = " ".join(m.get("command_line") or [])
    items = [
        ("Output directory", str(output.path)),
        ("Command", command or "\u2013 (not recorded: run from the Python API)"),
        ("Protocol file", str(protocol.get("file", DASH))),
        ("Bootstrap", f"{boot.get('n_resamples', DASH)} resamples, seed {boot.get('seed', DASH)}"),
        ("Random streams", str(boot.get("random_streams", DASH))),
        ("Platform", str(m.get("platform", DASH))),
        ("Started / finished", f"{m.get('started', DASH)} / {m.get('finished', DASH)}"),
        ("Report", f"{report['command']} (insilico-trials {report['version']}, {report['date']})"),
        (
            "Reproduce",
            f"insilico external-control {protocol.get('file', 'PROTOCOL')} --out DIR "
            f"--resamples {boot.get('n_resamples', DASH)} --seed {boot.get('seed', DASH)}",
        ),
    ]
    section = Section("appendix-reproducibility", "Reproducibility")
    section.add(Definitions(items))
    versions = [[k, str(v)] for k, v in (m.get("versions") or {}).items()]
    versions += [
        [f"{k} (report)", str(v)]
        for k, v in report["versions"].items()
        if k not in (m.get("versions") or {})
    ]
    section.add(
        Table(
            "Package versions (analysis; report-only packages marked)",
            ["Package", "Version"],
            versions,
            css="facts",
        )
    )
    files = sorted(p.name for p in output.path.iterdir() if p.is_file())
    section.add(
        Table(
            "Files of the output directory read by this report, and their SHA-256",
            ["File", "SHA-256"],
            [[name, file_sha256(output.path / name) or DASH] for name in files],
            css="hashes",
        )
    )
    return section


def protocol_appendix(output: ExternalControlOutput) -> Section:
    section = Section("appendix-protocol", "The protocol as analysed")
    section.add(
        Paragraph("protocol.yaml of the output directory, verbatim."),
        Preformatted(output.protocol_text),
    )
    return section


def external_control_report_sections(output: ExternalControlOutput, info: dict) -> list[Section]:
    """The sections of an external-control report, in order."""
    return [
        synopsis(output),
        estimand(output),
        provenance(output),
        diagnostics(output),
        results(output),
        sensitivity(output),
        notes(output),
        limitations(output),
        reproducibility(output, info),
        protocol_appendix(output),
    ]
