"""The virtual-cohort commands end to end on the GBSG2 trial shipped with lifelines."""

from __future__ import annotations

import json

import pandas as pd

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
