"""Benchmark of runs on Dask: speed-up over workers, scheduler overhead, memory.

On the reference design (bench/reference_design.yaml, design and null scenarios), each
measurement in a fresh interpreter:

1. 100,000 replicates to a run directory in this process, and through a local Dask
   cluster of 1 and of 2 workers: the scheduler's overhead (1 Dask worker against this
   process) and the speed-up from 1 to 2 workers;
2. 1,000,000 replicates through 2 Dask workers: wall time and the peak memory of each
   worker process (from the workers themselves) and of the driver, to show that memory
   does not grow with the number of replicates.

Usage: ``python bench/bench_scale.py [--quick]``; results go to bench/output/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTPUT = HERE / "output"

RUN = """
import json, resource, shutil, sys, tempfile, time
sys.path.insert(0, '.')
from trials.cli.common import load_protocol
from trials import execution
from trials.run import simulate_to_directory

def peak_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

workers, n = {workers}, {n}
peaks = []
if workers:
    # a Dask cluster of this many workers, even for one (the executor runs one worker
    # in process otherwise); the workers' peak memory is read before it closes
    class Measured(execution.DaskExecutor):
        def close(self):
            peaks.extend(sorted(round(v, 1) for v in self.client.run(peak_mib).values()))
            super().close()
    execution.executor = lambda w, s: Measured(workers=workers)
    import trials.run
    trials.run.executor = execution.executor
protocol = load_protocol('bench/reference_design.yaml')
out = tempfile.mkdtemp() + '/run'
start = time.perf_counter()
simulate_to_directory(protocol, 'bench/reference_design.yaml', out, n_replicates=n)
wall = time.perf_counter() - start
timings = json.load(open(out + '/manifest.json'))['timings']
shutil.rmtree(out)
print(json.dumps({{"wall_s": wall,
                  "run_s": timings["simulate_seconds"] + timings["summarise_seconds"],
                  "driver_peak_mib": peak_mib(), "worker_peak_mib": peaks or None}}))
"""


def measure(workers: int, n: int) -> dict:
    code = RUN.format(workers=workers, n=n)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10x fewer replicates")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_mid, n_big = 100_000 // scale, 1_000_000 // scale
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "cpus": os.cpu_count()}
    results: dict = {"machine": machine}
    in_process = min((measure(0, n_mid) for _ in range(2)), key=lambda r: r["run_s"])
    one = min((measure(1, n_mid) for _ in range(2)), key=lambda r: r["run_s"])
    two = min((measure(2, n_mid) for _ in range(2)), key=lambda r: r["run_s"])
    results[f"in_process_{n_mid}"] = in_process
    results[f"dask_1_worker_{n_mid}"] = one
    results[f"dask_2_workers_{n_mid}"] = two
    # the run itself (simulation and summary), without starting the cluster
    results["scheduler_overhead"] = one["run_s"] / in_process["run_s"] - 1
    results["speed_up_1_to_2_workers"] = one["run_s"] / two["run_s"]
    results[f"dask_2_workers_{n_big}"] = measure(2, n_big)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Scale-out benchmark (reference design, design + null)",
        "",
        f"Machine: {results['machine']}",
        "",
        "| run (simulation + summary; wall time with the cluster's start in brackets) | value |",
        "| --- | --- |",
        f"| {n_mid:,} replicates in process | {in_process['run_s']:.1f} s "
        f"({in_process['wall_s']:.1f} s) |",
        f"| {n_mid:,} replicates, Dask 1 worker | {one['run_s']:.1f} s ({one['wall_s']:.1f} s); "
        f"scheduler overhead {results['scheduler_overhead']:+.1%} |",
        f"| {n_mid:,} replicates, Dask 2 workers | {two['run_s']:.1f} s ({two['wall_s']:.1f} s); "
        f"speed-up 1 -> 2 workers {results['speed_up_1_to_2_workers']:.2f}x |",
        f"| {n_big:,} replicates, Dask 2 workers | "
        f"{results[f'dask_2_workers_{n_big}']['run_s']:.1f} s; peak memory per worker "
        f"{results[f'dask_2_workers_{n_big}']['worker_peak_mib']} MiB, driver "
        f"{results[f'dask_2_workers_{n_big}']['driver_peak_mib']:.0f} MiB |",
    ]
    (OUTPUT / "bench_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
