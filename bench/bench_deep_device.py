"""Training time per epoch of the deep generators on a large cohort, CPU against CUDA.

A synthetic cohort of ``--rows`` patients (default 100,000) and 30 columns: 20 continuous
(correlated normal and log-normal), 5 binary, 3 categorical (4 levels) and a censored
survival outcome (time, event). Each generator (VAE, RHVAE) is trained for a few epochs
on each available device, without early stopping, and the time per epoch is the fit time
over the epochs run (set-up included, so a slight over-estimate). The RHVAE's metric is a
mixture over every training row, so on the CPU it is timed on ``--cpu-rows`` rows and
scaled to the full cohort linearly in the rows; its cost per epoch grows faster than that
(every row meets every centroid), so the scaled CPU figure, marked as such, is a lower
bound and the speed-up it gives an under-estimate.

Usage: ``python bench/bench_deep_device.py [--rows N] [--cpu-rows N] [--epochs N]``;
results go to bench/output/bench_deep_device.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUTPUT = HERE / "output"


def cohort(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = 20
    loadings = rng.normal(0, 0.5, (k, 3))
    latent = rng.standard_normal((n, 3)) @ loadings.T + rng.standard_normal((n, k))
    frame = pd.DataFrame(
        {f"x{j}": latent[:, j] if j % 2 else np.exp(0.3 * latent[:, j]) for j in range(k)}
    )
    for j in range(5):
        frame[f"b{j}"] = (latent[:, j] + rng.standard_normal(n) > 0.5).astype(int)
    for j in range(3):
        frame[f"c{j}"] = pd.Categorical(
            np.array(["a", "b", "c", "d"])[np.digitize(latent[:, 5 + j], [-1, 0, 1])]
        )
    hazard = 0.05 * np.exp(0.3 * latent[:, 0] - 0.2 * frame["b0"].to_numpy())
    event_time = rng.exponential(1 / hazard)
    censor = rng.uniform(6, 36, n)
    frame["time"] = np.minimum(event_time, censor)
    frame["event"] = (event_time <= censor).astype(int)
    return frame


def per_epoch(kind: str, data: pd.DataFrame, device: str, epochs: int) -> dict:
    from generators.rhvae import RHVAE
    from generators.vae import TabularVAE

    cls = {"vae": TabularVAE, "rhvae": RHVAE}[kind]
    model = cls(
        time="time",
        event="event",
        categorical=[f"c{j}" for j in range(3)],
        epochs=epochs,
        patience=epochs + 1,
        batch_size=256,
        device=device,
        seed=0,
    )
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    model.fit(data)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    run = len(getattr(model, "history_", {}).get("train", [])) or epochs
    return {"rows": len(data), "epochs": run, "seconds_per_epoch": seconds / run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cpu-rows", type=int, default=4_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import torch

    data = cohort(args.rows)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "rows": args.rows,
        "columns": data.shape[1],
        "timings": {},
    }
    for kind in ("vae", "rhvae"):
        for device in devices:
            rows = args.rows if (kind == "vae" or device != "cpu") else args.cpu_rows
            timing = per_epoch(kind, data.iloc[:rows], device, args.epochs)
            timing["scaled_to_rows"] = rows != args.rows
            timing["seconds_per_epoch_full"] = timing["seconds_per_epoch"] * args.rows / rows
            results["timings"][f"{kind}/{device}"] = timing
            print(kind, device, timing, flush=True)
        if "cuda" in devices:
            cpu = results["timings"][f"{kind}/cpu"]["seconds_per_epoch_full"]
            gpu = results["timings"][f"{kind}/cuda"]["seconds_per_epoch_full"]
            results["timings"][f"{kind}/speed_up"] = cpu / gpu
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench_deep_device.json").write_text(json.dumps(results, indent=2))
    (OUTPUT / "bench_deep_device.md").write_text(markdown(results))


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [
        f"# Deep generators: training time per epoch, {results['rows']:,} rows × "
        f"{results['columns']} columns",
        "",
        f"{env['platform']}, Python {env['python']}, torch {env['torch']} "
        f"({env['torch_threads']} threads), GPU: {env['cuda'] or 'none'}",
        "",
        "| generator | device | rows timed | epochs | s / epoch | s / epoch, full cohort |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for key, t in results["timings"].items():
        if key.endswith("speed_up"):
            continue
        kind, device = key.split("/")
        scaled = " (scaled)" if t["scaled_to_rows"] else ""
        lines.append(
            f"| {kind} | {device} | {t['rows']:,} | {t['epochs']} | "
            f"{t['seconds_per_epoch']:.2f} | {t['seconds_per_epoch_full']:.2f}{scaled} |"
        )
    speed = {k: v for k, v in results["timings"].items() if k.endswith("speed_up")}
    lines.append("")
    if speed:
        lines += [f"- {k.split('/')[0]}: CUDA {v:.1f}× faster per epoch" for k, v in speed.items()]
    else:
        lines.append("No CUDA GPU was available: only the CPU was timed.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
