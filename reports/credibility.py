"""Model credibility assessment of a simulation, in the terms of the FDA's 2025 draft
guidance on AI to support regulatory decision-making (its seven steps) and, for the
mechanistic parts, of ASME V&V 40.

The report fills what the run's facts establish — the question of interest and context of
use it proposes from the protocol, the checks the run allows (Monte Carlo precision,
agreement with a closed form, type I error, bias, coverage, the validation of the virtual
population, unchanged inputs, reproducibility) with their results — and marks the
judgements that belong to the sponsor (model influence, decision consequence, acceptance
criteria, adequacy) as fields to complete.

References
----------
FDA (2025). Considerations for the use of artificial intelligence to support regulatory
decision-making for drug and biological products. Draft guidance, January 2025.
ASME (2018). V&V 40: Assessing credibility of computational modeling through verification
and validation: application to medical devices.
FDA (2023). Assessing the credibility of computational modeling and simulation in medical
device submissions. Guidance.
"""

from __future__ import annotations

import math

from reports import describe
from reports.document import Callout, Definitions, Paragraph, Section, Table, num
from reports.provenance import Provenance
from reports.run_data import RunData

SPONSOR = "SPONSOR TO COMPLETE"
DASH = "\u2013"
#: A simulated value within this many Monte Carlo SEs of its reference "agrees".
Z_AGREEMENT = 3.0
MECHANISTIC_KINDS = ("tumour_growth", "mechanistic")


def question_of_interest(run: RunData) -> str:
    p = run.protocol
    primary = p.endpoints.primary
    sided = "one" if p.analysis.sided == 1 else "two"
    what = (
        "probability of success (assurance), given the current evidence on the effect,"
        if run.is_assurance
        else "power"
    )
    return (
        f"Does the design of {p.id} ({p.population.n_patients} patients, "
        f"{describe.allocation(p)}, analysis {describe.timing(p)}) have an adequate {what} "
        f"for {primary.name} ({primary.estimand.variable or primary.name}) while controlling the "
        f"type I error at {p.analysis.alpha} ({sided}-sided)?"
    )


def context_of_use(run: RunData, provenance: Provenance) -> str:
    text = (
        "The simulation model — the data-generating mechanisms and pre-specified analysis of "
        "this report — is used to estimate the design's operating characteristics in support "
        "of the choice of design (sample size, events, interim plan). It does not replace the "
        "trial's data: the efficacy conclusion rests on the conducted trial."
    )
    if provenance.used:
        roles = "; ".join(f"{m.role} ({m.kind or 'unknown kind'})" for m in provenance.models)
        text += (
            f" Fitted models feed the simulation: {roles}; their outputs shape the "
            "simulated population or effect, not the analysis of real patients."
        )
    return text


def _primary_rows(run: RunData, scenario: str) -> list[dict]:
    return [
        r
        for r in run.summary["operating_characteristics"]
        if r["scenario"] == scenario
        and r["endpoint"] == run.summary["primary_endpoint"]
        and r["arm"] != "any"
    ]


def credibility_activities(run: RunData, provenance: Provenance) -> list[list[str]]:
    """Activity, evidence from this run, result, status."""
    rows = []
    r = run.summary["n_replicates"]
    mcses = [
        x["rejection_mcse"]
        for x in run.summary["operating_characteristics"]
        if x.get("rejection_mcse") is not None
    ]
    rows.append(
        [
            "Code verification",
            "The library's test suite checks each statistical routine against an independent "
            "reference (published tables, closed forms, rpact, lifelines, statsmodels).",
            f"insilico-trials {run.manifest.get('versions', {}).get('insilico-trials', '?')} "
            "(not re-run by the report)",
            "documented",
        ]
    )
    rows.append(
        [
            "Calculation verification (Monte Carlo precision)",
            f"{r:,} trials per scenario; independent random stream per trial.",
            f"largest MCSE of a rejection rate {num(max(mcses) if mcses else None, 4)}",
            f"{SPONSOR}: is this precision adequate?",
        ]
    )
    analytic = run.summary.get("analytic")
    if analytic:
        key = "assurance" if run.is_assurance else "power"
        cell = next(iter(run.summary["primary"].get(key, {}).values()), None)
        if cell and cell.get("mcse"):
            z = (cell["rate"] - analytic["power"]) / cell["mcse"]
            rows.append(
                [
                    "Agreement with a closed form",
                    f"{analytic['method']}: {key} at {analytic['events']} events, "
                    f"{num(analytic['power'], 4)}",
                    f"simulated {num(cell['rate'], 4)} (MCSE {num(cell['mcse'], 4)}); "
                    f"z = {num(z, 2)}",
                    "agrees"
                    if abs(z) < Z_AGREEMENT
                    else f"differs by more than {Z_AGREEMENT:g} MCSE",
                ]
            )
    else:
        rows.append(
            [
                "Agreement with a closed form",
                "no closed form applies to this design",
                "\u2013",
                "not applicable",
            ]
        )
    alpha = run.summary.get("alpha")
    for row in _primary_rows(run, "null"):
        rate, mcse = row["rejection_rate"], row["rejection_mcse"]
        z = (rate - alpha) / mcse if mcse else (0.0 if rate <= alpha else math.inf)
        rows.append(
            [
                f"Type I error control ({row['arm']})",
                f"null scenario, nominal alpha {alpha}",
                f"{num(rate, 4)} (MCSE {num(mcse, 4)}) [{num(row['rejection_ci_lower'], 4)}, "
                f"{num(row['rejection_ci_upper'], 4)}]",
                "controlled" if z < Z_AGREEMENT else "ABOVE the nominal level",
            ]
        )
    for row in _primary_rows(run, "design"):
        bias, mcse = row.get("estimate_bias"), row.get("estimate_bias_mcse")
        if bias is None or not mcse:
            continue
        z = bias / mcse
        rows.append(
            [
                f"Estimator bias ({row['arm']})",
                f"design scenario, {row['scale']}",
                f"bias {num(bias, 4, True)} (MCSE {num(mcse, 4)}); z = {num(z, 2)}",
                "no detectable bias"
                if abs(z) < Z_AGREEMENT
                else "detectable bias (see non-collapsibility in the estimation table)",
            ]
        )
        coverage, cmcse = row.get("estimate_coverage"), row.get("estimate_coverage_mcse")
        if coverage is not None and cmcse:
            z = (coverage - 0.95) / cmcse
            rows.append(
                [
                    f"CI coverage ({row['arm']})",
                    "design scenario, nominal 0.95",
                    f"{num(coverage, 3)} (MCSE {num(cmcse, 3)})",
                    "nominal" if abs(z) < Z_AGREEMENT else "differs from 0.95",
                ]
            )
    if provenance.used:
        changed = [m.path for m in provenance.models if m.unchanged is False or m.sha256 is None]
        rows.append(
            [
                "Input provenance",
                "SHA-256 of each model file, recorded by the run and recomputed",
                "changed or missing: " + ", ".join(changed) if changed else "all unchanged",
                "FAILED" if changed else "verified",
            ]
        )
        for model in provenance.models:
            d = model.diagnostics
            if "max_rhat" not in d:
                continue
            rows.append(
                [
                    f"Posterior convergence ({model.kind})",
                    "R-hat, bulk and tail ESS, divergences (ArviZ), recorded in the model file",
                    f"max R-hat {num(d.get('max_rhat'), 3)}; min ESS bulk "
                    f"{num(d.get('min_ess_bulk'), 0)}, tail {num(d.get('min_ess_tail'), 0)}; "
                    f"divergences {d.get('n_divergences', DASH)}",
                    "converged" if d.get("converged") else "NOT converged",
                ]
            )
        if provenance.validations or not provenance.population:
            for v in provenance.validations:
                c = v.content
                if not v.validated:
                    rows.append(
                        ["Virtual population validation", v.path, "not validated", "missing"]
                    )
                    continue
                auc = c.get("detection_auc") or {}
                rows.append(
                    [
                        "Virtual population validation",
                        v.path,
                        f"fidelity {num(c.get('fidelity_score'), 3)} (holdout "
                        f"{num(c.get('reference_fidelity_score'), 3)}); detection AUC "
                        + ", ".join(f"{k} {num(a, 3)}" for k, a in auc.items())
                        + f"; membership AUC {num(c.get('membership_auc'), 3)}",
                        f"{SPONSOR}: acceptance criteria",
                    ]
                )
        else:
            rows.append(
                ["Virtual population validation", "no validation report", "\u2013", "missing"]
            )
    rows.append(
        [
            "Reproducibility",
            "seed, protocol hash, package versions and command recorded "
            "in the run manifest; the example trial is re-drawn from the seed",
            f"seed {run.summary['seed']}",
            "documented",
        ]
    )
    return rows


def credibility_section(run: RunData, provenance: Provenance) -> Section:
    section = Section("credibility", "Model credibility assessment")
    section.add(
        Paragraph(
            "Following the seven steps of the FDA draft guidance on AI to support regulatory "
            "decision-making (2025). Filled from the run where the run establishes a fact; fields "
            f"marked '{SPONSOR}' are judgements for the sponsor."
        )
    )
    section.child("question", "Step 1: question of interest").add(
        Paragraph(question_of_interest(run)),
        Callout(
            SPONSOR,
            "Confirm or restate the question of interest, and the target power or "
            "assurance that answers it.",
        ),
    )
    section.child("context", "Step 2: context of use").add(
        Paragraph(context_of_use(run, provenance)),
        Callout(
            SPONSOR,
            "Other evidence that will inform the decision, and the model's role relative to it.",
        ),
    )
    influence = (
        "medium (proposed): the simulation informs the design, the trial's own data decide efficacy"
    )
    if provenance.used:
        influence = (
            "medium to high (proposed): fitted models shape the simulated population "
            "or effect on which the design decision rests"
        )
    risk = section.child("risk", "Step 3: model risk = model influence × decision consequence")
    risk.add(
        Table(
            "Model risk",
            ["Factor", "Assessment"],
            [
                [
                    "Model influence (contribution of the model relative to other evidence)",
                    f"{influence} \u2014 {SPONSOR}",
                ],
                [
                    "Decision consequence (of an incorrect decision based on the model)",
                    f"{SPONSOR} (e.g. an underpowered trial exposes patients without a reliable "
                    "answer; an inflated type I error risks a false efficacy claim)",
                ],
                ["Model risk (low / medium / high)", SPONSOR],
            ],
            css="facts",
        ),
        Table(
            "Risk matrix (influence × consequence)",
            ["Influence \\ Consequence", "Low", "Medium", "High"],
            [
                ["High", "medium", "high", "high"],
                ["Medium", "low", "medium", "high"],
                ["Low", "low", "low", "medium"],
            ],
            css="matrix",
        ),
    )
    plan = section.child(
        "plan", "Steps 4\u20136: credibility assessment plan, execution and results"
    )
    plan.add(
        Table(
            "Credibility activities and their results in this run",
            ["Activity", "Evidence", "Result", "Status"],
            credibility_activities(run, provenance),
            note=f"'Agrees' / 'controlled': within {Z_AGREEMENT:g} Monte Carlo SEs of the "
            "reference. Deviations from the plan: none recorded by the run.",
        )
    )
    plan.add(
        Callout(
            SPONSOR,
            "Acceptance criteria agreed in advance for each activity, and any "
            "deviation from the plan.",
        )
    )
    section.child("adequacy", "Step 7: adequacy for the context of use").add(
        Callout(
            SPONSOR,
            "Is the model adequate for the context of use? If not: reduce its "
            "influence, add evidence, or change the model.",
        ),
    )
    section.children.append(vv40_section(run, provenance))
    return section


def vv40_section(run: RunData, provenance: Provenance) -> Section:
    section = Section("vv40", "ASME V&V 40 terms for mechanistic parts")
    mechanistic = [m for m in provenance.models if (m.kind or "") in MECHANISTIC_KINDS]
    if not mechanistic:
        section.add(
            Paragraph(
                "This run uses no mechanistic model. The V&V 40 terms below map onto the "
                "statistical data-generating model, for reference.",
                css="omitted",
            )
        )
    parts = ", ".join(f"{m.path} ({m.kind})" for m in mechanistic) or "the simulation model"
    section.add(
        Definitions(
            [
                ("Question of interest", "as step 1"),
                ("Context of use", f"as step 2; computational model: {parts}"),
                ("Model risk", "as step 3"),
                (
                    "Code verification",
                    "the library's reference tests (credibility activity 'Code verification')",
                ),
                (
                    "Calculation verification",
                    "Monte Carlo error of each output (MCSE in every table)",
                ),
                (
                    "Validation: comparator",
                    "closed-form results where they exist; for generated "
                    "populations, the real data (cohort validation)",
                ),
                (
                    "Validation: test samples and conditions",
                    "the scenarios simulated (section 3)"
                    + (
                        " and the real data of the validation report"
                        if provenance.validations
                        else ""
                    ),
                ),
                (
                    "Validation: equivalence of inputs",
                    "model parameters from the protocol and model "
                    "files, with their SHA-256 (Appendix A)",
                ),
                (
                    "Validation: output comparison",
                    "credibility activities table (z-scores against references)",
                ),
                (
                    "Applicability",
                    f"{SPONSOR}: relevance of the validation evidence to the context of use",
                ),
            ]
        )
    )
    return section
