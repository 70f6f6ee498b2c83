"""The run catalog: an embedded DuckDB database indexing the run directories of a folder.

``<folder>/catalog.duckdb`` has one row per run directory of the folder: protocol id,
version and SHA-256, when it ran, its settings (seed, replicates, scenarios, grid), its
status and its headline results (the primary endpoint's power and type I error). A
finished ``insilico simulate`` registers its run, and listing the catalog registers any
run directory of the folder it does not know yet, so the catalog follows the folder.
Per-replicate questions are answered by DuckDB reading the runs' Parquet parts in place
(nothing is copied into the database).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from trials.exceptions import RunDirectoryError
from trials.run import MANIFEST, REPLICATES, SUMMARY

CATALOG = "catalog.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run VARCHAR PRIMARY KEY,
    protocol_id VARCHAR,
    protocol_version VARCHAR,
    protocol_sha256 VARCHAR,
    status VARCHAR,
    started VARCHAR,
    finished VARCHAR,
    seed BIGINT,
    n_replicates BIGINT,
    scenarios VARCHAR,
    grid VARCHAR,
    power VARCHAR,
    type_i_error VARCHAR
)
"""


class Catalog:
    """The catalog of the run directories in ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RunDirectoryError(f"{self.folder}: no such folder of runs")
        self.path = self.folder / CATALOG

    def _connect(self):
        import duckdb

        try:
            connection = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise RunDirectoryError(f"{self.path}: cannot open the run catalog ({exc})") from None
        connection.execute(_SCHEMA)
        return connection

    def register(self, run_dir: str | Path) -> None:
        """Add or update one run directory."""
        row = _catalog_row(Path(run_dir))
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE run = ?", [row["run"]])
            db.execute(
                f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )

    def scan(self) -> None:
        """Register the run directories of the folder and forget the ones removed."""
        present = {
            str(p.resolve()) for p in self.folder.iterdir() if (p / MANIFEST).is_file()
        }
        with self._connect() as db:
            known = {r[0] for r in db.execute("SELECT run FROM runs").fetchall()}
            for gone in known - present:
                db.execute("DELETE FROM runs WHERE run = ?", [gone])
        for run in sorted(present):
            self.register(run)

    def list(self) -> pd.DataFrame:
        """Every run, newest first."""
        self.scan()
        with self._connect() as db:
            return db.execute("SELECT * FROM runs ORDER BY started DESC, run").df()

    def show(self, run_dir: str | Path) -> pd.DataFrame:
        """Rejection rates per scenario, endpoint and arm (and grid point), computed from
        the run's Parquet parts in place, with their Monte Carlo SE."""
        parts = _parts(Path(run_dir))
        point = ", grid_point" if _has_grid(parts) else ""
        query = f"""
            SELECT scenario{point}, endpoint, arm, count(*) AS n_replicates,
                   avg(CAST(reject AS DOUBLE)) AS rejection_rate,
                   sqrt(avg(CAST(reject AS DOUBLE)) * (1 - avg(CAST(reject AS DOUBLE)))
                        / count(*)) AS rejection_mcse,
                   avg(events) AS events_mean, avg(analysis_time) AS analysis_time_mean
            FROM read_parquet('{parts}')
            GROUP BY ALL ORDER BY ALL
        """
        with self._connect() as db:
            return db.execute(query).df()

    def compare(self, run_a: str | Path, run_b: str | Path) -> pd.DataFrame:
        """Rejection rates of two runs side by side with their difference (B - A).

        When both runs share the seed, replicate ``r`` of each used the same random draws
        (common random numbers): the difference is then paired by replicate and its Monte
        Carlo SE is that of the paired differences; otherwise the runs are independent.
        """
        parts_a, parts_b = _parts(Path(run_a)), _parts(Path(run_b))
        seed_a, seed_b = _manifest(Path(run_a))["seed"], _manifest(Path(run_b))["seed"]
        point = _has_grid(parts_a) and _has_grid(parts_b)
        keys = ["scenario", *(["grid_point"] if point else []), "endpoint", "arm"]
        on = " AND ".join(f"a.{k} = b.{k}" for k in [*keys, "replicate"])
        select = ", ".join(f"a.{k}" for k in keys)
        if seed_a == seed_b:
            query = f"""
                SELECT {select}, count(*) AS n_replicates,
                       avg(CAST(a.reject AS DOUBLE)) AS rate_a,
                       avg(CAST(b.reject AS DOUBLE)) AS rate_b,
                       avg(CAST(b.reject AS DOUBLE) - CAST(a.reject AS DOUBLE)) AS difference,
                       stddev_samp(CAST(b.reject AS DOUBLE) - CAST(a.reject AS DOUBLE))
                           / sqrt(count(*)) AS difference_mcse,
                       'paired (same seed)' AS pairing
                FROM read_parquet('{parts_a}') a JOIN read_parquet('{parts_b}') b ON {on}
                GROUP BY ALL ORDER BY ALL
            """
        else:
            group = ", ".join(keys)
            rates = """count(*) AS n, avg(CAST(reject AS DOUBLE)) AS rate"""
            query = f"""
                WITH a AS (SELECT {group}, {rates} FROM read_parquet('{parts_a}') GROUP BY ALL),
                     b AS (SELECT {group}, {rates} FROM read_parquet('{parts_b}') GROUP BY ALL)
                SELECT {select}, least(a.n, b.n) AS n_replicates, a.rate AS rate_a,
                       b.rate AS rate_b, b.rate - a.rate AS difference,
                       sqrt(a.rate * (1 - a.rate) / a.n + b.rate * (1 - b.rate) / b.n)
                           AS difference_mcse,
                       'independent (different seeds)' AS pairing
                FROM a JOIN b ON {" AND ".join(f"a.{k} = b.{k}" for k in keys)}
                ORDER BY ALL
            """
        with self._connect() as db:
            return db.execute(query).df()


def _manifest(run_dir: Path) -> dict:
    path = run_dir / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise RunDirectoryError(f"{run_dir}: not a run directory (no {MANIFEST})") from None
    except ValueError as exc:
        raise RunDirectoryError(f"{path}: not valid JSON ({exc})") from None


def _parts(run_dir: Path) -> str:
    _manifest(run_dir)
    folder = run_dir / REPLICATES
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        raise RunDirectoryError(f"{run_dir}: the run has no finished chunks")
    return str((folder / "*.parquet").resolve()).replace("'", "''")


def _has_grid(parts: str) -> bool:
    import pyarrow.parquet as pq

    first = sorted(Path(parts).parent.glob("*.parquet"))[0]
    return "grid_point" in pq.read_schema(first).names


def _catalog_row(run_dir: Path) -> dict:
    manifest = _manifest(run_dir)
    summary_path = run_dir / SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    primary = summary.get("primary", {})
    return {
        "run": str(run_dir.resolve()),
        "protocol_id": manifest["protocol"]["id"],
        "protocol_version": manifest["protocol"]["version"],
        "protocol_sha256": manifest["protocol"]["sha256"],
        "status": manifest.get("status", "complete" if summary else "incomplete"),
        "started": manifest.get("started"),
        "finished": manifest.get("finished"),
        "seed": manifest["seed"],
        "n_replicates": manifest["n_replicates"],
        "scenarios": json.dumps(manifest.get("scenarios")),
        "grid": json.dumps(manifest.get("grid")),
        "power": json.dumps(primary.get("power") or primary.get("assurance")),
        "type_i_error": json.dumps(primary.get("type_i_error")),
    }
