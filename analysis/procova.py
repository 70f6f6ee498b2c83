"""Prognostic covariate adjustment with digital twins (PROCOVA-style).

A prognostic model trained on historical controls (any fitted outcome model or generator)
predicts each randomized patient's outcome *under control* from baseline data: the
prognostic score, or "digital twin". The randomized comparison is then adjusted for the
score: ANCOVA on the score for a continuous endpoint, or Cox regression with the score as a
covariate for a time to event. Randomization keeps the adjusted estimate unbiased whatever
the quality (or the drift) of the prognostic model; a good model lowers its variance.

Design: if the score's correlation with the outcome (within arm) is ``rho``, the variance of
the ANCOVA estimate of the treatment effect is ``(1 - rho^2)`` times that of the unadjusted
difference of means (to first order in 1/n), so the sample size for the same power is
multiplied by ``1 - rho^2`` (Schuler et al. 2022, section 3; the EMA's qualification
opinion, 2022, recommends planning with a conservative, e.g. lower-bound, estimate of
``rho`` from data independent of the trial). Assumptions: a linear relation of the outcome
to the score, common to both arms; the score computed from baseline data only.

References
----------
Schuler, A., Walsh, D., Hall, D., Walsh, J. and Fisher, C. (2022). Increasing the efficiency
of randomized trial estimates via linear adjustment for a prognostic score. *The
International Journal of Biostatistics* 18(2), 329-356.
EMA/CHMP (2022). Qualification opinion for Prognostic Covariate Adjustment (PROCOVA).
Borm, G. F., Fransen, J. and Lemmens, W. A. (2007). A simple sample size formula for analysis
of covariance in randomized clinical trials. *J Clin Epidemiol* 60, 1234-1238.
FDA (2023). Adjusting for Covariates in Randomized Clinical Trials for Drugs and Biological
Products. Guidance for industry.
MacKinnon, J. G. and White, H. (1985). Some heteroskedasticity-consistent covariance matrix
estimators with improved finite sample properties. *J Econometrics* 29, 305-325 (HC0-HC3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

from trials.engine import replicate_generator
from trials.exceptions import DataError, DesignError

__all__ = [
    "ProcovaDesign",
    "ProcovaResult",
    "ProcovaSimulation",
    "ols_hc",
    "procova_ancova",
    "procova_cox",
    "procova_sample_size",
    "procova_simulation",
    "prognostic_score",
]

COV_TYPES = ("HC0", "HC1", "HC2", "HC3")


def prognostic_score(model: Callable[[Any], ArrayLike] | ArrayLike, data: Any = None) -> np.ndarray:
    """The prognostic score of each patient.

    Parameters
    ----------
    model : callable or array_like
        A fitted prognostic model's prediction function (e.g. ``fitted.predict``, or any
        callable taking the baseline data and returning each patient's predicted control
        outcome), or the scores themselves.
    data : DataFrame, optional
        Baseline data passed to ``model`` when it is callable; it fixes the number of patients.

    Returns
    -------
    ndarray of float, shape (n_patients,)

    Raises
    ------
    DataError
        When the scores are not finite or their number is not that of the patients.
    """
    score = model(data) if callable(model) else model
    score = np.asarray(score, dtype=float).reshape(-1)
    if data is not None and len(score) != len(data):
        raise DataError(f"the prognostic score has {len(score)} values for {len(data)} patients")
    bad = np.flatnonzero(~np.isfinite(score))
    if bad.size:
        rows = bad[:10].tolist()
        raise DataError(f"the prognostic score is missing or not finite for rows {rows}")
    return score


def ols_hc(y: np.ndarray, x: np.ndarray, cov_type: str = "HC3") -> tuple[np.ndarray, np.ndarray]:
    """Least squares with heteroskedasticity-consistent SEs, batched over replicates.

    ``y`` (R, N) and ``x`` (R, N, k) or (N, k) (intercept included by the caller); returns
    the coefficients and their robust SEs, (R, k) each, as statsmodels'
    ``OLS(y, x).fit(cov_type=cov_type)`` on each replicate.
    """
    if cov_type not in COV_TYPES:
        raise DesignError(f"cov_type must be one of {', '.join(COV_TYPES)} (got {cov_type!r})")
    y = np.asarray(y, dtype=float)
    x = np.broadcast_to(np.asarray(x, dtype=float), (*y.shape, np.shape(x)[-1]))
    n, k = y.shape[-1], x.shape[-1]
    bread = np.linalg.inv(np.einsum("...ni,...nj->...ij", x, x))
    coef = np.einsum("...ij,...nj,...n->...i", bread, x, y)
    resid = y - np.einsum("...ni,...i->...n", x, coef)
    if cov_type in ("HC2", "HC3"):
        leverage = np.einsum("...ni,...ij,...nj->...n", x, bread, x)
        scale = (1 - leverage) ** (-1 if cov_type == "HC2" else -2)
    else:
        scale = np.full(resid.shape, n / (n - k) if cov_type == "HC1" else 1.0)
    meat = np.einsum("...n,...ni,...nj->...ij", scale * resid**2, x, x)
    cov = bread @ meat @ bread
    return coef, np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))


@dataclass(frozen=True)
class ProcovaResult:
    """A PROCOVA analysis of one trial: the adjusted treatment effect.

    ``effect`` is the difference of means (ANCOVA) or the log hazard ratio (Cox,
    ``log_hr``); ``p_value`` is two-sided, ``p_value_one_sided`` for benefit (higher mean,
    or log HR < 0); ``df`` the residual degrees of freedom of the t reference distribution
    (None: normal reference). ``score_correlation`` is the within-arm correlation of the
    score with the outcome (ANCOVA).
    """

    method: str
    effect: float
    se: float
    df: int | None
    p_value: float
    p_value_one_sided: float
    n_patients: int
    score_coefficient: float
    score_correlation: float | None
    cov_type: str

    def conf_int(self, level: float = 0.95) -> tuple[float, float]:
        q = (1 + level) / 2
        crit = stats.norm.ppf(q) if self.df is None else stats.t.ppf(q, self.df)
        return self.effect - crit * self.se, self.effect + crit * self.se

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        lower, upper = self.conf_int(level)
        return pd.DataFrame([{
            "method": self.method, "effect": self.effect, "se": self.se, "lower": lower,
            "upper": upper, "p_value": self.p_value, "p_value_one_sided": self.p_value_one_sided,
            "n_patients": self.n_patients, "score_coefficient": self.score_coefficient,
            "score_correlation": self.score_correlation, "cov_type": self.cov_type,
        }])  # fmt: skip


def _columns(data: pd.DataFrame, names: list[str]) -> None:
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise DataError(f"the data has no column(s) {', '.join(map(repr, missing))}")
    for name in names:
        values = pd.to_numeric(data[name], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"column {name!r}: rows {bad[:10].tolist()} are missing or not numeric")


def _treatment(data: pd.DataFrame, treatment: str) -> np.ndarray:
    z = data[treatment].to_numpy(float)
    if not np.all(np.isin(z, (0, 1))) or z.min() == z.max():
        raise DataError(f"treatment column {treatment!r} must hold 0 (control) and 1 (treated)")
    return z


def procova_ancova(
    data: pd.DataFrame,
    outcome: str,
    treatment: str,
    score: Callable[[Any], ArrayLike] | ArrayLike | str,
    *,
    cov_type: str = "HC3",
) -> ProcovaResult:
    """ANCOVA of a continuous outcome on treatment and the prognostic score (statsmodels).

    Fits ``outcome ~ 1 + treatment + score`` by OLS with heteroskedasticity-consistent
    (``cov_type``) standard errors and a t reference distribution on ``n - 3`` degrees of
    freedom.

    Parameters
    ----------
    data : DataFrame
        One row per randomized patient.
    outcome, treatment : str
        Columns of the outcome and of the 0/1 treatment indicator.
    score : str, callable or array_like
        Column of the score, a prognostic model's prediction function applied to ``data``,
        or the scores (see :func:`prognostic_score`).
    cov_type : {"HC0", "HC1", "HC2", "HC3"}
        Robust covariance (HC3 by default: the least anti-conservative in small samples).

    Returns
    -------
    ProcovaResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=200); z = np.repeat([0, 1], 100)
    >>> df = pd.DataFrame({"y": 0.5 * z + 0.8 * x + rng.normal(0, 0.6, 200), "z": z, "s": x})
    >>> res = procova_ancova(df, "y", "z", "s")
    >>> bool(abs(res.effect - 0.5) < 0.25)
    True
    """
    import statsmodels.api as sm

    _columns(data, [outcome, treatment])
    z = _treatment(data, treatment)
    s = data[score].to_numpy(float) if isinstance(score, str) else prognostic_score(score, data)
    y = data[outcome].to_numpy(float)
    design = np.column_stack([np.ones_like(y), z, s])
    fit = sm.OLS(y, design).fit(cov_type=cov_type, use_t=True)
    effect, se = float(fit.params[1]), float(fit.bse[1])
    df = int(fit.df_resid)
    t = effect / se
    resid_arm = np.concatenate([y[z == a] - y[z == a].mean() for a in (0, 1)])
    score_arm = np.concatenate([s[z == a] - s[z == a].mean() for a in (0, 1)])
    rho = float(np.corrcoef(resid_arm, score_arm)[0, 1])
    return ProcovaResult(
        "ancova", effect, se, df, float(2 * stats.t.sf(abs(t), df)), float(stats.t.sf(t, df)),
        len(y), float(fit.params[2]), rho, cov_type,
    )  # fmt: skip


def procova_cox(
    data: pd.DataFrame,
    time: str,
    event: str,
    treatment: str,
    score: Callable[[Any], ArrayLike] | ArrayLike | str,
    *,
    robust: bool = True,
) -> ProcovaResult:
    """Cox regression on treatment and the prognostic score (lifelines ``CoxPHFitter``).

    The score is, e.g., a predicted log hazard or predicted survival time under control;
    ``effect`` is the adjusted log hazard ratio with the robust sandwich SE (``robust=True``)
    and a normal reference distribution. Assumes proportional hazards in treatment and a
    log-linear score effect.
    """
    from lifelines import CoxPHFitter

    _columns(data, [time, event, treatment])
    z = _treatment(data, treatment)
    s = data[score].to_numpy(float) if isinstance(score, str) else prognostic_score(score, data)
    frame = pd.DataFrame({
        "time": data[time].to_numpy(float), "event": data[event].to_numpy(float),
        "treatment": z, "score": s,
    })  # fmt: skip
    fitter = CoxPHFitter().fit(frame, "time", "event", robust=robust)
    effect = float(fitter.params_["treatment"])
    se = float(fitter.standard_errors_["treatment"])
    zstat = effect / se
    return ProcovaResult(
        "cox", effect, se, None, float(2 * special.ndtr(-abs(zstat))), float(special.ndtr(zstat)),
        len(frame), float(fitter.params_["score"]), None, "sandwich" if robust else "model",
    )  # fmt: skip


@dataclass(frozen=True)
class ProcovaDesign:
    """Sample sizes without and with prognostic adjustment (both arms, total)."""

    n_unadjusted: int
    n_adjusted: int
    variance_factor: float
    rho: float
    effect: float
    sd: float
    alpha: float
    power: float

    @property
    def reduction(self) -> float:
        """Fraction of patients saved, ``1 - n_adjusted / n_unadjusted``."""
        return 1 - self.n_adjusted / self.n_unadjusted


def procova_sample_size(
    effect: float,
    sd: float,
    rho: float,
    *,
    alpha: float = 0.025,
    power: float = 0.9,
    allocation: float = 1.0,
) -> ProcovaDesign:
    """The sample-size reduction a prognostic score with correlation ``rho`` buys.

    Unadjusted total sample size for a one-sided level-``alpha`` z-test of a difference of
    means ``effect`` with outcome SD ``sd`` and ``allocation`` treated per control:
    ``n = (z_{1-alpha} + z_{power})^2 sd^2 (1 + k)^2 / (k effect^2)``; adjusted:
    ``n (1 - rho^2)`` (Schuler et al. 2022; Borm et al. 2007), each rounded up to whole
    patients split by the allocation.

    Examples
    --------
    >>> d = procova_sample_size(0.4, 1.0, 0.6)
    >>> d.variance_factor, d.n_unadjusted, d.n_adjusted
    (0.64, 264, 170)
    """
    if not (-1 < rho < 1 and sd > 0 and effect != 0 and 0 < alpha < 1 and 0 < power < 1):
        raise DesignError("need -1 < rho < 1, sd > 0, effect != 0, 0 < alpha, power < 1")
    k = allocation
    z = special.ndtri(1 - alpha) + special.ndtri(power)
    base = z**2 * sd**2 * (1 + k) ** 2 / (k * effect**2)
    factor = 1 - rho**2

    def whole(n: float) -> int:
        n_control = math.ceil(n / (1 + k) - 1e-9)
        return n_control + math.ceil(k * n_control - 1e-9)

    return ProcovaDesign(whole(base), whole(base * factor), factor, rho, effect, sd, alpha, power)


@dataclass(frozen=True)
class ProcovaSimulation:
    """Simulated operating characteristics of unadjusted and PROCOVA analyses.

    ``table``: one row per analysis (``unadjusted``, ``procova``) and scenario (``null``,
    ``design``) with the rejection rate and its Monte Carlo SE, the bias, the empirical SE
    of the estimate and the CI coverage. ``variance_ratio`` is
    Var(adjusted) / Var(unadjusted) under the design, with its Monte Carlo SE
    (delta method: ``Var(log ratio) = 4 (1 - r^2) / (R - 1)`` for estimates of correlation
    ``r``), to be compared with ``1 - rho^2``.
    """

    table: pd.DataFrame
    variance_ratio: float
    variance_ratio_mcse: float
    rho: float
    n_replicates: int


def procova_simulation(
    n_treated: int,
    n_control: int,
    effect: float,
    sd: float,
    rho: float,
    *,
    n_replicates: int = 1000,
    alpha: float = 0.025,
    seed: int = 0,
    cov_type: str = "HC3",
    level: float = 0.95,
) -> ProcovaSimulation:
    """Type I error, power and variance of PROCOVA against the unadjusted analysis.

    Each replicate (its own random stream, :func:`trials.engine.replicate_generator`) draws
    a standardized score ``x`` and an outcome ``y = effect * z + sd (rho x +
    sqrt(1 - rho^2) e)`` for ``n_treated + n_control`` patients; the score ``x`` is the
    prognostic model's prediction (any linear recalibration of it gives the same ANCOVA).
    Both analyses are OLS with ``cov_type`` robust SEs and a t reference (one-sided test at
    ``alpha``), computed in closed form for all replicates at once.
    """
    n = n_treated + n_control
    if not (-1 < rho < 1 and sd > 0 and n_treated > 1 and n_control > 1 and n_replicates > 1):
        raise DesignError("need -1 < rho < 1, sd > 0, at least 2 patients per arm, 2 replicates")
    u = np.stack(
        [replicate_generator(seed, r).standard_normal((2, n)) for r in range(n_replicates)]
    )
    x, e = u[:, 0], u[:, 1]
    z = np.concatenate([np.ones(n_treated), np.zeros(n_control)])
    noise = sd * (rho * x + math.sqrt(1 - rho**2) * e)
    ones = np.ones_like(x)
    designs = {
        "unadjusted": np.stack([ones, np.broadcast_to(z, x.shape)], -1),
        "procova": np.stack([ones, np.broadcast_to(z, x.shape), x], -1),
    }
    rows, estimates = [], {}
    for scenario, true in (("null", 0.0), ("design", effect)):
        y = true * z + noise
        for name, design in designs.items():
            coef, se = ols_hc(y, design, cov_type)
            est, se = coef[:, 1], se[:, 1]
            df = n - design.shape[-1]
            reject = stats.t.sf(est / se, df) < alpha
            crit = stats.t.ppf((1 + level) / 2, df)
            covered = np.abs(est - true) <= crit * se
            rate = reject.mean()
            rows.append({
                "analysis": name, "scenario": scenario, "true_effect": true,
                "rejection_rate": rate, "rejection_mcse": math.sqrt(rate * (1 - rate) / len(est)),
                "bias": est.mean() - true, "bias_mcse": est.std(ddof=1) / math.sqrt(len(est)),
                "empirical_se": est.std(ddof=1), "mean_model_se": math.sqrt(np.mean(se**2)),
                "coverage": covered.mean(),
            })  # fmt: skip
            if scenario == "design":
                estimates[name] = est
    ratio = estimates["procova"].var(ddof=1) / estimates["unadjusted"].var(ddof=1)
    r = np.corrcoef(estimates["procova"], estimates["unadjusted"])[0, 1]
    mcse = ratio * math.sqrt(4 * (1 - r**2) / (n_replicates - 1))
    return ProcovaSimulation(pd.DataFrame(rows), float(ratio), float(mcse), rho, n_replicates)
