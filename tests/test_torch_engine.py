"""The torch engine (``--device cuda``), checked on the CPU: its random streams against
SplitMix64 computed independently in numpy's unsigned arithmetic, its log-rank test
against lifelines and the numpy engine's, the shared model functions against their numpy
results, and whole simulations against the numpy engine and Schoenfeld's formula within
Monte Carlo error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

from analysis.logrank import logrank_test  # noqa: E402
from analysis.logrank_looks import administrative_censoring  # noqa: E402
from tests.conftest import PROTOCOLS  # noqa: E402
from trials import randomization as rand  # noqa: E402
from trials import torch_engine as te  # noqa: E402
from trials.accrual import enrollment_times  # noqa: E402
from trials.cli import main  # noqa: E402
from trials.engine import dropout_times  # noqa: E402
from trials.exceptions import DesignError  # noqa: E402
from trials.outcomes import event_times  # noqa: E402
from trials.protocol import Protocol  # noqa: E402
from trials.run import resume_run, simulate_to_directory  # noqa: E402
from trials.simulation import simulate  # noqa: E402
from trials.validation import load_protocol  # noqa: E402

REFERENCE = PROTOCOLS.parent / "bench" / "reference_design.yaml"
ONCOLOGY = PROTOCOLS / "oncology_os_phase3.yaml"
CPU = "torch-cpu"


def tensor(a):
    return torch.as_tensor(np.asarray(a))


# ------------------------------------------------------------------ random streams


def splitmix64_numpy(state: np.ndarray) -> np.ndarray:
    """SplitMix64's output function in numpy uint64 (wraps modulo 2**64 by definition)."""
    z = state.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def test_splitmix64_matches_the_published_sequence_and_unsigned_arithmetic():
    # SplitMix64 seeded with 0 (Vigna's reference splitmix64.c): the first outputs
    golden = 0x9E3779B97F4A7C15
    states = np.array([(k * golden) % 2**64 for k in (1, 2, 3)], dtype=np.uint64)
    expected = splitmix64_numpy(states)
    assert int(expected[0]) == 0xE220A8397B1DCDAF
    assert int(expected[1]) == 0x6E789E6AA1B965F4
    rng = np.random.default_rng(0)
    many = rng.integers(0, 2**64, size=10_000, dtype=np.uint64)
    got = te.splitmix64(torch.as_tensor(many.view(np.int64)))
    np.testing.assert_array_equal(got.numpy().view(np.uint64), splitmix64_numpy(many))


def test_uniforms_are_uniform_independent_and_fixed_per_replicate():
    u = te.uniforms(7, np.arange(200), np.arange(500), "cpu").numpy()
    assert u.min() > 0
    assert u.max() < 1
    flat = u.ravel()
    assert stats.kstest(flat, "uniform").pvalue > 1e-3
    # neighbouring draws and neighbouring replicates are uncorrelated (|r| < 4 SE)
    n = flat.size
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 4 / np.sqrt(n)
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 4 / np.sqrt(n)
    # a replicate's draws do not depend on the others simulated with it, nor the seed's
    some = te.uniforms(7, np.array([13, 150]), np.arange(500), "cpu").numpy()
    np.testing.assert_array_equal(some, u[[13, 150]])
    other = te.uniforms(8, np.arange(200), np.arange(500), "cpu").numpy()
    assert not np.any(other == u)


# ---------------------------------------------- shared model functions on tensors


def test_model_functions_give_the_numpy_results_on_tensors():
    from trials.protocol import WeibullControl

    rng = np.random.default_rng(1)
    e = rng.exponential(1.0, (50, 40))
    arm = rng.integers(0, 3, (50, 40))
    lhr = np.log(np.array([1.0, 0.7, 0.9]))[arm]
    piecewise = piecewise_protocol()
    weibull = WeibullControl(distribution="weibull", median=12, shape=1.4)
    for control in (piecewise.endpoints.primary.control, weibull):
        np.testing.assert_allclose(
            event_times(control, tensor(e), tensor(lhr)).numpy(), event_times(control, e, lhr),
            rtol=1e-14,
        )
    for p in (load_protocol(REFERENCE), piecewise):
        np.testing.assert_array_equal(
            dropout_times(p, tensor(e), tensor(arm)).numpy(), dropout_times(p, e, arm)
        )
    accrual = piecewise.population.accrual
    np.testing.assert_allclose(
        enrollment_times(accrual, 40, tensor(e)).numpy(), enrollment_times(accrual, 40, e),
        rtol=1e-13,
    )


def test_covariates_eligibility_and_strata_on_tensors_are_the_numpy_ones():
    from trials.engine import Layout, _eligible, _randomize, stratum_codes
    from trials.outcomes import linear_predictor

    protocol = load_protocol(ONCOLOGY)
    layout = Layout(protocol, 600, 600)
    model = layout.covariate_model
    normals = np.random.default_rng(5).standard_normal((20, 600, model.n_latent))
    covariates = model.transform(normals)
    on_tensors = model.transform(tensor(normals))
    for name, values in covariates.items():  # (matrix products round differently)
        np.testing.assert_allclose(on_tensors[name].numpy(), values, rtol=1e-14)
    np.testing.assert_array_equal(
        _eligible(layout.eligibility, on_tensors).numpy(),
        _eligible(layout.eligibility, covariates),
    )
    effects = protocol.endpoints.primary.covariate_effects
    np.testing.assert_allclose(
        linear_predictor(effects, on_tensors, model, (20, 600)).numpy(),
        linear_predictor(effects, covariates, model, (20, 600)),
        atol=1e-14,
    )
    np.testing.assert_array_equal(
        stratum_codes(layout, on_tensors, ["ecog", "region"]).numpy(),
        stratum_codes(layout, covariates, ["ecog", "region"]),
    )
    u = np.random.default_rng(6).random((20, layout.n_randomization))
    np.testing.assert_array_equal(
        _randomize(layout, on_tensors, tensor(u)).numpy(), _randomize(layout, covariates, u)
    )


@pytest.mark.parametrize(
    "scheme",
    [
        {"method": "simple"},
        {"method": "blocks", "block_sizes": [4]},
        {"method": "blocks", "block_sizes": [4, 6]},
    ],
)
def test_randomization_on_tensors_is_the_numpy_assignment(scheme):
    from pydantic import TypeAdapter

    from trials.protocol import Randomization

    parsed = TypeAdapter(Randomization).validate_python(scheme)
    n = 37
    u = np.random.default_rng(2).random((30, rand.n_uniforms(parsed, n)))
    weights = np.array([1, 1])
    expected = rand.assign(parsed, weights, u, n)
    got = rand.assign(parsed, weights, tensor(u), n)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_administrative_censoring_on_tensors_is_the_numpy_one():
    rng = np.random.default_rng(3)
    time = rng.exponential(10, (40, 30))
    censor = np.where(rng.random((40, 30)) < 0.3, rng.exponential(20, (40, 30)), np.inf)
    entry = np.sort(rng.uniform(0, 24, (40, 30)), axis=1)
    cutoff = rng.uniform(10, 40, 40)
    for follow_up in (np.inf, 12.0):
        expected = administrative_censoring(time, censor, entry, cutoff, follow_up)
        got = te.administrative_censoring(
            tensor(time), tensor(censor), tensor(entry), tensor(cutoff), follow_up
        )
        for g, x in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g.numpy(), x)


# --------------------------------------------------------------------- log-rank


def test_logrank_on_tensors_matches_lifelines_and_the_numpy_test():
    from lifelines.statistics import logrank_test as lifelines_logrank

    rng = np.random.default_rng(4)
    n_rep, n = 25, 60
    time = np.round(rng.exponential(10, (n_rep, n)))  # rounded: many ties
    event = rng.random((n_rep, n)) < 0.7
    group = rng.random((n_rep, n)) < 0.5
    valid = rng.random((n_rep, n)) < 0.9
    o_e, var, events, n_valid = (
        s.numpy() for s in te.logrank(tensor(time), tensor(event & valid), tensor(group),
                                      tensor(valid))
    )
    numpy_test = logrank_test(time, event, group, valid=valid)
    np.testing.assert_allclose(o_e, numpy_test.observed_minus_expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, numpy_test.variance, rtol=1e-12)
    np.testing.assert_array_equal(events, (event & valid).sum(axis=1))
    np.testing.assert_array_equal(n_valid, valid.sum(axis=1))
    for r in range(3):
        v, g = valid[r], group[r]
        ref = lifelines_logrank(time[r][v & g], time[r][v & ~g], event[r][v & g],
                                event[r][v & ~g])
        assert o_e[r] ** 2 / var[r] == pytest.approx(ref.test_statistic, rel=1e-10)


# ---------------------------------------------------------------- whole simulations


def test_torch_engine_matches_the_numpy_engine_and_schoenfeld_within_mc_error():
    protocol = load_protocol(REFERENCE)
    n = 4096
    torch_run = simulate(protocol, n_replicates=n, device=CPU)
    numpy_run = simulate(protocol, n_replicates=n)
    for scenario, reference in (("design", None), ("null", 0.025)):
        a = torch_run.operating_characteristics.rate(scenario, "os", None)
        b = numpy_run.operating_characteristics.rate(scenario, "os", None)
        se = np.sqrt(2 * b * (1 - b) / n)
        assert abs(a - b) < 4 * se, (scenario, a, b)
        if reference is not None:
            assert abs(a - reference) < 4 * np.sqrt(reference * (1 - reference) / n)
    # Schoenfeld: 390 events, HR 0.7, 1:1, one-sided 0.025
    schoenfeld = stats.norm.cdf(np.sqrt(390 / 4) * -np.log(0.7) - stats.norm.ppf(0.975))
    power = torch_run.power()
    assert abs(power - schoenfeld) < 4 * np.sqrt(power * (1 - power) / n) + 0.01
    rows = torch_run.replicates
    assert (rows["events"] == 390).all()
    assert (rows["n_analysed"] == 600).all()
    design = rows[rows["scenario"] == "design"]
    assert design["estimate"].mean() == pytest.approx(np.log(0.7), abs=0.01)


def piecewise_protocol() -> Protocol:
    """Three arms, Poisson accrual, piecewise-exponential control, dropout by arm, an
    analysis at a calendar time: the torch engine's other branches."""
    protocol = load_protocol(REFERENCE)
    data = protocol.model_dump(mode="json", exclude_none=True)
    data["arms"].append({"name": "high_dose", "allocation": 1})
    data["population"]["accrual"]["process"] = "poisson"
    data["randomization"] = {"method": "blocks", "block_sizes": [3, 6]}
    data["dropout"]["by_arm"] = {"high_dose": {"annual_rate": 0.15}}
    data["endpoints"]["primary"]["control"] = {
        "distribution": "piecewise_exponential", "breaks": [6], "hazards": [0.08, 0.05],
    }
    data["endpoints"]["primary"]["effect"] = {
        "hazard_ratio": {"experimental": 0.7, "high_dose": 1.0}
    }
    data["analysis"]["timing"] = {"type": "calendar", "months": 40}
    data["analysis"]["multiplicity"] = "holm"
    return Protocol.model_validate(data)


def test_three_arm_piecewise_design_matches_the_numpy_engine():
    protocol = piecewise_protocol()
    n = 3000
    a = simulate(protocol, n_replicates=n, device=CPU).summary().set_index(["scenario", "arm"])
    b = simulate(protocol, n_replicates=n).summary().set_index(["scenario", "arm"])
    for key in a.index:
        ra, rb = a.loc[key, "rejection_rate"], b.loc[key, "rejection_rate"]
        assert abs(ra - rb) < 4 * np.sqrt(2 * max(rb * (1 - rb), 1e-3) / n) + 1e-3, key
        ea, eb = a.loc[key, "events_mean"], b.loc[key, "events_mean"]
        if not np.isnan(eb):  # ('any' rows: the family-wise rejection rate)
            assert abs(ea - eb) < 0.02 * eb, key


def test_stratified_design_with_eligibility_matches_the_numpy_engine():
    """The shipped oncology protocol: correlated covariates with effects, eligibility
    screening, blocks stratified by two factors, the stratified log-rank test."""
    protocol = load_protocol(ONCOLOGY)
    n = 3000
    a = simulate(protocol, n_replicates=n, device=CPU)
    b = simulate(protocol, n_replicates=n)
    for scenario in ("design", "null"):
        ra = a.operating_characteristics.rate(scenario, "os", None)
        rb = b.operating_characteristics.rate(scenario, "os", None)
        assert abs(ra - rb) < 4 * np.sqrt(2 * rb * (1 - rb) / n), scenario
    screened = [r.replicates["n_screened"] for r in (a, b)]
    se = np.hypot(*(s.std() / np.sqrt(len(s)) for s in screened))
    assert abs(screened[0].mean() - screened[1].mean()) < 4 * se
    assert (screened[0] >= 600).all()


def test_a_replicate_short_of_eligible_candidates_screens_more(monkeypatch):
    from trials.engine import Layout

    protocol = load_protocol(ONCOLOGY)
    # draw only as many candidates as patients: every replicate must screen more
    monkeypatch.setattr(Layout, "n_candidates", property(lambda self: self.n_draw))
    rows = simulate(protocol, n_replicates=40, device=CPU, scenarios=("design",)).replicates
    eligible = Layout(protocol, 600, 600).eligible_fraction
    ratio = 600 / rows["n_screened"]
    assert (rows["n_screened"] > 600).all()
    assert abs(ratio.mean() - eligible) < 4 * ratio.std() / np.sqrt(len(ratio))
    again = simulate(protocol, n_replicates=40, device=CPU, scenarios=("design",), chunk_size=7)
    pd.testing.assert_frame_equal(rows, again.replicates)


def test_results_do_not_depend_on_the_chunking():
    protocol = load_protocol(REFERENCE)
    one = simulate(protocol, n_replicates=2500, device=CPU, chunk_size=2500).replicates
    many = simulate(protocol, n_replicates=2500, device=CPU, chunk_size=700).replicates
    pd.testing.assert_frame_equal(one, many)


def test_a_run_directory_records_the_device_and_resumes_to_the_same_result(tmp_path):
    protocol = load_protocol(REFERENCE)
    out = tmp_path / "run"
    _, summary = simulate_to_directory(
        protocol, REFERENCE, out, n_replicates=3000, chunk_size=1000, device=CPU
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["device"] == CPU
    assert "SplitMix64" in manifest["random_streams"]
    parts = sorted((out / "replicates.parquet").glob("part-*.parquet"))
    assert len(parts) == 3
    parts[1].unlink()
    (out / "summary.json").unlink()
    _, resumed = resume_run(out)
    assert json.dumps(resumed) == json.dumps(summary)


def test_unsupported_protocols_and_devices_are_refused(tmp_path, capsys):
    with pytest.raises(DesignError, match="a cure fraction; the maxcombo test"):
        simulate(load_protocol(PROTOCOLS / "immunotherapy_delayed_effect.yaml"), device=CPU)
    out = tmp_path / "run"
    code = main(["simulate", str(PROTOCOLS / "oncology_os_group_sequential.yaml"),
                 "--out", str(out), "--device", CPU, "-q"])
    assert code == 2
    assert not out.exists()
    assert "group-sequential" in capsys.readouterr().err
    assert main(["simulate", str(REFERENCE), "--out", str(out), "--device", "tpu"]) == 2
    assert "expected cpu" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["simulate", str(REFERENCE), "--out", str(out), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_simulates_the_same_patients_as_the_cpu():
    protocol = load_protocol(REFERENCE)
    gpu = simulate(protocol, n_replicates=2048, device="cuda").replicates
    cpu = simulate(protocol, n_replicates=2048, device=CPU).replicates
    np.testing.assert_allclose(gpu["estimate"], cpu["estimate"], rtol=1e-9)
    assert (gpu["reject"] == cpu["reject"]).mean() > 0.999


def test_report_of_a_torch_run_says_its_example_trial_is_not_one_of_the_runs(tmp_path):
    out = tmp_path / "run"
    args = ["simulate", str(REFERENCE), "--out", str(out), "-r", "100", "-q"]
    assert main([*args, "--device", CPU, "--report"]) == 0
    html = (out / "report" / "report.html").read_text()
    assert "SplitMix64" in html
    assert "is not one of the run" in html
    assert "In the simulation this trial was analysed" not in html


def test_an_effect_drawn_per_trial_gives_the_numpy_engines_assurance():
    from trials.engine import Layout

    path = PROTOCOLS / "breast_cancer_phase3_assurance.yaml"
    protocol = load_protocol(path)
    n = 4096
    a = simulate(protocol, n_replicates=n, device=CPU)
    b = simulate(protocol, n_replicates=n)
    for scenario in ("design", "null"):
        ra = a.operating_characteristics.rate(scenario, None, None)
        rb = b.operating_characteristics.rate(scenario, None, None)
        assert abs(ra - rb) < 4 * np.sqrt(2 * rb * (1 - rb) / n), scenario
    # the per-trial log hazard ratios are N(mean, sd), zero in the control arm
    spec = protocol.endpoints.primary.effect.log_hazard_ratio_distribution
    engine = te.TorchEngine(Layout(protocol, 10, 10), CPU)
    arm = torch.tensor([[0, 1]] * 2000)
    u = te.uniforms(3, np.arange(2000), [0], "cpu")[:, 0]
    effects = engine._trial_effects(protocol.endpoints.primary, arm, u, null=False).numpy()
    assert (effects[:, 0] == 0).all()
    assert stats.kstest(effects[:, 1], "norm", args=(spec.mean, spec.sd)).pvalue > 1e-3
