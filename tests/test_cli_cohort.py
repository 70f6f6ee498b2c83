"""The virtual-cohort commands end to end on the GBSG2 trial shipped with lifelines."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from trials.cli import main


def test_fit_generate_validate(tmp_path, capsys):
    data, dictionary = tmp_path / "gbsg2.csv", tmp_path / "gbsg2.yaml"
    model, virtual = tmp_path / "copula.json", tmp_path / "virtual.parquet"
    report = tmp_path / "validation.json"
    assert main(["example-data", "gbsg2", "--out", str(data)]) == 0
    assert main(["dictionary", str(data), "--out", str(dictionary)]) == 0
    assert "role: time" in dictionary.read_text()
    assert main(["fit", str(data), "-d", str(dictionary), "-g", "copula", "-o", str(model)]) == 0
    assert "patient_id" not in json.loads(model.read_text())["data"]["columns"]
    assert main(["generate", str(model), "-n", "800", "--real", str(data), "-o", str(virtual)]) == 0
    out = capsys.readouterr().out
    assert "similarity filter: dropped" in out
    # every generated cohort carries its validation report
    attached = json.loads((tmp_path / "virtual.validation.json").read_text())
    assert attached["validated"]
    assert attached["n_virtual"] <= 800
    assert "detection AUC" in out
    cohort = pd.read_parquet(virtual)
    assert 0 < len(cohort) <= 800
    assert set(cohort["horTh"]) <= {"no", "yes"}
    assert main(["validate-cohort", str(data), str(virtual), "-o", str(report)]) == 0
    content = json.loads(report.read_text())
    assert 0 < content["fidelity_score"] <= 1
    assert content["hazard_ratio"] > 0


def test_generate_needs_the_real_data_for_the_filter(tmp_path, capsys):
    data, model = tmp_path / "gbsg2.csv", tmp_path / "copula.json"
    main(["example-data", "gbsg2", "--out", str(data)])
    main(["fit", str(data), "-o", str(model)])
    capsys.readouterr()
    assert main(["generate", str(model), "-n", "10", "-o", str(tmp_path / "v.csv")]) == 2
    assert "--real" in capsys.readouterr().err
    assert not (tmp_path / "v.csv").exists()


def test_bad_data_file_names_the_column_and_rows(tmp_path, capsys):
    data = tmp_path / "bad.csv"
    pd.DataFrame({"id": [1, 2, 2], "time": [1.0, -2.0, 3.0], "event": [1, 0, 5]}).to_csv(
        data, index=False
    )
    assert main(["fit", str(data), "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


@pytest.fixture
def gbsg2_copula(tmp_path):
    data, model = tmp_path / "gbsg2.csv", tmp_path / "copula.json"
    main(["example-data", "gbsg2", "--out", str(data)])
    main(["fit", str(data), "-o", str(model)])
    return data, model


def test_generate_with_eligibility_and_fixed_covariates(tmp_path, capsys, gbsg2_copula):
    data, model = gbsg2_copula
    out = tmp_path / "v.csv"
    args = ["generate", str(model), "-n", "300", "--real", str(data), "-o", str(out)]
    where = ["--where", "age >= 50", "--where", "tgrade in ['II', 'III']", "--given", "horTh=yes"]
    assert main(args + where) == 0
    cohort = pd.read_csv(out)
    assert (cohort["age"] >= 50).all()
    assert set(cohort["tgrade"]) <= {"II", "III"}
    assert set(cohort["horTh"]) == {"yes"}
    # validated against the real patients who meet the same conditions
    report = json.loads((tmp_path / "v.validation.json").read_text())
    real = pd.read_csv(data)
    comparable = real[(real.age >= 50) & real.tgrade.isin(["II", "III"]) & (real.horTh == "yes")]
    assert report["n_real"] == len(comparable)
    capsys.readouterr()
    assert main(args + ["--where", "weight > 3"]) == 2
    assert "--where 'weight > 3'" in capsys.readouterr().err


def test_generate_augmentation(tmp_path, gbsg2_copula):
    data, model = gbsg2_copula
    out = tmp_path / "augmented.parquet"
    argv = ["generate", str(model), "--augment", "2", "--real", str(data), "-o", str(out)]
    assert main(argv + ["--no-validation"]) == 0
    table = pd.read_parquet(out)
    counts = table["source"].value_counts()
    assert counts["real"] == 686
    assert 0.8 * 2 * 686 <= counts["virtual"] <= 2 * 686  # less what the filter dropped


def test_mechanistic_generator_from_the_command_line(tmp_path, capsys):
    model, out = tmp_path / "tgi.json", tmp_path / "tgi.csv"
    assert main(["fit", "-g", "tumour_growth", "-p", "growth_rate=0.05", "-o", str(model)]) == 0
    assert json.loads(model.read_text())["params"]["growth_rate"] == 0.05
    assert main(["generate", str(model), "-n", "50", "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 50  # no real data: no filter, no validation
    assert not (tmp_path / "tgi.validation.json").exists()
    capsys.readouterr()
    assert main(["fit", "-g", "tumour_growth", "-p", "growth=1", "-o", str(model)]) == 2
    assert "not a setting of the tumour_growth generator" in capsys.readouterr().err
    assert main(["fit", "-g", "copula", "-o", str(model)]) == 2
    assert "give a data file" in capsys.readouterr().err
    assert main(["generate", str(model), "-n", "5", "--given", "tsr=0", "-o", str(out)]) == 2
    assert "cannot fix columns" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:ArviZ is undergoing a major refactor:FutureWarning")
def test_bayesian_outcomes_for_copula_covariates(tmp_path, capsys, gbsg2_copula):
    """Virtual patients with the copula's covariates and the posterior predictive's
    outcomes: every column of the covariate file is kept, the outcomes are replaced, and
    the uncensored event times are left out of the validation (and it says so)."""
    from tests.conftest import PROTOCOLS

    data, copula = gbsg2_copula
    cohort, out = tmp_path / "cohort.csv", tmp_path / "outcomes.csv"
    assert main(["generate", str(copula), "-n", "120", "--real", str(data), "-o", str(cohort),
                 "--no-validation"]) == 0
    posterior = PROTOCOLS / "models" / "gbsg2_weibull.json"
    assert main(["generate", str(posterior), "--covariates", str(cohort), "--real", str(data),
                 "-o", str(out), "--seed", "3"]) == 0
    given, drawn = pd.read_csv(cohort), pd.read_csv(out)
    assert list(drawn.columns) == list(given.columns)
    assert (drawn["cens"] == 1).all()  # uncensored event times
    kept = drawn.merge(given, on=["age", "tsize", "pnodes", "progrec", "estrec"], how="left",
                       suffixes=("", "_given"))
    assert (kept["horTh"] == kept["horTh_given"]).all()  # treatment taken from the file
    report = json.loads((tmp_path / "outcomes.validation.json").read_text())
    assert report["not_compared"]["columns"] == ["time", "cens"]
    survival = report["survival"]  # compared as survival, not as distributions
    assert survival["compared"]
    assert survival["km_follow_up"] <= pd.read_csv(data)["time"].max()
    assert survival["hazard_ratio_lower"] < 1.0 < survival["hazard_ratio_upper"]
    assert "survival: Kaplan-Meier max difference" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["generate", str(copula), "--covariates", str(cohort), "-o", str(out),
                 "--real", str(data)]) == 2
    assert "draws its own patients" in capsys.readouterr().err
