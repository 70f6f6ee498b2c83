"""Operating characteristics of hybrid designs under drift (analysis/hybrid_design.py) and
the ``insilico drift`` command (trials/cli/drift.py).

References: the nominal one-sided type I error of the z-test (no borrowing, known SD, no
drift) within its Monte Carlo error; the closed-form bias of full pooling and of the power
prior under a shift or an unmeasured prognostic factor (weight x drift, the weight being the
external share of the pooled precision); the exact expected bias of beta-binomial pooling;
and a calibrated threshold reaching the nominal type I error within Monte Carlo error.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from analysis.borrowing import CommensuratePrior, HalfNormal, NoBorrowing, PowerPrior, RobustMAP
from analysis.hybrid_design import (
    HybridDesign,
    ProcovaApproach,
    plot_drift,
    simulate_drift,
)
from tests.conftest import PROTOCOLS
from trials.cli import main
from trials.cli.drift import load_drift_config, run_drift
from trials.exceptions import DesignError

EXAMPLE = PROTOCOLS / "drift" / "hybrid_borrowing_drift.yaml"
ALPHA = 0.025


def _mc(rate: float, n: int) -> float:
    return math.sqrt(rate * (1 - rate) / n)


def _rows(result, approach, scenario="null"):
    table = result.table
    return table[(table.approach == approach) & (table.scenario == scenario)].set_index("drift")


def test_no_borrowing_without_drift_has_nominal_type_i_error():
    design = HybridDesign("normal", 40, 20, 100, control=0.0, effect=0.5, sd=1.0)
    res = simulate_drift(design, [NoBorrowing(), ProcovaApproach()], [0.0, 0.5],
                         n_replicates=4000, seed=11)  # fmt: skip
    for approach in ("no_borrowing", "procova"):
        null = _rows(res, approach)
        assert abs(null.loc[0.0, "rejection_rate"] - ALPHA) < 4 * _mc(ALPHA, 4000)
        # neither uses the external controls: drift changes nothing
        assert null.loc[0.5, "rejection_rate"] == null.loc[0.0, "rejection_rate"]
        design_rows = _rows(res, approach, "design")
        assert abs(design_rows.loc[0.0, "coverage"] - 0.95) < 4 * _mc(0.95, 4000)


@pytest.mark.parametrize(("approach", "a0"), [(PowerPrior(1.0), 1.0), (PowerPrior(0.4), 0.4)])
def test_pooling_bias_under_a_shift_is_weight_times_drift(approach, a0):
    n_c, n_e = 20, 80
    design = HybridDesign("normal", 30, n_c, n_e, control=1.0, effect=0.3, sd=2.0)
    res = simulate_drift(design, [approach], [-0.6, 0.0, 0.9], n_replicates=3000, seed=5)
    weight = a0 * n_e / (n_c + a0 * n_e)
    for scenario in ("null", "design"):
        rows = _rows(res, approach.label, scenario)
        for drift, row in rows.iterrows():
            expected = -weight * drift  # the control is biased by +weight * drift
            assert abs(row.bias - expected) < 4 * row.bias_mcse, (drift, row.bias, expected)


def test_pooling_bias_under_an_unmeasured_factor_is_weight_times_strength_times_difference():
    n_c, n_e, strength = 25, 75, 1.5
    design = HybridDesign("normal", 30, n_c, n_e, control=0.0, effect=0.4, sd=1.5,
                          unmeasured_prevalence=0.3, unmeasured_strength=strength)  # fmt: skip
    res = simulate_drift(design, [PowerPrior(1.0)], [0.0, 0.4], kind="prevalence_difference",
                         n_replicates=3000, seed=8)  # fmt: skip
    rows = _rows(res, "pooling", "design")
    for drift, row in rows.iterrows():
        expected = -n_e / (n_c + n_e) * strength * drift
        assert abs(row.bias - expected) < 4 * row.bias_mcse


def test_binary_pooling_bias_is_the_beta_binomial_expectation():
    n_t, n_c, n_e, p_c, delta = 40, 20, 100, 0.3, 0.15
    design = HybridDesign("binary", n_t, n_c, n_e, control=p_c, effect=delta)
    res = simulate_drift(design, [PowerPrior(1.0)], [-0.1, 0.0, 0.15], n_replicates=3000, seed=2)
    rows = _rows(res, "pooling", "design")
    for drift, row in rows.iterrows():
        treated = (1 + n_t * (p_c + delta)) / (2 + n_t)  # E of the Beta(1, 1) posterior mean
        control = (1 + n_c * p_c + n_e * (p_c + drift)) / (2 + n_c + n_e)
        assert abs(row.bias - (treated - control - delta)) < 4 * row.bias_mcse


def test_time_to_event_pooling_bias_is_about_the_event_share_times_drift():
    """Normal approximation of the log hazards: the pooled control log hazard moves by about
    the external share of the events times the drift (tolerance: 0.02 for the
    approximation, plus the Monte Carlo error)."""
    design = HybridDesign("time_to_event", 60, 30, 120, control=0.1, effect=0.7, follow_up=12.0)
    res = simulate_drift(design, [NoBorrowing(), PowerPrior(1.0)], [0.0, 0.3],
                         n_replicates=2000, seed=4)  # fmt: skip
    events_c = 30 * (1 - math.exp(-1.2))
    events_e = 120 * (1 - math.exp(-1.2 * math.exp(0.3)))
    row = _rows(res, "pooling", "design").loc[0.3]
    expected = -events_e / (events_c + events_e) * 0.3
    assert abs(row.bias - expected) < 4 * row.bias_mcse + 0.02
    null = _rows(res, "no_borrowing").loc[0.0]
    assert abs(null.rejection_rate - ALPHA) < 4 * _mc(ALPHA, 2000) + 0.005


def test_calibrated_threshold_gives_nominal_type_i_error():
    design = HybridDesign("normal", 40, 20, 100, control=0.0, effect=0.5,
                          study_shares=(0.5, 0.5), heterogeneity_sd=0.2)  # fmt: skip
    approach = RobustMAP(HalfNormal(0.3), 0.2)
    fixed = simulate_drift(design, [PowerPrior(1.0), approach], [0.0], n_replicates=3000,
                           seed=9)  # fmt: skip
    calibrated = simulate_drift(design, [PowerPrior(1.0), approach], [0.0], n_replicates=3000,
                                seed=9, calibrate=True)  # fmt: skip
    tolerance = 4 * math.sqrt(2) * _mc(ALPHA, 3000)
    pooled = _rows(fixed, "pooling").loc[0.0, "rejection_rate"]
    assert pooled > ALPHA + 4 * _mc(ALPHA, 3000)  # heterogeneity inflates pooling's error
    for label in ("pooling", approach.label):
        assert abs(_rows(calibrated, label).loc[0.0, "rejection_rate"] - ALPHA) < tolerance
        assert calibrated.thresholds[label] != 0.975


def test_results_do_not_depend_on_chunking():
    design = HybridDesign("binary", 30, 15, 60, control=0.4, effect=0.2,
                          study_shares=(0.7, 0.3), heterogeneity_sd=0.3)  # fmt: skip
    approaches = [NoBorrowing(), CommensuratePrior(HalfNormal(0.5), n_nodes=8),
                   RobustMAP(HalfNormal(0.5), n_nodes=8)]  # fmt: skip
    one = simulate_drift(design, approaches, [-0.1, 0.1], n_replicates=200, seed=1)
    many = simulate_drift(design, approaches, [-0.1, 0.1], n_replicates=200, seed=1,
                          chunk_size=37)  # fmt: skip
    pd.testing.assert_frame_equal(one.table, many.table)
    other = simulate_drift(design, approaches, [-0.1, 0.1], n_replicates=200, seed=2)
    assert not one.table.equals(other.table)


def test_impossible_designs_are_refused():
    with pytest.raises(DesignError, match=r"treated rate must lie in \(0, 1\)"):
        HybridDesign("binary", 10, 10, 10, control=0.9, effect=0.2)
    with pytest.raises(DesignError, match=r"study_shares: must sum to 1 \(got 0.9\)"):
        HybridDesign("normal", 10, 10, 10, 0.0, 0.5, study_shares=(0.5, 0.4))
    binary = HybridDesign("binary", 10, 10, 10, control=0.5, effect=0.2)
    with pytest.raises(DesignError, match="procova: applies to a normal endpoint only"):
        simulate_drift(binary, [ProcovaApproach()], [0.0])
    with pytest.raises(DesignError, match=r"drift\[1\]: the external rate 1.1"):
        simulate_drift(binary, [NoBorrowing()], [0.0, 0.6])


def test_plot_drift_returns_the_axes():
    design = HybridDesign("normal", 20, 10, 40, control=0.0, effect=0.5)
    res = simulate_drift(design, [NoBorrowing(), PowerPrior(0.5)], [-0.5, 0.0, 0.5],
                         n_replicates=50, seed=0)  # fmt: skip
    ax = plot_drift(res, "power")
    assert len(ax.get_legend().get_texts()) == 2
    assert plot_drift(res, "bias", ax=ax) is ax
    with pytest.raises(DesignError, match="metric must be one of"):
        plot_drift(res, "mse")


# ----------------------------------------------------------------------------- command
def test_drift_command_json_equals_the_library_result(tmp_path, capsys):
    out = tmp_path / "curves"
    code = main(["drift", str(EXAMPLE), "--out", str(out), "-r", "200", "--json", "--no-plot"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    config = load_drift_config(EXAMPLE)
    expected = run_drift(config, n_replicates=200).to_dict()
    assert printed["curves"] == json.loads(json.dumps(expected["curves"]))
    assert printed["thresholds"] == expected["thresholds"]
    assert json.loads((out / "drift_curves.json").read_text()) == printed
    table = pd.read_csv(out / "drift_curves.csv")
    assert len(table) == len(config.approaches) * len(config.drift.values) * 2
    assert (out / "config.yaml").read_text() == EXAMPLE.read_text()


def test_drift_command_writes_the_figure_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "curves"
    assert main(["drift", str(EXAMPLE), "--out", str(out), "-r", "20"]) == 0
    assert "written:" in capsys.readouterr().out
    assert (out / "drift_curves.png").stat().st_size > 0
    assert main(["drift", str(EXAMPLE), "--out", str(out), "-r", "20"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_bad_config_names_file_line_and_field_and_writes_nothing(tmp_path, capsys):
    text = EXAMPLE.read_text()
    text = text.replace("a0: 0.5", "a0: 1.5").replace("study_shares: [0.6, 0.4]",
                                                      "study_shares: [0.6, 0.3]")  # fmt: skip
    text = text.replace("vague_weight: 0.2", "vague_wieght: 0.2")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "curves"
    assert main(["drift", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    a0_line = text.splitlines().index("    a0: 1.5") + 1
    assert f"bad.yaml:{a0_line}:9: approaches[2].a0: must be less than or equal to 1 (got 1.5)" \
        in err
    assert "did you mean 'vague_weight'?" in err
    assert "Traceback" not in err
    assert not out.exists()
    fixed = bad.read_text().replace("a0: 1.5", "a0: 0.5").replace("vague_wieght", "vague_weight")
    bad.write_text(fixed)
    assert main(["drift", str(bad), "--out", str(out)]) == 2
    assert "design.study_shares: must sum to 1 (got 0.9)" in capsys.readouterr().err
    assert not out.exists()
