"""Benchmark of the virtual-patient generators and the cohort validation.

- Gaussian copula: fit on 700 × 20 data and draw 5,000 virtual patients;
- cohort validation (fidelity, detection, privacy, utility) on 5,000 × 20;
- Bayesian Weibull (PyMC, 4 chains × 1,000 draws) on 700 patients, with each available
  sampler.

Usage: ``python bench/bench_generators.py [--skip-bayesian]``; results go to bench/output/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUTPUT = HERE / "output"


def survival_data(n: int, n_covariates: int, rng: np.random.Generator) -> pd.DataFrame:
    """A trial-like table: correlated covariates, two categoricals, Weibull times."""
    latent = rng.multivariate_normal(
        np.zeros(n_covariates), 0.3 + 0.7 * np.eye(n_covariates), size=n
    )
    frame = pd.DataFrame(
        latent[:, : n_covariates - 4], columns=[f"x{i}" for i in range(n_covariates - 4)]
    )
    frame["age"] = np.round(60 + 10 * latent[:, -4]).astype(int)
    frame["stage"] = pd.Categorical(np.digitize(latent[:, -3], [-0.5, 0.7]).astype(str))
    frame["treated"] = (rng.random(n) < 0.5).astype(int)
    risk = 0.3 * latent[:, 0] - 0.5 * frame["treated"]
    times = 20 * (-np.log(rng.random(n)) * np.exp(-risk)) ** (1 / 1.4)
    censor = rng.uniform(5, 60, n)
    frame["time"] = np.minimum(times, censor)
    frame["event"] = (times <= censor).astype(int)
    return frame


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-bayesian", action="store_true")
    args = parser.parse_args()
    from generators.copula import GaussianCopula
    from generators.validation import validate_cohort

    rng = np.random.default_rng(1)
    real = survival_data(700, 20, rng)
    copula, fit_seconds = timed(GaussianCopula().fit, real)
    virtual, sample_seconds = timed(copula.sample, 5000, rng=2)
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "copula_fit_700x20_seconds": fit_seconds,
        "copula_sample_5000_seconds": sample_seconds,
    }
    big_real = survival_data(5000, 20, np.random.default_rng(3))
    big_virtual = GaussianCopula().fit(big_real).sample(5000, rng=4)
    report, validate_seconds = timed(
        validate_cohort, big_real, big_virtual, time="time", event="event", rng=0
    )
    results["validate_cohort_5000x20_seconds"] = validate_seconds
    results["validate_cohort_fidelity"] = report.fidelity_score
    if not args.skip_bayesian:
        try:
            from generators.bayesian import BayesianWeibull
        except ImportError:
            results["bayesian"] = "not available"
        else:
            for sampler in ("pymc", "nutpie"):
                model = BayesianWeibull(
                    time="time",
                    event="event",
                    treatment="treated",
                    covariates=["x0", "age"],
                    chains=4,
                    draws=1000,
                    tune=1000,
                    sampler=sampler,
                )
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # convergence is reported separately
                        _, seconds = timed(model.fit, real)
                except Exception as exc:  # noqa: BLE001 - a sampler that is not installed
                    results[f"bayesian_weibull_700_{sampler}"] = f"not run: {exc}"
                    continue
                results[f"bayesian_weibull_700_{sampler}_seconds"] = seconds
                results[f"bayesian_weibull_700_{sampler}_diagnostics"] = {
                    k: v for k, v in model.diagnostics_.items() if k != "warnings"
                }
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench_generators.json").write_text(
        json.dumps(results, indent=2, default=float) + "\n"
    )
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
