"""Effect distributions of binary and continuous endpoints (``log_odds_ratio_distribution``,
``mean_difference_distribution``): the simulated assurance against independent
references, the per-trial draws of a fitted posterior, and the validation of the fields."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy import integrate, stats
from scipy.special import expit, logit

from tests.conftest import PROTOCOLS, make_protocol
from trials.exceptions import ProtocolError
from trials.simulation import simulate
from trials.validation import load_protocol

ALPHA = 0.025
Z = stats.norm.isf(ALPHA)
N_PER_ARM = 200
P_CONTROL = 0.3


def quiet_sampler(test):
    """Silence the sampling libraries' warnings (and a tiny fit's convergence warning)."""
    for text in (
        "ignore:ArviZ is undergoing a major refactor:FutureWarning",
        "ignore::DeprecationWarning",
        "ignore:PyTensor could not link to a BLAS:UserWarning",
        "ignore::trials.exceptions.ConvergenceWarning",
    ):
        test = pytest.mark.filterwarnings(text)(test)
    return test


def two_arm(endpoint: dict, test: str) -> dict:
    """A 1:1 design with exactly N_PER_ARM patients per arm (blocks of 2), no dropout, all
    patients assessed: the closed forms' setting."""
    return {
        "id": "EFFECT-DIST",
        "title": "Effect drawn per trial",
        "phase": 3,
        "version": 1,
        "arms": [{"name": "control", "control": True}, {"name": "drug"}],
        "population": {
            "n_patients": 2 * N_PER_ARM,
            "accrual": {"process": "deterministic", "periods": [{"rate": 100}]},
        },
        "randomization": {"method": "blocks", "block_sizes": [2]},
        "endpoints": {"primary": endpoint},
        "analysis": {
            "primary": {"test": test},
            "alpha": ALPHA,
            "timing": {"type": "follow_up", "months": 0},
        },
    }


def continuous(effect: dict) -> dict:
    endpoint = {
        "name": "score",
        "type": "continuous",
        "better": "higher",
        "estimand": {"summary_measure": "difference_in_means"},
        "control": {"mean": 0.0, "sd": 1.0},
        "effect": effect,
    }
    return two_arm(endpoint, "t_test")


def binary(effect: dict) -> dict:
    endpoint = {
        "name": "response",
        "type": "binary",
        "better": "higher",
        "estimand": {"summary_measure": "difference_in_proportions"},
        "control": {"rate": P_CONTROL},
        "effect": effect,
    }
    return two_arm(endpoint, "difference_in_proportions")


def proportions_power(log_or: float) -> float:
    """Normal-approximation power of the one-sided pooled z-test of two proportions with
    N_PER_ARM patients per arm, at the given log odds ratio (Fleiss, Levin & Paik 2003)."""
    p1 = expit(logit(P_CONTROL) + log_or)
    pooled = (P_CONTROL + p1) / 2
    null_sd = np.sqrt(pooled * (1 - pooled) * 2 / N_PER_ARM)
    alt_sd = np.sqrt((p1 * (1 - p1) + P_CONTROL * (1 - P_CONTROL)) / N_PER_ARM)
    return float(stats.norm.cdf((p1 - P_CONTROL - Z * null_sd) / alt_sd))


def mcse(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n))


# -------------------------------------------------------------- closed forms


def test_continuous_assurance_equals_the_normal_normal_closed_form():
    # O'Hagan, Stevens & Campbell (2005): delta ~ N(mu, tau^2), known sigma, n per arm,
    # one-sided z-test: assurance = Phi((mu - z s) / sqrt(s^2 + tau^2)), s = sigma sqrt(2/n)
    mu, tau, sigma = 0.3, 0.1, 1.0
    s = sigma * np.sqrt(2 / N_PER_ARM)
    expected = stats.norm.cdf((mu - Z * s) / np.sqrt(s**2 + tau**2))
    protocol = make_protocol(continuous({"mean_difference_distribution": {"mean": mu, "sd": tau}}))
    n = 20_000
    result = simulate(protocol, n_replicates=n, seed=1)
    se = mcse(expected, n)
    print(f"continuous: simulated {result.power():.4f}, closed form {expected:.4f}, MCSE {se:.4f}")
    # the t-test's critical value with 398 df moves the closed form by about 0.001
    assert abs(result.power() - expected) < 4 * se
    assert abs(result.type_i_error() - ALPHA) < 4 * mcse(ALPHA, n)


def test_binary_assurance_equals_the_integrated_conditional_power():
    mu, tau = float(np.log(1.8)), 0.3
    expected, _ = integrate.quad(
        lambda t: proportions_power(t) * stats.norm.pdf(t, mu, tau),
        mu - 10 * tau,
        mu + 10 * tau,
        epsabs=1e-10,
    )
    protocol = make_protocol(binary({"log_odds_ratio_distribution": {"mean": mu, "sd": tau}}))
    n = 20_000
    result = simulate(protocol, n_replicates=n, seed=1)
    se = mcse(expected, n)
    print(f"binary: simulated {result.power():.4f}, integral {expected:.4f}, MCSE {se:.4f}")
    assert abs(result.power() - expected) < 4 * se
    assert abs(result.type_i_error() - ALPHA) < 4 * mcse(ALPHA, n)


def test_a_zero_sd_is_the_conditional_power_at_the_fixed_odds_ratio():
    mu = float(np.log(1.8))
    n = 10_000
    spread = simulate(
        make_protocol(binary({"log_odds_ratio_distribution": {"mean": mu, "sd": 0.0}})),
        n_replicates=n,
        seed=4,
        scenarios=("design",),
    )
    fixed = simulate(
        make_protocol(binary({"odds_ratio": float(np.exp(mu))})),
        n_replicates=n,
        seed=4,
        scenarios=("design",),
    )
    # the effect's uniform comes after the randomization draws: the same trials
    assert spread.power() == fixed.power()
    expected = proportions_power(mu)
    print(f"sd 0: simulated {spread.power():.4f}, conditional power {expected:.4f}")
    assert abs(spread.power() - expected) < 4 * mcse(expected, n)


def test_a_run_reports_assurance_and_conditional_powers(tmp_path):
    from trials.design import conditional_effect_text, with_fixed_effect
    from trials.run import simulate_to_directory

    content = continuous(
        {
            "mean_difference_distribution": {
                "mean": 0.3,
                "sd": 0.1,
                "power_at_mean_difference": 0.2,
            }
        }
    )
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(content))
    protocol = load_protocol(path)
    n = 500
    _, summary = simulate_to_directory(protocol, path, tmp_path / "run", n_replicates=n)
    primary = summary["primary"]
    assert "assurance" in primary
    assert "power" not in primary
    rows = primary["conditional_power"]
    assert [r["effect"] for r in rows] == [
        "median of the effect distribution",
        "chosen mean difference",
    ]
    assert [r["mean_difference"] for r in rows] == [0.3, 0.2]
    assert [conditional_effect_text(r) for r in rows] == [
        "mean difference 0.3",
        "mean difference 0.2",
    ]
    for row in rows:
        direct = simulate(
            with_fixed_effect(protocol, row["mean_difference"]),
            n_replicates=n,
            scenarios=("design",),
        )
        assert row["power"]["drug"]["rate"] == direct.power()
    # power falls with the effect (the same trials)
    assert rows[1]["power"]["drug"]["rate"] < rows[0]["power"]["drug"]["rate"]


# ------------------------------------------------------------ a fitted posterior


@pytest.fixture(scope="module")
def logistic_file(tmp_path_factory):
    """A Bayesian logistic model fitted to a small simulated phase-2 trial."""
    import pandas as pd

    from generators.bayesian import BayesianLogistic

    rng = np.random.default_rng(11)
    arm = np.repeat([0, 1], 100)
    response = rng.random(200) < expit(logit(P_CONTROL) + np.log(2.0) * arm)
    data = pd.DataFrame({"response": response.astype(int), "arm": arm})
    model = BayesianLogistic(
        "response", treatment="arm", covariates=[], chains=2, draws=200, tune=200, seed=1
    ).fit(data)
    path = tmp_path_factory.mktemp("phase2") / "logistic.json"
    model.save(path)
    return path


def _write(tmp_path, content: dict, name: str = "phase3.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


@quiet_sampler
def test_trials_draw_their_effect_from_the_logistic_posterior(logistic_file, tmp_path):
    from generators.base import load
    from trials.engine import Layout, draw_cohort, trial_effects

    posterior = load(logistic_file).posterior_effect()
    content = binary({"log_odds_ratio_distribution": {"model": str(logistic_file)}})
    protocol = load_protocol(_write(tmp_path, content))
    endpoint = protocol.endpoints.primary

    n_rep, n_patients = 4000, 10
    layout = Layout(protocol, n_patients, n_patients)
    cohort = draw_cohort(layout, np.arange(n_rep), seed=5)
    effects = trial_effects(protocol, endpoint, cohort, null=False)
    treated = cohort.arm != 0
    assert (effects[~treated] == 0).all()
    first = np.argmax(treated, axis=1)
    drawn = effects[np.arange(n_rep), first]
    # one effect per trial, shared by its treated patients, and always a posterior draw
    assert (np.where(treated, effects, drawn[:, None]) == drawn[:, None]).all()
    assert np.isin(drawn, posterior).all()
    # the drawn effects resample the posterior draws: their empirical distributions agree
    # (Dvoretzky-Kiefer-Wolfowitz band at level 0.001)
    grid = np.sort(posterior)
    gap = np.abs(
        np.searchsorted(np.sort(drawn), grid, side="right") / n_rep
        - np.searchsorted(grid, grid, side="right") / grid.size
    ).max()
    assert gap < np.sqrt(np.log(2 / 0.001) / (2 * n_rep))
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    print("posterior quantiles", np.quantile(posterior, qs).round(3))
    print("drawn quantiles    ", np.quantile(drawn, qs).round(3))
    assert (trial_effects(protocol, endpoint, cohort, null=True) == 0).all()

    # the simulated assurance is the conditional power averaged over the posterior
    n = 4000
    result = simulate(protocol, n_replicates=n, seed=5, scenarios=("design",))
    expected = float(np.mean([proportions_power(d) for d in posterior]))
    print(f"posterior: simulated {result.power():.4f}, average power {expected:.4f}")
    assert abs(result.power() - expected) < 4 * mcse(expected, n)


# -------------------------------------------------------------------- validation


def _problems(tmp_path, content: dict) -> str:
    with pytest.raises(ProtocolError) as error:
        load_protocol(_write(tmp_path, content))
    return str(error.value)


@quiet_sampler
def test_a_model_file_of_the_wrong_kind_is_refused(logistic_file, tmp_path):
    # a logistic posterior (log odds ratio) for a continuous endpoint
    message = _problems(
        tmp_path, continuous({"mean_difference_distribution": {"model": str(logistic_file)}})
    )
    assert "endpoints.primary.effect.mean_difference_distribution.model" in message
    assert "log odds ratio, not the mean difference" in message
    assert "bayesian_linear" in message
    # a survival posterior (log hazard ratio) for a binary endpoint
    weibull = PROTOCOLS / "models" / "gbsg2_weibull.json"
    message = _problems(tmp_path, binary({"log_odds_ratio_distribution": {"model": str(weibull)}}))
    assert "endpoints.primary.effect.log_odds_ratio_distribution.model" in message
    assert "log hazard ratio, not the log odds ratio" in message
    # a copula has no treatment effect at all
    copula = PROTOCOLS / "models" / "gbsg2_copula.json"
    message = _problems(tmp_path, binary({"log_odds_ratio_distribution": {"model": str(copula)}}))
    assert "log_odds_ratio_distribution.model" in message
    assert "no treatment-effect posterior" in message
    # and a logistic posterior for a time-to-event endpoint
    content = yaml.safe_load((PROTOCOLS / "breast_cancer_phase3_assurance.yaml").read_text())
    content["endpoints"]["primary"]["effect"] = {
        "log_hazard_ratio_distribution": {"model": str(logistic_file)}
    }
    message = _problems(tmp_path, content)
    assert "endpoints.primary.effect.log_hazard_ratio_distribution.model" in message
    assert "log odds ratio, not the log hazard ratio" in message


def test_a_distribution_the_endpoint_type_does_not_take_is_refused(tmp_path):
    message = _problems(
        tmp_path, continuous({"log_odds_ratio_distribution": {"mean": 0.1, "sd": 0.1}})
    )
    assert "endpoints.primary.effect.log_odds_ratio_distribution" in message
    assert "unknown key 'log_odds_ratio_distribution'" in message
    message = _problems(
        tmp_path, binary({"log_hazard_ratio_distribution": {"mean": 0.1, "sd": 0.1}})
    )
    assert "endpoints.primary.effect.log_hazard_ratio_distribution" in message
    assert "did you mean 'log_odds_ratio_distribution'" in message
    # the chosen effect of another scale
    message = _problems(
        tmp_path,
        binary(
            {"log_odds_ratio_distribution": {"mean": 0.1, "sd": 0.1, "power_at_hazard_ratio": 2}}
        ),
    )
    assert "log_odds_ratio_distribution.power_at_hazard_ratio" in message
    # a fixed effect and a distribution together
    message = _problems(
        tmp_path,
        binary({"odds_ratio": 2.0, "log_odds_ratio_distribution": {"mean": 0.1, "sd": 0.1}}),
    )
    assert "endpoints.primary.effect: give one of 'odds_ratio', 'risk_difference'" in message
    message = _problems(tmp_path, continuous({}))
    assert "give either 'mean_difference' or 'mean_difference_distribution'" in message


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (
            continuous({"mean_difference_distribution": {"mean": 0.3, "sd": -0.1}}),
            "endpoints.primary.effect.mean_difference_distribution.sd",
        ),
        (
            binary({"log_odds_ratio_distribution": {"mean": 0.3, "sd": -0.1}}),
            "endpoints.primary.effect.log_odds_ratio_distribution.sd",
        ),
    ],
)
def test_a_negative_sd_is_refused(tmp_path, content, field):
    message = _problems(tmp_path, content)
    assert f"{field}: must be greater than or equal to 0 (got -0.1)" in message


def test_mean_without_sd_and_a_missing_model_file_are_refused(tmp_path):
    message = _problems(tmp_path, binary({"log_odds_ratio_distribution": {"mean": 0.3}}))
    assert "log_odds_ratio_distribution: give 'mean' and 'sd', or 'model'" in message
    message = _problems(
        tmp_path, continuous({"mean_difference_distribution": {"model": "nowhere.json"}})
    )
    assert "mean_difference_distribution.model: model file 'nowhere.json' not found" in message


def test_simulate_refuses_a_wrong_kind_model_without_traceback(tmp_path):
    weibull = PROTOCOLS / "models" / "gbsg2_weibull.json"
    content = copy.deepcopy(binary({"log_odds_ratio_distribution": {"model": str(weibull)}}))
    path = _write(tmp_path, content, "wrong.yaml")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "trials.cli", "simulate", str(path), "--out", str(out), "-r", "10"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "endpoints.primary.effect.log_odds_ratio_distribution.model" in done.stderr
    assert "log hazard ratio, not the log odds ratio" in done.stderr
    assert not out.exists()
