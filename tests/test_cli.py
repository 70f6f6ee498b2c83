"""The command line: outputs equal the library's, user errors exit 2 without traceback,
and nothing is written when a run fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import PROTOCOLS
from trials.cli import main
from trials.cli.common import load_protocol
from trials.run import file_sha256, result_summary
from trials.simulation import simulate

BINARY = PROTOCOLS / "binary_response_phase2b.yaml"
ONCOLOGY = PROTOCOLS / "oncology_os_phase3.yaml"


def test_simulate_json_equals_the_library_result(tmp_path, capsys):
    code = main(["simulate", str(BINARY), "--out", str(tmp_path / "run"), "-r", "300", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    expected = result_summary(simulate(load_protocol(BINARY), n_replicates=300))
    assert printed == json.loads(json.dumps(expected))


def test_run_directory_contents(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", str(ONCOLOGY), "--out", str(out), "-r", "40", "--seed", "5"]) == 0
    console = capsys.readouterr().out
    assert "Operating characteristics" in console
    assert "design" in console
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["protocol"]["sha256"] == file_sha256(ONCOLOGY)
    assert manifest["seed"] == 5
    assert manifest["n_replicates"] == 40
    assert manifest["versions"]["numpy"]
    assert manifest["command_line"][:3] == ["insilico", "simulate", str(ONCOLOGY)]
    table = pq.read_table(out / "replicates.parquet").to_pandas()
    assert len(table) == 40 * 2  # two scenarios, one comparison
    assert set(table["scenario"]) == {"design", "null"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["primary"]["power"]["drug_x"]["rate"] == pytest.approx(
        table.query("scenario == 'design'")["reject"].mean()
    )
    assert (out / "protocol.yaml").read_bytes() == ONCOLOGY.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_existing_run_directory_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["simulate", str(BINARY), "--out", str(out), "-r", "5"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["simulate", str(BINARY), "--out", str(out), "-r", "5", "--overwrite"]) == 0
    assert (out / "summary.json").exists()
    assert not (out / "keep.txt").exists()


def test_bad_protocol_reports_every_problem_and_writes_nothing(tmp_path, capsys):
    text = BINARY.read_text()
    text = text.replace("n_patients: 240", "n_patients: lots").replace("rate: 0.25", "rate: 1.25")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "run"
    assert main(["simulate", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 problems found" in err
    assert f"{bad}:" in err
    assert "population.n_patients" in err
    assert "endpoints.primary.control.rate" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_validate_and_schema(tmp_path, capsys):
    assert main(["validate", *map(str, sorted(PROTOCOLS.glob("*.yaml")))]) == 0
    assert capsys.readouterr().out.count(": ok") == len(list(PROTOCOLS.glob("*.yaml")))
    schema_file = tmp_path / "schema.json"
    assert main(["schema", "--out", str(schema_file)]) == 0
    schema = json.loads(schema_file.read_text())
    assert {"arms", "population", "endpoints", "analysis"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_missing_protocol_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_trial_prints_a_study_report(tmp_path, capsys):
    csv = tmp_path / "trial.csv"
    assert main(["trial", str(ONCOLOGY), "--replicate", "3", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Cox hazard ratio" in out
    assert "log-rank" in out
    table = pd.read_csv(csv)
    assert len(table) == 600
    assert table["os_event"].sum() == 390


def test_events_command(capsys):
    assert main(["events", "--hazard-ratio", "0.7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == pytest.approx(246.8, abs=0.05)
    assert main(["events", "--hazard-ratio", "-1"]) == 2
    assert "hazard_ratio" in capsys.readouterr().err


def test_curve_solves_for_events(capsys):
    args = [
        "curve",
        str(ONCOLOGY),
        "-p",
        "target_events",
        "--values",
        "250:400:50",
        "-r",
        "200",
        "--target-power",
        "0.9",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    powers = [row["power"] for row in out["curve"]]
    assert powers == sorted(powers)  # common random numbers: monotone in events
    assert 250 <= out["solution"]["value"] <= 400


def test_usage_errors_exit_2(capsys):
    assert main(["simulate"]) == 2
    assert main(["curve", str(ONCOLOGY), "-p", "colour", "--values", "1"]) == 2
    assert "colour" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("insilico") is None, reason="console script not installed")
def test_installed_command_has_no_traceback_on_user_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    done = subprocess.run(["insilico", "validate", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "bad.yaml:" in done.stderr
    assert "invalid YAML" in done.stderr


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "trials.cli", "events", "--hazard-ratio", "0.7"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert "246.8" in done.stdout
