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
