"""Durable, resumable and distributed runs, scenario grids and the run catalog."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import PROTOCOLS
from trials.catalog import Catalog
from trials.cli import main
from trials.run import resume_run, simulate_to_directory
from trials.simulation import simulate
from trials.validation import load_protocol

# Dask's clients and clusters leave unconnected sockets to the garbage collector; they are
# collected (and warned about) at a random later point, so each Dask test collects them
# itself, with the warning off
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def collect_sockets():
    yield
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


ONCOLOGY = PROTOCOLS / "oncology_os_phase3.yaml"
GSD = PROTOCOLS / "oncology_os_group_sequential.yaml"


def replicate_table(run) -> pd.DataFrame:
    table = pd.read_parquet(run / "replicates.parquet")
    keys = [c for c in ("scenario", "grid_point", "endpoint", "arm", "replicate") if c in table]
    return table.sort_values(keys, ignore_index=True)


@pytest.mark.parametrize("path", [ONCOLOGY, GSD])
def test_two_dask_workers_give_the_single_process_results_bit_for_bit(
    tmp_path, path, collect_sockets
):
    protocol = load_protocol(path)
    _, one = simulate_to_directory(protocol, path, tmp_path / "one", n_replicates=900)
    _, two = simulate_to_directory(
        protocol, path, tmp_path / "two", n_replicates=900, chunk_size=128, workers=2
    )
    assert json.dumps(one) == json.dumps(two)
    pd.testing.assert_frame_equal(replicate_table(tmp_path / "one"),
                                  replicate_table(tmp_path / "two"))
    # and the in-memory library call summarises the same rows to the same numbers
    direct = simulate(protocol, n_replicates=900, chunk_size=333)
    expected = json.loads((tmp_path / "one" / "summary.json").read_text())
    from trials.run import result_summary

    assert json.loads(json.dumps(result_summary(direct))) == expected


KILLED_RUN = """
import os, signal, sys
from trials.run import simulate_to_directory
from trials.validation import load_protocol

finished = []

def progress(n):  # the process kills itself (SIGKILL: no clean-up) after five chunks
    finished.append(n)
    if len(finished) == 5:
        os.kill(os.getpid(), signal.SIGKILL)

protocol = load_protocol(sys.argv[1])
simulate_to_directory(protocol, sys.argv[1], sys.argv[2], n_replicates=3000, chunk_size=100,
                      progress=progress)
"""


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed"
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(ONCOLOGY), str(out)],
                          capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    parts = out / "replicates.parquet"
    assert not (out / "summary.json").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    n_before = len(list(parts.glob("part-*.parquet")))
    assert n_before == 5
    assert main(["simulate", "--resume", str(out), "-q", "--json"]) == 0
    reference = tmp_path / "reference"
    simulate_to_directory(load_protocol(ONCOLOGY), ONCOLOGY, reference, n_replicates=3000,
                          chunk_size=100)
    assert (out / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()
    pd.testing.assert_frame_equal(replicate_table(out), replicate_table(reference))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert len(manifest["resumed"]) == 1
    assert not list(parts.glob(".*"))  # no temporary files left


def test_resume_refuses_a_changed_protocol(tmp_path, capsys):
    protocol_file = tmp_path / "p.yaml"
    protocol_file.write_text(ONCOLOGY.read_text())
    out = tmp_path / "run"
    assert main(["simulate", str(protocol_file), "--out", str(out), "-r", "20", "-q"]) == 0
    protocol_file.write_text(ONCOLOGY.read_text().replace("seed: 20261123", "seed: 7"))
    capsys.readouterr()
    assert main(["simulate", "--resume", str(out)]) == 2
    assert "the protocol changed since the run started" in capsys.readouterr().err
    assert main(["simulate", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_full_disk_leaves_a_consistent_run_that_resumes(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real_write = pq.write_table

    def failing(table, where, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    out = tmp_path / "run"
    argv = ["simulate", str(ONCOLOGY), "--out", str(out), "-r", "400", "--chunk-size", "100"]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert "--resume" in err
    assert sorted(p.name for p in (out / "replicates.parquet").iterdir()) == [
        "part-000-000000.parquet", "part-000-000001.parquet"
    ]
    assert not (out / "summary.json").exists()
    monkeypatch.setattr(pq, "write_table", real_write)
    result, summary = resume_run(out)
    reference = tmp_path / "reference"
    _, expected = simulate_to_directory(load_protocol(ONCOLOGY), ONCOLOGY, reference,
                                        n_replicates=400, chunk_size=100)
    assert summary == expected


def test_unreachable_scheduler_writes_nothing(tmp_path, capsys, collect_sockets):
    out = tmp_path / "run"
    argv = ["simulate", str(ONCOLOGY), "--out", str(out), "--scheduler", "tcp://127.0.0.1:9"]
    assert main(argv) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists()


def test_scenario_grid_is_one_run_with_common_random_numbers(tmp_path):
    protocol = load_protocol(ONCOLOGY)
    grid = {"hazard_ratio": [0.7, 0.8], "target_events": [300, 390]}
    _, summary = simulate_to_directory(protocol, ONCOLOGY, tmp_path / "grid", n_replicates=300,
                                       grid=grid)
    points = summary["grid"]
    assert [p["point"] for p in points] == [
        {"hazard_ratio": 0.7, "target_events": 300}, {"hazard_ratio": 0.7, "target_events": 390},
        {"hazard_ratio": 0.8, "target_events": 300}, {"hazard_ratio": 0.8, "target_events": 390},
    ]
    # the point equal to the protocol's own design is exactly the protocol's run
    own = simulate(protocol, n_replicates=300)
    assert points[1]["primary"]["power"]["drug_x"]["rate"] == own.power()
    # power rises with the events and falls with the hazard ratio (same draws at every point)
    rates = [p["primary"]["power"]["drug_x"]["rate"] for p in points]
    assert rates[0] < rates[1]
    assert rates[2] < rates[3]
    assert rates[2] < rates[0]
    table = replicate_table(tmp_path / "grid")
    assert table["grid_point"].nunique() == 4
    manifest = json.loads((tmp_path / "grid" / "manifest.json").read_text())
    assert manifest["grid"] == grid
    assert len(manifest["simulations"]) == 4


def test_grid_errors(tmp_path, capsys):
    assert main(["simulate", str(ONCOLOGY), "--out", str(tmp_path / "g"), "--vary", "dose=1"]) == 2
    assert "PARAMETER one of" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_catalog_lists_shows_and_compares_runs(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["simulate", str(ONCOLOGY), "--out", str(a), "-r", "300", "-q"]) == 0
    assert main(["simulate", str(ONCOLOGY), "--out", str(b), "-r", "300", "-q",
                 "--vary", "hazard_ratio=0.75"]) == 0
    assert (tmp_path / "catalog.duckdb").is_file()
    listed = Catalog(tmp_path).list()
    assert set(listed["run"]) == {str(a.resolve()), str(b.resolve())}
    assert set(listed["status"]) == {"complete"}
    shown = Catalog(tmp_path).show(a)
    table = replicate_table(a)
    expected = table.groupby("scenario")["reject"].mean()
    assert shown.set_index("scenario")["rejection_rate"].to_dict() == pytest.approx(
        expected.to_dict(), abs=1e-12
    )
    compared = Catalog(tmp_path).compare(a, b).set_index("scenario")
    # paired by replicate (same seed): the SE of the mean of the paired differences
    table_b = replicate_table(b)
    design = table_b["scenario"] == "design"
    d = table_b[design]["reject"].to_numpy(float) - table[table["scenario"] == "design"][
        "reject"
    ].to_numpy(float)
    assert compared.loc["design", "difference"] == pytest.approx(d.mean(), abs=1e-12)
    assert compared.loc["design", "difference_mcse"] == pytest.approx(
        d.std(ddof=1) / np.sqrt(len(d)), rel=1e-9
    )
    capsys.readouterr()
    assert main(["runs", "list", str(tmp_path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["runs", "compare", str(a), str(b)]) == 0
    assert "paired (same seed)" in capsys.readouterr().out


def test_incompatible_run_directory(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"insilico_trials_run": 1}))
    assert main(["simulate", "--resume", str(out)]) == 2
    assert "format 1" in capsys.readouterr().err




def test_torch_engine_on_two_dask_workers_gives_the_single_process_results(
    tmp_path, collect_sockets
):
    pytest.importorskip("torch")
    path = ONCOLOGY.parent.parent / "bench" / "reference_design.yaml"
    protocol = load_protocol(path)
    settings = {"n_replicates": 3000, "device": "torch-cpu"}
    _, one = simulate_to_directory(protocol, path, tmp_path / "one", **settings)
    _, two = simulate_to_directory(
        protocol, path, tmp_path / "two", chunk_size=1000, workers=2, **settings
    )
    assert json.dumps(one) == json.dumps(two)
    pd.testing.assert_frame_equal(replicate_table(tmp_path / "one"),
                                  replicate_table(tmp_path / "two"))
