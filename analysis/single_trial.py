"""The analysis of one trial as a clinical study report presents it.

Time-to-event: Kaplan–Meier estimates per arm (median with its confidence interval),
the Cox proportional-hazards hazard ratio with its Wald confidence interval, and the
log-rank test — computed with lifelines. Binary and continuous endpoints: per-arm
summaries and the difference with its confidence interval (statsmodels / scipy).

References
----------
Kaplan, E. L. and Meier, P. (1958). Nonparametric estimation from incomplete
observations. *JASA* 53, 457–481.
Brookmeyer, R. and Crowley, J. (1982). A confidence interval for the median survival
time. *Biometrics* 38, 29–41.
Davidson-Pilon, C. (2019). lifelines: survival analysis in Python. *JOSS* 4(40), 1317.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class SurvivalReport:
    """Kaplan–Meier per arm, Cox hazard ratio and log-rank test of one trial."""

    arms: pd.DataFrame  # arm, n, events, median, median_ci_lower, median_ci_upper
    hazard_ratio: float
    hr_ci_lower: float
    hr_ci_upper: float
    logrank_chi2: float
    logrank_p_value: float
    level: float

    def summary(self) -> pd.DataFrame:
        return self.arms

    def to_text(self) -> str:
        lines = [self.arms.to_string(index=False)]
        pct = int(round(self.level * 100))
        lines.append(
            f"Cox hazard ratio {self.hazard_ratio:.3f} ({pct}% CI {self.hr_ci_lower:.3f} to "
            f"{self.hr_ci_upper:.3f}); log-rank chi-square {self.logrank_chi2:.3f}, "
            f"two-sided p = {self.logrank_p_value:.4g}"
        )
        return "\n".join(lines)


def survival_report(
    time, event, arm, control: str, experimental: str, level: float = 0.95
) -> SurvivalReport:
    """Kaplan–Meier per arm, Cox HR (experimental vs control) and log-rank test."""
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test
    from lifelines.utils import median_survival_times

    time, event, arm = np.asarray(time, float), np.asarray(event, bool), np.asarray(arm)
    rows = []
    for name in (control, experimental):
        mask = arm == name
        km = KaplanMeierFitter(alpha=1 - level).fit(time[mask], event[mask], label=name)
        ci = median_survival_times(km.confidence_interval_)
        rows.append(
            {
                "arm": name,
                "n": int(mask.sum()),
                "events": int(event[mask].sum()),
                "median": float(km.median_survival_time_),
                "median_ci_lower": float(ci.iloc[0, 0]),
                "median_ci_upper": float(ci.iloc[0, 1]),
            }
        )
    keep = (arm == control) | (arm == experimental)
    frame = pd.DataFrame(
        {"time": time[keep], "event": event[keep], "treated": (arm[keep] == experimental) * 1.0}
    )
    cox = CoxPHFitter(alpha=1 - level).fit(frame, "time", "event")
    beta = float(cox.params_["treated"])
    se = float(cox.standard_errors_["treated"])
    z = stats.norm.ppf(0.5 + level / 2)
    lr = logrank_test(
        frame.loc[frame.treated == 1, "time"],
        frame.loc[frame.treated == 0, "time"],
        frame.loc[frame.treated == 1, "event"],
        frame.loc[frame.treated == 0, "event"],
    )
    return SurvivalReport(
        arms=pd.DataFrame(rows),
        hazard_ratio=float(np.exp(beta)),
        hr_ci_lower=float(np.exp(beta - z * se)),
        hr_ci_upper=float(np.exp(beta + z * se)),
        logrank_chi2=float(lr.test_statistic),
        logrank_p_value=float(lr.p_value),
        level=level,
    )


@dataclass(frozen=True)
class DifferenceReport:
    """Per-arm summaries and the difference (experimental − control) of one trial."""

    arms: pd.DataFrame
    measure: str
    difference: float
    ci_lower: float
    ci_upper: float
    p_value: float
    level: float

    def summary(self) -> pd.DataFrame:
        return self.arms

    def to_text(self) -> str:
        pct = int(round(self.level * 100))
        return (
            f"{self.arms.to_string(index=False)}\n{self.measure} {self.difference:.4f} "
            f"({pct}% CI {self.ci_lower:.4f} to {self.ci_upper:.4f}); two-sided p = "
            f"{self.p_value:.4g}"
        )


def proportions_report(response, arm, control, experimental, level=0.95) -> DifferenceReport:
    """Response rates per arm; difference with Wald CI; pooled z-test (statsmodels)."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    response, arm = np.asarray(response, bool), np.asarray(arm)
    counts = [int(response[arm == a].sum()) for a in (experimental, control)]
    nobs = [int((arm == a).sum()) for a in (experimental, control)]
    _, p = proportions_ztest(counts, nobs)
    low, high = confint_proportions_2indep(
        counts[0], nobs[0], counts[1], nobs[1], method="wald", alpha=1 - level
    )
    arms = pd.DataFrame(
        {
            "arm": [control, experimental],
            "n": nobs[::-1],
            "responders": counts[::-1],
            "rate": [counts[1] / nobs[1], counts[0] / nobs[0]],
        }
    )
    diff = counts[0] / nobs[0] - counts[1] / nobs[1]
    return DifferenceReport(
        arms, "difference in proportions", diff, float(low), float(high), float(p), level
    )


def means_report(y, arm, control, experimental, level=0.95) -> DifferenceReport:
    """Means per arm; difference with Student's t CI and p-value (pooled variance)."""
    y, arm = np.asarray(y, float), np.asarray(arm)
    a, b = y[arm == experimental], y[arm == control]
    test = stats.ttest_ind(a, b, equal_var=True)
    ci = test.confidence_interval(confidence_level=level)
    arms = pd.DataFrame(
        {
            "arm": [control, experimental],
            "n": [b.size, a.size],
            "mean": [b.mean(), a.mean()],
            "sd": [b.std(ddof=1), a.std(ddof=1)],
        }
    )
    return DifferenceReport(
        arms,
        "difference in means",
        float(a.mean() - b.mean()),
        float(ci.low),
        float(ci.high),
        float(test.pvalue),
        level,
    )
