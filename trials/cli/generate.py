"""Draw virtual patients from a saved generator.

When the generator learned from real data, the real data are needed (``--real``): a
similarity filter drops virtual rows too close to a real patient, and the cohort is
validated against the real data (fidelity, detection, privacy, utility) — the report is
written beside the cohort as ``<name>.validation.json``. ``--where`` keeps patients who
meet eligibility expressions, ``--given`` fixes covariates (a copula conditions on them),
and ``--augment K`` writes the real patients plus ``K`` times as many virtual ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from generators.base import load
from trials.cli.cohort import validate_against_real, write_table, write_text
from trials.exceptions import DataError

NAME = "generate"


def command(
    model: Path = typer.Argument(..., help="Model file written by insilico fit."),
    n_patients: int | None = typer.Option(
        None, "-n", "--n-patients", min=1, help="Virtual patients (or --augment)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="CSV or Parquet file to write."),
    seed: int = typer.Option(0, "--seed", min=0),
    real: Path | None = typer.Option(
        None, "--real", help="The real data: similarity filter and validation."
    ),
    no_filter: bool = typer.Option(False, "--no-filter", help="Skip the similarity filter."),
    no_validation: bool = typer.Option(
        False, "--no-validation", help="Skip the validation report."
    ),
    where: list[str] = typer.Option(
        [], "--where", help="Eligibility expression, e.g. 'age >= 50' (repeatable)."
    ),
    given: list[str] = typer.Option(
        [], "--given", help="Fix a column: NAME=VALUE (repeatable; copula generators)."
    ),
    augment: int | None = typer.Option(
        None, "--augment", min=1, max=100,
        help="Write the real patients and K times as many virtual ones (column 'source').",
    ),
    device: str | None = typer.Option(
        None, "--device", help="torch device of a deep generator: cpu, cuda or auto."
    ),
    covariates: Path | None = typer.Option(
        None, "--covariates",
        help="Patients whose outcomes a Bayesian model draws (e.g. a copula's virtual "
        "cohort); one virtual patient per row.",
    ),
) -> None:
    import generators  # noqa: F401  (registers the generators)
    from generators.data import load_dataset
    from generators.privacy import similarity_filter
    from trials.cli.fit import user_settings

    generator = load(model)
    if device is not None:
        if not hasattr(generator, "device"):
            raise DataError(f"--device: a {generator.kind} generator does not use torch")
        generator.device = device  # e.g. sample on the CPU a model trained on a GPU
    learned = generator.learns_from_data
    if learned and real is None and not (no_filter and no_validation):
        raise DataError(
            "the similarity filter and the validation need the real data: give --real DATA "
            "(or --no-filter --no-validation)"
        )
    if augment is not None and real is None:
        raise DataError("--augment needs the real data: give --real DATA")
    reference = load_dataset(real) if real is not None else None
    given_patients = None
    if covariates is not None:
        if "covariates" not in _parameters(generator.sample):
            raise DataError(f"--covariates: a {generator.kind} generator draws its own patients")
        if where or given or augment is not None:
            raise DataError("--covariates goes without --where, --given and --augment")
        given_patients = load_dataset(covariates)
        n_patients = n_patients or len(given_patients)
        if n_patients != len(given_patients):
            raise DataError(f"-n {n_patients}: {covariates} has {len(given_patients)} patients")
    if (n_patients is None) == (augment is None):
        raise DataError("give the number of virtual patients (-n) or --augment K, one of them")
    n = n_patients if augment is None else augment * len(reference)
    with user_settings(generator.kind):
        if given_patients is not None:
            # covariates (and treatment, when the file has it) from the file, e.g. a
            # copula's cohort; outcomes from the posterior predictive
            arm = getattr(generator, "treatment", None)
            treatment = given_patients[arm] if arm in given_patients else None
            drawn = generator.sample(
                n, rng=seed, covariates=given_patients, treatment=treatment
            )
            virtual = given_patients.reset_index(drop=True).assign(
                **{c: drawn[c].to_numpy() for c in drawn.columns}
            )
            predicate = None
        else:
            virtual, predicate = _draw(generator, n, seed, where, given, reference)
    if learned and not no_filter:
        columns = [c for c in virtual.columns if c in reference.columns]
        kept, n_dropped = similarity_filter(reference[columns], virtual[columns])
        virtual = virtual.loc[kept.index].reset_index(drop=True)
        typer.echo(f"similarity filter: dropped {n_dropped} of {n} virtual patients")
    report = None
    if learned and not no_validation:
        # against the real patients who meet the same conditions
        comparable = reference
        if predicate is not None:
            comparable = comparable[predicate(comparable)]
        for name, value in _conditions(given).items():
            comparable = comparable[comparable[name].astype(str) == str(value)]
        uncensored = _uncensored_outcomes(generator)
        if uncensored:
            # the distributions of uncensored times and events are not those of censored
            # real data; their survival is (under independent censoring)
            report = _validation(
                comparable.drop(columns=uncensored, errors="ignore"),
                virtual.drop(columns=uncensored),
                seed,
            )
            report["not_compared"] = {
                "columns": uncensored,
                "reason": "the model draws event times without censoring (censoring belongs "
                "to the trial design), so their distributions are not compared with censored "
                "real data; their survival is, under 'survival'",
            }
            report["survival"] = _survival(comparable, virtual, *uncensored)
        else:
            report = _validation(comparable, virtual, seed)
    table = virtual
    if augment is not None:
        table = pd.concat(
            [reference.assign(source="real"), virtual.assign(source="virtual")],
            ignore_index=True,
        )
    write_table(table, out)
    typer.echo(f"wrote {len(virtual)} virtual patients to {out}")
    if report is not None:
        path = out.with_suffix(".validation.json")
        write_text(json.dumps(report, indent=2, default=float) + "\n", path)
        typer.echo(f"wrote the validation report {path}")


def _draw(generator, n: int, seed: int, where, given, reference):
    """The virtual patients, and the row filter of ``where`` (``None`` without)."""
    conditions = _conditions(given)
    rng = np.random.default_rng(seed)
    if conditions:
        if "conditions" not in _parameters(generator.sample):
            raise DataError(f"--given: a {generator.kind} generator cannot fix columns")
        sample = lambda m, r: generator.sample(m, rng=r, conditions=conditions)  # noqa: E731
    else:
        sample = lambda m, r: generator.sample(m, rng=r)  # noqa: E731
    if not where:
        return sample(n, rng), None
    from generators.base import sample_where

    # the levels of categorical columns: from the real data, else from a pilot sample
    example = sample(5000, np.random.default_rng(0))
    if reference is not None:
        example = reference[[c for c in example.columns if c in reference.columns]]
    predicate = _predicate(where, example)
    return sample_where(sample, n, predicate, rng), predicate


def _validation(reference: pd.DataFrame, virtual: pd.DataFrame, seed: int) -> dict:
    """The validation report, or why there is none (recorded, not silent)."""
    try:
        result = validate_against_real(reference, virtual, seed=seed)
    except DataError as exc:
        typer.echo(f"validation not done: {exc}")
        return {"validated": False, "reason": str(exc)}
    summary = result.summary()
    auc = summary.loc[("detection", "auc gradient_boosting"), "value"]
    fidelity = summary.loc[("fidelity", "fidelity_score")]
    typer.echo(
        f"validation: fidelity {fidelity['value']:.3f} (holdout {fidelity['reference']:.3f}), "
        f"detection AUC {auc:.3f}, share closer than the real 5th percentile "
        f"{result.share_close_virtual:.3f}"
    )
    return {"validated": True} | result.to_dict()


def _survival(real: pd.DataFrame, virtual: pd.DataFrame, time: str, event: str) -> dict:
    """Kaplan–Meier and Cox comparison of uncensored virtual event times with the real
    patients (:func:`generators.validation.survival_agreement`), printed in one line."""
    from generators.validation import survival_agreement

    if time not in real.columns or event not in real.columns:
        typer.echo(f"survival not compared: the real data lack {time!r} or {event!r}")
        return {"compared": False, "reason": f"the real data lack {time!r} or {event!r}"}
    result = survival_agreement(real, virtual, time=time, event=event)
    typer.echo(
        f"survival: Kaplan-Meier max difference {result['km_max_difference']:.3f} over "
        f"the real follow-up ({result['km_follow_up']:g}), hazard ratio virtual vs real "
        f"{result['hazard_ratio']:.2f} ({result['hazard_ratio_lower']:.2f}-"
        f"{result['hazard_ratio_upper']:.2f})"
    )
    return {"compared": True, **result}


def _uncensored_outcomes(generator) -> list[str]:
    """The time and event columns of a model that draws uncensored event times."""
    from generators.bayesian import BayesianSurvival

    if isinstance(generator, BayesianSurvival):
        return [generator.time, generator.event]
    return []


def _conditions(given: list[str]) -> dict:
    """``NAME=VALUE`` pairs; a value is a number when it reads as one, else text."""
    out = {}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise DataError(f"--given {item!r}: write NAME=VALUE")
        try:
            value = float(text)
            out[name] = int(value) if value.is_integer() and "." not in text else value
        except ValueError:
            out[name] = text
    return out


def _predicate(where: list[str], example: pd.DataFrame):
    """A row filter from eligibility expressions over the generated columns."""
    from trials.expressions import parse_expression

    levels = {
        name: [str(v) for v in _levels(example[name])]
        for name in example.columns
        if not pd.api.types.is_numeric_dtype(example[name])
        or pd.api.types.is_bool_dtype(example[name])
    }
    numeric = [c for c in example.columns if c not in levels]
    expressions = []
    for text in where:
        try:
            expressions.append(parse_expression(text, numeric, levels))
        except ValueError as exc:
            raise DataError(f"--where {text!r}: {exc}") from None

    def predicate(frame: pd.DataFrame) -> np.ndarray:
        columns = {name: frame[name].to_numpy(dtype=float) for name in numeric}
        for name in levels:
            values = frame[name].astype(str)
            codes = pd.Categorical(values, categories=levels[name]).codes
            columns[name] = codes
        keep = np.ones(len(frame), dtype=bool)
        for expression in expressions:
            keep &= expression.evaluate(columns)
        return keep

    return predicate


def _levels(column: pd.Series) -> list:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return list(column.cat.categories)
    return sorted(column.dropna().astype(str).unique())


def _parameters(function) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)
