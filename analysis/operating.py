"""Operating characteristics of a simulated design, with their Monte Carlo error.

From the per-replicate results of a simulation: the rejection rate (power under the
design effect, type I error under the null) with its Monte Carlo standard error and
exact Clopper–Pearson confidence interval; the distribution of events, sample size and
duration; and the performance of the effect estimate — bias, empirical and model-based
standard errors and coverage of its confidence interval — each with its Monte Carlo
standard error, as Morris, White & Crowther recommend.

References
----------
Morris, T. P., White, I. R. and Crowther, M. J. (2019). Using simulation studies to
evaluate statistical methods. *Statistics in Medicine* 38, 2074–2102.
Clopper, C. J. and Pearson, E. S. (1934). The use of confidence or fiducial limits
illustrated in the case of the binomial. *Biometrika* 26, 404–413.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def clopper_pearson(successes, trials, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) confidence interval for a binomial proportion."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(
            successes > 0, stats.beta.ppf(tail, successes, trials - successes + 1), 0.0
        )
        upper = np.where(
            successes < trials, stats.beta.ppf(1 - tail, successes + 1, trials - successes), 1.0
        )
    return lower, upper


def rejection_rate(reject: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Rate, Monte Carlo standard error and exact CI of a vector of rejections."""
    reject = np.asarray(reject, dtype=bool)
    n, k = reject.size, int(reject.sum())
    rate = k / n if n else np.nan
    lower, upper = clopper_pearson(k, n, level)
    return {
        "rate": rate,
        "mcse": float(np.sqrt(rate * (1 - rate) / n)) if n else np.nan,
        "ci_lower": float(lower),
        "ci_upper": float(upper),
        "n_rejected": k,
        "n_replicates": n,
    }


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, SD and quantiles of a simulated quantity (NaN ignored)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"mean": np.nan, "sd": np.nan, **{f"q{int(q * 100):02d}": np.nan for q in QUANTILES}}
    out = {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
    }
    for q, value in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True):
        out[f"q{int(q * 100):02d}"] = float(value)
    return out


def estimator_performance(
    estimate: np.ndarray, se: np.ndarray, covered: np.ndarray, true_value: float
) -> dict[str, float]:
    """Bias, empirical SE, mean model SE and coverage, with Monte Carlo SEs.

    Replicates whose estimate is not finite (e.g. no events in an arm) are left out and
    counted in ``n_not_estimable``.
    """
    estimate = np.asarray(estimate, dtype=float)
    ok = np.isfinite(estimate)
    est, n = estimate[ok], int(ok.sum())
    out: dict[str, float] = {"true_value": true_value, "n_not_estimable": int((~ok).sum())}
    if n < 2:
        return out | {"mean": np.nan, "bias": np.nan, "bias_mcse": np.nan}
    empirical_se = float(est.std(ddof=1))
    out |= {
        "mean": float(est.mean()),
        "bias": float(est.mean() - true_value),
        "bias_mcse": empirical_se / np.sqrt(n),
        "empirical_se": empirical_se,
        "empirical_se_mcse": empirical_se / np.sqrt(2 * (n - 1)),
    }
    model_se = np.asarray(se, dtype=float)[ok]
    if np.isfinite(model_se).any():
        out["model_se"] = float(np.sqrt(np.nanmean(model_se**2)))
        cov = np.asarray(covered, dtype=float)[ok]
        rate = float(cov.mean())
        out["coverage"] = rate
        out["coverage_mcse"] = float(np.sqrt(rate * (1 - rate) / n))
    return out


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Operating characteristics per scenario, endpoint and comparison.

    ``table`` has one row per (scenario, endpoint, arm) with the rejection rate and its
    Monte Carlo error, the distribution of events, analysed patients and duration, and
    the estimator's performance. ``arm == 'any'`` rows give the rate at which at least
    one experimental arm succeeds on that endpoint (several experimental arms only).
    """

    table: pd.DataFrame
    level: float = 0.95

    @classmethod
    def from_replicates(cls, replicates: pd.DataFrame, level: float = 0.95):
        """Summarise a per-replicate table (as :func:`trials.simulate.simulate` makes)."""
        rows = []
        keys = ["scenario", "endpoint", "arm"]
        for (scenario, endpoint, arm), group in replicates.groupby(keys, sort=False, observed=True):
            row = {"scenario": scenario, "endpoint": endpoint, "arm": arm}
            row["scale"] = group["scale"].iloc[0]
            row |= {f"rejection_{k}": v for k, v in rejection_rate(group["reject"], level).items()}
            row |= _prefixed("events", distribution(group["events"]))
            row |= _prefixed("n_analysed", distribution(group["n_analysed"]))
            row |= _prefixed("analysis_time", distribution(group["analysis_time"]))
            row["n_screened_mean"] = float(group["n_screened"].mean())
            row["target_reached_rate"] = float(group["target_reached"].mean())
            covered = (group["ci_lower"] <= group["true_value"]) & (
                group["true_value"] <= group["ci_upper"]
            )
            perf = estimator_performance(
                group["estimate"].to_numpy(),
                group["se"].to_numpy(),
                covered.to_numpy(),
                float(group["true_value"].iloc[0]),
            )
            row |= _prefixed("estimate", perf)
            rows.append(row)
        table = pd.DataFrame(rows)
        any_rows = []
        for (scenario, endpoint), group in replicates.groupby(
            ["scenario", "endpoint"], sort=False, observed=True
        ):
            if group["arm"].nunique() < 2:
                continue
            any_reject = group.groupby("replicate", observed=True)["reject"].any()
            row = {"scenario": scenario, "endpoint": endpoint, "arm": "any"}
            row |= {f"rejection_{k}": v for k, v in rejection_rate(any_reject, level).items()}
            any_rows.append(row)
        if any_rows:
            table = pd.concat([table, pd.DataFrame(any_rows)], ignore_index=True)
        return cls(table=table, level=level)

    def summary(self) -> pd.DataFrame:
        """The main figures, one row per scenario, endpoint and arm."""
        columns = [
            "scenario",
            "endpoint",
            "arm",
            "rejection_rate",
            "rejection_mcse",
            "rejection_ci_lower",
            "rejection_ci_upper",
            "events_mean",
            "analysis_time_mean",
            "estimate_mean",
            "estimate_true_value",
            "estimate_bias",
            "estimate_coverage",
        ]
        return self.table[[c for c in columns if c in self.table.columns]]

    def rate(self, scenario: str, endpoint: str | None = None, arm: str | None = None) -> float:
        """The rejection rate of one row (the first endpoint / arm when not given)."""
        rows = self.table[self.table["scenario"] == scenario]
        if endpoint is not None:
            rows = rows[rows["endpoint"] == endpoint]
        if arm is not None:
            rows = rows[rows["arm"] == arm]
        return float(rows["rejection_rate"].iloc[0])

    def to_records(self) -> list[dict]:
        """JSON-ready rows (NaN as None)."""
        clean = self.table.astype(object).where(self.table.notna(), None)
        return [{k: _plain(v) for k, v in row.items()} for row in clean.to_dict("records")]


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in values.items()}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
