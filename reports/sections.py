"""The descriptive sections of a report, in the ADEMP order of Morris, White & Crowther
(2019): synopsis, aims, estimands, data-generating mechanisms (with the virtual
population's provenance), methods and performance measures; and the closing sections:
limitations and the appendices (reproducibility, dataset metadata, the protocol)."""

from __future__ import annotations

import math

from reports import describe
from reports.document import (
    Bullets,
    Callout,
    Definitions,
    Paragraph,
    Preformatted,
    Section,
    Table,
    num,
    rate_cell,
)
from reports.provenance import Provenance
from reports.provenance_section import provenance_section
from reports.results import scenario_quantity
from reports.run_data import RunData
from trials.design import conditional_effect_text

SPONSOR = "Sponsor to complete"
DASH = "\u2013"
#: Columns shown as real-versus-virtual marginal overlays.
MAX_MARGINALS = 8


def synopsis(run: RunData) -> Section:
    p, s = run.protocol, run.summary
    primary = p.endpoints.primary
    key = "assurance" if run.is_assurance else "power"
    headline = []
    for arm, cell in s["primary"].get(key, {}).items():
        headline.append([f"Simulated {key}: {describe.arm_label(p, arm)}", rate_cell(cell)])
    for arm, cell in s["primary"].get("type_i_error", {}).items():
        headline.append([f"Simulated type I error: {describe.arm_label(p, arm)}", rate_cell(cell)])
    for row in s["primary"].get("conditional_power", []):
        for arm, cell in row["power"].items():
            headline.append(
                [
                    f"Conditional power at {conditional_effect_text(row)} ({row['effect']}): {arm}",
                    rate_cell(cell),
                ]
            )
    design = next(
        (
            r
            for r in s["operating_characteristics"]
            if r["scenario"] == "design"
            and r["endpoint"] == s["primary_endpoint"]
            and r["arm"] != "any"
        ),
        None,
    )
    if design is not None:
        n = design.get("rejection_n_replicates")
        if design.get("events_mean") is not None:
            mcse = (design.get("events_sd") or 0) / math.sqrt(n) if n else math.nan
            headline.append(
                [
                    "Expected events, design scenario",
                    f"{num(design['events_mean'], 1)} (MCSE {num(mcse, 2)})",
                ]
            )
        if design.get("analysis_time_mean") is not None:
            mcse = (design.get("analysis_time_sd") or 0) / math.sqrt(n) if n else math.nan
            headline.append(
                [
                    "Expected duration (months), design scenario",
                    f"{num(design['analysis_time_mean'], 1)} (MCSE {num(mcse, 2)})",
                ]
            )
    facts = [
        ["Protocol", f"{p.id} version {p.version}, phase {p.phase}"],
        ["Title", p.title],
        ["Arms (allocation)", describe.allocation(p)],
        ["Patients", f"{p.population.n_patients} randomized; accrual {describe.accrual(p)}"],
        [
            "Primary endpoint",
            f"{primary.name} ({describe.endpoint_type(primary)}): "
            f"{primary.estimand.variable or primary.name}",
        ],
        [
            "Primary analysis",
            f"{describe.analysis(p.analysis.primary)}; alpha "
            f"{p.analysis.alpha} ({'one' if p.analysis.sided == 1 else 'two'}-sided); "
            f"{describe.timing(p)}",
        ],
        [
            "Simulation",
            f"{s['n_replicates']:,} trials per scenario, seed {s['seed']}; scenarios "
            f"{', '.join(run.manifest.get('scenarios') or s.get('scenarios', []))}",
        ],
    ]
    if describe.group_sequential(p):
        facts.insert(6, ["Interim analyses", describe.group_sequential(p)])
    section = Section("synopsis", "Synopsis")
    section.add(
        Table("Study and simulation", ["Item", "Value"], facts, css="facts"),
        Table(
            "Key results (primary endpoint)",
            ["Quantity", "Estimate (MCSE) [exact 95% CI]"],
            headline,
            css="facts",
            note="MCSE: Monte Carlo standard error. Every simulated number in this report is "
            "given with its MCSE.",
        ),
    )
    if p.description:
        section.add(Paragraph(p.description))
    return section


def aims(run: RunData) -> Section:
    p = run.protocol
    primary = p.endpoints.primary
    what = (
        "assurance (probability of success averaged over the uncertainty of the effect)"
        if run.is_assurance
        else "power"
    )
    items = [
        f"Estimate the {what} of the design of protocol {p.id} for its primary endpoint "
        f"({primary.name}) and its type I error under the null hypothesis of no effect.",
        "Estimate the expected number of events, patients analysed and trial duration.",
        "Estimate the bias, precision and confidence-interval coverage of the treatment-effect "
        "estimate.",
    ]
    if p.analysis.group_sequential is not None:
        items.append(
            "Estimate the probability of stopping for efficacy or futility at each "
            "interim analysis."
        )
    if p.endpoints.secondary:
        items.append(
            "Describe the same operating characteristics for the secondary endpoints "
            f"({', '.join(e.name for e in p.endpoints.secondary)})."
        )
    return Section("aims", "Aims").add(Bullets(items))


def estimands(run: RunData) -> Section:
    p = run.protocol
    section = Section("estimands", "Estimands (ICH E9(R1))")
    truths = {}
    for r in run.summary["operating_characteristics"]:
        if r.get("estimate_true_value") is not None:
            truths.setdefault(r["endpoint"], []).append(
                f"{r['scenario']} / {r['arm']}: {num(r['estimate_true_value'], 4)} "
                f"({describe.SCALES.get(r['scale'], r['scale'])})"
            )
    for endpoint in describe.endpoints(p):
        e = endpoint.estimand
        ices = [
            f"{ice.event}: {describe.STRATEGIES.get(ice.strategy, ice.strategy)}"
            + (
                f"; simulated at {_rate_text(ice.annual_rate)} per year"
                if ice.annual_rate is not None
                else "; not simulated"
            )
            for ice in e.intercurrent_events
        ]
        rows = [
            ["Population", e.population],
            [
                "Treatment conditions",
                f"{e.treatment}: " + " versus ".join(describe.arm_label(p, a.name) for a in p.arms),
            ],
            ["Variable (endpoint)", e.variable or endpoint.name],
            ["Intercurrent events and strategies", "; ".join(ices) or "none specified"],
            [
                "Population-level summary",
                describe.MEASURES.get(e.summary_measure, e.summary_measure),
            ],
            ["True value per scenario", "; ".join(truths.get(endpoint.name, [])) or "\u2013"],
        ]
        role = "primary" if endpoint is p.endpoints.primary else "secondary"
        section.add(
            Table(
                f"Estimand of the {role} endpoint {endpoint.name}",
                ["Attribute", "Value"],
                rows,
                css="facts",
            )
        )
    return section


def _rate_text(rate) -> str:
    if isinstance(rate, dict):
        return ", ".join(f"{arm} {v:g}" for arm, v in rate.items())
    return f"{rate:g}"


def data_generating(run: RunData, provenance: Provenance) -> Section:
    p = run.protocol
    section = Section("data-generating", "Data-generating mechanisms")
    design = section.child("design", "Design and simulation assumptions")
    design.add(
        Table(
            "Arms",
            ["Arm", "Label", "Role", "Allocation"],
            [
                [
                    a.name,
                    a.label or "",
                    "control" if a.control else "experimental",
                    f"{a.allocation:g}",
                ]
                for a in p.arms
            ],
        )
    )
    design.add(
        Definitions(
            [
                ("Patients randomized", str(p.population.n_patients)),
                ("Accrual", describe.accrual(p)),
                ("Randomization", describe.randomization(p)),
                ("Dropout", describe.dropout(p)),
                ("Eligibility", "; ".join(p.population.eligibility) or "no screening expression"),
                ("Time unit", "months (hazards per month; accrual in patients per month)"),
            ]
        )
    )
    if p.population.covariates:
        design.add(
            Table(
                "Baseline covariates",
                ["Covariate", "Distribution"],
                [[c.name, describe.covariate(c)] for c in p.population.covariates],
                note="Drawn jointly through a Gaussian copula; correlations of the "
                "latent normals: "
                + (
                    "; ".join(
                        f"{a}–{b} {c.rho:g}"
                        for c in p.population.correlations
                        for a, b in [c.between]
                    )
                    or "none"
                )
                + ".",
            )
        )
    elif p.population.generator is not None:
        design.add(
            Paragraph(
                "Baseline covariates "
                f"({', '.join(p.population.generator.covariates)}) are drawn from a fitted "
                "virtual-patient generator (see the provenance section)."
            )
        )
    rows = []
    for endpoint in describe.endpoints(p):
        rows.append(
            [
                endpoint.name,
                describe.endpoint_type(endpoint),
                describe.control(endpoint),
                describe.effect(endpoint),
                describe.covariate_effects(endpoint),
            ]
        )
    design.add(
        Table(
            "Outcome models",
            [
                "Endpoint",
                "Type",
                "Control arm",
                "Treatment effect (design scenario)",
                "Covariate effects",
            ],
            rows,
            note="Endpoints are simulated independently given the covariates.",
        )
    )
    scenarios = []
    for name in run.manifest.get("scenarios") or run.summary.get("scenarios", []):
        if name == "design":
            text = "the protocol's treatment effects"
        elif name == "null":
            text = (
                "no treatment effect: every arm has the control arm's outcome model "
                "(and intercurrent-event rates)"
            )
        else:
            text = scenario_quantity(run, name)
        scenarios.append([name, text])
    if run.is_grid:
        grid = run.manifest.get("grid") or {}
        scenarios.append(
            [
                "grid",
                "; ".join(
                    f"{k} in {', '.join(f'{v:g}' for v in vals)}" for k, vals in grid.items()
                ),
            ]
        )
    design.add(Table("Scenarios simulated", ["Scenario", "Data-generating mechanism"], scenarios))
    design.add(
        Definitions(
            [
                ("Simulated trials per scenario", f"{run.summary['n_replicates']:,}"),
                ("Seed", str(run.summary["seed"])),
                ("Random streams", run.manifest.get("random_streams", "\u2013")),
                ("Common random numbers", "the scenarios share each trial's random draws"),
            ]
        )
    )
    section.children.append(provenance_section(run, provenance))
    return section


# ----------------------------------------------------------------------- methods


def methods(run: RunData) -> Section:
    p = run.protocol
    section = Section("methods", "Methods (analysis of each simulated trial)")
    rows = [[p.endpoints.primary.name, "primary", describe.analysis(p.analysis.primary)]]
    for endpoint in p.endpoints.secondary:
        spec = p.analysis.secondary.get(endpoint.name)
        rows.append([endpoint.name, "secondary", describe.analysis(spec) if spec else "\u2013"])
    section.add(Table("Pre-specified analyses", ["Endpoint", "Role", "Test"], rows))
    items = [
        (
            "Significance level",
            f"alpha {p.analysis.alpha} ({'one' if p.analysis.sided == 1 else 'two'}-sided)",
        ),
        ("Timing of the analysis", describe.timing(p)),
        ("Multiplicity across experimental arms", p.analysis.multiplicity),
    ]
    gs = describe.group_sequential(p)
    if gs:
        items.append(("Group-sequential plan", gs))
    section.add(Definitions(items))
    section.add(
        Paragraph(
            "Each simulated trial is analysed as the protocol pre-specifies, vectorized across "
            "trials; the estimate of the summary measure, its standard error and confidence "
            "interval, the test statistic, p-value and decision are recorded per trial and "
            "comparison (replicates.parquet of the run)."
        )
    )
    return section


def performance_measures(run: RunData) -> Section:
    r = run.summary["n_replicates"]
    worst = math.sqrt(0.25 / r)
    section = Section("performance", "Performance measures")
    section.add(
        Table(
            "Performance measures and their Monte Carlo standard errors",
            ["Measure", "Definition", "Monte Carlo SE"],
            [
                [
                    "Power / type I error / assurance",
                    "share of trials rejecting H0 (design / null scenario; the design "
                    "scenario's rate is the assurance when the effect is drawn per trial)",
                    "sqrt(p (1 − p) / R); exact Clopper–Pearson 95% CI",
                ],
                [
                    "Conditional power",
                    "rejection rate with the effect fixed at one value, same trials",
                    "as above",
                ],
                [
                    "Expected events, patients, duration",
                    "mean over trials (5th and 95th percentiles)",
                    "SD / sqrt(R)",
                ],
                [
                    "Stopping probability per look",
                    "share of trials stopping at that look for efficacy or futility",
                    "sqrt(p (1 − p) / R); exact CI",
                ],
                ["Bias", "mean estimate − true value", "empirical SE / sqrt(R)"],
                ["Empirical SE", "SD of the estimates", "empirical SE / sqrt(2 (R − 1))"],
                ["Model SE", "mean of the per-trial standard errors", "\u2013"],
                ["Coverage", "share of 95% CIs containing the true value", "sqrt(c (1 − c) / R)"],
            ],
            note=f"R = {r:,} trials per scenario: the Monte Carlo SE of a rejection rate is at "
            f"most {worst:.4f} (at p = 0.5). Definitions as in Morris, White & Crowther (2019).",
        )
    )
    return section


# ---------------------------------------------------------------- limitations


def limitations(run: RunData, provenance: Provenance) -> Section:
    p = run.protocol
    items = [
        f"Monte Carlo error: with {run.summary['n_replicates']:,} trials per scenario each "
        "simulated number has the Monte Carlo SE shown; differences smaller than about two "
        "SEs are not distinguishable.",
        "The results hold under the data-generating mechanisms of section 3 (outcome "
        "distributions, effects, accrual, dropout and intercurrent-event rates); departures "
        "from them are not explored unless a scenario grid was run.",
        "Endpoints are simulated independently given the covariates; correlation between "
        "endpoints of one patient beyond the covariates is not modelled.",
        "No calendar dates are simulated: the analysis datasets use study days.",
        "The example trial is one draw: its estimates vary from trial to trial as the "
        "operating characteristics describe.",
    ]
    if any(e.covariate_effects for e in describe.endpoints(p)):
        items.append(
            "Covariate effects make hazard and odds ratios non-collapsible: an "
            "unadjusted estimate targets a marginal effect closer to 1 than the "
            "protocol's conditional effect, and the bias reported includes that gap."
        )
    if any(
        getattr(e.effect, "piecewise_hazard_ratio", None) is not None for e in describe.endpoints(p)
    ):
        items.append(
            "Under non-proportional hazards no single hazard ratio is the true value: "
            "bias and coverage of the hazard ratio are not reported."
        )
    if provenance.used:
        items.append(
            "Virtual patients carry no information beyond the real data they were "
            "fitted on; the fidelity and privacy metrics describe one generated cohort "
            "and the uncertainty of the fitted generator is not propagated unless the "
            "protocol draws from a posterior."
        )
    if run.is_assurance:
        items.append(
            "The assurance depends on the distribution assumed for the effect (the "
            "phase-2 evidence); it is a probability of success, not a power."
        )
    section = Section("limitations", "Limitations")
    section.add(Bullets(items))
    section.add(
        Callout(
            SPONSOR,
            "Further limitations the sponsor identifies (clinical "
            "plausibility of the assumptions, external validity).",
        )
    )
    return section


# ----------------------------------------------------------------- appendices


def reproducibility(run: RunData, report: dict) -> Section:
    from trials.run import PROTOCOL_COPY, file_sha256

    m = run.manifest
    copy_hash = file_sha256(run.path / PROTOCOL_COPY)
    recorded = m["protocol"].get("sha256")
    items = [
        ("Run directory", str(run.path)),
        (
            "Command",
            " ".join(m.get("command_line") or [])
            or "\u2013 (not recorded: run from the Python API)",
        ),
        ("Seed", str(m.get("seed"))),
        ("Trials per scenario", f"{m.get('n_replicates'):,}"),
        ("Chunk size", str(m.get("chunk_size"))),
        ("Random streams", m.get("random_streams", "\u2013")),
        ("Protocol file", str(m["protocol"].get("file"))),
        (
            "Protocol SHA-256",
            f"{recorded} (copy in the run directory: "
            f"{'identical' if copy_hash == recorded else 'DIFFERENT: ' + copy_hash})",
        ),
        ("Platform", str(m.get("platform", "\u2013"))),
        ("Started / finished", f"{m.get('started', DASH)} / {m.get('finished', DASH)}"),
        ("Report", f"{report['command']} (insilico-trials {report['version']}, {report['date']})"),
        (
            "Reproduce",
            f"insilico simulate {m['protocol'].get('file')} --seed {m.get('seed')} "
            f"--replicates {m.get('n_replicates')}"
            + "".join(
                f" --vary {k}={','.join(f'{v:g}' for v in vals)}"
                for k, vals in (m.get("grid") or {}).items()
            ),
        ),
    ]
    if m.get("resumed"):
        items.append(("Resumed", "; ".join(str(r.get("at")) for r in m["resumed"])))
    timings = m.get("timings") or {}
    if timings:
        items.append(
            (
                "Timings",
                ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in timings.items()
                ),
            )
        )
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
            "Package versions (run; report-only packages marked)",
            ["Package", "Version"],
            versions,
            css="facts",
        )
    )
    inputs = [[path, digest] for path, digest in (m.get("inputs") or {}).items()]
    section.add(
        Table(
            "Input files and their SHA-256",
            ["File", "SHA-256"],
            [[str(m["protocol"].get("file")), recorded or "\u2013"], *inputs],
            css="hashes",
        )
    )
    return section


def dataset_appendix(datasets) -> Section:
    section = Section("appendix-datasets", "Analysis dataset metadata")
    if not datasets:
        section.add(Paragraph("No datasets were written.", css="omitted"))
    for dataset in datasets:
        rows = [
            [v["variable"], v["label"], v["type"], str(v["length"]), v["origin"], v["comment"]]
            for v in dataset.variable_metadata()
        ]
        section.add(
            Table(
                f"{dataset.name}: {dataset.label} ({dataset.structure}; keys "
                f"{', '.join(dataset.keys)}; {len(dataset.data)} records)",
                ["Variable", "Label", "Type", "Length", "Origin", "Comment"],
                rows,
                css="metadata",
            )
        )
    return section


def protocol_appendix(run: RunData) -> Section:
    section = Section("appendix-protocol", "The protocol as run")
    section.add(
        Paragraph("protocol.yaml of the run directory, verbatim."), Preformatted(run.protocol_text)
    )
    return section
