"""Figures of a report: each ``plot_*`` draws on the axes it is given (or on new ones) and
returns them; nothing here computes a statistic — every function draws numbers that were
computed elsewhere. :func:`png_data_uri` turns a figure into an embeddable image.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend),
under the print style of :mod:`reports.palette` (see :func:`print_style`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.palette import CONTROL, RC, REAL, REFERENCE, VIRTUAL, ArmStyle


@contextmanager
def print_style() -> Iterator[None]:
    """matplotlib settings of the report's figures, for the duration of the block."""
    with matplotlib.rc_context(RC):
        yield


def new_axes(width: float = 6.5, height: float = 3.4, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure (inches) and its axes, on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def png_data_uri(fig: Figure, dpi: int = 150) -> str:
    """The figure as a ``data:image/png;base64`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _interval(frame: pd.DataFrame, rate: np.ndarray) -> np.ndarray:
    """Error bar lengths below and above ``rate`` from ``ci_lower`` / ``ci_upper``."""
    lower = frame["ci_lower"].to_numpy(float)
    upper = frame["ci_upper"].to_numpy(float)
    return np.vstack([np.maximum(rate - lower, 0.0), np.maximum(upper - rate, 0.0)])


def _axes(ax, width=6.5, height=3.4):
    if ax is not None:
        return ax
    return new_axes(width, height)[1]


# ------------------------------------------------------------------ survival


def plot_km(
    curves: Sequence[dict],
    styles: Mapping[str, ArmStyle],
    *,
    xlabel: str = "Time from randomization (months)",
    ylabel: str = "Probability event-free",
    ax=None,
):
    """Kaplan–Meier curves: each ``curve`` has ``label``, ``style`` (key of ``styles``),
    ``time`` and ``survival`` (step function), optional ``lower`` / ``upper`` (pointwise
    band) and ``censored_time`` / ``censored_survival`` (tick marks)."""
    ax = _axes(ax)
    for curve in curves:
        style = styles[curve["style"]]
        ax.step(
            curve["time"],
            curve["survival"],
            where="post",
            color=style.colour,
            linestyle=style.linestyle,
            label=curve["label"],
        )
        if curve.get("lower") is not None:
            ax.fill_between(
                curve["time"],
                curve["lower"],
                curve["upper"],
                step="post",
                color=style.colour,
                alpha=0.12,
                linewidth=0,
            )
        if curve.get("censored_time") is not None and len(curve["censored_time"]):
            ax.plot(
                curve["censored_time"],
                curve["censored_survival"],
                linestyle="none",
                marker="|",
                markersize=5,
                color=style.colour,
            )
    ax.set_ylim(-0.02, 1.02)
    horizon = max((float(np.max(c["time"])) for c in curves if len(c["time"])), default=1.0)
    ax.set_xlim(-0.04 * horizon, 1.02 * horizon)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower left", title="| censored; band: 95% pointwise CI", title_fontsize=7)
    return ax


def plot_at_risk(
    times: Sequence[float],
    counts: Mapping[str, Sequence[int]],
    styles: Mapping[str, ArmStyle],
    labels: Mapping[str, str] | None = None,
    *,
    ax=None,
):
    """The numbers-at-risk table under a Kaplan–Meier plot (rows: arms; columns: times)."""
    ax = _axes(ax, height=1.0)
    names = list(counts)
    for row, name in enumerate(names):
        y = len(names) - 1 - row
        for t, n in zip(times, counts[name], strict=True):
            ax.text(t, y, str(n), ha="center", va="center", fontsize=8, color=styles[name].colour)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([(labels or {}).get(n, n) for n in reversed(names)], fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_title("Number at risk", fontsize=8, loc="left")
    ax.grid(False)
    ax.tick_params(axis="y", length=0, pad=14)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelbottom=False, length=0)
    return ax


# ------------------------------------------------------------------- effects

#: Ticks of a ratio axis on the log scale.
LOG_TICKS = (
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    10.0,
    20.0,
)


def plot_forest(
    rows: pd.DataFrame,
    *,
    null_value: float,
    xlabel: str,
    log_scale: bool,
    colour: str = CONTROL,
    ax=None,
):
    """A forest plot: ``rows`` has ``label``, ``estimate``, ``lower``, ``upper`` (NaN for a
    subgroup that could not be estimated), top to bottom."""
    ax = _axes(ax, height=0.35 * len(rows) + 1.0)
    y = np.arange(len(rows))[::-1]
    ok = rows["estimate"].notna().to_numpy()
    est = rows["estimate"].to_numpy(float)
    lower, upper = rows["lower"].to_numpy(float), rows["upper"].to_numpy(float)
    ax.errorbar(
        est[ok],
        y[ok],
        xerr=[est[ok] - lower[ok], upper[ok] - est[ok]],
        fmt="s",
        color=colour,
        ecolor=colour,
        capsize=2,
        markersize=4,
        label="estimate (95% CI)",
    )
    ax.axvline(null_value, color=REFERENCE, linestyle="--", linewidth=1, label="no effect")
    if log_scale:
        ax.set_xscale("log")
        low = np.nanmin(np.append(lower[ok], null_value))
        high = np.nanmax(np.append(upper[ok], null_value))
        ticks = [t for t in LOG_TICKS if low / 1.15 <= t <= high * 1.15]
        ax.set_xlim(low / 1.15, high * 1.15)
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_yticks(y)
    ax.set_yticklabels(rows["label"])
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(rows) > 4 else -0.3), ncol=2)
    return ax


def plot_values_by_arm(
    values: Mapping[str, np.ndarray], styles: Mapping[str, ArmStyle], *, ylabel: str, ax=None
):
    """Box plots of a continuous endpoint by arm (the observed values)."""
    ax = _axes(ax, width=5.0, height=3.0)
    names = list(values)
    parts = ax.boxplot([values[n] for n in names], patch_artist=True, widths=0.5)
    ax.set_xticks(range(1, len(names) + 1), names)
    for box, name in zip(parts["boxes"], names, strict=True):
        box.set_facecolor(styles[name].colour)
        box.set_alpha(0.35)
        box.set_edgecolor(styles[name].colour)
    for median in parts["medians"]:
        median.set_color("black")
    ax.set_xlabel("Arm")
    ax.set_ylabel(ylabel)
    return ax


def plot_rates_by_arm(
    rates: Mapping[str, float], styles: Mapping[str, ArmStyle], *, ylabel: str, ax=None
):
    """Bars of the observed proportion of a binary endpoint by arm."""
    ax = _axes(ax, width=5.0, height=3.0)
    names = list(rates)
    bars = ax.bar(
        names,
        [rates[n] for n in names],
        color=[styles[n].colour for n in names],
        alpha=0.8,
        width=0.5,
    )
    ax.bar_label(bars, labels=[f"{rates[n]:.1%}" for n in names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Arm")
    ax.set_ylabel(ylabel)
    return ax


# ------------------------------------------------------- operating characteristics


def plot_power_curve(
    series: Mapping[str, pd.DataFrame],
    styles: Mapping[str, ArmStyle],
    *,
    xlabel: str,
    ylabel: str = "Probability of rejecting H0",
    references: Mapping[str, float] | None = None,
    ax=None,
):
    """Simulated rejection rates over a design parameter: each series (``x``, ``rate``,
    ``ci_lower``, ``ci_upper``) with its exact 95% Monte Carlo interval; ``references``:
    horizontal lines (label -> level), e.g. the nominal alpha or a target power."""
    ax = _axes(ax)
    for label, frame in series.items():
        style = styles.get(label) or styles[next(iter(styles))]
        x, rate = frame["x"].to_numpy(float), frame["rate"].to_numpy(float)
        ax.errorbar(
            x,
            rate,
            yerr=_interval(frame, rate),
            color=style.colour,
            linestyle=style.linestyle,
            marker=style.marker,
            markersize=4,
            capsize=2,
            label=label,
        )
    for label, level in (references or {}).items():
        ax.axhline(level, color=REFERENCE, linestyle=":", linewidth=1)
        ax.annotate(
            label,
            (1.0, level),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=7,
            color=REFERENCE,
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(title="error bars: exact 95% Monte Carlo CI", title_fontsize=7)
    return ax


def plot_assurance(
    hazard_ratios: np.ndarray,
    power: np.ndarray,
    density: np.ndarray,
    points: pd.DataFrame,
    assurance: dict | None,
    *,
    colour: str,
    ax=None,
):
    """Conditional power of the log-rank test over the hazard ratio (line), the
    distribution of the hazard ratio the assurance averages over (shaded, right axis), and
    the simulated conditional powers and assurance with their Monte Carlo CIs."""
    ax = _axes(ax)
    ax.plot(hazard_ratios, power, color=colour, label="conditional power (Schoenfeld)")
    if len(points):
        x, rate = points["hazard_ratio"].to_numpy(float), points["rate"].to_numpy(float)
        ax.errorbar(
            x,
            rate,
            yerr=_interval(points, rate),
            fmt="o",
            color=colour,
            capsize=2,
            markersize=4,
            label="simulated conditional power",
        )
    if assurance is not None:
        ax.axhline(
            assurance["rate"],
            color=REFERENCE,
            linestyle="--",
            linewidth=1,
            label=f"simulated assurance {assurance['rate']:.3f}",
        )
        ax.axhspan(
            assurance["ci_lower"], assurance["ci_upper"], color=REFERENCE, alpha=0.12, linewidth=0
        )
    twin = ax.twinx()
    twin.fill_between(hazard_ratios, density, color=VIRTUAL, alpha=0.25, linewidth=0)
    twin.set_ylabel("Density of the hazard ratio (shaded)")
    twin.set_ylim(bottom=0)
    twin.grid(False)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Hazard ratio (experimental / control)")
    ax.set_ylabel("Probability of rejecting H0")
    ax.legend(loc="center right")
    return ax


def plot_stopping(looks: pd.DataFrame, *, ax=None):
    """Probability of stopping at each look for efficacy and for futility under each
    scenario (``look``, ``scenario``, ``reason``, ``rate``, ``ci_lower``, ``ci_upper``)."""
    ax = _axes(ax)
    groups = list(looks.groupby(["scenario", "reason"], sort=False))
    n_looks = int(looks["look"].max())
    width = 0.8 / max(len(groups), 1)
    colours = {"efficacy": "#0072B2", "futility": "#D55E00"}
    hatches = {"design": "", "null": "//"}
    for k, ((scenario, reason), frame) in enumerate(groups):
        x = frame["look"].to_numpy(float) - 0.4 + width * (k + 0.5)
        rate = frame["rate"].to_numpy(float)
        ax.bar(
            x,
            rate,
            width=width,
            color=colours.get(reason, REFERENCE),
            alpha=0.75,
            hatch=hatches.get(scenario, ".."),
            edgecolor="white",
            label=f"{scenario}: {reason}",
        )
        ax.errorbar(
            x,
            rate,
            yerr=_interval(frame, rate),
            fmt="none",
            ecolor="black",
            capsize=2,
            linewidth=0.8,
        )
    ax.set_xticks(range(1, n_looks + 1), [f"look {k}" for k in range(1, n_looks + 1)])
    ax.set_ylim(0, 1)
    ax.set_xlabel("Analysis")
    ax.set_ylabel("Probability of stopping")
    ax.legend(ncol=2, title="error bars: exact 95% Monte Carlo CI", title_fontsize=7)
    return ax


def plot_estimates(
    estimates: Mapping[str, np.ndarray], true_values: Mapping[str, float], *, xlabel: str, ax=None
):
    """Histograms of a comparison's estimate over the simulated trials, per scenario, with
    the true value of each scenario."""
    ax = _axes(ax, height=3.0)
    colours = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
    for k, (label, values) in enumerate(estimates.items()):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        colour = colours[k % len(colours)]
        ax.hist(values, bins=30, color=colour, alpha=0.45, label=f"{label} (estimates)")
        true = true_values.get(label)
        if true is not None and np.isfinite(true):
            ax.axvline(
                true, color=colour, linestyle="--", linewidth=1.2, label=f"{label}: true value"
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Simulated trials")
    ax.legend()
    return ax


# ------------------------------------------------------------ virtual patients


def plot_column_scores(
    scores: Mapping[str, float], reference: float | None, *, xlabel: str, ax=None
):
    """Horizontal bars of a per-column score in [0, 1] (1 is identical), with the score of
    the real holdout as a reference line."""
    names = list(scores)
    ax = _axes(ax, height=0.28 * len(names) + 1.0)
    values = [np.nan if scores[n] is None else scores[n] for n in names]
    ax.barh(names[::-1], values[::-1], color=VIRTUAL, alpha=0.8, label="virtual vs real")
    if reference is not None:
        ax.axvline(
            reference,
            color=REAL,
            linestyle="--",
            linewidth=1,
            label=f"real holdout vs real ({reference:.3f})",
        )
    ax.set_xlim(0, 1.0)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower left")
    return ax


def plot_heatmap(
    matrix: pd.DataFrame, *, title: str, vmin: float, vmax: float, cmap: str, label: str, ax=None
):
    """A labelled heatmap of a square matrix (NaN blank), values printed in the cells."""
    ax = _axes(ax, width=3.4, height=3.2)
    values = matrix.to_numpy(float)
    image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap)
    n = len(matrix)
    ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), matrix.index)
    ax.grid(False)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                if np.isfinite(values[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{values[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(values[i, j]) > 0.6 * vmax else "black",
                    )
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=label)
    return ax


def plot_marginal(real: pd.Series, virtual: pd.Series, *, categorical: bool, xlabel: str, ax=None):
    """Overlay of a column's distribution in the real and the virtual patients."""
    ax = _axes(ax, width=3.2, height=2.4)
    if categorical:
        levels = sorted(set(real.dropna().astype(str)) | set(virtual.dropna().astype(str)))
        r = real.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0)
        v = virtual.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0)
        x = np.arange(len(levels))
        ax.bar(x - 0.2, r.to_numpy(), width=0.4, color=REAL, alpha=0.8, label="real")
        ax.bar(x + 0.2, v.to_numpy(), width=0.4, color=VIRTUAL, alpha=0.8, label="virtual")
        ax.set_xticks(x, levels, rotation=30 if len(levels) > 3 else 0)
        ax.set_ylabel("Proportion")
    else:
        r, v = real.dropna().to_numpy(float), virtual.dropna().to_numpy(float)
        bins = np.histogram_bin_edges(np.concatenate([r, v]), bins=25)
        ax.hist(r, bins=bins, density=True, color=REAL, alpha=0.45, label="real")
        ax.hist(
            v,
            bins=bins,
            density=True,
            histtype="step",
            color=VIRTUAL,
            linewidth=1.6,
            label="virtual",
        )
        ax.set_ylabel("Density")
    ax.set_xlabel(xlabel)
    ax.legend()
    return ax


def plot_bars_with_reference(
    values: Mapping[str, float],
    errors: Mapping[str, float] | None,
    reference: float,
    *,
    xlabel: str,
    reference_label: str,
    ax=None,
):
    """Horizontal bars (with ±1.96 SE whiskers when given) and a reference value."""
    names = list(values)
    ax = _axes(ax, width=5.0, height=0.35 * len(names) + 1.0)
    err = None if errors is None else [1.96 * (errors.get(n) or 0.0) for n in names]
    ax.barh(
        names,
        [values[n] for n in names],
        xerr=err,
        color=VIRTUAL,
        alpha=0.8,
        capsize=3,
        label="virtual vs real (±1.96 SE)",
    )
    ax.axvline(reference, color=REAL, linestyle="--", linewidth=1, label=reference_label)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right")
    return ax


# ------------------------------------------------------------------ external control


def plot_propensity_overlap(scores: Mapping[str, Sequence[float]], *, ax=None):
    """Distribution of the propensity scores of each source (trial, external), as the
    analysis estimated them: density histograms on common bins."""
    ax = _axes(ax, width=6.0, height=3.0)
    values = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    values = {k: v[np.isfinite(v)] for k, v in values.items()}
    pooled = np.concatenate([v for v in values.values() if v.size] or [np.array([0.0, 1.0])])
    bins = np.histogram_bin_edges(pooled, bins=30)
    colours = {"trial": VIRTUAL, "external": CONTROL}
    for k, (source, v) in enumerate(values.items()):
        colour = colours.get(source, REFERENCE)
        if k == 0:
            ax.hist(v, bins=bins, density=True, color=colour, alpha=0.45, label=source)
        else:
            ax.hist(
                v,
                bins=bins,
                density=True,
                histtype="step",
                color=colour,
                linewidth=1.6,
                label=source,
            )
    ax.set_xlabel("Estimated propensity score (probability of being a trial patient)")
    ax.set_ylabel("Density")
    ax.legend()
    return ax


def plot_tipping_point(grid: pd.DataFrame, *, ax=None):
    """The adjusted hazard ratio over a grid of unmeasured binary confounders: one line per
    confounder-outcome hazard ratio (``confounder_hazard_ratio``) against the prevalence
    difference between the sources; open markers where the adjusted confidence interval
    includes 1 (``includes_null``), the null as a reference line."""
    from reports.palette import EXPERIMENTAL, LINESTYLES, MARKERS

    ax = _axes(ax, width=6.0, height=3.4)
    for k, (hr_u, part) in enumerate(grid.groupby("confounder_hazard_ratio", sort=True)):
        part = part.sort_values("prevalence_difference")
        colour = EXPERIMENTAL[k % len(EXPERIMENTAL)]
        x = part["prevalence_difference"].to_numpy(float)
        y = part["hazard_ratio_adjusted"].to_numpy(float)
        ax.plot(
            x, y, color=colour, linestyle=LINESTYLES[k % len(LINESTYLES)], label=f"HR(U) = {hr_u:g}"
        )
        if "includes_null" in part:
            null = part["includes_null"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
            marker = MARKERS[k % len(MARKERS)]
            ax.scatter(x[~null], y[~null], marker=marker, color=colour, s=18, zorder=3)
            ax.scatter(
                x[null],
                y[null],
                marker=marker,
                facecolors="none",
                edgecolors=colour,
                s=18,
                zorder=3,
            )
    ax.axhline(1.0, color=REFERENCE, linestyle="--", linewidth=1)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("Prevalence difference of the unmeasured confounder between the sources")
    ax.set_ylabel("Hazard ratio corrected for it")
    ax.legend(loc="best", ncols=2)
    return ax
