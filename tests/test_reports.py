"""Reports and ADaM datasets, checked as a reviewer would read them.

- A report is built for every shipped protocol (small replicate counts) and opened in
  headless Chromium (playwright driving the system's Chromium): no console error, no page
  error, no request leaving the document, every image loaded (``naturalWidth > 0``), a
  screenshot taken. The browser tests skip, saying why, when playwright or Chromium is not
  installed (CI installs Chromium from the OS packages).
- The PDF (WeasyPrint) is rendered page by page to images with pypdfium2: no blank page,
  and every page carries its number, the package version and the date.
- The SAS transport files read back with an independent reader (pandas.read_sas) equal the
  datasets written.
- Bad input: incomplete or incompatible run directories exit with status 2 and a clear
  message; a report never replaces an earlier one without --force.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import PROTOCOLS
from trials.cli import main


def _trial_protocols() -> list[str]:
    """The shipped trial protocols (what insilico simulate runs): the YAML files of
    protocols/ with arms (other files there describe other studies, e.g. insilico drift)."""
    names = []
    for path in sorted(PROTOCOLS.glob("*.yaml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(content, dict) and "arms" in content:
            names.append(path.stem)
    return names


SHIPPED = _trial_protocols()
N_REPLICATES = 40


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def runs(workspace) -> dict[str, Path]:
    """A small run of every shipped protocol."""
    out = {}
    for name in SHIPPED:
        run_dir = workspace / "runs" / name
        code = run_cli(
            "simulate",
            PROTOCOLS / f"{name}.yaml",
            "--out",
            run_dir,
            "--replicates",
            N_REPLICATES,
            "--quiet",
        )
        assert code == 0, name
        out[name] = run_dir
    return out


@pytest.fixture(scope="module")
def reports(runs, workspace) -> dict[str, Path]:
    """The HTML report of every shipped protocol's run (via the command line)."""
    out = {}
    for name, run_dir in runs.items():
        target = workspace / "reports" / name
        assert run_cli("report", run_dir, "--out", target) == 0, name
        out[name] = target / "report.html"
    return out


# ------------------------------------------------------------------ content


@pytest.mark.parametrize("name", SHIPPED)
def test_a_report_for_every_shipped_protocol(name, reports, runs):
    html = reports[name].read_text(encoding="utf-8")
    for section in (
        "synopsis",
        "estimands",
        "data-generating",
        "provenance",
        "methods",
        "performance",
        "operating-characteristics",
        "curves",
        "example-trial",
        "external-control",
        "credibility",
        "limitations",
        "appendix-reproducibility",
        "appendix-datasets",
    ):
        assert f'id="{section}"' in html, section
    # self-contained: no reference leaves the document
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<link" not in html
    assert "@import" not in html
    # the headline numbers are the run's, as recorded (never recomputed)
    summary = json.loads((runs[name] / "summary.json").read_text())
    from reports.document import rate_cell

    for key in ("power", "assurance", "type_i_error"):
        for cell in summary["primary"].get(key, {}).values():
            assert rate_cell(cell) in html
    assert "Mismatch" not in html
    datasets = reports[name].parent / "datasets"
    define = json.loads((datasets / "define.json").read_text())
    names = [d["name"] for d in define["datasets"]]
    assert names[0] == "ADSL"
    assert len(names) >= 2
    for entry in define["datasets"]:
        assert (datasets / entry["files"]["xpt"]["file"]).is_file()
        assert (datasets / entry["files"]["csv"]["file"]).is_file()


def test_sections_follow_the_run(reports):
    gsd = reports["oncology_os_group_sequential"].read_text(encoding="utf-8")
    assert "Stopping probabilities per look" in gsd
    assert "No curve: this run simulated one design" in gsd
    assurance = reports["breast_cancer_phase3_assurance"].read_text(encoding="utf-8")
    assert "Assurance and conditional power curve" in assurance
    assert "Stopping probabilities per look" not in assurance
    plain = reports["oncology_os_phase3"].read_text(encoding="utf-8")
    assert "This run used no fitted generator" in plain
    assert "SPONSOR TO COMPLETE" in plain
    assert "This run used no external or synthetic control arm" in plain


def test_a_grid_run_gives_a_power_curve(workspace):
    run_dir = workspace / "grid"
    assert (
        run_cli(
            "simulate",
            PROTOCOLS / "oncology_os_group_sequential.yaml",
            "--out",
            run_dir,
            "-r",
            20,
            "-q",
            "--vary",
            "hazard_ratio=0.7,1.0",
        )
        == 0
    )
    from reports import build_report

    html = build_report(run_dir, workspace / "grid-report").read_text(encoding="utf-8")
    assert "Power curve over hazard_ratio" in html
    assert "hazard_ratio = 0.7" in html
    assert "hazard_ratio = 1" in html


# ------------------------------------------------------------------ datasets


def _xpt(path: Path) -> pd.DataFrame:
    return pd.read_sas(path, format="xport", encoding="ascii")


@pytest.mark.parametrize(
    "name", ["oncology_os_phase3", "binary_response_phase2b", "continuous_change_phase3"]
)
def test_transport_files_read_back_equal_the_datasets(name, reports, runs):
    """pandas' own XPORT reader (independent of the ReadStat writer) gives back the data."""
    from reports.adam import build_datasets
    from reports.example_trial import simulate_example
    from reports.run_data import load_run

    run = load_run(runs[name])
    trial = simulate_example(run.protocol, seed=run.summary["seed"])
    folder = reports[name].parent / "datasets"
    define = {d["name"]: d for d in json.loads((folder / "define.json").read_text())["datasets"]}
    for dataset in build_datasets(run.protocol, trial.table, trial.analysis_time):
        back = _xpt(folder / f"{dataset.name.lower()}.xpt")
        source = dataset.data
        assert list(back.columns) == list(source.columns)
        assert len(back) == len(source)
        meta = {v["variable"]: v for v in define[dataset.name]["variables"]}
        for column in source.columns:
            if meta[column]["type"] == "Char":
                assert back[column].fillna("").tolist() == source[column].tolist(), column
                assert source[column].str.len().max() <= meta[column]["length"]
            else:
                got = back[column].to_numpy(float)
                # pandas reads a true IBM zero as 16**-65 (pandas-dev/pandas#50670)
                got[np.abs(got) < 1e-70] = 0.0
                np.testing.assert_allclose(
                    got,
                    source[column].to_numpy(float),
                    rtol=1e-14,
                    atol=0,
                    equal_nan=True,
                    err_msg=column,
                )
        csv = pd.read_csv(
            folder / f"{dataset.name.lower()}.csv", keep_default_na=False, na_values=[""]
        )
        assert list(csv.columns) == list(source.columns)
        assert len(csv) == len(source)


def test_adam_datasets_are_consistent_with_the_trial(reports, runs):
    from reports.run_data import load_run

    folder = reports["oncology_os_phase3"].parent / "datasets"
    adsl, adtte = _xpt(folder / "adsl.xpt"), _xpt(folder / "adtte.xpt")
    assert adsl["USUBJID"].is_unique
    assert set(adtte["USUBJID"]) <= set(adsl["USUBJID"])
    assert set(adtte["CNSR"].round()) <= {0.0, 1.0}
    assert (adtte["AVAL"] >= 0).all()
    assert (adtte["AVALU"] == "MONTHS").all()
    assert (adtte.loc[adtte["CNSR"].round() == 0, "EVNTDESC"] != "").all()
    assert set(adtte.loc[adtte["CNSR"].round() == 1, "CNSDTDSC"]) <= {
        "DATA CUT-OFF",
        "DROPOUT OR INTERCURRENT EVENT",
    }
    assert {"AGE", "AGEU", "REGION1", "ARMCD", "TRT01P", "TRT01A", "RANDDY"} <= set(adsl.columns)
    assert (adtte["ADY"] >= adtte["STARTDY"]).all()
    # the events are those of the study-report analysis of the same trial
    from reports.example_trial import simulate_example

    run = load_run(runs["oncology_os_phase3"])
    trial = simulate_example(run.protocol, seed=run.summary["seed"])
    report = trial.analyses[0].report
    assert int((adtte["CNSR"].round() == 0).sum()) == int(report.arms["events"].sum())
    assert len(adsl) == trial.n_randomized


# ------------------------------------------------------------------ the browser


def _chromium() -> str | None:
    candidates = [
        os.environ.get("INSILICO_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
        shutil.which("google-chrome-stable"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set INSILICO_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def check_in_browser(
    browser, html: Path, shot: Path, *, min_images: int = 3, min_headings: int = 10
) -> None:
    """Open a report in headless Chromium: no console or page error, no request leaving
    the document, every image loaded, enough sections, a screenshot that is not blank."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.resolve().as_uri(), wait_until="load")
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    headings = page.evaluate("document.querySelectorAll('main h2').length")
    page.close()
    assert errors == []
    outside = [u for u in requests if not u.startswith(("data:", "file:"))]
    assert outside == [], "the report requested something outside itself"
    assert len(images) >= min_images
    assert all(complete and width > 0 for _, complete, width in images), images
    assert headings >= min_headings
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 5, "the screenshot is blank"


@pytest.mark.parametrize("name", SHIPPED)
def test_report_opens_in_headless_chromium(name, reports, browser, workspace):
    check_in_browser(browser, reports[name], workspace / "screenshots" / f"{name}.png")


# ---------------------------------------------------------------------- PDF


def test_pdf_pages_are_not_blank_and_carry_number_version_and_date(runs, workspace):
    from reports import build_report, pdf_support

    if pdf_support() is not None:
        pytest.skip(pdf_support())
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 renders the PDF pages")
    html = build_report(runs["oncology_os_group_sequential"], workspace / "pdf", pdf=True)
    path = html.parent / "report.pdf"
    document = pdfium.PdfDocument(str(path))
    try:
        n_pages = len(document)
        assert n_pages >= 8
        date = re.search(r"generated (\d{4}-\d\d-\d\d)", html.read_text()).group(1)
        for k in range(n_pages):
            page = document[k]
            image = np.asarray(page.render(scale=0.6).to_pil().convert("L"))
            text_page = page.get_textpage()
            text = text_page.get_text_range()
            text_page.close()
            page.close()
            ink = (image < 200).mean()
            assert ink > 0.005, f"page {k + 1} is blank"
            assert f"Page {k + 1} of {n_pages}" in text
            assert "insilico-trials" in text
            assert date in text
            if k == 1:
                assert "Contents" in text
    finally:
        document.close()


# ------------------------------------------------------------------ bad input


def _copy(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target)
    return target


def test_incomplete_run_directories_exit_2(runs, workspace, capsys):
    source = runs["binary_response_phase2b"]
    missing = _copy(source, workspace / "bad" / "no-summary")
    (missing / "summary.json").unlink()
    assert run_cli("report", missing) == 2
    assert "incomplete run directory, missing summary.json" in capsys.readouterr().err

    running = _copy(source, workspace / "bad" / "running")
    manifest = json.loads((running / "manifest.json").read_text())
    manifest["status"] = "running"
    (running / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("report", running) == 2
    err = capsys.readouterr().err
    assert "the run is incomplete (status 'running')" in err
    assert f"insilico simulate --resume {running}" in err

    assert run_cli("report", workspace / "bad" / "nowhere") == 2
    assert "no such run directory" in capsys.readouterr().err
    empty = workspace / "bad" / "empty"
    empty.mkdir()
    assert run_cli("report", empty) == 2
    assert "not a run directory (no manifest.json)" in capsys.readouterr().err
    assert not (missing / "report").exists()
    assert not (running / "report").exists()


def test_a_run_of_another_format_exits_2(runs, workspace, capsys):
    old = _copy(runs["binary_response_phase2b"], workspace / "bad" / "old-format")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["insilico_trials_run"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("report", old) == 2
    err = capsys.readouterr().err
    assert "incompatible run directory" in err
    assert "run format 1" in err

    strange = _copy(runs["binary_response_phase2b"], workspace / "bad" / "strange-protocol")
    manifest = json.loads((strange / "manifest.json").read_text())
    manifest["protocol"]["content"]["arms"] = "two"
    (strange / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("report", strange) == 2
    assert "the recorded protocol is not one this version reads" in capsys.readouterr().err

    other = _copy(runs["binary_response_phase2b"], workspace / "bad" / "other-output")
    manifest = json.loads((other / "manifest.json").read_text())
    del manifest["insilico_trials_run"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli("report", other) == 2
    assert "not a run directory of insilico simulate" in capsys.readouterr().err

    assert run_cli("report", runs["binary_response_phase2b"], "--replicate", 10_000) == 2
    assert f"the run has {N_REPLICATES} trials" in capsys.readouterr().err


def test_a_report_never_overwrites_silently(runs, workspace, capsys):
    run_dir = runs["binary_response_phase2b"]
    out = workspace / "versions" / "report"
    assert run_cli("report", run_dir, "--out", out) == 0
    first = (out / "report.html").read_bytes()
    capsys.readouterr()
    assert run_cli("report", run_dir, "--out", out) == 0
    captured = capsys.readouterr()
    assert "holds an earlier report (kept; --force replaces it)" in captured.err
    assert f"wrote {out.with_name('report-2') / 'report.html'}" in captured.out
    assert (out / "report.html").read_bytes() == first
    assert run_cli("report", run_dir, "--out", out, "--force") == 0
    assert not out.with_name("report-3").exists()
    # --force replaces a report, never another directory
    other = workspace / "versions" / "not-a-report"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert run_cli("report", run_dir, "--out", other, "--force") == 2
    assert "holds no report" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"
    # and never the run directory itself
    assert run_cli("report", run_dir, "--out", run_dir) == 2
    assert "cannot replace the run directory" in capsys.readouterr().err


# ------------------------------------------------------------ virtual patients


def test_provenance_of_a_generated_population(workspace):
    """A protocol whose covariates come from a copula fitted to GBSG2, with the cohort
    validation beside the model: hashes, settings, metrics and comparison figures."""
    from lifelines.datasets import load_gbsg2

    from generators.copula import GaussianCopula
    from generators.validation import validate_cohort
    from reports import build_report

    folder = workspace / "generated"
    folder.mkdir()
    real = load_gbsg2()
    real.to_csv(folder / "gbsg2.csv", index=False)
    copula = GaussianCopula().fit(real)
    copula.save(folder / "phase2.json")
    virtual = copula.sample(250, rng=np.random.default_rng(5))
    result = validate_cohort(real, virtual, time="time", event="cens", rng=0)
    (folder / "phase2.validation.json").write_text(
        json.dumps({"validated": True} | result.to_dict(), default=float)
    )
    content = yaml.safe_load((PROTOCOLS / "oncology_os_group_sequential.yaml").read_text())
    content["id"] = "GEN-01"
    content["analysis"] = {
        "primary": {"test": "logrank"},
        "alpha": 0.025,
        "timing": {"type": "events", "target_events": 200},
    }
    content["population"]["n_patients"] = 300
    content["population"]["generator"] = {
        "model": "phase2.json",
        "covariates": ["age", "pnodes", "tgrade"],
    }
    (folder / "protocol.yaml").write_text(yaml.safe_dump(content))
    run_dir = folder / "run"
    assert run_cli("simulate", folder / "protocol.yaml", "--out", run_dir, "-r", 20, "-q") == 0
    html = build_report(run_dir, folder / "report", real_data=folder / "gbsg2.csv")
    text = html.read_text(encoding="utf-8")
    from trials.run import file_sha256

    assert file_sha256(folder / "phase2.json") in text
    assert "unchanged since the run" in text
    assert copula.data_hash_ in text
    assert "found beside the model file" in text
    assert "membership-inference AUC" in text
    for alt in (
        "Column shape scores",
        "Heatmap of pair trend scores",
        "Detection AUC",
        "Marginal of age",
        "Correlation heatmaps, real and virtual",
        "Kaplan-Meier real versus virtual",
        "Heatmap of the copula",
    ):
        assert f'alt="{alt}' in text, alt
    adsl = _xpt(html.parent / "datasets" / "adsl.xpt")
    assert {"AGE", "PNODES", "TGRADE"} <= set(adsl.columns)
    # a model file changed since the run: said, and the example trial is not drawn
    copula.save(folder / "phase2.json")
    (folder / "phase2.json").write_text((folder / "phase2.json").read_text() + " ")
    changed = build_report(run_dir, folder / "report", force=True).read_text(encoding="utf-8")
    assert "CHANGED since the run" in changed
    assert "The example trial could not be simulated" in changed


# ------------------------------------------------------- external-control hook


@dataclasses.dataclass(frozen=True)
class _Balance:
    table: pd.DataFrame
    ess_external: float


@dataclasses.dataclass(frozen=True)
class _ExternalResult:
    """What an external-control analysis might offer (duck typing)."""

    balance: _Balance
    prior_effective_sample_size: float = 41.5
    title: str = "Propensity-weighted comparison"
    notes: tuple = ("overlap weights",)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"estimate": [0.72], "lower": [0.5], "upper": [1.04]},
            index=pd.Index(["hazard ratio"], name="quantity"),
        )

    def drift_table(self) -> pd.DataFrame:
        return pd.DataFrame({"shift": [0.0, 0.5], "type_i_error": [0.025, 0.06]})

    def plot_overlap(self, ax=None):
        """Propensity scores of trial and external patients."""
        ax.hist([0.2, 0.3, 0.3, 0.5])
        ax.set_xlabel("Propensity score")
        return ax

    def plot_broken(self, ax=None):
        raise ValueError("no overlap data")


def test_external_control_hook_renders_a_result_object(runs, workspace):
    from reports import build_report

    balance = _Balance(
        pd.DataFrame(
            {"covariate": ["age", "nodes"], "smd_before": [0.4, -0.3], "smd_after": [0.02, 0.05]}
        ),
        187.5,
    )
    html = build_report(
        runs["binary_response_phase2b"],
        workspace / "external",
        external_control=_ExternalResult(balance),
    ).read_text(encoding="utf-8")
    section = html[html.index('id="external-control"') : html.index('id="credibility"')]
    assert "Propensity-weighted comparison" in section
    assert "Summary of the external-control analysis" in section
    assert "0.7200" in section
    assert "smd_after" in section
    assert 'alt="Love plot (balance)"' in section
    assert "balance: ess external" in section
    assert "Drift" in section
    assert 'alt="overlap"' in section
    assert "prior effective sample size" in section
    assert "41.5000" in section
    assert "plot_broken() failed: ValueError: no overlap data" in section
    assert "overlap weights" in section


def test_a_protocol_with_an_external_control_says_where_its_diagnostics_are(reports):
    with_external = [
        name
        for name in SHIPPED
        if "external_control" in yaml.safe_load((PROTOCOLS / f"{name}.yaml").read_text())
    ]
    if not with_external:
        pytest.skip("no shipped protocol has an external_control section")
    html = reports[with_external[0]].read_text(encoding="utf-8")
    section = html[html.index('id="external-control"') : html.index('id="credibility"')]
    assert "The protocol specifies an external control" in section
    assert "external data" in section


def test_a_file_that_is_not_a_validation_report_exits_2(runs, workspace, capsys):
    bogus = workspace / "bogus.validation.json"
    bogus.write_text(json.dumps({"fidelity": "high"}))
    code = run_cli("report", runs["binary_response_phase2b"], "--out", workspace / "bogus",
                   "--validation", bogus)  # fmt: skip
    assert code == 2
    assert "not a cohort validation report" in capsys.readouterr().err
    assert not (workspace / "bogus").exists()


def test_pdf_without_weasyprint_is_a_clear_error(runs, workspace, monkeypatch):
    import reports.builder
    from trials.exceptions import InsilicoError

    monkeypatch.setattr(reports.builder, "pdf_support", lambda: "the PDF needs WeasyPrint")
    with pytest.raises(InsilicoError, match="cannot write the PDF: the PDF needs WeasyPrint"):
        reports.builder.build_report(runs["binary_response_phase2b"], workspace / "nopdf", pdf=True)
    assert not (workspace / "nopdf").exists()


# ------------------------------------------------------------ external-control report

EXTERNAL_PROTOCOL = PROTOCOLS / "rare_disease_external_control.yaml"
EXTERNAL_SECTIONS = (
    "synopsis",
    "estimands",
    "provenance",
    "diagnostics",
    "balance",
    "overlap",
    "effective-sample-size",
    "kaplan-meier",
    "results",
    "sensitivity",
    "e-value",
    "tipping-point",
    "notes",
    "limitations",
    "appendix-reproducibility",
    "appendix-protocol",
)


@pytest.fixture(scope="module")
def external_output(workspace) -> Path:
    """insilico external-control on the shipped example (small bootstrap)."""
    out = workspace / "external" / "ec"
    assert run_cli("external-control", EXTERNAL_PROTOCOL, "--out", out, "-r", 20) == 0
    return out


@pytest.fixture(scope="module")
def external_report(external_output, workspace) -> Path:
    target = workspace / "external" / "report"
    assert run_cli("report", external_output, "--out", target) == 0
    return target / "report.html"


def test_an_external_control_report_shows_the_analysis_as_written(external_output, external_report):
    from reports.document import num

    html = external_report.read_text(encoding="utf-8")
    for section in EXTERNAL_SECTIONS:
        assert f'id="{section}"' in html, section
    assert 'id="operating-characteristics"' not in html
    assert "External-control analysis report" in html
    assert not (external_report.parent / "datasets").exists()
    # self-contained: no reference leaves the document
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<link" not in html
    assert "@import" not in html
    # the numbers are the output's, as written (never recomputed)
    summary = json.loads((external_output / "summary.json").read_text())
    effect = summary["effect"]
    boot = effect["bootstrap"]
    ess = summary["effective_sample_size"]
    assert (
        f"hazard ratio {num(effect['estimate'])} (robust 95% CI {num(effect['conf_low'])} to "
        f"{num(effect['conf_high'])}; bootstrap 95% CI {num(boot['conf_low'])} to "
        f"{num(boot['conf_high'])}, 20 resamples" in html
    )
    assert f"{num(ess['trial'], 1)} / {num(ess['external'], 1)}" in html
    assert f"after {num(summary['max_abs_smd_after'])}" in html
    assert f"{num(summary['e_value']['e_value'], 2)}" in html
    # every covariate (and level) of the balance table, with its SMDs
    balance = pd.read_csv(external_output / "balance.csv")
    table = html[html.index('id="balance"') : html.index('id="overlap"')]
    for row in balance.itertuples():
        assert f"<td>{row.label}</td>" in table, row.label
        assert num(row.smd_after, 3, signed=True) in table
    # data provenance: the input files' SHA-256 from the manifest
    manifest = json.loads((external_output / "manifest.json").read_text())
    for entry in [manifest["protocol"], *manifest["inputs"].values()]:
        assert entry["sha256"] in html
    assert "identical to the protocol analysed" in html
    for note in summary["notes"] + summary["synthetic_control"]["notes"]:
        assert note.replace("'", "&#39;") in html
    # love plot, propensity overlap, weighted Kaplan-Meier, tipping-point grid
    figures = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)"', html)
    assert len(figures) == 4, figures
    assert any("Love plot" in f for f in figures)
    assert any("Propensity" in f for f in figures)
    assert any("Kaplan-Meier" in f for f in figures)
    assert any("Tipping" in f for f in figures)


def test_an_external_control_report_opens_in_headless_chromium(external_report, browser, workspace):
    check_in_browser(browser, external_report, workspace / "screenshots" / "external-control.png")


def test_an_external_control_output_missing_a_file_exits_2(external_output, workspace, capsys):
    missing = _copy(external_output, workspace / "bad" / "ec-no-balance")
    (missing / "balance.csv").unlink()
    assert run_cli("report", missing) == 2
    err = capsys.readouterr().err
    assert "incomplete external-control output directory, missing balance.csv" in err
    assert not (missing / "report").exists()

    no_km = _copy(external_output, workspace / "bad" / "ec-no-km")
    (no_km / "kaplan_meier.csv").unlink()
    assert run_cli("report", no_km) == 2
    assert "missing kaplan_meier.csv" in capsys.readouterr().err


def test_an_external_control_output_without_the_manifest_marker_is_recognised(
    external_output, workspace
):
    from reports import build_report

    older = _copy(external_output, workspace / "older" / "ec")
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["insilico_trials_external_control"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    html = build_report(older, workspace / "older" / "report").read_text(encoding="utf-8")
    assert 'id="balance"' in html


def test_simulation_options_are_refused_for_an_external_control_output(external_output, workspace):
    from reports import build_report
    from trials.exceptions import InsilicoError

    with pytest.raises(InsilicoError, match="replicate apply to simulation runs only"):
        build_report(external_output, workspace / "external" / "refused", replicate=2)
    assert not (workspace / "external" / "refused").exists()


def test_an_external_control_report_as_pdf(external_output, workspace):
    from reports import build_report, pdf_support

    if pdf_support() is not None:
        pytest.skip(pdf_support())
    html = build_report(external_output, workspace / "external" / "pdf", pdf=True)
    pdf = html.parent / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
