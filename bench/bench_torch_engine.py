"""Benchmark of the torch engine (``insilico simulate --device cuda``).

On the reference design (bench/reference_design.yaml: 600 patients, log-rank at 390
events, design and null scenarios), per device:

Times per simulated trial count each scenario of a replicate as one trial.

1. the numpy engine (``--device cpu``), the reference a user has without a GPU;
2. the torch engine, end to end (``trials.simulation.simulate``: draws, trial, analysis,
   the decisions and the per-replicate table on the CPU), and its tensor work alone
   (one block through the draws, the trial and the log-rank sums, synchronised);
3. a minimal sort-based log-rank simulation of the same design on the same device (the
   yardstick the issue names: exponential times, uniform accrual, cut-off at the 390th
   event, one sort, no ties, no dropout), so the engine's cost over the bare minimum is a
   ratio measured in one run;
4. the agreement of the torch engine with the numpy engine (power and type I error,
   within Monte Carlo error);
5. both engines end to end on the shipped oncology protocol (correlated covariates with
   effects, eligibility screening, stratified blocks, stratified log-rank).

Devices: the CPU (``torch-cpu``) always, and ``cuda`` when torch sees a GPU.

Usage: ``python bench/bench_torch_engine.py [--quick] [--replicates N]``; results go to
bench/output/bench_torch_engine.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUTPUT = HERE / "output"
PROTOCOL = HERE / "reference_design.yaml"
ONCOLOGY = HERE.parent / "protocols" / "oncology_os_phase3.yaml"


def synchronise(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def minimal_logrank(n_rep: int, device: str, seed: int = 0) -> float:
    """Seconds for ``n_rep`` trials of the bare sort-based log-rank simulation, in the
    engine's blocks for the device."""
    import torch

    from trials.torch_engine import block_size, torch_device

    dev = torch_device(device)
    block = block_size(device)
    generator = torch.Generator(device=dev).manual_seed(seed)
    n, target, hazard = 600, 390, math.log(2) / 12
    entry = (torch.arange(1, n + 1, device=dev, dtype=torch.float64) / 25.0)[None, :]
    arm = (torch.arange(n, device=dev) % 2 == 1)[None, :]
    rate = torch.where(arm, hazard * 0.7, hazard)
    synchronise(device)
    start = time.perf_counter()
    rejected = 0
    for first in range(0, n_rep, block):
        rows = min(block, n_rep - first)
        e = torch.empty((rows, n), device=dev, dtype=torch.float64).exponential_(
            generator=generator
        )
        time_ = e / rate
        calendar = entry + time_
        cutoff = torch.kthvalue(calendar, target, dim=1).values[:, None]
        observed = torch.minimum(time_, cutoff - entry).clamp(min=0)
        event = calendar <= cutoff
        t, order = torch.sort(observed, dim=1)
        d = torch.gather(event, 1, order).double()
        g = torch.gather(arm.expand(rows, n), 1, order).double()
        at_risk = n - torch.arange(n, device=dev, dtype=torch.float64)
        at_risk_g = g.sum(dim=1, keepdim=True) - torch.cumsum(g, dim=1) + g
        p = at_risk_g / at_risk
        z = (d * (g - p)).sum(dim=1) / torch.sqrt((d * p * (1 - p)).sum(dim=1))
        rejected += int((z < -1.959963984540054).sum())
    synchronise(device)
    return time.perf_counter() - start


def engine_block_seconds(device: str, repeats: int = 3) -> tuple[float, int]:
    """Seconds for one block's tensor work (draws, trial, log-rank), and the block size."""
    from trials.engine import Layout
    from trials.torch_engine import TorchEngine
    from trials.validation import load_protocol

    protocol = load_protocol(PROTOCOL)
    engine = TorchEngine(Layout(protocol, 600, 600), device)
    block = np.arange(engine.block)
    engine._block(block, 1, ("design", "null"))  # warm-up
    times = []
    for _ in range(repeats):
        synchronise(device)
        start = time.perf_counter()
        engine._block(block, 1, ("design", "null"))
        synchronise(device)
        times.append(time.perf_counter() - start)
    return min(times), engine.block


def end_to_end(n_rep: int, device: str | None, path: Path = PROTOCOL) -> dict:
    from trials.simulation import simulate
    from trials.validation import load_protocol

    protocol = load_protocol(path)
    start = time.perf_counter()
    result = simulate(protocol, n_replicates=n_rep, device=device)
    seconds = time.perf_counter() - start
    power, alpha = result.power(), result.type_i_error()
    return {
        "replicates": n_rep,
        "seconds": seconds,
        "seconds_per_10k": seconds / n_rep * 10_000,
        "power": power,
        "power_mcse": math.sqrt(power * (1 - power) / n_rep),
        "type_i_error": alpha,
        "type_i_error_mcse": math.sqrt(alpha * (1 - alpha) / n_rep),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--replicates", type=int, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    devices = ["torch-cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results: dict = {
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "devices": {},
    }
    n_cpu = args.replicates or (4_096 if args.quick else 20_480)
    results["numpy_engine"] = end_to_end(n_cpu, None)
    print("numpy engine", results["numpy_engine"], flush=True)
    for device in devices:
        n_rep = n_cpu if device == "torch-cpu" else (args.replicates or 1_048_576)
        # the minimal simulation runs one scenario: as many trials as the engine's two
        n_trials = 2 * n_rep
        entry = {"end_to_end": end_to_end(n_rep, device)}
        block_s, block = engine_block_seconds(device)
        entry["tensor_work"] = {  # per simulated trial: a replicate under one scenario
            "block": block,
            "seconds_per_block": block_s,
            "seconds_per_1e6": block_s / (2 * block) * 1e6,
        }
        minimal = minimal_logrank(n_trials, device)
        entry["minimal_logrank"] = {
            "trials": n_trials,
            "seconds_per_1e6": minimal / n_trials * 1e6,
        }
        entry["tensor_work_over_minimal"] = entry["tensor_work"]["seconds_per_1e6"] / (
            minimal / n_trials * 1e6
        )
        entry["end_to_end_over_numpy"] = (
            entry["end_to_end"]["seconds_per_10k"] / results["numpy_engine"]["seconds_per_10k"]
        )
        results["devices"][device] = entry
        print(device, entry, flush=True)
    results["oncology"] = {
        device or "numpy": end_to_end(
            n_cpu if device in (None, "torch-cpu") else n_rep, device, ONCOLOGY
        )
        for device in [None, *devices]
    }
    print("oncology", results["oncology"], flush=True)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench_torch_engine.json").write_text(json.dumps(results, indent=2))
    (OUTPUT / "bench_torch_engine.md").write_text(markdown(results))


def markdown(results: dict) -> str:
    env = results["environment"]
    ref = results["numpy_engine"]
    lines = [
        "# Torch engine benchmark (reference design, design + null scenarios)",
        "",
        f"{env['platform']}, Python {env['python']}, torch {env['torch']} "
        f"({env['torch_threads']} threads), GPU: {env['cuda'] or 'none'}",
        "",
        "Per 10k replicates end to end (design and null scenarios); per 1e6 simulated "
        "trials (one replicate under one scenario) for the tensor work and the minimal "
        "sort-based log-rank simulation on the same device.",
        "",
        "| engine | replicates | s / 10k replicates (end to end) | tensor work s / 1e6 "
        "trials | minimal log-rank s / 1e6 trials | ratio to minimal | power ± MCSE | "
        "type I error ± MCSE |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        f"| numpy (cpu) | {ref['replicates']:,} | {ref['seconds_per_10k']:.3f} | | | | "
        f"{ref['power']:.4f} ± {ref['power_mcse']:.4f} | "
        f"{ref['type_i_error']:.4f} ± {ref['type_i_error_mcse']:.4f} |",
    ]
    for device, entry in results["devices"].items():
        e = entry["end_to_end"]
        lines.append(
            f"| torch ({device}) | {e['replicates']:,} | {e['seconds_per_10k']:.3f} | "
            f"{entry['tensor_work']['seconds_per_1e6']:.3f} | "
            f"{entry['minimal_logrank']['seconds_per_1e6']:.3f} | "
            f"{entry['tensor_work_over_minimal']:.2f} | "
            f"{e['power']:.4f} ± {e['power_mcse']:.4f} | "
            f"{e['type_i_error']:.4f} ± {e['type_i_error_mcse']:.4f} |"
        )
    lines += [
        "",
        "Shipped oncology protocol (covariates, eligibility, stratified blocks and log-rank):",
        "",
        "| engine | replicates | s / 10k replicates | power ± MCSE | type I error ± MCSE |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for engine, e in results["oncology"].items():
        lines.append(
            f"| {engine} | {e['replicates']:,} | {e['seconds_per_10k']:.3f} | "
            f"{e['power']:.4f} ± {e['power_mcse']:.4f} | "
            f"{e['type_i_error']:.4f} ± {e['type_i_error_mcse']:.4f} |"
        )
    if len(results["devices"]) == 1:
        lines += ["", "No CUDA GPU was available: the GPU rows are missing."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
