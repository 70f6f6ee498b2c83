"""``insilico external-control``: the shipped example end to end, ``--json`` equal to the
library's summary, the output directory and its manifest, and bad input (exit 2, the field or
column named, nothing written)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest

from tests.conftest import PROTOCOLS
from trials.cli import main

EXAMPLE = PROTOCOLS / "rare_disease_external_control.yaml"
DATA = PROTOCOLS / "data"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_end_to_end(tmp_path, capsys):
    from trials.external_run import external_control_summary, run_external_control
    from trials.validation import load_protocol

    out = tmp_path / "ec"
    code = main(["external-control", str(EXAMPLE), "--out", str(out), "-r", "2", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text())
    protocol = load_protocol(EXAMPLE)
    run = run_external_control(protocol.external_control, EXAMPLE.parent, n_resamples=2)
    expected = external_control_summary(run, protocol)
    assert printed == json.loads(json.dumps(expected))

    assert printed["effect"]["measure"] == "hazard_ratio"
    assert printed["effect"]["bootstrap"]["n_resamples"] == 2
    assert printed["synthetic_control"]["n_external_real"] == 413
    assert printed["synthetic_control"]["n_generated"] == 300
    assert printed["max_abs_smd_after"] < 0.1 < printed["max_abs_smd_before"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["trial"]["sha256"] == sha256(DATA / "gbsg2_single_arm.csv")
    assert manifest["inputs"]["external"]["sha256"] == sha256(DATA / "gbsg2_external_registry.csv")
    assert manifest["protocol"]["sha256"] == sha256(EXAMPLE)
    assert manifest["command_line"][:3] == ["insilico", "external-control", str(EXAMPLE)]
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"])
    weights = pd.read_csv(out / "weights.csv")
    assert len(weights) == 473
    assert list(weights.columns) == ["patient_id", "source", "source_row", "propensity_score",
                                     "weight"]
    assert (weights.loc[weights["source"] == "trial", "weight"] == 1).all()
    balance = pd.read_csv(out / "balance.csv")
    assert {"smd_before", "smd_after", "variance_ratio_after"} <= set(balance.columns)
    assert (out / "protocol.yaml").read_bytes() == EXAMPLE.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _copy(tmp_path, *replacements, synthetic: bool = False):
    """The example protocol and its data in tmp_path, edited."""
    shutil.copytree(DATA, tmp_path / "data")
    text = EXAMPLE.read_text()
    if not synthetic:
        text = text.replace(
            "  synthetic_control: {generator: copula, n_per_patient: 5, n_resamples: 100}\n", ""
        )
    text = text.replace("bootstrap: {n_resamples: 200, seed: 2026}", "bootstrap: {n_resamples: 0}")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "protocol.yaml"
    path.write_text(text)
    return path


def test_console_output_and_no_overwrite(tmp_path, capsys):
    path = _copy(tmp_path)
    out = tmp_path / "ec"
    assert main(["external-control", str(path), "--out", str(out)]) == 0
    console = capsys.readouterr().out
    for text in ("Balance (iptw_att)", "Adjusted HR", "E-value", "effective sample size",
                 "Naive HR"):
        assert text in console
    assert main(["external-control", str(path), "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


BAD = [
    pytest.param(
        [("      er_fmol: estrec\n", "")],
        r"external_control\.covariates\[6\]: column 'estrec' is missing from the external file "
        "after renaming",
        id="covariate missing from the external source",
    ),
    pytest.param(
        [("menostat: {pre: Pre, post: Post}", "menostat: {pre: Pre}")],
        r"external_control\.harmonisation\.categories\.menostat: external category 'post' of "
        r"column 'menostat' \(rows 2, 3, 5, 6, 7 \(and 204 more\)\) is not in the mapping",
        id="unknown category in a mapping",
    ),
    pytest.param(
        [('"35 <= age <= 75"', '"age <= 42"')],
        "the propensity scores overlap poorly",
        id="non-overlapping propensity scores",
    ),
    pytest.param(
        [("adjustment: {method: iptw_att}", "adjustment: {method: matching, caliper: 0.0001}")],
        r"trial patients \(.*\) have no external patient within the caliper",
        id="trial patients without a match",
    ),
    pytest.param(
        [("min_effective_sample_size: 20", "min_effective_sample_size: 1000")],
        r"effective sample size of .* below the minimum 1000 \(min_effective_sample_size\)",
        id="effective sample size too small",
    ),
    pytest.param(
        [("covariates: [age,", "covariates: [age, age,")],
        r"external_control\.covariates: covariate 'age' is given twice",
        id="covariate twice",
    ),
]


@pytest.mark.parametrize(("replacements", "message"), BAD)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, replacements, message):
    import re

    path = _copy(tmp_path, *replacements)
    out = tmp_path / "ec"
    assert main(["external-control", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_protocol_without_the_section(tmp_path, capsys):
    out = tmp_path / "ec"
    oncology = PROTOCOLS / "oncology_os_phase3.yaml"
    assert main(["external-control", str(oncology), "--out", str(out)]) == 2
    assert "has no external_control section" in capsys.readouterr().err
    assert not out.exists()


def test_validate_accepts_the_example(capsys):
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "ok (RD-EXT-01" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "shipped"),
    [
        ("gbsg2-single-arm", "gbsg2_single_arm.csv"),
        ("gbsg2-external", "gbsg2_external_registry.csv"),
    ],
)
def test_example_data_writes_the_shipped_files(tmp_path, capsys, name, shipped):
    out = tmp_path / shipped
    assert main(["example-data", name, "--out", str(out)]) == 0
    assert out.read_bytes() == (DATA / shipped).read_bytes()
