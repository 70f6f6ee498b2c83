"""The shipped phase-2 -> phase-3 example: its model files are what the documented
commands make, the Bayesian fit agrees with Cox, and the design runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_gbsg2

from tests.conftest import PROTOCOLS
from trials.cli import main

MODELS = PROTOCOLS / "models"
EXAMPLE = PROTOCOLS / "breast_cancer_phase3_from_phase2.yaml"


def test_the_shipped_copula_is_what_insilico_fit_makes(tmp_path):
    data, model = tmp_path / "gbsg2.csv", tmp_path / "copula.json"
    assert main(["example-data", "gbsg2", "--out", str(data)]) == 0
    dictionary = MODELS / "gbsg2_dictionary.yaml"
    assert main(["fit", str(data), "-d", str(dictionary), "-g", "copula", "-o", str(model)]) == 0
    made, shipped = json.loads(model.read_text()), json.loads(
        (MODELS / "gbsg2_copula.json").read_text()
    )
    made.pop("package_version"), shipped.pop("package_version")
    assert made == shipped


def test_the_shipped_posterior_agrees_with_cox_on_the_same_data():
    from generators.base import load

    model = load(MODELS / "gbsg2_weibull.json")
    assert model.diagnostics_["converged"]
    data = load_gbsg2()
    frame = data[["time", "cens", "pnodes", "progrec"]].assign(
        hormonal=(data["horTh"] == "yes").astype(float),
        grade_II=(data["tgrade"] == "II").astype(float),
        grade_III=(data["tgrade"] == "III").astype(float),
    )
    cox = CoxPHFitter().fit(frame, "time", "cens")
    estimate, se = cox.params_["hormonal"], cox.standard_errors_["hormonal"]
    draws = model.posterior_log_hr()
    # a Weibull PH model and Cox's partial likelihood on the same covariates: the
    # posterior mean within a fifth of Cox's SE, the posterior SD within 10 % of it
    assert draws.mean() == pytest.approx(estimate, abs=0.2 * se)
    assert draws.std() == pytest.approx(se, rel=0.1)


def test_the_example_design_runs_with_assurance_and_conditional_power(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["simulate", str(EXAMPLE), "--out", str(out), "-r", "300", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    primary = summary["primary"]
    assurance = primary["assurance"]["hormonal_therapy"]["rate"]
    median, chosen = primary["conditional_power"]
    assert median["effect"] == "posterior median"
    assert median["hazard_ratio"] == pytest.approx(np.exp(-0.34), abs=0.02)
    assert chosen["hazard_ratio"] == pytest.approx(0.75)
    # power falls as the hazard ratio rises (same trials, common random numbers)
    assert chosen["power"]["hormonal_therapy"]["rate"] < median["power"]["hormonal_therapy"]["rate"]
    assert 0 < assurance < 1
    manifest = json.loads((out / "manifest.json").read_text())
    names = ("gbsg2_copula.json", "gbsg2_weibull.json")
    assert set(manifest["inputs"]) == {str((MODELS / name).resolve()) for name in names}
