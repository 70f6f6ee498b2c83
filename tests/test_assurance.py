"""Assurance against numerical integration of the power over the effect distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from analysis.assurance import events_for_assurance, logrank_assurance, normal_assurance
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
    from trials.engine import posterior_log_hr
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
    draws = posterior_log_hr(str((tmp_path / "phase2.json").resolve()))
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
