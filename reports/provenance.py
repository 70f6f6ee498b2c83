"""Provenance of a run's virtual population: the model files it used and their checks.

A run uses a generator when its protocol draws baseline covariates from a fitted model
(``population.generator.model``) or the treatment effect from a model's posterior
(``effect.log_hazard_ratio_distribution.model``, ``log_odds_ratio_distribution`` or
``mean_difference_distribution``). For each model file this gathers what the file itself
records — kind, settings, the SHA-256, size and columns of the data it was fitted on, the
package version, fit diagnostics (a Bayesian model's R-hat, ESS and divergences; a
copula's latent correlation) — and whether the file still has the SHA-256 the run
recorded. Cohort validation reports (``<cohort>.validation.json`` written by
``insilico generate``, the :class:`generators.validation.CohortValidation` of a virtual
cohort) are read as they are: the fidelity, detection, privacy and utility metrics.

When the real data are given, virtual patients are drawn from the (copula) population
model with a fixed seed for the marginal overlays, correlation heatmaps and Kaplan–Meier
curves of real against virtual patients; these figures are descriptive (no test).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trials.exceptions import InsilicoError, RunDirectoryError
from trials.protocol import Protocol, effect_distribution
from trials.run import file_sha256

#: Seed of the virtual patients drawn for the real-versus-virtual figures.
FIGURE_SEED = 20_260_101


@dataclass(frozen=True)
class ModelFile:
    """A model file a run used, as recorded in the file."""

    role: str
    path: str
    recorded_sha256: str | None
    sha256: str | None  # now; None when the file is gone
    kind: str | None
    package_version: str | None
    params: dict
    data: dict  # sha256, n_rows, columns of the data it was fitted on
    diagnostics: dict
    correlation: pd.DataFrame | None
    covariates: list[str]
    problem: str | None = None

    @property
    def unchanged(self) -> bool | None:
        if self.recorded_sha256 is None or self.sha256 is None:
            return None
        return self.recorded_sha256 == self.sha256


@dataclass(frozen=True)
class ValidationReport:
    """A cohort validation report (JSON) and where it came from."""

    path: str
    sha256: str
    source: str  # "given" or "beside the model file"
    content: dict

    @property
    def validated(self) -> bool:
        return bool(self.content.get("validated", "fidelity_score" in self.content))

    def metrics(self) -> pd.DataFrame:
        """Domain, metric, value, reference and what the reference is (as
        :meth:`generators.validation.CohortValidation.summary`)."""
        c = self.content
        h, i, r = "real holdout", "ideal", "trained on real"
        rows = [
            ("fidelity", name.replace("_", " "), c.get(name), c.get(f"reference_{name}"), h)
            for name in ("column_shape_score", "pair_trend_score", "fidelity_score")
        ]
        if c.get("km_max_difference") is not None:
            rows += [
                ("survival", "KM max difference", c.get("km_max_difference"), 0.0, i),
                ("survival", "KM integrated difference", c.get("km_integrated_difference"), 0.0, i),
                ("survival", "hazard ratio virtual/real", c.get("hazard_ratio"), 1.0, i),
            ]
        for name, auc in (c.get("detection_auc") or {}).items():
            se = (c.get("detection_auc_se") or {}).get(name)
            label = f"detection AUC {name.replace('_', ' ')}"
            rows.append(("detection", label + (f" (SE {se:.3f})" if se else ""), auc, 0.5, i))
        rows += [
            ("privacy", "median DCR", c.get("dcr_virtual_median"), c.get("dcr_holdout_median"), h),
            (
                "privacy",
                "median NNDR",
                c.get("nndr_virtual_median"),
                c.get("nndr_holdout_median"),
                h,
            ),
            (
                "privacy",
                "share closer than the 5th percentile",
                c.get("share_close_virtual"),
                c.get("share_close_holdout"),
                h,
            ),
            ("privacy", "exact copies", c.get("n_exact_copies"), 0, i),
            ("privacy", "membership-inference AUC", c.get("membership_auc"), 0.5, i),
        ]
        for u in c.get("utility") or []:
            rows.append(
                (
                    "utility",
                    f"{u['metric']} (train on virtual)",
                    u.get("trained_on_virtual"),
                    u.get("trained_on_real"),
                    r,
                )
            )
        return pd.DataFrame(rows, columns=["domain", "metric", "value", "reference", "versus"])


@dataclass(frozen=True)
class Provenance:
    """Everything the report says about the virtual population."""

    models: list[ModelFile]
    validations: list[ValidationReport]
    real_data: dict | None = None  # path, sha256, n_rows, columns
    real: pd.DataFrame | None = None
    virtual: pd.DataFrame | None = None
    time_event: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return bool(self.models)

    @property
    def population(self) -> bool:
        """Whether virtual patients from a fitted model enter the trials."""
        return any(m.role.startswith("population") for m in self.models)


def model_paths(protocol: Protocol) -> list[tuple[str, str, list[str]]]:
    """``(role, path, covariates)`` of every model file the protocol names."""
    out = []
    spec = protocol.population.generator
    if spec is not None:
        out.append(
            ("population generator (baseline covariates)", spec.model, list(spec.covariates))
        )
    for endpoint in [protocol.endpoints.primary, *protocol.endpoints.secondary]:
        spread = effect_distribution(endpoint)
        if spread is not None and spread.model is not None:
            out.append((f"treatment-effect posterior ({endpoint.name})", spread.model, []))
    return out


def read_model(role: str, path: str, covariates: list[str], recorded: str | None) -> ModelFile:
    """The provenance a model file records about itself."""
    from generators.base import from_jsonable

    file = Path(path)
    if not file.is_file():
        return ModelFile(
            role,
            path,
            recorded,
            None,
            None,
            None,
            {},
            {},
            {},
            None,
            covariates,
            "the model file is no longer there",
        )
    digest = file_sha256(file)
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return ModelFile(
            role,
            path,
            recorded,
            digest,
            None,
            None,
            {},
            {},
            {},
            None,
            covariates,
            f"cannot read the model file ({exc})",
        )
    state = content.get("state") or {}
    diagnostics = dict(state.get("diagnostics") or {})
    correlation = None
    if content.get("kind") == "copula" and "correlation" in state:
        matrix = np.asarray(from_jsonable(state["correlation"]), dtype=float)
        columns = list((content.get("params") or {}).get("columns") or [])
        names = [m.get("name", f"v{k}") for k, m in enumerate(state.get("marginals", []))]
        names = names if len(names) == len(matrix) else columns
        if len(names) != len(matrix):
            names = [f"column {k + 1}" for k in range(len(matrix))]
        correlation = pd.DataFrame(matrix, index=names, columns=names)
        if state.get("correlation_projected"):
            diagnostics["correlation_projected"] = True
    return ModelFile(
        role,
        path,
        recorded,
        digest,
        content.get("kind"),
        content.get("package_version"),
        dict(content.get("params") or {}),
        dict(content.get("data") or {}),
        diagnostics,
        correlation,
        covariates,
    )


def read_validation(path: str | os.PathLike, source: str) -> ValidationReport:
    file = Path(path)
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirectoryError(f"{file}: cannot read the validation report ({exc})") from None
    if not isinstance(content, dict) or not (
        "fidelity_score" in content or content.get("validated") is False
    ):
        raise RunDirectoryError(
            f"{file}: not a cohort validation report (written by insilico generate or "
            "insilico validate-cohort)"
        )
    return ValidationReport(str(file), file_sha256(file), source, content)


def gather(
    protocol: Protocol,
    recorded: dict[str, str],
    validations: list[str | os.PathLike] = (),
    real_data: str | os.PathLike | None = None,
) -> Provenance:
    """The provenance of a run's virtual population (see the module docstring)."""
    models = [
        read_model(role, path, covariates, recorded.get(path))
        for role, path, covariates in model_paths(protocol)
    ]
    reports = [read_validation(p, "given with --validation") for p in validations]
    given = {Path(r.path).resolve() for r in reports}
    for model in models:
        folder = Path(model.path).parent
        beside = sorted(folder.glob(f"{Path(model.path).stem}*.validation.json"))
        beside = beside or sorted(folder.glob("*.validation.json"))
        for path in beside:
            if path.resolve() not in given:
                given.add(path.resolve())
                reports.append(read_validation(path, "found beside the model file"))
    notes: list[str] = []
    real = virtual = info = time_event = None
    if real_data is not None:
        real, virtual, info, time_event = _real_and_virtual(models, real_data, notes)
    return Provenance(models, reports, info, real, virtual, time_event, notes)


def _real_and_virtual(models: list[ModelFile], path, notes: list[str]):
    """The real data and as many virtual patients from the population model."""
    import generators  # noqa: F401  (registers the generators)
    from generators.base import load
    from generators.data import load_dataset

    real = load_dataset(path)
    info = {
        "path": str(path),
        "sha256": file_sha256(path),
        "n_rows": len(real),
        "columns": [str(c) for c in real.columns],
    }
    dictionary = real.attrs.get("dictionary")
    time_event = None
    if dictionary is not None:
        time, event = dictionary.by_role("time"), dictionary.by_role("event")
        if time is not None and event is not None:
            time_event = (time.name, event.name)
        ident = dictionary.by_role("id")
        if ident is not None:
            real = real.drop(columns=[ident.name])
    population = next((m for m in models if m.role.startswith("population")), None)
    if population is None or population.sha256 is None:
        notes.append("real data given, but the run has no population model to draw from")
        return real, None, info, time_event
    try:
        generator = load(population.path)
        virtual = generator.sample(len(real), rng=np.random.default_rng(FIGURE_SEED))
    except (InsilicoError, ImportError) as exc:
        notes.append(f"virtual patients for the figures could not be drawn: {exc}")
        return real, None, info, time_event
    return real, virtual, info, time_event
