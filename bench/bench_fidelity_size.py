"""Fidelity of copula cohorts by their size, against the real-data reference.

The issue's fidelity target compares a virtual cohort with the real holdout, against the
real training rows compared with the same holdout. With as many virtual patients as
training rows the comparison is not even: the virtual cohort carries the sampling error
of the training rows (through the fit) and its own sampling error on top, while the
training rows carry only theirs. Drawing more virtual patients removes the second, so the
fidelity of a large cohort is the generator's own.

For each public data set of ``bench_public_data.py`` (GBSG2, Rossi) and seed 0..4: a
50 / 50 split, the Gaussian copula fitted on the training half, and cohorts of 1, 5 and
25 times the training rows, each scored by the same fidelity (mean column shape and pair
trend, ``bench_public_data.fidelity``) against the holdout.

Usage: ``python bench/bench_fidelity_size.py``; results go to
bench/output/bench_fidelity_size.{json,md}.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_public_data as public  # noqa: E402

MULTIPLES = (1, 5, 25)
SEEDS = range(5)


def main() -> dict:
    from generators.base import REGISTRY, DataRoles
    from generators.validation import split_holdout

    start = time.perf_counter()
    results: dict = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "multiples": list(MULTIPLES),
        "seeds": list(SEEDS),
        "holdout_fraction": public.HOLDOUT_FRACTION,
        "datasets": {},
    }
    for dataset in public.DATASETS:
        frame = public.load(dataset)
        categorical = public.categorical_columns(frame)
        columns = list(frame.columns)
        reference, scores = [], {m: [] for m in MULTIPLES}
        for seed in SEEDS:
            training, holdout = split_holdout(frame, public.HOLDOUT_FRACTION, rng=seed)
            training = training.copy()
            training.attrs["dictionary"] = frame.attrs["dictionary"]
            generator = REGISTRY["copula"].for_data(DataRoles.of(training), seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generator.fit(training)
            reference.append(public.fidelity(holdout, training[columns], categorical))
            for multiple in MULTIPLES:
                rng = np.random.default_rng([seed, 1])
                virtual = generator.sample(multiple * len(training), rng=rng)[columns]
                scores[multiple].append(public.fidelity(holdout, virtual, categorical))
        results["datasets"][dataset.name] = {
            "reference": reference,
            "virtual": {str(m): v for m, v in scores.items()},
        }
    results["seconds"] = time.perf_counter() - start
    output = HERE / "output"
    output.mkdir(exist_ok=True)
    (output / "bench_fidelity_size.json").write_text(json.dumps(results, indent=2) + "\n")
    (output / "bench_fidelity_size.md").write_text(markdown(results))
    return results


def markdown(results: dict) -> str:
    lines = [
        "# Fidelity of copula cohorts by size (bench/bench_fidelity_size.py)",
        "",
        f"50 / 50 split, seeds {results['seeds'][0]}-{results['seeds'][-1]}; fidelity against "
        "the real holdout, mean ± SD over the seeds; in brackets the seeds at or above "
        "the reference (real training rows against the same holdout).",
        "",
        "| data set | reference | "
        + " | ".join(f"{m} × training rows" for m in results["multiples"])
        + " |",
        "| --- | --- |" + " --- |" * len(results["multiples"]),
    ]
    for name, d in results["datasets"].items():
        ref = np.array(d["reference"])
        cells = []
        for m in results["multiples"]:
            v = np.array(d["virtual"][str(m)])
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1):.4f} [{int((v >= ref).sum())}/5]")
        lines.append(
            f"| {name} | {ref.mean():.4f} ± {ref.std(ddof=1):.4f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
