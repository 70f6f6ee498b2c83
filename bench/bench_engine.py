"""Benchmark of the trial engine on the reference design (bench/reference_design.yaml).

Measures, in one run on this machine:

1. wall time and peak memory of 10,000 simulated trials (simulation + log-rank analysis),
   the design scenario alone and with the null scenario;
2. a loop of lifelines ``logrank_test`` calls on the same simulated data (the per-trial
   analysis a user would otherwise write), and the ratio;
3. rpact's ``getSimulationSurvival`` on the same design, when R and rpact are installed;
4. peak memory at 100,000 and 1,000,000 replicates written to a run directory, to show
   that chunking bounds memory.

Usage: ``python bench/bench_engine.py [--quick]``; results go to bench/output/.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from trials.cli.common import load_protocol  # noqa: E402

PROTOCOL = HERE / "reference_design.yaml"
OUTPUT = HERE / "output"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


SIMULATE = """
import json, resource, time, sys
sys.path.insert(0, '.')
from trials.cli.common import load_protocol
from trials.simulation import simulate
p = load_protocol('bench/{design}')
simulate(p, n_replicates=200, scenarios=('design',))  # warm-up (imports, caches)
best = []
for _ in range({repeats}):
    t = time.perf_counter()
    r = simulate(p, n_replicates={n}, scenarios={scenarios})
    best.append(time.perf_counter() - t)
print(json.dumps({{"seconds": min(best), "all_seconds": best, "power": r.power(),
    "type_i_error": r.type_i_error() if 'null' in {scenarios} else None,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

RUN_DIRECTORY = """
import json, resource, time, sys, tempfile, os
sys.path.insert(0, '.')
from trials.cli.common import load_protocol
from trials.run import simulate_to_directory
p = load_protocol('bench/reference_design.yaml')
out = os.path.join(tempfile.mkdtemp(), 'run')
t = time.perf_counter()
result, summary = simulate_to_directory(p, 'bench/reference_design.yaml', out, n_replicates={n})
print(json.dumps({{"seconds": time.perf_counter() - t, "power": result.power(),
    "parquet_mib": (sum(  # a folder of one part per chunk, or one file
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(os.path.join(out, 'replicates.parquet')) for f in files
    ) or os.path.getsize(os.path.join(out, 'replicates.parquet'))) / 2**20,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def lifelines_loop(n_trials: int) -> dict:
    """Time lifelines' logrank_test over simulated trials, and ours on the same data."""
    from lifelines.statistics import logrank_test as lifelines_logrank

    from analysis.logrank import logrank_test
    from trials.engine import Layout, simulate_chunk

    protocol = load_protocol(PROTOCOL)
    layout = Layout(protocol, 600, 600)
    chunk = simulate_chunk(layout, np.arange(n_trials), 1, ("design",))
    _, (data,) = chunk.scenarios["design"]
    group = chunk.cohort.arm == 1
    start = time.perf_counter()
    z_ours = logrank_test(data.time, data.event, group, valid=data.valid).z
    ours = time.perf_counter() - start
    start = time.perf_counter()
    chi2 = np.empty(n_trials)
    for r in range(n_trials):
        v = data.valid[r]
        g = group[r][v]
        t, e = data.time[r][v], data.event[r][v]
        chi2[r] = lifelines_logrank(t[g], t[~g], e[g], e[~g]).test_statistic
    theirs = time.perf_counter() - start
    np.testing.assert_allclose(z_ours**2, chi2, rtol=1e-8)
    return {
        "n_trials": n_trials,
        "lifelines_seconds": theirs,
        "lifelines_seconds_per_10000": theirs / n_trials * 10_000,
        "vectorized_seconds": ours,
        "vectorized_seconds_per_10000": ours / n_trials * 10_000,
        "analysis_speedup": theirs / ours,
    }


RPACT_FIXED = "getDesignGroupSequential(kMax = 1, alpha = 0.025, sided = 1)"
RPACT_GSD = (
    "getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, "
    "informationRates = c(1/3, 2/3, 1), typeOfDesign = 'asOF')"
)


def rpact(n: int, design: str = RPACT_FIXED, events: str = "390") -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    script = f"""
suppressMessages(library(rpact))
design <- {design}
t0 <- Sys.time()
sim <- getSimulationSurvival(design, lambda2 = log(2) / 12, hazardRatio = 0.7,
  dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12, accrualTime = c(0, 24),
  maxNumberOfSubjects = 600, plannedEvents = {events}, directionUpper = FALSE,
  maxNumberOfIterations = {n}, seed = 1)
cat(as.numeric(Sys.time() - t0, units = "secs"), sim$overallReject,
    as.character(packageVersion("rpact")), "\\n")
"""
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(["Rscript", handle.name], capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError:
        return None
    seconds, power, version = out.stdout.split()
    return {"seconds": float(seconds), "power": float(power), "rpact_version": version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-replicate run")
    args = parser.parse_args()
    OUTPUT.mkdir(exist_ok=True)
    results: dict = {
        "design": "bench/reference_design.yaml",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
        },
    }
    print("simulating 10,000 replicates (design scenario) ...", flush=True)
    results["simulate_10000_design"] = child(
        SIMULATE.format(n=10_000, repeats=3, scenarios=("design",), design="reference_design.yaml")
    )
    print("simulating 10,000 replicates of the three-look design ...", flush=True)
    results["simulate_10000_gsd"] = child(
        SIMULATE.format(
            n=10_000, repeats=3, scenarios=("design",), design="reference_design_gsd.yaml"
        )
    )
    print("simulating 10,000 replicates (design + null) ...", flush=True)
    results["simulate_10000_design_and_null"] = child(
        SIMULATE.format(
            n=10_000, repeats=3, scenarios=("design", "null"), design="reference_design.yaml"
        )
    )
    print("lifelines loop ...", flush=True)
    results["lifelines_loop"] = lifelines_loop(500)
    ours = results["simulate_10000_design"]["seconds"]
    results["lifelines_loop"]["end_to_end_speedup"] = (
        results["lifelines_loop"]["lifelines_seconds_per_10000"] / ours
    )
    print("rpact ...", flush=True)
    results["rpact_10000"] = rpact(10_000)
    if results["rpact_10000"]:
        results["rpact_10000"]["ratio_ours_to_rpact"] = ours / results["rpact_10000"]["seconds"]
    gsd = results["simulate_10000_gsd"]["seconds"]
    results["simulate_10000_gsd"]["ratio_to_fixed"] = gsd / ours
    results["rpact_10000_gsd"] = rpact(10_000, RPACT_GSD, "c(130, 260, 390)")
    if results["rpact_10000_gsd"]:
        results["rpact_10000_gsd"]["ratio_ours_to_rpact"] = (
            gsd / results["rpact_10000_gsd"]["seconds"]
        )
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    for n in sizes:
        print(f"run directory with {n:,} replicates ...", flush=True)
        results[f"run_directory_{n}"] = child(RUN_DIRECTORY.format(n=n))
    (OUTPUT / "bench_engine.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Engine benchmark (reference design)",
        "",
        f"Machine: {results['machine']}",
        "",
        "| measurement | value |",
        "| --- | --- |",
        f"| 10,000 replicates, design only: wall time (best of 3) | {ours:.3f} s |",
        f"| ... peak RSS | {results['simulate_10000_design']['peak_rss_mib']:.0f} MiB |",
        f"| ... simulated power | {results['simulate_10000_design']['power']:.4f} |",
        f"| 10,000 replicates, design + null | "
        f"{results['simulate_10000_design_and_null']['seconds']:.3f} s |",
        f"| lifelines logrank_test loop, per 10,000 trials (analysis only) | "
        f"{results['lifelines_loop']['lifelines_seconds_per_10000']:.1f} s |",
        f"| vectorized log-rank on the same data, per 10,000 | "
        f"{results['lifelines_loop']['vectorized_seconds_per_10000']:.3f} s |",
        f"| analysis speed-up over lifelines | "
        f"{results['lifelines_loop']['analysis_speedup']:.0f}x |",
        f"| end-to-end (simulate + analyse) speed-up over the lifelines analysis alone | "
        f"{results['lifelines_loop']['end_to_end_speedup']:.0f}x |",
    ]
    if results["rpact_10000"]:
        r = results["rpact_10000"]
        lines += [
            f"| rpact {r['rpact_version']} getSimulationSurvival, 10,000 | {r['seconds']:.3f} s "
            f"(power {r['power']:.4f}) |",
            f"| our time / rpact's time | {r['ratio_ours_to_rpact']:.2f} |",
        ]
    g = results["simulate_10000_gsd"]
    lines.append(
        f"| three-look design (asOF), 10,000 replicates | {g['seconds']:.3f} s, "
        f"{g['ratio_to_fixed']:.2f}x the fixed design (power {g['power']:.4f}) |"
    )
    if results["rpact_10000_gsd"]:
        r = results["rpact_10000_gsd"]
        lines.append(
            f"| rpact getSimulationSurvival, three-look, 10,000 | {r['seconds']:.3f} s "
            f"(power {r['power']:.4f}); our time / rpact's {r['ratio_ours_to_rpact']:.2f} |"
        )
    for n in sizes:
        r = results[f"run_directory_{n}"]
        lines.append(
            f"| {n:,} replicates to a run directory (design + null) | {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB, Parquet {r['parquet_mib']:.0f} MiB |"
        )
    (OUTPUT / "bench_engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
