"""Report builder and templates: a run directory becomes a submission-style simulation
report (HTML, optionally PDF) and the ADaM-style datasets of its example trial.

``reports`` consumes results and never recomputes the simulation's statistics.
"""

from reports.adam import build_datasets, write_datasets
from reports.builder import build_report, pdf_support
from reports.external import external_control_section
from reports.run_data import RunData, load_run

__all__ = [
    "RunData",
    "build_datasets",
    "build_report",
    "external_control_section",
    "load_run",
    "pdf_support",
    "write_datasets",
]
