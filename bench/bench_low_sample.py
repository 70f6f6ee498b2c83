"""RHVAE against the plain VAE in the low-sample setting, over several splits and seeds.

The RHVAE literature (Chadebec et al., IEEE TPAMI 2022) reports its gains when data are
few. ``bench/bench_deep.py`` compares the generators on one split and one seed, too noisy
to tell two deep generators apart; this benchmark repeats the low-sample comparison on
``SEEDS`` independent replicates and gives paired differences with their standard errors.

Data: lifelines' GBSG2 (686 patients) and Rossi (432). Replicate ``s``: the 70 / 30
training / holdout split of :func:`generators.validation.split_holdout` with seed ``s``,
then ``N_TRAINING`` = 100 random training rows (seed ``s``); every generator is fitted on
those 100 rows with seed ``s``, and judged by :func:`bench_deep.evaluate` (5,000 virtual
patients against the real rows and the real holdout: fidelity, detection AUC, privacy,
train on virtual / test on real, Kaplan-Meier difference, and the augmentation of a Cox
model with 2, 5, 10 and 20 times as many virtual patients, Harrell's C-index on the real
holdout).

Generators: ``copula`` (the reference), ``vae`` and ``rhvae`` (defaults, CPU), and
``rhvae_prior``: the same trained RHVAE that decodes codes drawn from the standard-normal
prior instead of its geometry-aware sampler (the survival calibration uses the same
draws). The pair rhvae / rhvae_prior separates what the RHVAE's training does from what
its sampler does.

Usage: ``python bench/bench_low_sample.py [--quick] [--seeds S] [--threads N] [--datasets
gbsg2,rossi]`` (``--quick``: 2 seeds, 20 epochs; nothing is written; a run of some data sets
is merged with the others' results already written with the same seeds). Results go to
bench/output/bench_low_sample.json and .md.
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
sys.path.insert(0, str(HERE))
OUTPUT = HERE / "output"

SEEDS = 10
N_TRAINING = 100
DATASETS = ("gbsg2", "rossi")
GENERATORS = ("copula", "vae", "rhvae", "rhvae_prior")
#: (label, key in the evaluation, better when "higher" / "lower" / "closer to the
#: reference" given by the key in the last place)
METRICS = (
    ("fidelity", "fidelity", "higher"),
    ("detection AUC, gradient boosting", "detection_auc_gradient_boosting", "lower"),
    ("detection AUC, logistic", "detection_auc_logistic", "lower"),
    ("privacy: share closer than the holdout 5th pct", "privacy_share_close_virtual", "lower"),
    ("privacy: membership AUC", "privacy_membership_auc", "lower"),
    ("utility: C-index trained on virtual", "utility_c_index_trained_on_virtual", "higher"),
    ("KM max difference, deciles 1-9", "km_max_difference_deciles_1_9", "lower"),
    ("event rate: virtual - real training", "event_rate_gap", "lower"),
    ("augmentation gain in C-index, x2", "gain_x2", "higher"),
    ("augmentation gain in C-index, x5", "gain_x5", "higher"),
    ("augmentation gain in C-index, x10", "gain_x10", "higher"),
    ("augmentation gain in C-index, x20", "gain_x20", "higher"),
    ("fit (s)", "fit_seconds", "lower"),
)
PAIRS = (("rhvae", "vae"), ("rhvae_prior", "vae"), ("rhvae", "rhvae_prior"))


def factories(time_col: str, event_col: str, seed: int, epochs: int | None) -> dict:
    import torch

    from generators.copula import GaussianCopula
    from generators.rhvae import RHVAE
    from generators.vae import TabularVAE

    class RHVAEPriorSampling(RHVAE):
        """The RHVAE decoding standard-normal prior draws (an ablation of its sampler)."""

        def _latent_draws(self, n, generator, device):
            z = torch.randn((n, self.latent_dim), generator=generator, device=device)
            return z, {"acceptance_rate": math.nan}

    extra = {} if epochs is None else {"epochs": epochs}
    pair = {"time": time_col, "event": event_col, "device": "cpu", "seed": seed, **extra}
    return {
        "copula": GaussianCopula,
        "vae": lambda: TabularVAE(**pair),
        "rhvae": lambda: RHVAE(**pair),
        "rhvae_prior": lambda: RHVAEPriorSampling(**pair),
    }


def derived(result: dict) -> dict:
    """The evaluation plus the event-rate gap and the augmentation gains."""
    out = dict(result)
    out["event_rate_gap"] = abs(result["event_rate_virtual"] - result["event_rate_real_training"])
    base = result["augmentation_c_index"]["real_only"]
    for key, value in result["augmentation_c_index"].items():
        if key != "real_only":
            out[f"gain_{key}"] = value - base
    return out


def mean_se(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per generator and metric the mean and SE over the seeds; per pair the paired mean
    difference, its SE and the number of seeds in which the first is better."""
    summary: dict = {"generators": {}, "pairs": {}}
    for gen, rows in runs.items():
        summary["generators"][gen] = {
            key: dict(zip(("mean", "se"), mean_se([r[key] for r in rows]), strict=True))
            for _, key, _ in METRICS
        }
    for a, b in PAIRS:
        if a not in runs or b not in runs:
            continue
        table = {}
        for _, key, better in METRICS:
            diff = [ra[key] - rb[key] for ra, rb in zip(runs[a], runs[b], strict=True)]
            mean, se = mean_se(diff)
            wins = sum((d > 0) if better == "higher" else (d < 0) for d in diff)
            table[key] = {"mean": mean, "se": se, "first_better": wins, "seeds": len(diff)}
        summary["pairs"][f"{a} - {b}"] = table
    return summary


def fmt(mean: float, se: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if math.isfinite(se) else f"{mean:.{digits}f}"


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# RHVAE against the VAE with 100 training rows (bench/bench_low_sample.py)",
        "",
        f"Machine: {m['platform']}, Python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads']} threads). {results['seeds']} replicates per data set (split, "
        f"100-row training subset and generator seed 0 to {results['seeds'] - 1}); mean ± SE "
        f"over the replicates; total {results['total_seconds'] / 60:.1f} min.",
    ]  # fmt: skip
    for name, block in results["datasets"].items():
        gens = list(block["summary"]["generators"])
        lines += [
            "",
            f"## {name}",
            "",
            "| metric | better | " + " | ".join(gens) + " |",
            "|---|---|" + "---|" * len(gens),
        ]
        for label, key, better in METRICS:
            cells = [
                fmt(block["summary"]["generators"][g][key]["mean"],
                    block["summary"]["generators"][g][key]["se"])
                for g in gens
            ]  # fmt: skip
            lines.append(f"| {label} | {better} | " + " | ".join(cells) + " |")
        pairs = block["summary"]["pairs"]
        if pairs:
            lines += [
                "",
                "Paired differences (mean ± SE over the replicates; in brackets the replicates "
                "in which the first generator is better)",
                "",
                "| metric | " + " | ".join(pairs) + " |",
                "|---|" + "---|" * len(pairs),
            ]
            for label, key, _ in METRICS:
                cells = [
                    f"{fmt(p[key]['mean'], p[key]['se'])} ({p[key]['first_better']}/"
                    f"{p[key]['seeds']})"
                    for p in pairs.values()
                ]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "*rhvae_prior*: the trained RHVAE decoding standard-normal prior draws instead of "
        "its geometry-aware samples. Augmentation gain: C-index on the real holdout of a Cox "
        "model fitted on the 100 real rows plus k x 100 virtual patients, minus that of the "
        "100 real rows alone. Privacy: share of virtual rows closer to a training row than "
        "the 5th percentile of the holdout rows' distances (about 0.05 for new real "
        "patients), and the AUC of telling training from holdout rows by their distance to "
        "the virtual rows (0.5: no membership signal).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20 epochs; no output")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated subset of gbsg2,rossi"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    import bench_deep
    import torch

    from generators.validation import split_holdout

    torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else SEEDS)
    epochs = 20 if args.quick else None
    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "seeds": seeds,
        "n_training": N_TRAINING,
        "quick": args.quick,
        "datasets": {},
    }
    start = time.perf_counter()
    every = bench_deep.datasets()
    for name in args.datasets.split(","):
        real_all, time_col, event_col, _, _ = every[name]
        runs: dict[str, list[dict]] = {g: [] for g in GENERATORS}
        for seed in range(seeds):
            training, holdout = split_holdout(real_all, 0.3, rng=seed)
            training = training.sample(N_TRAINING, random_state=seed).sort_index()
            real = real_all.loc[training.index.union(holdout.index)]
            for gen, factory in factories(time_col, event_col, seed, epochs).items():
                result = bench_deep.evaluate(
                    f"{name}/{gen}/seed {seed}", real, time_col, event_col, factory,
                    training, holdout, seed + 1,
                )  # fmt: skip
                runs[gen].append(derived(result))
        results["datasets"][name] = {"runs": runs, "summary": summarize(runs)}
    results["total_seconds"] = time.perf_counter() - start
    path = args.output / "bench_low_sample.json"
    if not args.quick and path.exists():  # a run of other data sets with the same seeds
        earlier = json.loads(path.read_text())
        if earlier.get("seeds") == seeds and not earlier.get("quick"):
            for name, block in earlier["datasets"].items():
                results["datasets"].setdefault(name, block)
            results["datasets"] = {k: results["datasets"][k] for k in DATASETS
                                   if k in results["datasets"]}  # fmt: skip
            results["total_seconds"] += earlier["total_seconds"]
    text = markdown(results)
    if not args.quick:
        args.output.mkdir(parents=True, exist_ok=True)
        body = json.dumps(bench_deep.clean(results), indent=2, allow_nan=False)
        (args.output / "bench_low_sample.json").write_text(body + "\n")
        (args.output / "bench_low_sample.md").write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
