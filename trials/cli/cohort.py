"""Shared pieces of the virtual-cohort commands: reading data, writing tables atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from trials.exceptions import DataError


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by extension, atomically (no half-written file)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"{path}: write a .csv or .parquet file")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write ({exc.strerror})") from None


def write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write ({exc.strerror})") from None


def validate_against_real(real: pd.DataFrame, virtual: pd.DataFrame, *, time=None, event=None,
                          seed: int = 0):
    """:func:`generators.validation.validate_cohort` of virtual patients against the real
    data read by :func:`generators.data.load_dataset`: the survival columns from the real
    data's dictionary (unless given), its identifier column left out."""
    from generators.validation import validate_cohort

    dictionary = real.attrs.get("dictionary")
    if dictionary is not None and time is None and event is None:
        time, event = _role(dictionary, "time"), _role(dictionary, "event")
        if time not in real.columns or event not in real.columns:  # left out of the check
            time = event = None
        drop = _role(dictionary, "id")
        if drop:
            real = real.drop(columns=[drop])
            virtual = virtual.drop(columns=[drop], errors="ignore")
    missing = [c for c in real.columns if c not in virtual.columns]
    if missing:
        raise DataError(f"the virtual patients lack the real data's columns {missing}")
    return validate_cohort(real, virtual[list(real.columns)], time=time, event=event, rng=seed)


def _role(dictionary, role: str) -> str | None:
    spec = dictionary.by_role(role)
    return spec.name if spec is not None else None
