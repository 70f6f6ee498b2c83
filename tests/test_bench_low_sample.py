"""The summaries of bench/bench_low_sample.py (paired differences over the replicates,
checked by hand) and its ablation generator (an RHVAE that decodes prior draws)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_low_sample")


def run(bench, fidelity: float, detection: float, gain: float) -> dict:
    keys = {key: 0.0 for _, key, _ in bench.METRICS}
    return {**keys, "fidelity": fidelity, "detection_auc_gradient_boosting": detection,
            "gain_x5": gain}  # fmt: skip


def test_paired_differences_by_hand(bench):
    vae = [(0.90, 0.70, 0.01), (0.92, 0.60, 0.03), (0.91, 0.65, 0.0)]
    rhvae = [(0.91, 0.75, 0.02), (0.95, 0.62, 0.01), (0.92, 0.64, 0.04)]
    runs = {"vae": [run(bench, *v) for v in vae], "rhvae": [run(bench, *v) for v in rhvae]}
    summary = bench.summarize(runs)
    assert summary["generators"]["vae"]["fidelity"]["mean"] == pytest.approx(0.91)
    assert summary["generators"]["vae"]["fidelity"]["se"] == pytest.approx(0.01 / math.sqrt(3))
    pair = summary["pairs"]["rhvae - vae"]
    diff = np.array([0.01, 0.03, 0.01])
    assert pair["fidelity"]["mean"] == pytest.approx(diff.mean())
    assert pair["fidelity"]["se"] == pytest.approx(diff.std(ddof=1) / math.sqrt(3))
    assert pair["fidelity"]["first_better"] == 3  # higher is better
    assert pair["detection_auc_gradient_boosting"]["first_better"] == 1  # lower is better
    assert pair["gain_x5"]["first_better"] == 2
    assert "rhvae_prior - vae" not in summary["pairs"]  # a pair needs both generators


def test_derived_gains_and_event_rate_gap(bench):
    result = {
        "event_rate_virtual": 0.42,
        "event_rate_real_training": 0.45,
        "augmentation_c_index": {"real_only": 0.60, "x2": 0.62, "x20": 0.59},
    }
    out = bench.derived(result)
    assert out["event_rate_gap"] == pytest.approx(0.03)
    assert out["gain_x2"] == pytest.approx(0.02)
    assert out["gain_x20"] == pytest.approx(-0.01)


def test_prior_sampling_ablation_decodes_standard_normal_codes(bench):
    import torch
    from scipy import stats

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=60), "time": rng.exponential(5.0, 60) + 0.1,
                         "event": rng.integers(0, 2, 60)})  # fmt: skip
    model = bench.factories("time", "event", seed=0, epochs=2)["rhvae_prior"]()
    model.fit(data)
    codes, _ = model._latent_draws(4000, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert codes.shape == (4000, model.latent_dim)
    assert stats.kstest(codes[:, 0].numpy(), "norm").pvalue > 0.01
    assert len(model.sample(10, rng=2)) == 10
