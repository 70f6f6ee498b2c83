"""Balance diagnostics of an external control arm: standardized differences, variance ratios,
propensity overlap, and the data of a love plot and an overlap histogram.

Standardized mean difference of a covariate between trial (T) and external (C) patients:

* a number: ``(mean_T - mean_C) / sqrt((s2_T + s2_C) / 2)``;
* a 0/1 number or one level of a categorical: the same with ``s2 = p (1 - p)``
  (Austin 2009, eqs. 1-2; a categorical gets one row per level).

After adjustment the means (and proportions) are weighted, and the denominator is the one of
the unadjusted sample, so that a change of the standardized difference is a change of the
means only (as the R package cobalt does). Variance ratios ``s2_T / s2_C`` use weighted
variances with the reliability-weights correction ``sum w (x - m)^2 / (sum w - sum w^2 /
sum w)`` (the usual ``n - 1`` denominator when all weights are 1); they are given for
non-binary numbers only. An absolute standardized difference below 0.1 is the usual mark of
balance (Austin 2009), a variance ratio between 0.5 and 2 (Rubin 2001).

References
----------
Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline
covariates between treatment groups in propensity-score matched samples. *Stat. Med.* 28,
3083-3107.
Rubin, D. B. (2001). Using propensity scores to help design observational studies:
application to the tobacco litigation. *Health Serv. Outcomes Res. Methodol.* 2, 169-188.
Greifer, N. (2024). cobalt: covariate balance tables and plots. R package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.propensity import PropensityModel, PropensityWeights, covariate_columns, kish_ess

__all__ = [
    "Balance",
    "balance_of",
    "balance_table",
    "overlap_histogram",
    "overlap_summary",
    "plot_love",
    "plot_overlap",
    "weighted_mean",
    "weighted_variance",
]

#: The usual threshold of an absolute standardized mean difference (Austin 2009).
SMD_THRESHOLD = 0.1


def weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w))


def weighted_variance(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted variance with the reliability-weights correction (``n - 1`` when unweighted)."""
    total = np.sum(w)
    m = np.sum(w * x) / total
    denominator = total - np.sum(w * w) / total
    return float(np.sum(w * (x - m) ** 2) / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class Balance:
    """Covariate balance before and after adjustment.

    Attributes
    ----------
    table : DataFrame
        One row per covariate (per level of a categorical): ``covariate``, ``level``,
        ``kind`` (number, binary, level), the trial mean, the external mean before and
        after adjustment (weighted), ``smd_before``, ``smd_after``,
        ``variance_ratio_before``, ``variance_ratio_after``.
    ess_trial, ess_external : float
        Kish effective sample sizes of the weights of each source.
    n_trial, n_external : int
        Patients of each source.
    """

    table: pd.DataFrame
    ess_trial: float
    ess_external: float
    n_trial: int
    n_external: int

    @property
    def max_abs_smd_before(self) -> float:
        return float(self.table["smd_before"].abs().max())

    @property
    def max_abs_smd_after(self) -> float:
        return float(self.table["smd_after"].abs().max())

    def summary(self) -> pd.DataFrame:
        """The balance table, indexed by the covariate label."""
        return self.table.set_index("label")

    def love_plot_data(self) -> pd.DataFrame:
        """Long table for a love plot: ``label``, ``adjustment`` (unadjusted/adjusted),
        ``smd`` and ``abs_smd``."""
        long = self.table.melt(
            id_vars="label",
            value_vars=["smd_before", "smd_after"],
            var_name="adjustment",
            value_name="smd",
        )
        long["adjustment"] = long["adjustment"].map(
            {"smd_before": "unadjusted", "smd_after": "adjusted"}
        )
        long["abs_smd"] = long["smd"].abs()
        return long


def balance_table(
    data: pd.DataFrame,
    covariates: Sequence[str],
    treated: np.ndarray,
    weights: np.ndarray | None = None,
) -> Balance:
    """Standardized mean differences and variance ratios before and after weighting.

    Parameters
    ----------
    data : DataFrame
        Trial and external patients.
    covariates : sequence of str
        The covariates; text and categorical columns get one row per level.
    treated : array of bool
        True for trial patients.
    weights : array, optional
        The adjustment's weights (trial and external); ``None`` gives the unadjusted
        balance in both columns.

    Returns
    -------
    Balance

    References
    ----------
    Austin (2009), see the module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"age": [50.0, 60, 70, 40, 50, 60]})
    >>> treated = np.array([True, True, True, False, False, False])
    >>> float(balance_table(frame, ["age"], treated).table["smd_before"].iloc[0])
    1.0
    """
    treated = np.asarray(treated, dtype=bool)
    w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
    columns, origin = covariate_columns(data, covariates, drop_first=False)
    rows = []
    t, c = treated, ~treated
    for label, (name, level) in origin.items():
        x = columns[label].to_numpy()
        binary = level is not None or bool(np.isin(x, (0.0, 1.0)).all())
        mean_t, mean_c = x[t].mean(), x[c].mean()
        mean_tw, mean_cw = weighted_mean(x[t], w[t]), weighted_mean(x[c], w[c])
        if binary:
            scale = np.sqrt((mean_t * (1 - mean_t) + mean_c * (1 - mean_c)) / 2)
            vr_before = vr_after = np.nan
        else:
            var_t, var_c = np.var(x[t], ddof=1), np.var(x[c], ddof=1)
            scale = np.sqrt((var_t + var_c) / 2)
            vr_before = var_t / var_c if var_c > 0 else np.nan
            var_cw = weighted_variance(x[c], w[c])
            vr_after = weighted_variance(x[t], w[t]) / var_cw if var_cw > 0 else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            smd_before = (mean_t - mean_c) / scale if scale > 0 else 0.0
            smd_after = (mean_tw - mean_cw) / scale if scale > 0 else 0.0
        rows.append(
            {
                "label": label,
                "covariate": name,
                "level": None if level is None else str(level),
                "kind": "level" if level is not None else "binary" if binary else "number",
                "mean_trial": mean_t,
                "mean_trial_adjusted": mean_tw,
                "mean_external": mean_c,
                "mean_external_adjusted": mean_cw,
                "smd_before": float(smd_before),
                "smd_after": float(smd_after),
                "variance_ratio_before": float(vr_before),
                "variance_ratio_after": float(vr_after),
            }
        )
    return Balance(
        table=pd.DataFrame(rows),
        ess_trial=kish_ess(w[t]),
        ess_external=kish_ess(w[c]),
        n_trial=int(t.sum()),
        n_external=int(c.sum()),
    )


# ----------------------------------------------------------------------------- overlap
def overlap_summary(model: PropensityModel, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Distribution of the propensity scores by source.

    Returns
    -------
    DataFrame
        Indexed by source (trial, external): ``n_patients``, the minimum, 5th, 25th,
        50th, 75th, 95th percentiles and maximum of the scores, the weighted mean score
        (with ``weights``), and ``share_outside``: the share of the source's patients
        whose score is outside the other source's range.
    """
    e, treated = model.scores, model.treated
    w = np.ones(e.size) if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for label, mask, other in (("trial", treated, ~treated), ("external", ~treated, treated)):
        s = e[mask]
        q = np.quantile(s, [0.05, 0.25, 0.5, 0.75, 0.95])
        lo, hi = e[other].min(), e[other].max()
        rows.append(
            {
                "source": label,
                "n_patients": int(mask.sum()),
                "min": float(s.min()),
                "q05": float(q[0]),
                "q25": float(q[1]),
                "median": float(q[2]),
                "q75": float(q[3]),
                "q95": float(q[4]),
                "max": float(s.max()),
                "mean_weighted": weighted_mean(s, w[mask]) if w[mask].sum() > 0 else np.nan,
                "share_outside": float(np.mean((s < lo) | (s > hi))),
            }
        )
    return pd.DataFrame(rows).set_index("source")


def overlap_histogram(
    model: PropensityModel, weights: np.ndarray | None = None, *, bins: int = 20
) -> pd.DataFrame:
    """Histogram of the propensity scores by source, on ``bins`` equal bins of [0, 1].

    Returns
    -------
    DataFrame
        One row per source and bin: ``source``, ``bin_low``, ``bin_high``, ``count``,
        ``density`` (share of the source's patients in the bin) and ``density_weighted``
        (share of the source's weight, with ``weights``; the unweighted share otherwise).
    """
    e, treated = model.scores, model.treated
    w = np.ones(e.size) if weights is None else np.asarray(weights, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    frames = []
    for label, mask in (("trial", treated), ("external", ~treated)):
        count, _ = np.histogram(e[mask], bins=edges)
        weighted, _ = np.histogram(e[mask], bins=edges, weights=w[mask])
        total = w[mask].sum()
        frames.append(
            pd.DataFrame(
                {
                    "source": label,
                    "bin_low": edges[:-1],
                    "bin_high": edges[1:],
                    "count": count,
                    "density": count / mask.sum(),
                    "density_weighted": weighted / total if total > 0 else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- plots
def plot_love(balance: Balance, ax=None, *, threshold: float = SMD_THRESHOLD):
    """Love plot: absolute standardized differences before and after adjustment.

    Parameters
    ----------
    balance : Balance
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes by default.
    threshold : float, default 0.1
        Drawn as a dashed vertical line.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(balance.table) + 1.5))
    data = balance.love_plot_data()
    labels = list(balance.table["label"])
    y = np.arange(len(labels))
    for adjustment, marker in (("unadjusted", "o"), ("adjusted", "D")):
        part = data[data["adjustment"] == adjustment].set_index("label").loc[labels]
        ax.scatter(part["abs_smd"], y, marker=marker, label=adjustment)
    ax.axvline(threshold, linestyle="--", color="grey", linewidth=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("absolute standardized mean difference")
    ax.legend(loc="lower right")
    return ax


def plot_overlap(model: PropensityModel, weights: np.ndarray | None = None, ax=None, *,
                 bins: int = 20):
    """Mirrored histogram of the propensity scores: trial above, external below the axis
    (weighted shares when ``weights`` are given).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    hist = overlap_histogram(model, weights, bins=bins)
    column = "density" if weights is None else "density_weighted"
    for label, sign in (("trial", 1.0), ("external", -1.0)):
        part = hist[hist["source"] == label]
        ax.bar(
            part["bin_low"],
            sign * part[column],
            width=part["bin_high"] - part["bin_low"],
            align="edge",
            label=label,
            alpha=0.7,
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("propensity score P(trial | covariates)")
    ax.set_ylabel("share of patients (external below the axis)")
    ax.legend()
    return ax


def balance_of(weights: PropensityWeights, data: pd.DataFrame) -> Balance:
    """:func:`balance_table` of the adjustment's covariates and weights."""
    return balance_table(data, weights.model.covariates, weights.treated, weights.weights)
