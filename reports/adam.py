"""ADaM-style analysis datasets of one simulated trial: ADSL, ADTTE, ADRS and ADEFF.

From the patient table of one simulated trial (:func:`trials.engine.patient_table`) and its
protocol, with CDISC ADaM variable names (ADaM Implementation Guide v1.3; ADaM Basic Data
Structure for Time-to-Event Analyses v1.0):

- ``ADSL`` — one record per patient randomized by the data cut-off: identifiers, planned
  and actual treatment, population flags, study day of randomization and baseline
  covariates (``AGE``, ``SEX``, ``REGION1`` where the protocol has them).
- ``ADTTE`` — one record per patient and time-to-event parameter: ``AVAL`` in months,
  ``CNSR`` (0 event, 1 censored), ``EVNTDESC`` and ``CNSDTDSC``.
- ``ADRS`` — binary endpoints (response-like): ``AVALC`` ``Y`` / ``N`` and ``AVAL`` 1 / 0.
- ``ADEFF`` — continuous endpoints: ``AVAL`` at the assessment visit.

Calendar dates are not simulated: every timing variable is an integer **study day**
counted from the first day of the study (day 1 = the day the first patient could be
randomized; a month is 30.4375 days), in variables ending in ``DY`` (``RANDDY``,
``STARTDY``, ``ADY``) in place of the ``--DT`` date variables.

Datasets are written as SAS transport version 5 files (``.xpt``, with pyreadstat, which
wraps ReadStat) and as CSV, with a define-like metadata file (``define.json`` and
``define.csv``: datasets, variables, labels, types, lengths, origins).

References
----------
CDISC (2021). Analysis Data Model Implementation Guide, version 1.3.
CDISC (2012). The ADaM Basic Data Structure for Time-to-Event Analyses, version 1.0.
SAS Institute. The record layout of a data set in SAS transport (XPORT) format (TS-140).
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trials.exceptions import InsilicoError
from trials.protocol import (
    BinaryEndpoint,
    ContinuousEndpoint,
    FollowUpTiming,
    Protocol,
    TimeToEventEndpoint,
)
from trials.run import file_sha256

DAYS_PER_MONTH = 30.4375
#: SAS transport v5 limits.
MAX_NAME, MAX_LABEL, MAX_CHAR = 8, 40, 200


@dataclass(frozen=True)
class Variable:
    """Metadata of one dataset variable (define-like)."""

    name: str
    label: str
    origin: str  # Assigned, Derived, Simulated, Protocol
    comment: str = ""


@dataclass
class Dataset:
    """One analysis dataset: its records and the metadata of its variables."""

    name: str
    label: str
    structure: str
    keys: tuple[str, ...]
    data: pd.DataFrame
    variables: list[Variable] = field(default_factory=list)

    def variable_metadata(self) -> list[dict]:
        """Name, label, type (``Char``/``Num``), length (bytes; 8 for numbers), origin."""
        out = []
        for order, var in enumerate(self.variables, start=1):
            column = self.data[var.name]
            numeric = pd.api.types.is_numeric_dtype(column)
            length = 8 if numeric else max(1, int(column.map(_byte_length).max() or 1))
            out.append(
                {
                    "dataset": self.name,
                    "order": order,
                    "variable": var.name,
                    "label": var.label,
                    "type": "Num" if numeric else "Char",
                    "length": length,
                    "origin": var.origin,
                    "comment": var.comment,
                }
            )
        return out


def _byte_length(value) -> int:
    return len(str(value).encode("ascii", "replace"))


def ascii_text(value: object, limit: int = MAX_CHAR) -> str:
    """Text as printable ASCII (transport v5 files are ASCII), at most ``limit`` bytes."""
    text = unicodedata.normalize("NFKD", str(value))
    text = text.replace("\u2013", "-").replace("\u2014", "-")
    text = text.encode("ascii", "ignore").decode("ascii")
    return text[:limit]


def sas_name(name: str, taken: set[str]) -> str:
    """An upper-case SAS name of at most 8 characters, unique among ``taken``."""
    base = re.sub(r"[^A-Z0-9_]", "_", name.upper())
    if len(base) > MAX_NAME:
        base = base.replace("_", "")
    if not base or not base[0].isalpha():
        base = "V" + base
    base = base[:MAX_NAME]
    candidate, k = base, 1
    while candidate in taken:
        suffix = str(k)
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        k += 1
    taken.add(candidate)
    return candidate


def study_day(months) -> np.ndarray:
    """Study day (1 = first day) of a time in months from the start of the study."""
    return (np.floor(np.asarray(months, float) * DAYS_PER_MONTH) + 1).astype(np.int64)


# ------------------------------------------------------------------- building


def _arm_tables(protocol: Protocol):
    names = [arm.name for arm in protocol.arms]
    labels = {
        arm.name: ascii_text(arm.label or arm.name.replace("_", " "), 200) for arm in protocol.arms
    }
    codes = {arm.name: ascii_text(arm.name.upper(), 20) for arm in protocol.arms}
    numbers = {name: float(k) for k, name in enumerate(names, start=1)}
    return labels, codes, numbers


def build_adsl(protocol: Protocol, table: pd.DataFrame, cutoff: float) -> Dataset:
    """ADSL: one record per patient randomized by the data cut-off (month ``cutoff``)."""
    rows = table[table["enrollment_time"] <= cutoff].reset_index(drop=True)
    labels, codes, numbers = _arm_tables(protocol)
    study = ascii_text(protocol.id, 200)
    width = max(4, len(str(len(table))))
    subjid = rows["patient"].map(lambda p: f"{int(p):0{width}d}")
    arm = rows["arm"].astype(str)
    data = pd.DataFrame(
        {
            "STUDYID": study,
            "USUBJID": study + "-" + subjid,
            "SUBJID": subjid,
            "ARM": arm.map(labels),
            "ARMCD": arm.map(codes),
            "ACTARM": arm.map(labels),
            "ACTARMCD": arm.map(codes),
            "TRT01P": arm.map(labels),
            "TRT01PN": arm.map(numbers),
            "TRT01A": arm.map(labels),
            "TRT01AN": arm.map(numbers),
            "RANDFL": "Y",
            "ITTFL": "Y",
            "SAFFL": "Y",
            "RANDDY": study_day(rows["enrollment_time"]).astype(float),
            "TRTSDY": study_day(rows["enrollment_time"]).astype(float),
            "DCUTDY": float(study_day(cutoff)),
        }
    )
    variables = [
        Variable("STUDYID", "Study Identifier", "Protocol", "protocol id"),
        Variable("USUBJID", "Unique Subject Identifier", "Derived", "STUDYID-SUBJID"),
        Variable(
            "SUBJID",
            "Subject Identifier for the Study",
            "Simulated",
            "order of randomization in the simulated trial",
        ),
        Variable("ARM", "Description of Planned Arm", "Protocol", "arms[].label or name"),
        Variable("ARMCD", "Planned Arm Code", "Protocol", "arms[].name"),
        Variable(
            "ACTARM",
            "Description of Actual Arm",
            "Derived",
            "the simulation assumes treatment as randomized",
        ),
        Variable("ACTARMCD", "Actual Arm Code", "Derived", "= ARMCD"),
        Variable("TRT01P", "Planned Treatment for Period 01", "Derived", "= ARM"),
        Variable(
            "TRT01PN",
            "Planned Treatment for Period 01 (N)",
            "Derived",
            "position of the arm in the protocol",
        ),
        Variable("TRT01A", "Actual Treatment for Period 01", "Derived", "= TRT01P"),
        Variable("TRT01AN", "Actual Treatment for Period 01 (N)", "Derived", "= TRT01PN"),
        Variable("RANDFL", "Randomized Population Flag", "Derived"),
        Variable("ITTFL", "Intent-To-Treat Population Flag", "Derived"),
        Variable(
            "SAFFL",
            "Safety Population Flag",
            "Derived",
            "every randomized patient is assumed treated",
        ),
        Variable(
            "RANDDY",
            "Study Day of Randomization",
            "Simulated",
            "no dates are simulated: day 1 = start of the study",
        ),
        Variable("TRTSDY", "Study Day of First Dose", "Derived", "assumed = RANDDY"),
        Variable(
            "DCUTDY",
            "Study Day of Data Cut-off",
            "Simulated",
            "the analysis cut-off of the simulated trial",
        ),
    ]
    taken = set(data.columns)
    for name in _covariate_columns(protocol, table):
        column = rows[name]
        lower = name.lower()
        if lower == "age" and pd.api.types.is_numeric_dtype(column):
            var = "AGE" if "AGE" not in taken else sas_name(name, taken)
            taken.add(var)
            data[var] = column.to_numpy(float)
            variables.append(Variable(var, "Age", "Simulated", f"covariate {name!r}"))
            if "AGEU" not in taken:
                taken.add("AGEU")
                data["AGEU"] = "YEARS"
                variables.append(Variable("AGEU", "Age Units", "Assigned"))
            continue
        if lower == "sex" and "SEX" not in taken:
            var = "SEX"
            taken.add(var)
            data[var] = column.astype(str).map(_sex_code)
            variables.append(Variable(var, "Sex", "Simulated", f"covariate {name!r}"))
            continue
        if lower == "region" and "REGION1" not in taken:
            var = "REGION1"
            taken.add(var)
        else:
            var = sas_name(name, taken)
        if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            column
        ):
            data[var] = column.astype(str).map(lambda v: ascii_text(v))
            label = f"Baseline {name}"
        else:
            data[var] = column.to_numpy(float)
            label = f"Baseline {name}" + (" (1 = yes)" if _binary(column) else "")
        variables.append(
            Variable(var, ascii_text(label, MAX_LABEL), "Simulated", f"covariate {name!r}")
        )
    return Dataset(
        "ADSL",
        "Subject-Level Analysis Dataset",
        "One record per subject",
        ("STUDYID", "USUBJID"),
        data,
        variables,
    )


def _sex_code(value: str) -> str:
    lower = value.strip().lower()
    if lower in ("f", "female", "woman", "women"):
        return "F"
    if lower in ("m", "male", "man", "men"):
        return "M"
    return ascii_text(value.upper(), 200)


def _binary(column: pd.Series) -> bool:
    values = set(pd.unique(column.dropna()))
    return values <= {0, 1}


def _covariate_columns(protocol: Protocol, table: pd.DataFrame) -> list[str]:
    endpoints = [protocol.endpoints.primary, *protocol.endpoints.secondary]
    own = {"patient", "enrollment_time", "arm"}
    for endpoint in endpoints:
        own |= {f"{endpoint.name}_{s}" for s in ("analysed", "time", "event", "value")}
    return [c for c in table.columns if c not in own]


def _param(endpoint, taken: set[str]) -> tuple[str, str]:
    code = sas_name(endpoint.name, taken)
    text = endpoint.estimand.variable or endpoint.name.replace("_", " ")
    return code, ascii_text(text[:1].upper() + text[1:], 200)


def _bds_head(adsl: Dataset, rows: pd.DataFrame) -> pd.DataFrame:
    """The subject-level variables that start every BDS record, for ``rows`` of ADSL."""
    head = rows[["STUDYID", "USUBJID", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN"]].copy()
    head.insert(6, "TRTP", head["TRT01P"])
    head.insert(7, "TRTA", head["TRT01A"])
    return head


BDS_VARIABLES = [
    Variable("STUDYID", "Study Identifier", "Protocol"),
    Variable("USUBJID", "Unique Subject Identifier", "Derived", "from ADSL"),
    Variable("TRT01P", "Planned Treatment for Period 01", "Derived", "from ADSL"),
    Variable("TRT01PN", "Planned Treatment for Period 01 (N)", "Derived", "from ADSL"),
    Variable("TRT01A", "Actual Treatment for Period 01", "Derived", "from ADSL"),
    Variable("TRT01AN", "Actual Treatment for Period 01 (N)", "Derived", "from ADSL"),
    Variable("TRTP", "Planned Treatment", "Derived", "= TRT01P"),
    Variable("TRTA", "Actual Treatment", "Derived", "= TRT01A"),
]


def build_adtte(
    protocol: Protocol, table: pd.DataFrame, cutoff: float, adsl: Dataset
) -> Dataset | None:
    """ADTTE: one record per patient and time-to-event endpoint (``None`` without one)."""
    endpoints = [e for e in _endpoints(protocol) if isinstance(e, TimeToEventEndpoint)]
    if not endpoints:
        return None
    enrolled = table[table["enrollment_time"] <= cutoff].reset_index(drop=True)
    head = _bds_head(adsl, adsl.data)
    timing = protocol.analysis.timing
    horizon = cutoff - enrolled["enrollment_time"].to_numpy(float)
    if isinstance(timing, FollowUpTiming):
        horizon = np.minimum(horizon, timing.months)
    frames, taken = [], set()
    for number, endpoint in enumerate(endpoints, start=1):
        code, param = _param(endpoint, taken)
        time = enrolled[f"{endpoint.name}_time"].to_numpy(float)
        event = enrolled[f"{endpoint.name}_event"].to_numpy(bool)
        administrative = ~event & (time >= horizon - 1e-9)
        start = adsl.data["RANDDY"].to_numpy(float)
        frame = head.copy()
        frame["PARAMCD"] = code
        frame["PARAM"] = ascii_text(f"{param} (months)", 200)
        frame["PARAMN"] = float(number)
        frame["AVAL"] = time
        frame["AVALU"] = "MONTHS"
        frame["STARTDY"] = start
        frame["ADY"] = start + np.floor(time * DAYS_PER_MONTH)
        frame["CNSR"] = np.where(event, 0.0, 1.0)
        frame["EVNTDESC"] = np.where(event, ascii_text(f"EVENT: {param}".upper(), 200), "")
        frame["CNSDTDSC"] = np.where(
            event, "", np.where(administrative, "DATA CUT-OFF", "DROPOUT OR INTERCURRENT EVENT")
        )
        frame["ANL01FL"] = "Y"
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    variables = [
        *BDS_VARIABLES,
        Variable("PARAMCD", "Parameter Code", "Protocol", "endpoint name"),
        Variable("PARAM", "Parameter", "Protocol", "endpoint estimand variable"),
        Variable("PARAMN", "Parameter (N)", "Derived", "order of the endpoint in the protocol"),
        Variable("AVAL", "Analysis Value", "Simulated", "time from randomization, months"),
        Variable("AVALU", "Analysis Value Unit", "Assigned"),
        Variable("STARTDY", "Study Day of Time-to-Event Origin", "Derived", "= ADSL.RANDDY"),
        Variable(
            "ADY",
            "Analysis Relative Day",
            "Derived",
            "study day of the event or censoring: STARTDY + floor(AVAL * 30.4375)",
        ),
        Variable("CNSR", "Censor", "Simulated", "0 = event, 1 = censored"),
        Variable("EVNTDESC", "Event or Censoring Description", "Derived", "events"),
        Variable(
            "CNSDTDSC",
            "Censor Date Description",
            "Derived",
            "administrative censoring at the data cut-off, or dropout / intercurrent "
            "event (censored under a hypothetical or while-on-treatment strategy)",
        ),
        Variable("ANL01FL", "Analysis Flag 01", "Derived", "record used in the analysis"),
    ]
    return Dataset(
        "ADTTE",
        "Time-to-Event Analysis Dataset",
        "One record per subject per parameter",
        ("USUBJID", "PARAMCD"),
        data,
        variables,
    )


def build_assessed(
    protocol: Protocol, table: pd.DataFrame, cutoff: float, adsl: Dataset, kind: type
) -> Dataset | None:
    """ADRS (binary endpoints) or ADEFF (continuous endpoints): one record per patient
    and parameter at the endpoint's assessment visit; ``None`` without such an endpoint."""
    endpoints = [e for e in _endpoints(protocol) if isinstance(e, kind)]
    if not endpoints:
        return None
    enrolled = table[table["enrollment_time"] <= cutoff].reset_index(drop=True)
    head = _bds_head(adsl, adsl.data)
    binary = kind is BinaryEndpoint
    frames, taken = [], set()
    for number, endpoint in enumerate(endpoints, start=1):
        code, param = _param(endpoint, taken)
        value = enrolled[f"{endpoint.name}_value"].to_numpy(float)
        analysed = enrolled[f"{endpoint.name}_analysed"].to_numpy(bool)
        month = float(endpoint.assessment_month)
        frame = head.copy()
        frame["PARAMCD"] = code
        frame["PARAM"] = param
        frame["PARAMN"] = float(number)
        if binary:
            frame["AVALC"] = np.where(
                ~analysed | np.isnan(value), "", np.where(value > 0.5, "Y", "N")
            )
        frame["AVAL"] = np.where(analysed, value, np.nan)
        frame["AVISIT"] = ascii_text(f"MONTH {month:g}", 200)
        frame["AVISITN"] = month
        frame["ADY"] = adsl.data["RANDDY"].to_numpy(float) + np.floor(month * DAYS_PER_MONTH)
        frame["ANL01FL"] = np.where(analysed, "Y", "")
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    variables = [
        *BDS_VARIABLES,
        Variable("PARAMCD", "Parameter Code", "Protocol", "endpoint name"),
        Variable("PARAM", "Parameter", "Protocol", "endpoint estimand variable"),
        Variable("PARAMN", "Parameter (N)", "Derived", "order of the endpoint in the protocol"),
    ]
    if binary:
        variables.append(
            Variable(
                "AVALC",
                "Analysis Value (C)",
                "Derived",
                "Y = responder, N = non-responder, blank = not analysed",
            )
        )
        variables.append(
            Variable("AVAL", "Analysis Value", "Simulated", "1 = responder, 0 = non-responder")
        )
    else:
        variables.append(
            Variable("AVAL", "Analysis Value", "Simulated", "value at the assessment visit")
        )
    variables += [
        Variable("AVISIT", "Analysis Visit", "Protocol", "assessment_month"),
        Variable("AVISITN", "Analysis Visit (N)", "Protocol", "month of the assessment"),
        Variable(
            "ADY", "Analysis Relative Day", "Derived", "STARTDY of ADSL + floor(AVISITN * 30.4375)"
        ),
        Variable(
            "ANL01FL",
            "Analysis Flag 01",
            "Derived",
            "Y = analysed; blank = not assessed or missing (intercurrent event under a "
            "hypothetical strategy, dropout)",
        ),
    ]
    if binary:
        return Dataset(
            "ADRS",
            "Response Analysis Dataset",
            "One record per subject per parameter per visit",
            ("USUBJID", "PARAMCD", "AVISITN"),
            data,
            variables,
        )
    return Dataset(
        "ADEFF",
        "Efficacy Analysis Dataset",
        "One record per subject per parameter per visit",
        ("USUBJID", "PARAMCD", "AVISITN"),
        data,
        variables,
    )


def _endpoints(protocol: Protocol):
    return [protocol.endpoints.primary, *protocol.endpoints.secondary]


def build_datasets(protocol: Protocol, table: pd.DataFrame, cutoff: float) -> list[Dataset]:
    """ADSL and the BDS datasets the protocol's endpoints call for."""
    adsl = build_adsl(protocol, table, cutoff)
    out = [adsl]
    for dataset in (
        build_adtte(protocol, table, cutoff, adsl),
        build_assessed(protocol, table, cutoff, adsl, BinaryEndpoint),
        build_assessed(protocol, table, cutoff, adsl, ContinuousEndpoint),
    ):
        if dataset is not None:
            out.append(dataset)
    for dataset in out:
        check_transport_limits(dataset)
    return out


def check_transport_limits(dataset: Dataset) -> None:
    """Names, labels and text within the limits of SAS transport version 5."""
    problems = []
    if len(dataset.name) > MAX_NAME or len(dataset.label) > MAX_LABEL:
        problems.append(f"dataset name {dataset.name!r} or label too long")
    for var in dataset.variables:
        if len(var.name) > MAX_NAME:
            problems.append(f"{var.name}: name longer than {MAX_NAME}")
        if len(var.label) > MAX_LABEL:
            problems.append(f"{var.name}: label longer than {MAX_LABEL}")
    if list(dataset.data.columns) != [v.name for v in dataset.variables]:
        problems.append("variables and metadata differ")
    if problems:
        raise InsilicoError(f"{dataset.name}: " + "; ".join(problems))


# -------------------------------------------------------------------- writing


def write_datasets(datasets: list[Dataset], directory: Path) -> list[dict]:
    """Write each dataset as ``<name>.xpt`` (SAS transport v5) and ``<name>.csv``, and the
    metadata as ``define.json`` and ``define.csv``; returns the files written with their
    SHA-256."""
    try:
        import pyreadstat
    except ImportError:  # pragma: no cover - depends on the installation
        raise InsilicoError(
            "writing SAS transport files needs pyreadstat: pip install pyreadstat"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    define = {"standard": "CDISC ADaM IG 1.3 (define-like metadata)", "datasets": []}
    rows = []
    for dataset in datasets:
        name = dataset.name.lower()
        xpt, csv_path = directory / f"{name}.xpt", directory / f"{name}.csv"
        labels = [v.label for v in dataset.variables]
        pyreadstat.write_xport(
            dataset.data,
            str(xpt),
            file_label=dataset.label,
            table_name=dataset.name,
            column_labels=labels,
            file_format_version=5,
        )
        dataset.data.to_csv(csv_path, index=False, lineterminator="\n")
        variables = dataset.variable_metadata()
        rows += variables
        entry = {
            "name": dataset.name,
            "label": dataset.label,
            "structure": dataset.structure,
            "keys": list(dataset.keys),
            "n_records": len(dataset.data),
            "files": {
                "xpt": {"file": xpt.name, "sha256": file_sha256(xpt)},
                "csv": {"file": csv_path.name, "sha256": file_sha256(csv_path)},
            },
            "variables": [{k: v for k, v in var.items() if k != "dataset"} for var in variables],
        }
        define["datasets"].append(entry)
        files += [
            {"dataset": dataset.name, "format": "SAS transport v5", **entry["files"]["xpt"]},
            {"dataset": dataset.name, "format": "CSV", **entry["files"]["csv"]},
        ]
    (directory / "define.json").write_text(json.dumps(define, indent=2) + "\n", encoding="utf-8")
    with open(directory / "define.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for extra in ("define.json", "define.csv"):
        files.append(
            {
                "dataset": "metadata",
                "format": extra.split(".")[1].upper(),
                "file": extra,
                "sha256": file_sha256(directory / extra),
            }
        )
    return files
