"""Assurance against numerical integration of the power over the effect distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from analysis.assurance import (
    events_for_assurance,
    events_for_assurance_draws,
    logrank_assurance,
    logrank_assurance_draws,
    normal_assurance,
)
from analysis.logrank_events import logrank_power
from trials.exceptions import DesignError


@pytest.mark.parametrize(
    ("mean", "sd", "info"), [(0.3, 0.1, 80.0), (0.2, 0.3, 200.0), (0.5, 0.0, 30.0)]
)
def test_closed_form_equals_the_integral_of_power(mean, sd, info):
    z = stats.norm.isf(0.025)
    if sd == 0:
        expected = stats.norm.sf(z - mean * np.sqrt(info))
    else:
        expected, _ = integrate.quad(
            lambda d: stats.norm.sf(z - d * np.sqrt(info)) * stats.norm.pdf(d, mean, sd),
            mean - 12 * sd,
            mean + 12 * sd,
            epsabs=1e-12,
        )
    assert normal_assurance(mean, sd, info) == pytest.approx(expected, rel=1e-8)


def test_logrank_assurance_reduces_to_schoenfeld_power_without_uncertainty():
    assert logrank_assurance(390, np.log(0.7), 0.0) == pytest.approx(
        logrank_power(390, 0.7), rel=1e-10
    )


def test_events_for_assurance_and_its_ceiling():
    events = events_for_assurance(0.7, np.log(0.7), 0.15)
    assert logrank_assurance(events, np.log(0.7), 0.15) == pytest.approx(0.7, abs=1e-8)
    with pytest.raises(DesignError, match="never reached"):
        events_for_assurance(0.995, np.log(0.7), 0.15)  # ceiling Phi(0.357 / 0.15) = 0.991


def test_simulated_assurance_equals_the_closed_form():
    from tests.conftest import make_protocol
    from tests.test_operating_characteristics import reference_design
    from trials.simulation import simulate

    content = reference_design().model_dump(mode="python")
    content["endpoints"]["primary"]["effect"] = {
        "log_hazard_ratio_distribution": {"mean": float(np.log(0.7)), "sd": 0.15}
    }
    n = 3000
    result = simulate(make_protocol(content), n_replicates=n, seed=2)
    expected = logrank_assurance(390, np.log(0.7), 0.15)
    se = np.sqrt(expected * (1 - expected) / n)
    # Schoenfeld's approximation is good to about 0.002 here (see test_operating_characteristics)
    assert abs(result.power() - expected) < 4 * se + 0.005
    assert abs(result.type_i_error() - 0.025) < 4 * np.sqrt(0.025 * 0.975 / n)


@pytest.mark.filterwarnings("ignore:ArviZ is undergoing a major refactor:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")
@pytest.mark.filterwarnings("ignore::trials.exceptions.ConvergenceWarning")
def test_effect_drawn_from_a_fitted_posterior(tmp_path):
    import yaml
    from lifelines.datasets import load_gbsg2

    from generators.bayesian import BayesianWeibull
    from tests.conftest import PROTOCOLS
    from trials.engine import posterior_effect_draws
    from trials.simulation import simulate
    from trials.validation import load_protocol

    data = load_gbsg2()
    model = BayesianWeibull(
        time="time", event="cens", treatment="horTh", covariates=[], chains=2, draws=200, tune=200
    ).fit(data)
    model.save(tmp_path / "phase2.json")
    content = yaml.safe_load((PROTOCOLS / "breast_cancer_phase3_assurance.yaml").read_text())
    content["endpoints"]["primary"]["effect"] = {
        "log_hazard_ratio_distribution": {"model": "phase2.json"}
    }
    path = tmp_path / "phase3.yaml"
    path.write_text(yaml.safe_dump(content))
    protocol = load_protocol(path)
    draws = posterior_effect_draws(str((tmp_path / "phase2.json").resolve()), "log_hazard_ratio")
    n = 1500
    result = simulate(protocol, n_replicates=n, seed=3, scenarios=("design",))
    expected = logrank_assurance(330, draws.mean(), draws.std())
    # the posterior is close to normal; the closed form is then the reference
    assert abs(result.power() - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 0.01


def test_missing_posterior_model_file_is_a_protocol_error(tmp_path):
    import yaml

    from tests.conftest import PROTOCOLS
    from trials.exceptions import ProtocolError
    from trials.validation import load_protocol

    content = yaml.safe_load((PROTOCOLS / "breast_cancer_phase3_assurance.yaml").read_text())
    content["endpoints"]["primary"]["effect"] = {
        "log_hazard_ratio_distribution": {"model": "missing.json"}
    }
    path = tmp_path / "phase3.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ProtocolError, match="model file 'missing.json' not found"):
        load_protocol(path)


def test_assurance_from_draws_equals_the_normal_closed_form():
    # the quantiles of N(mean, sd) at the midpoints: their empirical distribution
    # converges to the normal, so the draws' assurance tends to the closed form
    mean, sd = np.log(0.7), 0.15
    draws = stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000, mean, sd)
    assert logrank_assurance_draws(390, draws) == pytest.approx(
        logrank_assurance(390, mean, sd), abs=1e-7
    )
    assert events_for_assurance_draws(0.7, draws) == pytest.approx(
        events_for_assurance(0.7, mean, sd), rel=1e-5
    )


def test_assurance_from_one_draw_is_schoenfeld_power():
    assert logrank_assurance_draws(330, np.array([np.log(0.75)]), 0.01, 2.0) == pytest.approx(
        logrank_power(330, 0.75, alpha=0.01, allocation_ratio=2.0), rel=1e-12
    )


def test_assurance_from_draws_ceiling_and_bad_draws():
    draws = np.array([-0.5, -0.4, 0.1, -0.3])  # 3 of 4 draws beneficial: ceiling 0.75
    events = events_for_assurance_draws(0.7, draws)
    assert logrank_assurance_draws(events, draws) == pytest.approx(0.7, abs=1e-8)
    with pytest.raises(DesignError, match="cannot exceed the probability 0.7500"):
        events_for_assurance_draws(0.8, draws)
    with pytest.raises(DesignError, match="non-empty 1-D finite"):
        logrank_assurance_draws(100, np.array([np.nan]))


def test_simulation_reports_conditional_power_with_the_assurance(tmp_path):
    import yaml

    from tests.conftest import PROTOCOLS
    from trials.design import with_fixed_effect
    from trials.run import simulate_to_directory
    from trials.simulation import simulate
    from trials.validation import load_protocol

    content = yaml.safe_load((PROTOCOLS / "breast_cancer_phase3_assurance.yaml").read_text())
    content["endpoints"]["primary"]["effect"]["log_hazard_ratio_distribution"][
        "power_at_hazard_ratio"
    ] = 0.8
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(content))
    protocol = load_protocol(path)
    n = 1000
    _, summary = simulate_to_directory(protocol, path, tmp_path / "run", n_replicates=n)
    rows = summary["primary"]["conditional_power"]
    effects = [r["effect"] for r in rows]
    assert effects == ["median of the effect distribution", "chosen hazard ratio"]
    assert rows[1]["hazard_ratio"] == pytest.approx(0.8)
    for row, log_hr in zip(rows, [-0.364, np.log(0.8)], strict=True):
        rate = row["power"]["hormonal_therapy"]["rate"]
        # the same trials at the fixed effect: the scenario is that protocol's power
        direct = simulate(with_fixed_effect(protocol, log_hr), n_replicates=n,
                          scenarios=("design",))
        assert rate == direct.power()
        expected = logrank_power(330, np.exp(log_hr))
        assert abs(rate - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 0.01
    assert "assurance" in summary["primary"]
    assert "power" not in summary["primary"]
    assert summary["analytic"]["events_for_assurance_80"] == pytest.approx(
        events_for_assurance(0.8, -0.364, 0.125), rel=1e-9
    )
    import pandas as pd

    table = pd.read_parquet(tmp_path / "run" / "replicates.parquet")
    assert table["scenario"].value_counts().to_dict() == {
        "design": n, "null": n, "conditional_1": n, "conditional_2": n
    }
