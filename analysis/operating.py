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
        """Summarise a per-replicate table (as :func:`trials.simulation.simulate` makes)."""
        builder = OperatingCharacteristicsBuilder(level)
        builder.add(replicates)
        return builder.result()

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


class OperatingCharacteristicsBuilder:
    """Accumulates operating characteristics chunk by chunk in memory that does not grow
    with the number of replicates, except for the analysis times (8 bytes a replicate)
    whose quantiles are reported exactly.

    Counts and sums give rates, means, SDs, bias and coverage; integer quantities
    (events, analysed and screened patients) are kept as exact histograms, so their
    quantiles equal ``numpy.quantile`` on the full column.
    """

    #: Replicates per summation block: sums are taken block by block over replicates
    #: ``[k * BLOCK, (k + 1) * BLOCK)``, whatever the chunks the rows arrive in, so that
    #: the summary is the same to the last bit for any chunking or number of workers.
    BLOCK = 10_000

    def __init__(self, level: float = 0.95):
        self.level = level
        self._groups: dict[tuple, _Group] = {}
        self._any: dict[tuple, list[int]] = {}
        self._pending: list[pd.DataFrame] = []
        self._next = 0  # first replicate not yet added

    def add(self, frame: pd.DataFrame) -> None:
        """Add the per-replicate rows of whole replicates (all comparisons present), in
        increasing order of replicate; frames may split the replicates anywhere."""
        if frame.empty:
            return
        replicate = frame["replicate"].to_numpy()
        first, last = int(replicate.min()), int(replicate.max())
        if self._pending or self._groups:
            if first < self._next:
                raise ValueError("replicates must be added in increasing order")
        self._next = last + 1
        self._pending.append(frame)
        complete = (last + 1) // self.BLOCK * self.BLOCK  # replicates below are complete
        self._flush(complete)

    def _flush(self, below: int | None) -> None:
        """Summarise the pending rows of replicates ``< below`` (all when ``None``)."""
        if not self._pending:
            return
        pending = (
            pd.concat(self._pending, ignore_index=True)
            if len(self._pending) > 1
            else self._pending[0]
        )
        replicate = pending["replicate"].to_numpy()
        keep = np.ones(len(pending), dtype=bool) if below is None else replicate < below
        self._pending = [] if keep.all() else [pending[~keep]]
        if not keep.any():
            return
        ready = pending[keep]
        blocks = ready["replicate"].to_numpy() // self.BLOCK
        for block in np.unique(blocks):
            self._add_block(ready[blocks == block])

    def _add_block(self, frame: pd.DataFrame) -> None:
        keys = ["scenario", "endpoint", "arm"]
        for key, group in frame.groupby(keys, sort=False, observed=True):
            if key not in self._groups:
                self._groups[key] = _Group(
                    group["scale"].iloc[0], float(group["true_value"].iloc[0])
                )
            self._groups[key].add(group)
        for key, group in frame.groupby(["scenario", "endpoint"], sort=False, observed=True):
            if group["arm"].nunique() < 2:
                continue
            any_reject = group.groupby("replicate", observed=True)["reject"].any()
            counts = self._any.setdefault(key, [0, 0])
            counts[0] += int(any_reject.sum())
            counts[1] += len(any_reject)

    def result(self) -> OperatingCharacteristics:
        self._flush(None)
        rows = []
        for (scenario, endpoint, arm), group in self._groups.items():
            rows.append(
                {"scenario": scenario, "endpoint": endpoint, "arm": arm} | group.row(self.level)
            )
        for (scenario, endpoint), (k, n) in self._any.items():
            row = {"scenario": scenario, "endpoint": endpoint, "arm": "any"}
            reject = np.r_[np.ones(k, bool), np.zeros(n - k, bool)]
            rows.append(
                row
                | {f"rejection_{key}": v for key, v in rejection_rate(reject, self.level).items()}
            )
        return OperatingCharacteristics(table=pd.DataFrame(rows), level=self.level)


class _Histogram:
    """Exact distribution of a non-negative integer quantity."""

    def __init__(self) -> None:
        self.counts = np.zeros(1, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)].astype(np.int64)
        if values.size == 0:
            return
        counts = np.bincount(values)
        if counts.size > self.counts.size:
            counts[: self.counts.size] += self.counts
            self.counts = counts
        else:
            self.counts[: counts.size] += counts

    def summary(self) -> dict[str, float]:
        n = int(self.counts.sum())
        keys = ["mean", "sd", *(f"q{int(q * 100):02d}" for q in QUANTILES)]
        if n == 0:
            return dict.fromkeys(keys, np.nan)
        support = np.arange(self.counts.size, dtype=float)
        mean = float((support * self.counts).sum() / n)
        var = float(((support - mean) ** 2 * self.counts).sum() / (n - 1)) if n > 1 else 0.0
        out = {"mean": mean, "sd": float(np.sqrt(var))}
        cumulative = np.cumsum(self.counts)
        for q in QUANTILES:
            # numpy's default (linear) quantile from order statistics k and k + 1
            h = (n - 1) * q
            k = int(np.floor(h))
            lower = float(np.searchsorted(cumulative, k, side="right"))
            upper = float(np.searchsorted(cumulative, min(k + 1, n - 1), side="right"))
            out[f"q{int(q * 100):02d}"] = lower + (h - k) * (upper - lower)
        return out


class _Group:
    """Running sums of one (scenario, endpoint, arm)."""

    def __init__(self, scale: str, true_value: float):
        self.scale, self.true_value = scale, true_value
        # sums are kept around the true value (or 0 where the estimand has none)
        self.center = true_value if np.isfinite(true_value) else 0.0
        self.n = self.n_rejected = self.n_reached = 0
        self.n_screened_sum = 0.0
        self.events, self.n_analysed = _Histogram(), _Histogram()
        self.analysis_time: list[np.ndarray] = []
        self.n_finite = self.n_not_estimable = self.n_covered = self.n_se = 0
        self.sum_d = self.sum_d2 = self.sum_se2 = 0.0
        self.stops: dict[tuple[int, str], int] = {}

    def add(self, group: pd.DataFrame) -> None:
        self.n += len(group)
        self.n_rejected += int(group["reject"].sum())
        self.n_reached += int(group["target_reached"].sum())
        self.n_screened_sum += float(group["n_screened"].sum())
        self.events.add(group["events"].to_numpy())
        self.n_analysed.add(group["n_analysed"].to_numpy())
        self.analysis_time.append(group["analysis_time"].to_numpy(dtype=float))
        estimate = group["estimate"].to_numpy(dtype=float)
        finite = np.isfinite(estimate)
        d = estimate[finite] - self.center
        self.n_finite += int(finite.sum())
        self.n_not_estimable += int((~finite).sum())
        self.sum_d += float(d.sum())
        self.sum_d2 += float((d**2).sum())
        se = group["se"].to_numpy(dtype=float)[finite]
        ok = np.isfinite(se)
        self.n_se += int(ok.sum())
        self.sum_se2 += float((se[ok] ** 2).sum())
        covered = (group["ci_lower"].to_numpy() <= self.true_value) & (
            self.true_value <= group["ci_upper"].to_numpy()
        )
        self.n_covered += int(covered[finite].sum())
        if "stop_look" in group:
            pairs = group.groupby(["stop_look", "stop_reason"], observed=True).size()
            for (look, reason), count in pairs.items():
                self.stops[(int(look), reason)] = self.stops.get((int(look), reason), 0) + count

    def row(self, level: float) -> dict:
        row: dict = {"scale": self.scale}
        reject = np.r_[np.ones(self.n_rejected, bool), np.zeros(self.n - self.n_rejected, bool)]
        row |= {f"rejection_{k}": v for k, v in rejection_rate(reject, level).items()}
        row |= _prefixed("events", self.events.summary())
        row |= _prefixed("n_analysed", self.n_analysed.summary())
        row |= _prefixed("analysis_time", distribution(np.concatenate(self.analysis_time)))
        row["n_screened_mean"] = self.n_screened_sum / self.n
        row["target_reached_rate"] = self.n_reached / self.n
        row |= _prefixed("estimate", self._performance())
        if any(reason != "final" or look > 1 for look, reason in self.stops):
            # group-sequential: probability of stopping at each look, by reason
            for look in range(1, max(look for look, _ in self.stops) + 1):
                for reason in ("efficacy", "futility"):
                    row[f"stop_look{look}_{reason}"] = self.stops.get((look, reason), 0) / self.n
        return row

    def _performance(self) -> dict[str, float]:
        n = self.n_finite
        out: dict[str, float] = {
            "true_value": self.true_value,
            "n_not_estimable": self.n_not_estimable,
        }
        if n < 2:
            return out | {"mean": np.nan, "bias": np.nan, "bias_mcse": np.nan}
        bias = self.sum_d / n
        empirical_se = float(np.sqrt(max(self.sum_d2 - n * bias**2, 0.0) / (n - 1)))
        if not np.isfinite(self.true_value):  # no single true value: no bias, no coverage
            return out | {
                "mean": self.center + bias,
                "bias": np.nan,
                "bias_mcse": np.nan,
                "empirical_se": empirical_se,
            }
        out |= {
            "mean": self.true_value + bias,
            "bias": bias,
            "bias_mcse": empirical_se / np.sqrt(n),
            "empirical_se": empirical_se,
            "empirical_se_mcse": empirical_se / np.sqrt(2 * (n - 1)),
        }
        if self.n_se:
            out["model_se"] = float(np.sqrt(self.sum_se2 / self.n_se))
            rate = self.n_covered / n
            out["coverage"] = rate
            out["coverage_mcse"] = float(np.sqrt(rate * (1 - rate) / n))
        return out


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in values.items()}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
