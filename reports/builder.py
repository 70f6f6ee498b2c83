"""Build the report of a run: self-contained HTML, optional PDF, and the ADaM datasets.

:func:`build_report` reads a finished run directory, simulates its example trial again
from the run's seed, writes the analysis datasets, renders the HTML (figures embedded as
PNG data URIs, CSS inline, no external request; printable with paged-media CSS: table of
contents, page numbers, version and date on every page) and, with ``pdf=True``, the same
document as PDF with WeasyPrint. Everything is written to a temporary sibling directory and
moved into place at the end, so a failure leaves no half-written report. A report never
replaces an earlier one silently: without ``force`` a new report goes to the next free
versioned directory (``report-2``, ``report-3``, …).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from reports.adam import build_datasets, write_datasets
from reports.credibility import credibility_section
from reports.document import Paragraph, Section, number_document
from reports.example_trial import simulate_example
from reports.external import external_control_section
from reports.external_output import (
    ExternalControlOutput,
    is_external_control_output,
    load_external_control,
)
from reports.external_report import external_control_report_sections, title_page
from reports.figures import print_style
from reports.provenance import gather
from reports.results import curves, operating_characteristics
from reports.run_data import RunData, load_run
from reports.sections import (
    aims,
    data_generating,
    dataset_appendix,
    estimands,
    limitations,
    methods,
    performance_measures,
    protocol_appendix,
    reproducibility,
    synopsis,
)
from reports.trial_section import example_trial_section
from trials.exceptions import InsilicoError, RunDirectoryError

HTML_NAME = "report.html"
PDF_NAME = "report.pdf"
DATASETS = "datasets"
REPORT_PACKAGES = ("jinja2", "matplotlib", "weasyprint", "pyreadstat")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pdf_support() -> str | None:
    """``None`` when WeasyPrint can render PDF here, otherwise why not."""
    try:
        with warnings.catch_warnings():
            # a WeasyPrint import without the optional HarfBuzz-Subset library warns of
            # a future requirement; PDF output works
            warnings.simplefilter("ignore", DeprecationWarning)
            import weasyprint  # noqa: F401
    except ImportError:
        return "the PDF needs WeasyPrint: pip install weasyprint"
    except OSError as exc:  # its system libraries (Pango, HarfBuzz) are missing
        return (
            f"WeasyPrint cannot load its system libraries ({exc}); install Pango "
            "(e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
        )
    return None


def report_directory(out_dir: Path, force: bool) -> Path:
    """Where the report goes: ``out_dir``, or with ``force=False`` and an existing
    non-empty ``out_dir``, the first free ``<out_dir>-2``, ``-3``, …"""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir}: exists and is not a directory")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return out_dir
    if force:
        if not (out_dir / HTML_NAME).is_file():
            raise RunDirectoryError(
                f"{out_dir}: exists and holds no report ({HTML_NAME}); --force replaces only a "
                "previous report: choose another --out"
            )
        return out_dir
    k = 2
    while True:
        candidate = out_dir.with_name(f"{out_dir.name}-{k}")
        if not candidate.exists():
            return candidate
        k += 1


def build_report(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    pdf: bool = False,
    force: bool = False,
    validation: list[str | os.PathLike] | tuple = (),
    real_data: str | os.PathLike | None = None,
    external_control=None,
    replicate: int = 0,
    command_line: list[str] | None = None,
) -> Path:
    """Write the report of a finished run; returns the path of its HTML file.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``insilico simulate`` (complete, of this run format), or
        an output directory of ``insilico external-control`` (recognised by its manifest):
        its report is built from the files written there (balance, overlap, effective
        sample sizes, weighted Kaplan–Meier, E-value, tipping point), with no datasets.
    out_dir : path, optional
        The report directory (default ``RUN_DIR/report``). It receives ``report.html``,
        ``report.pdf`` (with ``pdf``) and ``datasets/`` (ADSL, ADTTE / ADRS / ADEFF as
        ``.xpt`` and ``.csv``, ``define.json``, ``define.csv``).
    pdf : bool
        Also write the PDF (WeasyPrint).
    force : bool
        Replace an existing report in ``out_dir``. Without it, an existing non-empty
        ``out_dir`` is kept and the report goes to ``<out_dir>-2`` (or the next free name).
    validation : paths
        Cohort validation reports (``*.validation.json``) to include, besides those found
        next to the run's model files.
    real_data : path, optional
        The real data a population generator was fitted on, for the real-versus-virtual
        figures.
    external_control : object, optional
        HOOK for external-control diagnostics: a result object (or a list) rendered by
        :func:`reports.external.external_control_section`.
    replicate : int
        Which simulated trial of the design scenario is the example trial.
    command_line : list of str, optional
        The command that asked for the report (recorded in the appendix).

    Returns
    -------
    Path
        The ``report.html`` written.

    Raises
    ------
    RunDirectoryError
        Incomplete or incompatible run directory; an output directory that cannot be used.
    InsilicoError
        PDF requested where WeasyPrint cannot run, or datasets that cannot be written.
    """
    if is_external_control_output(run_dir):
        given = [
            name
            for name, value in (
                ("validation", list(validation)),
                ("real_data", real_data),
                ("external_control", external_control),
                ("replicate", replicate),
            )
            if value
        ]
        if given:
            raise InsilicoError(
                f"{run_dir}: an external-control output directory; {', '.join(given)} "
                "apply to simulation runs only"
            )
        output = load_external_control(run_dir)
        return _publish(
            output.path,
            out_dir,
            force,
            pdf,
            lambda staging: _write_external(output, staging, pdf=pdf, command_line=command_line),
        )
    run = load_run(run_dir)
    n_replicates = int(run.summary["n_replicates"])
    if not 0 <= replicate < n_replicates:
        raise RunDirectoryError(
            f"replicate {replicate}: the run has {n_replicates} trials (0 to {n_replicates - 1})"
        )
    return _publish(
        run.path,
        out_dir,
        force,
        pdf,
        lambda staging: _write(
            run,
            staging,
            pdf=pdf,
            validation=validation,
            real_data=real_data,
            external_control=external_control,
            replicate=replicate,
            command_line=command_line,
        ),
    )


def _publish(source: Path, out_dir, force: bool, pdf: bool, write) -> Path:
    """Run ``write(staging)`` in a temporary sibling of the report directory and move the
    result into place; returns the report's HTML path."""
    if pdf:
        problem = pdf_support()
        if problem is not None:
            raise InsilicoError(f"cannot write the PDF: {problem} (or leave out --pdf)")
    requested = Path(out_dir) if out_dir is not None else source / "report"
    if requested.resolve() in (source.resolve(), *source.resolve().parents):
        raise RunDirectoryError(f"{requested}: the report cannot replace the run directory")
    target = report_directory(requested, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise RunDirectoryError(f"{target}: cannot create ({exc.strerror})") from None
    try:
        write(staging)
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / HTML_NAME


def _report_info(command_line: list[str] | None) -> dict:
    date = datetime.now(timezone.utc)
    return {
        "version": _version("insilico-trials") or "unknown",
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(command_line) if command_line else "reports.build_report (API)",
        "versions": {name: _version(name) for name in REPORT_PACKAGES}
        | {"python": platform.python_version()},
    }


def _write_external(output: ExternalControlOutput, out: Path, *, pdf: bool, command_line) -> None:
    info = _report_info(command_line)
    with print_style():
        sections = external_control_report_sections(output, info)
    number_document(sections)
    html = render_page(title_page(output, info), sections, info)
    (out / HTML_NAME).write_text(html, encoding="utf-8")
    if pdf:
        render_pdf(html, out / PDF_NAME)


def _write(
    run: RunData,
    out: Path,
    *,
    pdf,
    validation,
    real_data,
    external_control,
    replicate,
    command_line,
) -> None:
    info = _report_info(command_line)
    provenance = gather(run.protocol, run.model_files, list(validation), real_data)
    trial, problem, files, datasets = None, None, [], []
    changed = [m.path for m in provenance.models if m.unchanged is False or m.sha256 is None]
    if changed:
        problem = (
            f"the model file(s) {', '.join(changed)} changed or are missing since the "
            "run, so the trial cannot be drawn as the run drew it"
        )
    else:
        try:
            trial = simulate_example(
                run.example_protocol, seed=run.summary["seed"], replicate=replicate
            )
        except InsilicoError as exc:
            problem = str(exc)
    if trial is not None:
        datasets = build_datasets(trial.protocol, trial.table, trial.analysis_time)
        files = write_datasets(datasets, out / DATASETS)
    with print_style():
        sections = [
            synopsis(run),
            aims(run),
            estimands(run),
            data_generating(run, provenance),
            methods(run),
            performance_measures(run),
            operating_characteristics(run),
            curves(run),
            example_trial_section(run, trial, files, problem),
            external_control_section(external_control, run.protocol),
            credibility_section(run, provenance),
            limitations(run, provenance),
            reproducibility(run, info),
            dataset_appendix(datasets),
            protocol_appendix(run),
        ]
    _add_ademp_labels(sections)
    number_document(sections)
    html = render_html(run, sections, info)
    (out / HTML_NAME).write_text(html, encoding="utf-8")
    if pdf:
        render_pdf(html, out / PDF_NAME)


ADEMP = {
    "aims": "A",
    "data-generating": "D",
    "estimands": "E",
    "methods": "M",
    "performance": "P",
}


def _add_ademp_labels(sections: list[Section]) -> None:
    for section in sections:
        letter = ADEMP.get(section.id)
        if letter:
            section.blocks.insert(0, Paragraph(f"ADEMP: {letter}", css="ademp"))


def render_html(run: RunData, sections: list[Section], info: dict) -> str:
    p = run.protocol
    page = {
        "title": p.title,
        "doc_id": p.id,
        "kind": "In-silico clinical trial simulation report",
        "subtitle": f"Protocol {p.id}, version {p.version}, phase {p.phase}",
        "facts": [
            ("Run", str(run.path)),
            (
                "Simulated trials",
                f"{run.summary['n_replicates']:,} per scenario, seed {run.summary['seed']}",
            ),
            ("Generated", f"{info['date']} by insilico-trials {info['version']}"),
        ],
        "structure": "Structured as a simulation study (ADEMP: aims, data-generating "
        "mechanisms, estimands, methods, performance measures; Morris, White & Crowther "
        "2019). Every simulated number carries its Monte Carlo standard error.",
        "running_head": f"{p.id} v{p.version} \u2014 in-silico trial simulation report",
    }
    return render_page(page, sections, info)


def render_page(page: dict, sections: list[Section], info: dict) -> str:
    """The HTML document: ``page`` gives the title page (``title``, ``doc_id``, ``kind``,
    ``subtitle``, ``facts``, ``structure``) and the running head."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    css = env.get_template("report.css").render()
    return env.get_template("report.html.j2").render(
        title=page["title"],
        page=page,
        sections=sections,
        info=info,
        css=css,
        running_head=page["running_head"],
        running_foot=f"insilico-trials {info['version']} \u00b7 generated {info['date']}",
    )


def css_string(text: str) -> str:
    """A CSS string literal (for ``content:`` in page margin boxes)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def render_pdf(html: str, path: Path) -> None:
    """The HTML as PDF (WeasyPrint: paged media, page numbers, running header and footer)."""
    import logging

    import weasyprint

    # WeasyPrint logs unsupported CSS (screen-only rules) as warnings; they are not errors
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    weasyprint.HTML(string=html, base_url=None).write_pdf(path)
