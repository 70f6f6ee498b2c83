"""Operating characteristics of a propensity-score external control arm under drift.

A single-arm trial of ``n_trial`` treated patients is compared with ``n_external`` external
controls whose measured covariates differ from the trial's (measured confounding, which the
propensity score adjusts for) and which may also differ in ways the propensity score cannot
see: a shift of the external control outcome, or an unmeasured prognostic factor whose
prevalence differs between the sources. For each approach -- ``naive`` (unadjusted
difference of means), ``iptw_att`` (inverse probability weights for the effect on the
treated), ``overlap`` (overlap weights) and ``matching`` (greedy 1:1 nearest-neighbour
matching on the logit of the score within a caliper) -- and each point of a grid of drift,
:func:`analysis.hybrid_design.simulate_drift` reports the type I error, power, bias, RMSE and
confidence interval coverage with their Monte Carlo SEs in the same tidy table as the hybrid
designs (so :func:`analysis.hybrid_design.plot_drift` draws it).

Data-generating model (normal endpoint), for patient ``i`` with source ``s`` (1: trial):

- measured covariates ``x ~ N(covariate_shift, I)`` in the trial and ``N(0, I)`` among the
  external controls, so that the true propensity score is logistic-linear in ``x`` (the
  fitted model is correctly specified);
- an unmeasured factor ``U ~ Bernoulli(pi)`` (trial) or ``Bernoulli(pi + drift)``
  (external, drift kind ``prevalence_difference``), independent of ``x``;
- ``y = control + effect s + beta' x + gamma (U - pi) + shift (1 - s) + sd e``, ``e ~ N(0,
  1)``, with ``beta = covariate_effects``, ``gamma = unmeasured_strength`` and ``shift`` the
  drift of kind ``shift``.

The effect is constant, so the effect on the treated, the overlap-population effect and the
matched-sample effect all equal ``effect`` (``0`` in the ``null`` scenario). The unadjusted
difference is biased by ``beta' covariate_shift``; every propensity approach is biased by
``-shift`` under an outcome shift and by ``-gamma drift`` under a prevalence difference
(the score cannot see either).

Analyses, vectorized over replicates: the propensity score is fitted by a few Newton steps
of the logistic likelihood batched over replicates (:func:`fit_logistic_batch`; equal to
statsmodels' ``Logit``); weighted estimates are differences of weighted means (the
estimates of :func:`analysis.external_control.weighted_difference`) with the SE of the
stacked estimating equations of the score and the two means, which accounts for the
estimated score (ignoring it, as the HC0 SE with known weights does, is conservative here);
the naive SE is HC0 (unequal variances); the matched estimate is the mean of the paired
differences with the paired SE (Austin 2011), matching as
:func:`analysis.propensity.match_nearest` (trial patients in decreasing order of the score,
ties to the earlier row). Intervals and
one-sided tests are normal (Wald). The propensity score, weights and matches depend on the
covariates only, so they are computed once per chunk and shared by the drift grid and the
two scenarios (common random numbers).

Randomness: replicate ``r`` draws all its variates from its own stream
(:func:`trials.engine.replicate_generator`), so results do not depend on the chunking.

References
----------
Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when estimating
differences in means and differences in proportions in observational studies. *Pharm.
Stat.* 10, 150-161.
Lunceford, J. K. and Davidian, M. (2004). Stratification and weighting via the propensity
score in estimation of causal treatment effects. *Statistics in Medicine* 23, 2937-2960.
Reifeis, S. A. and Hudgens, M. G. (2022). On variance of the treatment effect in the treated
when estimated by inverse probability weighting. *Am. J. Epidemiol.* 191, 1092-1097.
Li, F., Morgan, K. L. and Zaslavsky, A. M. (2018). Balancing covariates via propensity score
weighting. *J. Am. Stat. Assoc.* 113, 390-400.
Morris, T. P., White, I. R. and Crowther, M. J. (2019). Using simulation studies to evaluate
statistical methods. *Statistics in Medicine* 38, 2074-2102.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from trials.engine import replicate_generator
from trials.exceptions import ConvergenceWarning, DesignError

__all__ = [
    "EXTERNAL_METHODS",
    "ExternalControlApproach",
    "ExternalControlDesign",
    "fit_logistic_batch",
    "match_batch",
]

EXTERNAL_METHODS = ("naive", "iptw_att", "overlap", "matching")
_DRIFT_KINDS = ("shift", "prevalence_difference")


@dataclass(frozen=True)
class ExternalControlApproach:
    """One analysis of the single-arm trial against its external controls.

    Parameters
    ----------
    method : {"naive", "iptw_att", "overlap", "matching"}
    caliper : float, default 0.2
        Matching only: the caliper in standard deviations of the logit of the score
        (pooled over the sources, as :func:`analysis.propensity.match_nearest`).
    """

    method: str
    caliper: float = 0.2

    def __post_init__(self):
        if self.method not in EXTERNAL_METHODS:
            raise DesignError(f"method must be one of {', '.join(EXTERNAL_METHODS)} "
                              f"(got {self.method!r})")  # fmt: skip
        if not self.caliper > 0:
            raise DesignError(f"caliper must be > 0 (got {self.caliper!r})")

    @property
    def label(self) -> str:
        return self.method


@dataclass(frozen=True)
class ExternalControlDesign:
    """A single-arm trial with a propensity-score external control arm (module docstring).

    Parameters
    ----------
    endpoint : {"normal"}
    n_trial, n_external : int
        Trial (treated) patients and external controls.
    control : float
        Mean outcome of an external control at ``x = 0`` without drift.
    effect : float
        Difference of means under the design scenario.
    sd : float
        Residual SD of the outcome (given the covariates and the unmeasured factor).
    covariate_shift : tuple of float
        Trial minus external mean of each measured covariate (in its SD).
    covariate_effects : tuple of float
        Effect of each measured covariate on the outcome (per SD).
    unmeasured_prevalence, unmeasured_strength : float
        Prevalence of the unmeasured factor in the trial and its effect on the outcome.
    higher_is_better : bool, optional
        Direction of benefit (default: higher).
    """

    endpoint: str
    n_trial: int
    n_external: int
    control: float
    effect: float
    sd: float = 1.0
    covariate_shift: tuple[float, ...] = (0.5,)
    covariate_effects: tuple[float, ...] = (1.0,)
    unmeasured_prevalence: float = 0.0
    unmeasured_strength: float = 0.0
    higher_is_better: bool | None = None

    def __post_init__(self):
        for name in ("covariate_shift", "covariate_effects"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        problems = [f"{name}: {message}" for name, message in design_problems(self)]
        if problems:
            raise DesignError("; ".join(problems))

    @property
    def higher(self) -> bool:
        return True if self.higher_is_better is None else self.higher_is_better

    @property
    def n_covariates(self) -> int:
        return len(self.covariate_shift)

    def true_effect(self, scenario: str) -> float:
        """The effect (difference of means) in the trial population."""
        return 0.0 if scenario == "null" else float(self.effect)

    def naive_bias(self) -> float:
        """Expected bias of the unadjusted difference without drift: ``beta' shift``."""
        return float(np.dot(self.covariate_effects, self.covariate_shift))


def design_problems(design, drift: Sequence[float] = (), kind: str = "shift"):
    """``(field, message)`` for each impossible setting of an external-control design (and
    drift grid); ``design`` is anything with the attributes of
    :class:`ExternalControlDesign`."""
    d = design
    if d.endpoint != "normal":
        yield "endpoint", f"the external-control design supports a normal endpoint only " \
            f"(got {d.endpoint!r})"
    for name in ("n_trial", "n_external"):
        if int(getattr(d, name)) < 2:
            yield name, "must be at least 2"
    p = len(d.covariate_shift)
    if p == 0 or len(d.covariate_effects) != p:
        yield "covariate_effects", f"needs one effect per covariate shift ({p} shifts, " \
            f"{len(d.covariate_effects)} effects), at least one"
    elif int(d.n_trial) + int(d.n_external) <= p + 1:
        yield "n_external", "too few patients for the propensity model"
    if not d.sd > 0:
        yield "sd", "must be > 0"
    if not 0 <= d.unmeasured_prevalence <= 1:
        yield "unmeasured_prevalence", "must lie in [0, 1]"
    if kind not in _DRIFT_KINDS:
        yield "drift.kind", f"must be one of {', '.join(_DRIFT_KINDS)}"
    elif kind == "prevalence_difference":
        for i, value in enumerate(drift):
            if not 0 <= d.unmeasured_prevalence + value <= 1:
                external = d.unmeasured_prevalence + value
                yield f"drift[{i}]", f"the external prevalence {external:g} is outside [0, 1]"


def approach_problems(approaches) -> list[str]:
    """Approaches that do not apply to an external-control design."""
    return [f"{a.label}: applies to a hybrid design only (use one of "
            f"{', '.join(EXTERNAL_METHODS)})"
            for a in approaches if not isinstance(a, ExternalControlApproach)]  # fmt: skip


# ----------------------------------------------------------------------------- propensity
def fit_logistic_batch(
    x: np.ndarray, y: np.ndarray, *, max_iter: int = 50, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression of ``y`` on ``x``, one fit per replicate.

    Newton-Raphson on all replicates at once (the log-likelihood is concave; started at 0).

    Parameters
    ----------
    x : array (R, N, k)
        Design matrices (include the intercept column).
    y : array (N,) or (R, N)
        0/1 responses.
    max_iter, tol : int, float
        Newton steps at most; converged when the largest step is below ``tol``.

    Returns
    -------
    coefficients : array (R, k)
    converged : array (R,) of bool
    """
    x = np.asarray(x, float)
    y = np.broadcast_to(np.asarray(y, float), x.shape[:2])
    beta = np.zeros(x.shape[::2])
    active = np.ones(x.shape[0], bool)
    for _ in range(max_iter):
        xa = x[active]
        p = special.expit(np.einsum("rnk,rk->rn", xa, beta[active]))
        grad = np.einsum("rnk,rn->rk", xa, y[active] - p)
        hess = np.einsum("rnk,rn,rnl->rkl", xa, p * (1 - p), xa)
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(hess, grad[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = np.full_like(grad, np.nan)
        beta[active] += step
        done = ~(np.abs(step).max(axis=1) >= tol)  # NaN steps stop too (not converged)
        index = np.flatnonzero(active)
        active[index[done]] = False
        if not active.any():
            break
    converged = np.isfinite(beta).all(axis=1) & ~active
    return beta, converged


def match_batch(eta: np.ndarray, n_trial: int, caliper: float = 0.2) -> np.ndarray:
    """Greedy 1:1 nearest-neighbour matching without replacement on the logit of the score,
    one matching per replicate (the algorithm of :func:`analysis.propensity.match_nearest`
    with ``k=1``).

    Parameters
    ----------
    eta : array (R, N)
        Linear predictors; the first ``n_trial`` columns are the trial patients.
    caliper : float
        In pooled SDs of the logit: ``sqrt((var_trial + var_external) / 2)``.

    Returns
    -------
    array (R, n_trial) of int
        The matched external column (0-based among the external patients), -1 if none.
    """
    trial, external = eta[:, :n_trial], eta[:, n_trial:]
    pooled = np.sqrt((trial.var(axis=1, ddof=1) + external.var(axis=1, ddof=1)) / 2)
    width = (caliper * pooled)[:, None]
    order = np.argsort(-trial, axis=1, kind="stable")
    rows = np.arange(eta.shape[0])
    available = np.ones(external.shape, bool)
    partner = np.full(trial.shape, -1)
    for step in range(n_trial):
        i = order[:, step]
        distance = np.abs(external - trial[rows, i][:, None])
        distance[(distance > width) | ~available] = np.inf
        j = np.argmin(distance, axis=1)
        ok = np.isfinite(distance[rows, j])
        partner[rows[ok], i[ok]] = j[ok]
        available[rows[ok], j[ok]] = False
    return partner


# ----------------------------------------------------------------------------- simulation
def _generator(seed: int, replicate: int, calibration: bool) -> np.random.Generator:
    if not calibration:
        return replicate_generator(seed, replicate)
    sequence = np.random.SeedSequence(seed, spawn_key=(replicate, 1))
    return np.random.Generator(np.random.PCG64(sequence))


class _Chunk:
    """Covariates, propensity scores, weights and matches of the replicates of one chunk."""

    def __init__(self, design: ExternalControlDesign, seed: int, replicates: range,
                 calibration: bool, calipers: Sequence[float]):  # fmt: skip
        d = self.design = design
        n_t, n = d.n_trial, d.n_trial + d.n_external
        p = d.n_covariates
        normals = np.empty((len(replicates), p + 1, n))
        self.u = np.empty((len(replicates), n))
        for i, r in enumerate(replicates):
            rng = _generator(seed, r, calibration)
            normals[i] = rng.standard_normal((p + 1, n))
            self.u[i] = rng.random(n)
        x = np.moveaxis(normals[:, :p], 1, 2)  # (R, N, p)
        x[:, :n_t] += np.asarray(d.covariate_shift)
        self.x, self.e = x, normals[:, p]
        self.source = np.r_[np.ones(n_t), np.zeros(d.n_external)]
        design_matrix = np.concatenate([np.ones(x.shape[:2] + (1,)), x], axis=2)
        self.design_matrix = design_matrix
        self.coef, self.converged = fit_logistic_batch(design_matrix, self.source)
        self.eta = np.einsum("rnk,rk->rn", design_matrix, self.coef)
        self.matches = {c: match_batch(self.eta, n_t, c) for c in calipers}

    def outcome(self, scenario: str, drift: float, kind: str) -> np.ndarray:
        d = self.design
        n_t = d.n_trial
        pi = d.unmeasured_prevalence
        prevalence = np.full(self.source.size, pi)
        shift = np.zeros(self.source.size)
        if kind == "shift":
            shift[n_t:] = drift
        else:
            prevalence[n_t:] += drift
        factor = (self.u < prevalence).astype(float)
        treat = self.source * (d.effect if scenario == "design" else 0.0)
        return (d.control + treat + self.x @ np.asarray(d.covariate_effects)
                + d.unmeasured_strength * (factor - pi) + shift + d.sd * self.e)

    def weights(self, method: str) -> np.ndarray:
        n_t = self.design.n_trial
        if method == "naive":
            return np.ones_like(self.eta)
        if method == "iptw_att":
            return np.where(self.source == 1, 1.0, np.exp(self.eta))
        score = special.expit(self.eta)
        return np.concatenate([1 - score[:, :n_t], score[:, n_t:]], axis=1)

    def _stacked_se(self, method, w, y, mean_trial, mean_external) -> np.ndarray:
        """SE of the weighted difference from the stacked estimating equations of the
        logistic score and the two weighted means (M-estimation sandwich; accounts for the
        estimated propensity score: Lunceford & Davidian 2004, Reifeis & Hudgens 2022)."""
        x, s = self.design_matrix, self.source
        k = x.shape[2]
        score = special.expit(self.eta)
        dscore = score * (1 - score)
        if method == "iptw_att":  # d w / d eta: trial 0, external exp(eta)
            dw = np.where(s == 1, 0.0, w)
        else:  # overlap: trial -e(1 - e), external e(1 - e)
            dw = np.where(s == 1, -dscore, dscore)
        resid = y - np.where(s == 1, mean_trial[:, None], mean_external[:, None])
        trial = np.broadcast_to(s == 1, y.shape)
        psi = np.concatenate([x * (s - score)[..., None],
                              np.where(trial, w * resid, 0.0)[..., None],
                              np.where(trial, 0.0, w * resid)[..., None]], axis=2)  # fmt: skip
        bread = np.zeros((y.shape[0], k + 2, k + 2))
        bread[:, :k, :k] = np.einsum("rnk,rn,rnl->rkl", x, dscore, x)
        for row, mask in ((k, trial), (k + 1, ~trial)):
            bread[:, row, :k] = -np.einsum("rnk,rn->rk", x, np.where(mask, resid * dw, 0.0))
            bread[:, row, row] = np.where(mask, w, 0.0).sum(axis=1)
        meat = np.einsum("rnk,rnl->rkl", psi, psi)
        contrast = np.zeros((y.shape[0], k + 2, 1))
        contrast[:, k], contrast[:, k + 1] = 1.0, -1.0
        g = np.linalg.solve(np.swapaxes(bread, 1, 2), contrast)
        return np.sqrt(np.einsum("rki,rkl,rli->r", g, meat, g))

    def analyse(self, approach: ExternalControlApproach, y: np.ndarray, level: float):
        n_t = self.design.n_trial
        if approach.method == "matching":
            partner = self.matches[approach.caliper]
            matched = partner >= 0
            n_pairs = matched.sum(axis=1)
            if np.any(n_pairs < 2):
                raise DesignError(
                    f"matching: {int(np.sum(n_pairs < 2))} replicate(s) found fewer than 2 "
                    f"pairs within the caliper ({approach.caliper} SD); widen the caliper "
                    "or reduce the covariate shift"
                )
            ext = np.take_along_axis(y[:, n_t:], np.maximum(partner, 0), axis=1)
            diff = np.where(matched, y[:, :n_t] - ext, 0.0)
            est = diff.sum(axis=1) / n_pairs
            ss = np.where(matched, (diff - est[:, None]) ** 2, 0.0).sum(axis=1)
            se = np.sqrt(ss / (n_pairs - 1) / n_pairs)
        else:
            w = self.weights(approach.method)
            means, var = [], 0.0
            for part in (slice(0, n_t), slice(n_t, None)):
                wp, yp = w[:, part], y[:, part]
                total = wp.sum(axis=1)
                mean = (wp * yp).sum(axis=1) / total
                var = var + (wp**2 * (yp - mean[:, None]) ** 2).sum(axis=1) / total**2
                means.append(mean)
            est = means[0] - means[1]
            if approach.method == "naive":
                se = np.sqrt(var)
            else:
                se = self._stacked_se(approach.method, w, y, means[0], means[1])
        z = stats.norm.ppf((1 + level) / 2)
        p_greater = stats.norm.cdf(est / se)
        higher = self.design.higher
        return {"probability": p_greater if higher else 1 - p_greater, "effect": est,
                "effect_sd": se, "lower": est - z * se, "upper": est + z * se,
                "ps_converged": self.converged}  # fmt: skip


def run_replicates(design, approaches, drift, kind, n_replicates, seed, level, chunk_size,
                   calibration=False, scenarios=("null", "design")):  # fmt: skip
    """Per-replicate probability (1 - one-sided p-value), estimate and interval for every
    approach, drift and scenario (the runner of :func:`analysis.hybrid_design.
    simulate_drift` for an :class:`ExternalControlDesign`)."""
    calipers = sorted({a.caliper for a in approaches if a.method == "matching"})
    parts: dict[tuple, list[dict]] = {}
    for start in range(0, n_replicates, chunk_size):
        chunk = _Chunk(design, seed, range(start, min(start + chunk_size, n_replicates)),
                       calibration, calipers)  # fmt: skip
        for scenario in scenarios:
            for i, value in enumerate(drift):
                y = chunk.outcome(scenario, value, kind)
                for a in approaches:
                    parts.setdefault((a.label, i, scenario), []).append(
                        chunk.analyse(a, y, level))
    out = {key: {name: np.concatenate([p[name] for p in chunks]) for name in chunks[0]}
           for key, chunks in parts.items()}  # fmt: skip
    failed = int(np.sum(~next(iter(out.values()))["ps_converged"]))
    if failed:
        warnings.warn(f"the propensity model did not converge in {failed} replicate(s); "
                      "the result records it (n_ps_not_converged)",
                      ConvergenceWarning, stacklevel=3)  # fmt: skip
    return out


def ps_not_converged(out: dict[str, np.ndarray]) -> int:
    """Replicates whose propensity fit did not converge."""
    return int(np.sum(~out["ps_converged"]))


def is_external(design) -> bool:
    return isinstance(design, ExternalControlDesign)


def describe(design: ExternalControlDesign) -> dict:
    """JSON-ready settings of the design."""
    out = {name: getattr(design, name) for name in design.__dataclass_fields__}
    out["design_type"] = "external_control"
    for name in ("covariate_shift", "covariate_effects"):
        out[name] = list(out[name])
    out["naive_bias"] = design.naive_bias()
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()}  # fmt: skip
