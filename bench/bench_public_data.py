"""Virtual-patient generators on public data sets, validated against an honest holdout.

For each data set that a dependency ships (lifelines' GBSG2 breast-cancer trial, 686
patients, and the Rossi recidivism study, 432 released prisoners) and each generator kind
named on the command line, for several seeds:

1. the real rows are split at random, half for training and half held out. 50/50 rather
   than 70/30 because the fidelity target compares the virtual cohort with the holdout
   against the training rows with the holdout: with equal halves (and as many virtual as
   training rows) both comparisons have the same sampling noise, and the detection test
   and the privacy threshold each get a few hundred real rows;
2. the generator is configured from the roles of the columns
   (``REGISTRY[kind].for_data(DataRoles.of(training), seed=seed)``) and fitted on the
   training half only;
3. it draws as many virtual patients as training rows (on the first seed also five
   times as many);
4. the cohort is validated:

   * **fidelity** against the holdout (``column_shape_score`` and ``pair_trend_score``
     averaged as in :func:`generators.validation.validate_cohort`), next to the same score
     of the real training half against the holdout (the reference);
   * **detection**: ``validate_cohort(holdout, virtual)``'s classifier two-sample test,
     so the classifiers never see a row the generator learnt from; the same test of the
     real training half against the holdout is the noise floor;
   * **privacy** and **utility**: ``validate_cohort(real, virtual, holdout=...)`` with the
     holdout mask, so distances are measured to the training rows, the threshold is the
     5th percentile of the holdout's distances to them, the membership attack tells
     training from holdout rows, and the Cox models are tested on the holdout;
   * per column, the cross-validated AUC of gradient boosting on that column alone
     (what gives the virtual rows away).

Each generator is also run with the privacy filter of ``insilico generate --real``
(:func:`generators.validation.similarity_filter` against the training rows, topped up to
the same number of virtual patients).

Targets (from the issue): fidelity at least the reference; gradient-boosting detection AUC
at most 0.60; at most 3 % of virtual rows closer to a training row than the 5th
percentile of the holdout's distances; train-on-virtual C-index at least 0.95 times
train-on-real. A target is met when the mean over the seeds meets it.

Usage: ``python3 bench/bench_public_data.py [--generators copula,...] [--seeds 5]``;
results go to bench/output/bench_public_data.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUTPUT = HERE / "output"

HOLDOUT_FRACTION = 0.5
LARGE_MULTIPLE = 5
TARGETS = {
    "detection_auc_gradient_boosting": ("<=", 0.60),
    "share_close": ("<=", 0.03),
    "utility_ratio": (">=", 0.95),
}
FILTER = "similarity filter"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    loader: str  # lifelines.datasets function
    time: str
    event: str
    arm: str | None


DATASETS = (
    Dataset(
        "gbsg2", "GBSG2 breast cancer trial (lifelines)", "load_gbsg2", "time", "cens", "horTh"
    ),
    Dataset("rossi", "Rossi recidivism study (lifelines)", "load_rossi", "week", "arrest", "fin"),
)


def load(dataset: Dataset) -> pd.DataFrame:
    """The data set with a data dictionary (inferred, then the roles set) in its attrs."""
    from lifelines import datasets

    from generators.data import ColumnSpec, DataDictionary, infer_dictionary

    frame = getattr(datasets, dataset.loader)()
    roles = {dataset.time: "time", dataset.event: "event"}
    if dataset.arm is not None:
        roles[dataset.arm] = "arm"
    columns = []
    for spec in infer_dictionary(frame).columns:
        fields = spec.model_dump()
        fields["role"] = roles.get(
            spec.name, "covariate" if spec.role in roles.values() else spec.role
        )
        if fields["role"] == "event":
            fields.update(type="binary", minimum=None, maximum=None, categories=None)
        columns.append(ColumnSpec(**fields))
    frame.attrs["dictionary"] = DataDictionary(columns=columns)
    return frame


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    """Columns compared as categories: the dictionary's binary, categorical and ordinal."""
    dictionary = frame.attrs["dictionary"]
    return [c.name for c in dictionary.columns if c.type in ("binary", "categorical", "ordinal")]


def fidelity(reference: pd.DataFrame, other: pd.DataFrame, categorical: list[str]) -> float:
    """Mean of the mean column shape and the mean pair trend of ``other`` against
    ``reference`` (as validate_cohort's fidelity_score, with any reference rows)."""
    from generators.validation import column_shape_score, pair_trend_score

    shapes = [
        column_shape_score(reference[c], other[c], categorical=c in categorical)
        for c in reference.columns
    ]
    trends = [
        pair_trend_score(reference, other, pair, categorical=categorical)
        for pair in combinations(reference.columns, 2)
    ]
    return (float(np.mean(shapes)) + float(np.mean(trends))) / 2.0


def column_detection(
    holdout: pd.DataFrame, virtual: pd.DataFrame, categorical: list[str], seed: int
) -> dict[str, float]:
    """Per column, the 5-fold ROC AUC of gradient boosting on that column alone."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    n = min(len(holdout), len(virtual))
    gen = np.random.default_rng(seed)
    real = holdout.iloc[np.sort(gen.choice(len(holdout), n, replace=False))]
    fake = virtual.iloc[np.sort(gen.choice(len(virtual), n, replace=False))]
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    out = {}
    for column in holdout.columns:
        both = pd.concat([real[column], fake[column]], ignore_index=True)
        if column in categorical:
            x = pd.get_dummies(both.astype(str)).to_numpy(dtype=float)
        else:
            x = both.to_numpy(dtype=float)[:, None]
        model = HistGradientBoostingClassifier(random_state=seed)
        with threadpool_limits(limits=1, user_api="openmp"):
            scores = cross_val_score(model, x, y, cv=folds, scoring="roc_auc")
        out[column] = float(scores.mean())
    return out


def share_identical(rows: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of ``rows`` identical, in every column, to some row of ``reference``."""
    keys = set(reference.astype(str).itertuples(index=False, name=None))
    return float(
        np.mean([key in keys for key in rows.astype(str).itertuples(index=False, name=None)])
    )


def draw(generator, n: int, rng: np.random.Generator, training, categorical, seed):
    """``n`` virtual patients, through the privacy filter when ``training`` is given."""
    from generators.validation import similarity_filter

    if training is None:
        return generator.sample(n, rng=rng), 0
    kept, n_dropped = [], 0
    for _ in range(20):
        batch = generator.sample(max(100, math.ceil(1.25 * (n - sum(map(len, kept))))), rng=rng)
        batch = batch[list(training.columns)]
        filtered, dropped = similarity_filter(training, batch, categorical=categorical, rng=seed)
        kept.append(filtered)
        n_dropped += dropped
        if sum(map(len, kept)) >= n:
            break
    virtual = pd.concat(kept, ignore_index=True)
    if len(virtual) < n:
        raise RuntimeError(f"the privacy filter kept {len(virtual)} of the {n} rows wanted")
    return virtual.iloc[:n].reset_index(drop=True), n_dropped


def quietly(function, *args, **kwargs):
    """Call ``function``; its warnings are returned as messages rather than shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


_FLOOR: dict[tuple[str, int], Any] = {}  # real training vs holdout, per data set and seed


def evaluate(frame, dataset, kind, seed, multiple, filtered, per_column) -> dict[str, Any]:
    """One fit, draw and validation (see the module docstring)."""
    from generators.base import REGISTRY, DataRoles
    from generators.validation import split_holdout, validate_cohort

    categorical = categorical_columns(frame)
    training, holdout = split_holdout(frame, HOLDOUT_FRACTION, rng=seed)
    training = training.copy()
    training.attrs["dictionary"] = frame.attrs["dictionary"]
    mask = np.zeros(len(frame), dtype=bool)
    mask[frame.index.get_indexer(holdout.index)] = True

    generator = REGISTRY[kind].for_data(DataRoles.of(training), seed=seed)
    start = time.perf_counter()
    _, notes = quietly(generator.fit, training)
    fit_seconds = time.perf_counter() - start
    n_virtual = multiple * len(training)
    start = time.perf_counter()
    (virtual, n_dropped), more = quietly(
        draw,
        generator,
        n_virtual,
        np.random.default_rng([seed, 1]),
        training if filtered else None,
        categorical,
        seed,
    )
    sample_seconds = time.perf_counter() - start
    notes += more
    missing = [c for c in frame.columns if c not in virtual.columns]
    if missing:
        raise RuntimeError(f"the {kind} generator does not produce the columns {missing}")
    virtual = virtual[list(frame.columns)]

    survival = {"time": dataset.time, "event": dataset.event, "categorical": categorical}
    full, more = quietly(validate_cohort, frame, virtual, holdout=mask, rng=seed, **survival)
    notes += more
    honest, more = quietly(validate_cohort, holdout, virtual, rng=seed, **survival)
    notes += more
    key = (dataset.name, seed)
    if key not in _FLOOR:
        _FLOOR[key] = quietly(validate_cohort, holdout, training, rng=seed, **survival)
    floor, more = _FLOOR[key]
    notes += more
    utility = full.utility[0] if full.utility else None
    result = {
        "seed": seed,
        "n_virtual": n_virtual,
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "n_dropped_by_filter": n_dropped,
        "fidelity": fidelity(holdout, virtual, categorical),
        "reference_fidelity": fidelity(holdout, training, categorical),
        "fidelity_vs_training": full.fidelity_score,
        "reference_fidelity_vs_training": full.reference_fidelity_score,
        "detection_auc_gradient_boosting": honest.detection_auc["gradient_boosting"],
        "detection_auc_logistic": honest.detection_auc["logistic"],
        "reference_detection_auc_gradient_boosting": floor.detection_auc["gradient_boosting"],
        "detection_auc_gradient_boosting_all_real": full.detection_auc["gradient_boosting"],
        "share_close": full.share_close_virtual,
        "dcr_threshold": full.dcr_threshold,
        "n_exact_copies": full.n_exact_copies,
        "share_identical_virtual": share_identical(virtual, training),
        "share_identical_holdout": share_identical(holdout, training),
        "membership_auc": full.membership_auc,
        "c_index_trained_on_virtual": utility.trained_on_virtual if utility else math.nan,
        "c_index_trained_on_real": utility.trained_on_real if utility else math.nan,
        "utility_ratio": utility.ratio if utility else math.nan,
        "km_max_difference": full.km_max_difference,
        "hazard_ratio_virtual_vs_real": full.hazard_ratio,
        "notes": sorted(set(notes)),
    }
    if per_column:
        result["column_detection_auc"] = column_detection(holdout, virtual, categorical, seed)
    return result


SUMMARISED = (
    "fidelity",
    "reference_fidelity",
    "fidelity_vs_training",
    "reference_fidelity_vs_training",
    "detection_auc_gradient_boosting",
    "detection_auc_logistic",
    "reference_detection_auc_gradient_boosting",
    "detection_auc_gradient_boosting_all_real",
    "share_close",
    "dcr_threshold",
    "n_exact_copies",
    "share_identical_virtual",
    "share_identical_holdout",
    "membership_auc",
    "c_index_trained_on_virtual",
    "c_index_trained_on_real",
    "utility_ratio",
    "km_max_difference",
    "fit_seconds",
    "sample_seconds",
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over the seeds, and the targets met."""
    summary = {}
    for key in SUMMARISED:
        values = np.array([r[key] for r in runs], dtype=float)
        summary[key] = {
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
        }
    if "column_detection_auc" in runs[0]:
        summary["column_detection_auc"] = {
            c: float(np.mean([r["column_detection_auc"][c] for r in runs]))
            for c in runs[0]["column_detection_auc"]
        }
    met = {"fidelity": summary["fidelity"]["mean"] >= summary["reference_fidelity"]["mean"]}
    seeds_met = {"fidelity": sum(r["fidelity"] >= r["reference_fidelity"] for r in runs)}
    for key, (sense, bound) in TARGETS.items():
        met[key] = _meets(summary[key]["mean"], sense, bound)
        seeds_met[key] = int(sum(_meets(r[key], sense, bound) for r in runs))
    summary["targets_met"] = met
    summary["n_seeds_meeting_target"] = seeds_met
    return summary


def _meets(value: float, sense: str, bound: float) -> bool:
    return bool(value <= bound if sense == "<=" else value >= bound)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else round(float(value), 6)
    return value


def _pm(summary: dict[str, Any], key: str, digits: int = 3) -> str:
    mean, sd = summary[key]["mean"], summary[key]["sd"]
    if mean is None:
        return "n/a"
    if sd is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "# Generators on public data, honest holdout",
        "",
        f"Machine: {results['machine']}",
        "",
        f"Split: {1 - HOLDOUT_FRACTION:.0%} training / {HOLDOUT_FRACTION:.0%} holdout, "
        f"seeds {settings['seeds']}; each generator is fitted on the training rows only and "
        "draws as many virtual patients as training rows. Mean ± SD over the seeds; "
        "`met` says whether the mean meets the issue's target (seeds meeting it in "
        "brackets). Generated by `python3 bench/bench_public_data.py`.",
        "",
        "Fidelity: virtual vs holdout, reference real training vs holdout (target: at "
        "least the reference). Detection: cross-validated ROC AUC of virtual vs holdout "
        "rows (target GB ≤ 0.60; floor: real training vs holdout). Privacy: share of "
        "virtual rows closer to a training row than the 5th percentile of the holdout's "
        "distances (target ≤ 0.03; an oracle drawing new real patients scores 0.05). "
        "Utility: C-index on the holdout of a Cox model fitted to the virtual rows over "
        "that of one fitted to the training rows (target ≥ 0.95).",
        "",
        "| data set | generator | fidelity (ref.) | met | GB AUC (floor) | met | "
        "logistic AUC | share close | met | membership AUC | utility ratio | met | "
        "fit s | sample s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in results["results"]:
        s = entry["summary"]
        met, seeds = s["targets_met"], s["n_seeds_meeting_target"]
        n = len(entry["runs"])
        lines.append(
            f"| {entry['dataset']} | {entry['generator']} | {_pm(s, 'fidelity')} "
            f"({_pm(s, 'reference_fidelity')}) | {_mark(met['fidelity'])} "
            f"[{seeds['fidelity']}/{n}] | {_pm(s, 'detection_auc_gradient_boosting')} "
            f"({_pm(s, 'reference_detection_auc_gradient_boosting')}) | "
            f"{_mark(met['detection_auc_gradient_boosting'])} "
            f"[{seeds['detection_auc_gradient_boosting']}/{n}] | "
            f"{_pm(s, 'detection_auc_logistic')} | {_pm(s, 'share_close')} | "
            f"{_mark(met['share_close'])} [{seeds['share_close']}/{n}] | "
            f"{_pm(s, 'membership_auc')} | {_pm(s, 'utility_ratio')} | "
            f"{_mark(met['utility_ratio'])} [{seeds['utility_ratio']}/{n}] | "
            f"{_pm(s, 'fit_seconds', 2)} | {_pm(s, 'sample_seconds', 2)} |"
        )
    if results["large"]:
        lines += [
            "",
            f"## {LARGE_MULTIPLE} × as many virtual patients (first seed)",
            "",
            "| data set | generator | n virtual | fidelity (ref.) | GB AUC | share close | "
            "utility ratio | sample s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["large"]:
            lines.append(
                f"| {r['dataset']} | {r['generator']} | {r['n_virtual']} | "
                f"{r['fidelity']:.3f} ({r['reference_fidelity']:.3f}) | "
                f"{r['detection_auc_gradient_boosting']:.3f} | {r['share_close']:.3f} | "
                f"{r['utility_ratio']:.3f} | {r['sample_seconds']:.2f} |"
            )
    lines += [
        "",
        "## Detection by single column (gradient boosting on one column, mean over seeds)",
        "",
    ]
    for entry in results["results"]:
        columns = entry["summary"].get("column_detection_auc")
        if columns:
            text = ", ".join(f"{c} {v:.3f}" for c, v in columns.items())
            lines.append(f"- {entry['dataset']}, {entry['generator']}: {text}")
    lines += [
        "",
        "## Privacy threshold",
        "",
    ]
    for entry in results["results"]:
        s = entry["summary"]
        lines.append(
            f"- {entry['dataset']}, {entry['generator']}: 5th-percentile distance "
            f"{_pm(s, 'dcr_threshold')}; share of rows identical to a training row: "
            f"virtual {_pm(s, 'share_identical_virtual')}, real holdout "
            f"{_pm(s, 'share_identical_holdout')}"
        )
    lines += [
        "",
        "## The same through validate_cohort(..., holdout=...)",
        "",
        "Given the holdout, validate_cohort compares the virtual rows with the unseen rows "
        "as above (its detection test draws its own subsample and folds):",
        "",
    ]
    for entry in results["results"]:
        s = entry["summary"]
        lines.append(
            f"- {entry['dataset']}, {entry['generator']}: fidelity "
            f"{_pm(s, 'fidelity_vs_training')} (reference "
            f"{_pm(s, 'reference_fidelity_vs_training')}), GB AUC "
            f"{_pm(s, 'detection_auc_gradient_boosting_all_real')}"
        )
    notes = sorted({n for e in results["results"] for r in e["runs"] for n in r["notes"]})
    if notes:
        lines += ["", "## Warnings raised during the runs", ""]
        lines += [f"- {n}" for n in notes[:20]]
        if len(notes) > 20:
            lines.append(f"- ... and {len(notes) - 20} more (see the JSON)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--generators", default="copula", help="comma-separated generator kinds (default copula)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument(
        "--datasets", default=",".join(d.name for d in DATASETS), help="comma-separated"
    )
    parser.add_argument("--no-filter", action="store_true", help="skip the filtered variant")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="output folder")
    args = parser.parse_args(argv)
    from generators.base import REGISTRY

    kinds = [k.strip() for k in args.generators.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in REGISTRY]
    if unknown:
        parser.error(f"unknown generator kinds {unknown} (known: {', '.join(REGISTRY)})")
    chosen = [d for d in DATASETS if d.name in args.datasets.split(",")]
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "settings": {
            "seeds": seeds,
            "holdout_fraction": HOLDOUT_FRACTION,
            "generators": kinds,
            "datasets": [d.name for d in chosen],
            "large_multiple": LARGE_MULTIPLE,
        },
        "targets": {"fidelity": ">= reference_fidelity", **TARGETS},
        "results": [],
        "large": [],
    }
    for dataset in chosen:
        frame = load(dataset)
        for kind in kinds:
            for filtered in (False,) if args.no_filter else (False, True):
                label = f"{kind} + {FILTER}" if filtered else kind
                runs = []
                for seed in seeds:
                    run = evaluate(frame, dataset, kind, seed, 1, filtered, not filtered)
                    runs.append(run)
                    print(
                        f"{dataset.name} {label} seed {seed}: GB AUC "
                        f"{run['detection_auc_gradient_boosting']:.3f}, share close "
                        f"{run['share_close']:.3f}, fidelity {run['fidelity']:.3f} "
                        f"(ref {run['reference_fidelity']:.3f}), utility "
                        f"{run['utility_ratio']:.3f}",
                        flush=True,
                    )
                results["results"].append(
                    {
                        "dataset": dataset.name,
                        "description": dataset.description,
                        "generator": label,
                        "n_real": len(frame),
                        "runs": runs,
                        "summary": summarise(runs),
                    }
                )
                large = evaluate(frame, dataset, kind, seeds[0], LARGE_MULTIPLE, filtered, False)
                results["large"].append({"dataset": dataset.name, "generator": label, **large})
    results["total_seconds"] = time.perf_counter() - started
    results = _jsonable(results)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_public_data.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "bench_public_data.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
