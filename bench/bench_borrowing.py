"""Benchmark of the operating characteristics of a hybrid borrowing design under drift.

Measures, in one run on this machine:

1. the fast (conjugate / normal-approximation) path: 1,000 replicates x 10 drift points x
   2 scenarios (no effect, design effect) of the shipped example
   (protocols/drift/hybrid_borrowing_drift.yaml: normal endpoint, no borrowing, pooling, power
   prior, commensurate, robust MAP and PROCOVA), wall time of the whole run and per
   approach; the issue's target is < 60 s;
2. the same grid for a binary and a time-to-event endpoint (commensurate and robust MAP);
3. the PyMC path (NUTS, 4 chains of 1,000 draws after 1,000 tuning steps, run one after the
   other) per replicate for the robust MAP and commensurate priors, after a first fit that
   compiles the model, and the time the same 20,000 analyses would take with it.

Wall times are of a shared machine: other processes may slow a measurement down (the
per-approach times are each the best of the repeats).

Usage: ``python bench/bench_borrowing.py [--quick]``; results go to bench/output/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from analysis.borrowing import CommensuratePrior, HalfNormal, RobustMAP  # noqa: E402
from analysis.hybrid_design import HybridDesign, _Simulator, _variates, simulate_drift  # noqa: E402
from trials.cli.drift import load_drift_config  # noqa: E402

OUTPUT = HERE / "output"
EXAMPLE = ROOT / "protocols" / "drift" / "hybrid_borrowing_drift.yaml"
DRIFT_10 = [-45.0, -35.0, -25.0, -15.0, -5.0, 5.0, 15.0, 25.0, 35.0, 45.0]


def timed(fn, repeats: int = 1):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def fast_path(n_replicates: int, repeats: int) -> dict:
    config = load_drift_config(EXAMPLE)
    design, approaches = config.hybrid_design(), config.approach_objects()

    def run(selection=approaches):
        return simulate_drift(design, selection, DRIFT_10, n_replicates=n_replicates,
                              seed=config.simulation.seed)  # fmt: skip

    run()  # warm-up (imports, caches)
    seconds, result = timed(run, repeats)
    per_approach = {a.label: timed(lambda a=a: run([a]), repeats)[0] for a in approaches}
    at_zero = result.summary().query("drift == 5.0")  # nearest grid point to no drift
    return {
        "n_replicates": n_replicates,
        "n_drift_points": len(DRIFT_10),
        "n_scenarios": 2,
        "approaches": [a.label for a in approaches],
        "seconds": seconds,
        "seconds_per_approach": per_approach,
        "type_i_error_at_drift_5": dict(zip(at_zero.approach, at_zero.type_i_error,
                                            strict=True)),  # fmt: skip
    }


def other_endpoints(n_replicates: int) -> dict:
    out = {}
    cases = {
        "binary": (HybridDesign("binary", 40, 20, 120, control=0.3, effect=0.2,
                                study_shares=(0.6, 0.4), heterogeneity_sd=0.1),
                   np.linspace(-0.15, 0.15, 10), 0.5),
        "time_to_event": (HybridDesign("time_to_event", 40, 20, 120, control=0.1, effect=0.6,
                                       follow_up=12.0, study_shares=(0.6, 0.4),
                                       heterogeneity_sd=0.1),
                          np.linspace(-0.5, 0.5, 10), 0.5),
    }  # fmt: skip
    for name, (design, drift, scale) in cases.items():
        approaches = [CommensuratePrior(HalfNormal(scale)), RobustMAP(HalfNormal(scale), 0.2)]
        seconds, _ = timed(lambda d=design, g=drift, a=approaches: simulate_drift(
            d, a, g, n_replicates=n_replicates, seed=1))  # fmt: skip
        out[name] = {"approaches": [a.label for a in approaches], "seconds": seconds}
    return out


def pymc_path(n_fits: int) -> dict:
    import logging

    from analysis.borrowing import fit_pymc

    logging.getLogger("pymc").setLevel(logging.ERROR)
    config = load_drift_config(EXAMPLE)
    design = config.hybrid_design()
    out = {}
    for approach in (RobustMAP(HalfNormal(15.0), 0.2), CommensuratePrior(HalfNormal(15.0))):
        times = []
        for r in range(n_fits + 1):  # the first fit compiles the model
            sim = _Simulator(design, *_variates(design, config.simulation.seed, range(r, r + 1),
                                                False))  # fmt: skip
            arms = [sim.arm("treated", "design"), sim.arm("control", "design"),
                    sim.arm("external", drift=0.0)]  # fmt: skip
            one = [type(a)(a.endpoint, **{k: None if v is None else v[0]
                                          for k, v in vars(a).items() if k != "endpoint"})
                   for a in arms]  # fmt: skip
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_pymc(approach, *one, draws=1000, tune=1000, chains=4, seed=r)
            times.append(time.perf_counter() - start)
        per = float(np.median(times[1:]))
        out[approach.label] = {
            "first_fit_seconds_with_compilation": times[0],
            "seconds_per_replicate": per,
            "fits_timed": n_fits,
            "hours_for_20000_analyses": per * 20_000 / 3600,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and PyMC fits")
    args = parser.parse_args()
    fast = fast_path(1000, 1 if args.quick else 3)
    others = other_endpoints(1000)
    pymc = pymc_path(2 if args.quick else 5)
    per_fast = fast["seconds"] / (1000 * 10 * 2 * len(fast["approaches"]))
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},  # fmt: skip
        "fast_path": fast,
        "fast_path_other_endpoints": others,
        "pymc_path": pymc,
        "pymc_settings": {"draws": 1000, "tune": 1000, "chains": 4, "cores": 1,
                          "target_accept": 0.95},
        "fast_seconds_per_analysis": per_fast,
        "target_seconds": 60.0,
        "target_met": fast["seconds"] < 60.0,
    }
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench_borrowing.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Hybrid borrowing design under drift: fast path and PyMC path",
        "",
        f"Machine: {result['machine']}",
        "",
        "| measurement | value |",
        "| --- | --- |",
        f"| fast path, example design, 1,000 replicates x 10 drift points x 2 scenarios x "
        f"{len(fast['approaches'])} approaches (best of {1 if args.quick else 3}) | "
        f"{fast['seconds']:.2f} s (target < 60 s: {'met' if result['target_met'] else 'missed'}) |",
    ]
    for label, seconds in fast["seconds_per_approach"].items():
        lines.append(f"| ... {label} alone | {seconds:.2f} s |")
    for name, item in others.items():
        lines.append(f"| fast path, {name} endpoint, {' + '.join(item['approaches'])}, "
                     f"1,000 x 10 x 2 | {item['seconds']:.2f} s |")  # fmt: skip
    lines.append(f"| fast path per analysis (example) | {per_fast * 1e6:.1f} µs |")
    for label, item in pymc.items():
        lines.append(f"| PyMC path, {label}: first fit (with compilation) | "
                     f"{item['first_fit_seconds_with_compilation']:.1f} s |")  # fmt: skip
        lines.append(f"| PyMC path, {label}: per replicate (median of {item['fits_timed']}) | "
                     f"{item['seconds_per_replicate']:.2f} s; 20,000 analyses: "
                     f"{item['hours_for_20000_analyses']:.1f} h |")  # fmt: skip
    (OUTPUT / "bench_borrowing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
