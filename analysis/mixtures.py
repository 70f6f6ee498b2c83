"""Conjugate mixture priors of a control-arm parameter, their effective sample size and their
conflict with the data.

A prior of the fast path of :mod:`analysis.borrowing` is a mixture of conjugate components:
:class:`NormalMixture` on the normal scales (mean, logit, log hazard), :class:`BetaMixture`
for a rate, batched over leading axes (replicates). The mixtures are updated exactly: each
component by conjugacy, the weights in proportion to the components' marginal likelihoods of
the current control data (Schmidli et al. 2014, section 2.3).

Prior effective sample size (:func:`prior_ess`): the expected local-information-ratio (ELIR)
of Neuenschwander, Weber, Schmidli & O'Hagan (2020), ``E_prior[i_prior(theta) / i_F(theta)]``
with ``i_F`` the Fisher information of one observation (1/sd^2, 1/(p(1-p)), 1 per event); it
equals n0 for N(m, sd^2/n0) and a + b for Beta(a, b). ``method="moment"`` gives the
precision-ratio ESS (Morita, Thall & Müller 2008 style moment matching).

Prior-data conflict (:func:`prior_data_conflict`): Box's (1980) prior-predictive p-value
``P(m(Y) <= m(y_obs))`` with ``m`` the prior predictive density of the current control data.

References
----------
Schmidli, H., Gsteiger, S., Roychoudhury, S., O'Hagan, A., Spiegelhalter, D. and Neuenschwander,
B. (2014). Robust meta-analytic-predictive priors in clinical trials with historical control
information. *Biometrics* 70, 1023-1032.
Neuenschwander, B., Weber, S., Schmidli, H. and O'Hagan, A. (2020). Predictively consistent
prior effective sample sizes. *Biometrics* 76, 578-587.
Morita, S., Thall, P. F. and Müller, P. (2008). Determining the effective sample size of a
parametric prior. *Biometrics* 64, 595-602.
Box, G. E. P. (1980). Sampling and Bayes' inference in scientific modelling and robustness.
*JRSS A* 143, 383-430.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import integrate, special

from trials.exceptions import DesignError

if TYPE_CHECKING:
    from analysis.borrowing import ArmData

__all__ = [
    "BetaMixture",
    "NormalMixture",
    "prior_data_conflict",
    "prior_ess",
]

_MAX_STEPS = 100


def _check_weights(weights: np.ndarray) -> None:
    if np.any(~np.isfinite(weights)) or np.any(weights < 0):
        raise DesignError("mixture weights must be non-negative numbers")
    total = weights.sum(axis=-1)
    if np.any(np.abs(total - 1) > 1e-6):
        bad = float(np.ravel(total)[np.argmax(np.abs(np.ravel(total) - 1))])
        raise DesignError(f"mixture weights must sum to 1 (got {bad:.6g})")


def _solve(cdf_pdf, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Vectorized root of ``cdf(x) = q`` in [lo, hi]: Newton steps, bisection when a step
    leaves the bracket (which shrinks at every step)."""
    lo, hi = (np.array(v, dtype=float) for v in np.broadcast_arrays(lo, hi, q)[:2])
    x = (lo + hi) / 2
    tol = 1e-12 * np.maximum(np.max(hi - lo), 1e-300)
    for _ in range(_MAX_STEPS):
        cdf, pdf = cdf_pdf(x)
        gap = cdf - q
        below = gap < 0
        lo, hi = np.where(below, x, lo), np.where(below, hi, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - gap / pdf
        inside = np.isfinite(newton) & (newton >= lo) & (newton <= hi)
        new = np.where(inside, newton, (lo + hi) / 2)
        if np.all(np.abs(new - x) <= tol):
            return new
        x = new
    return x


class _Mixture:
    """What the two conjugate mixtures share (weights on the last axis)."""

    weights: np.ndarray

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.weights.shape[:-1]

    @property
    def n_components(self) -> int:
        return self.weights.shape[-1]

    def ppf(self, q: ArrayLike) -> np.ndarray:
        """Quantiles (``q`` broadcast against the batch shape), by safeguarded Newton steps."""
        q = np.asarray(q, dtype=float)
        lo, hi = self._bracket(q)
        return _solve(self._cdf_pdf, q, lo, hi)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central (equal-tailed) credible interval."""
        tail = (1 - level) / 2
        both = self.ppf(np.stack(np.broadcast_arrays(tail, np.ones(self.batch_shape) - tail)))
        return both[0], both[1]

    def sd(self) -> np.ndarray:
        return np.sqrt(self.var())

    def _components(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def take(self, index) -> _Mixture:
        """The mixture of batch element(s) ``index``."""
        return type(self)(**{k: v[index] for k, v in self._components().items()})

    def summary(self) -> pd.DataFrame:
        """One row per component (an unbatched mixture)."""
        if self.batch_shape:
            raise DesignError("summary() of a batched mixture: take() one element first")
        return pd.DataFrame(self._components())


@dataclass(frozen=True)
class NormalMixture(_Mixture):
    """Mixture of normals ``sum_k w_k N(mean_k, sd_k^2)``, batched over leading axes.

    A single component with infinite SD is the flat (improper) prior.
    """

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    def __post_init__(self):
        arrays = [np.atleast_1d(np.asarray(v, float)) for v in (self.weights, self.means, self.sds)]
        w, m, s = (a.copy() for a in np.broadcast_arrays(*arrays))
        _check_weights(w)
        if np.any(np.isnan(m)) or np.any(~(s > 0)):
            raise DesignError("mixture components need finite means and SDs > 0")
        if np.any(np.isinf(s)) and w.shape[-1] > 1:
            raise DesignError("a flat (infinite-SD) component cannot be mixed")
        for name, value in zip(("weights", "means", "sds"), (w, m, s), strict=True):
            object.__setattr__(self, name, value)

    @property
    def is_flat(self) -> bool:
        return bool(np.isinf(self.sds).any())

    def _components(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "means": self.means, "sds": self.sds}

    def _range(self):
        return (np.min(self.means - 12 * self.sds, -1), np.max(self.means + 12 * self.sds, -1))

    def _bracket(self, q: np.ndarray):
        """The mixture's q-quantile lies between its components' q-quantiles."""
        z = special.ndtri(np.clip(q, 1e-300, 1 - 1e-16))[..., None]
        return np.min(self.means + self.sds * z, -1), np.max(self.means + self.sds * z, -1)

    def _cdf_pdf(self, x: np.ndarray):
        z = (np.asarray(x, dtype=float)[..., None] - self.means) / self.sds
        w = self.weights
        return np.sum(w * special.ndtr(z), -1), np.sum(w * np.exp(-z * z / 2) / self.sds, -1) / (
            math.sqrt(2 * math.pi)
        )

    def mean(self) -> np.ndarray:
        return np.sum(self.weights * self.means, axis=-1)

    def var(self) -> np.ndarray:
        second = np.sum(self.weights * (self.sds**2 + self.means**2), axis=-1)
        return second - self.mean() ** 2

    def cdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return np.sum(self.weights * special.ndtr((x - self.means) / self.sds), axis=-1)

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        with np.errstate(divide="ignore"):
            log = np.log(self.weights) + _normal_logpdf(x, self.means, self.sds)
        return special.logsumexp(log, axis=-1)

    def pdf(self, x: ArrayLike) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def update(self, estimate: ArrayLike, se: ArrayLike) -> NormalMixture:
        """Conjugate posterior given an estimate ~ N(theta, se^2)."""
        y = np.asarray(estimate, dtype=float)[..., None]
        s2 = np.asarray(se, dtype=float)[..., None] ** 2
        if self.is_flat:
            return NormalMixture(np.ones_like(y + s2), y + 0 * s2, np.sqrt(s2 + 0 * y))
        v = self.sds**2
        post_var = 1 / (1 / v + 1 / s2)
        post_mean = post_var * (self.means / v + y / s2)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights) + _normal_logpdf(y, self.means, np.sqrt(v + s2))
        weights = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
        return NormalMixture(weights, post_mean, np.sqrt(post_var))

    def robustify(self, weight: float, mean: ArrayLike, sd: ArrayLike) -> NormalMixture:
        """Add a vague component N(mean, sd^2) with weight ``weight``."""
        _check_unit("vague_weight", weight)
        mean = np.broadcast_to(np.asarray(mean, float)[..., None], (*self.batch_shape, 1))
        sd = np.broadcast_to(np.asarray(sd, float)[..., None], (*self.batch_shape, 1))
        w = np.full((*self.batch_shape, 1), weight)
        return NormalMixture(
            np.concatenate([(1 - weight) * self.weights, w], -1),
            np.concatenate([self.means, mean], -1),
            np.concatenate([self.sds, sd], -1),
        )

    def sample(self, size: int, rng: int | np.random.Generator | None = None) -> np.ndarray:
        """Draws from an unbatched mixture."""
        rng = np.random.default_rng(rng)
        k = rng.choice(self.n_components, size=size, p=self.weights)
        return rng.normal(self.means[k], self.sds[k])


@dataclass(frozen=True)
class BetaMixture(_Mixture):
    """Mixture of betas ``sum_k w_k Beta(a_k, b_k)`` for a rate, batched over leading axes."""

    weights: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        arrays = [np.atleast_1d(np.asarray(v, float)) for v in (self.weights, self.a, self.b)]
        w, a, b = (x.copy() for x in np.broadcast_arrays(*arrays))
        _check_weights(w)
        if np.any(~(a > 0)) or np.any(~(b > 0)) or np.any(~np.isfinite(a + b)):
            raise DesignError("beta components need finite a > 0 and b > 0")
        for name, value in zip(("weights", "a", "b"), (w, a, b), strict=True):
            object.__setattr__(self, name, value)

    is_flat = False

    def _components(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "a": self.a, "b": self.b}

    def _bracket(self, q: np.ndarray):
        return np.zeros(self.batch_shape), np.ones(self.batch_shape)

    def _cdf_pdf(self, x: np.ndarray):
        return self.cdf(x), self.pdf(x)

    def _component_moments(self) -> tuple[np.ndarray, np.ndarray]:
        total = self.a + self.b
        return self.a / total, self.a * self.b / (total**2 * (total + 1))

    def mean(self) -> np.ndarray:
        return np.sum(self.weights * self._component_moments()[0], axis=-1)

    def var(self) -> np.ndarray:
        m, v = self._component_moments()
        return np.sum(self.weights * (v + m**2), axis=-1) - self.mean() ** 2

    def cdf(self, x: ArrayLike) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=float), 0, 1)[..., None]
        return np.sum(self.weights * special.betainc(self.a, self.b, x), axis=-1)

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        with np.errstate(divide="ignore"):
            log = (
                np.log(self.weights)
                + special.xlogy(self.a - 1, x)
                + special.xlog1py(self.b - 1, -x)
                - special.betaln(self.a, self.b)
            )
        return special.logsumexp(log, axis=-1)

    def pdf(self, x: ArrayLike) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def update(self, events: ArrayLike, n: ArrayLike) -> BetaMixture:
        """Conjugate posterior given ``events`` out of ``n`` (binomial)."""
        x = np.asarray(events, dtype=float)[..., None]
        n = np.asarray(n, dtype=float)[..., None]
        a, b = self.a + x, self.b + n - x
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights) + special.betaln(a, b) - special.betaln(self.a, self.b)
        weights = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
        return BetaMixture(weights, a, b)

    def robustify(self, weight: float, a: float = 1.0, b: float = 1.0) -> BetaMixture:
        """Add a vague component Beta(a, b) with weight ``weight``."""
        _check_unit("vague_weight", weight)
        shape = (*self.batch_shape, 1)
        return BetaMixture(
            np.concatenate([(1 - weight) * self.weights, np.full(shape, weight)], -1),
            np.concatenate([self.a, np.full(shape, a)], -1),
            np.concatenate([self.b, np.full(shape, b)], -1),
        )

    def sample(self, size: int, rng: int | np.random.Generator | None = None) -> np.ndarray:
        rng = np.random.default_rng(rng)
        k = rng.choice(self.n_components, size=size, p=self.weights)
        return rng.beta(self.a[k], self.b[k])


Mixture = NormalMixture | BetaMixture


def _normal_logpdf(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 <= value <= 1):
        raise DesignError(f"{name} must lie in [0, 1] (got {value!r})")

# ----------------------------------------------------------------------------- ESS, conflict
def prior_ess(prior: Mixture, unit_sd: float = 1.0, method: str = "elir") -> float:
    """Prior effective sample size of an unbatched mixture prior.

    Parameters
    ----------
    prior : NormalMixture or BetaMixture
        The prior of the control parameter.
    unit_sd : float
        SD of one observation on a normal scale (the outcome SD; 1 for a log hazard, where
        the ESS counts events). Ignored for a rate.
    method : {"elir", "moment"}
        ``"elir"``: expected local-information ratio (Neuenschwander et al. 2020),
        ``E_prior[-(log prior)''(theta) / i_F(theta)]``, by Gauss-Hermite quadrature of each
        normal component or adaptive quadrature of each beta component. ``"moment"``: the
        precision ratio ``unit_sd^2 / Var(theta)``, or ``a + b`` of the beta with the prior's
        mean and variance.

    Returns
    -------
    float
        ``n0`` for N(m, unit_sd^2 / n0) and ``a + b`` for Beta(a, b) by both methods; 0 for
        a flat prior.
    """
    if prior.batch_shape:
        raise DesignError("prior_ess() takes one prior: take() one element of a batch")
    if prior.is_flat:
        return 0.0
    if method == "moment":
        if isinstance(prior, BetaMixture):
            m, v = float(prior.mean()), float(prior.var())
            return m * (1 - m) / v - 1
        return float(unit_sd**2 / prior.var())
    if method != "elir":
        raise DesignError(f"method must be 'elir' or 'moment' (got {method!r})")
    if isinstance(prior, NormalMixture):
        z, wz = special.roots_hermitenorm(80)
        wz = wz / wz.sum()
        points = prior.means[:, None] + prior.sds[:, None] * z
        info = -_log_density_derivatives(prior, points)[1]  # -(log prior)''
        return float(np.sum(prior.weights[:, None] * wz * info) * unit_sd**2)
    if prior.n_components == 1:  # closed form (the ELIR integral needs a, b > 1)
        return float(prior.a[0] + prior.b[0])
    if np.any((np.minimum(prior.a, prior.b) < 1) & (prior.weights > 0)):
        raise DesignError(
            "the ELIR effective sample size of a beta mixture with a component of a < 1 or "
            "b < 1 does not exist (its integral diverges): use method='moment'"
        )

    def integrand(p: float, a: float, b: float) -> float:
        info = -_log_density_derivatives(prior, np.array(p))[1]
        log_f = special.xlogy(a - 1, p) + special.xlog1py(b - 1, -p) - special.betaln(a, b)
        return float(info * p * (1 - p) * np.exp(log_f))

    total = 0.0
    for w, a, b in zip(prior.weights, prior.a, prior.b, strict=True):
        total += w * integrate.quad(integrand, 0, 1, args=(a, b), limit=200)[0]
    return float(total)


def _ess_auto(prior: Mixture, unit_sd: float) -> tuple[float, str]:
    """ELIR where it exists, the moment-based ESS otherwise (the method is recorded)."""
    try:
        return prior_ess(prior, unit_sd, "elir"), "elir"
    except DesignError:
        return prior_ess(prior, unit_sd, "moment"), "moment"


def _log_density_derivatives(prior: Mixture, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivative of log prior(x) (through the responsibilities)."""
    x = np.asarray(x, dtype=float)[..., None]
    if isinstance(prior, NormalMixture):
        v = prior.sds**2
        log_f = _normal_logpdf(x, prior.means, prior.sds)
        g1, g2 = -(x - prior.means) / v, -1 / v + 0 * x
    else:
        a, b = prior.a, prior.b
        log_f = special.xlogy(a - 1, x) + special.xlog1py(b - 1, -x) - special.betaln(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            g1 = (a - 1) / x - (b - 1) / (1 - x)
            g2 = -(a - 1) / x**2 - (b - 1) / (1 - x) ** 2
    with np.errstate(divide="ignore"):
        log_r = np.log(prior.weights) + log_f
    r = np.exp(log_r - special.logsumexp(log_r, axis=-1, keepdims=True))
    first = np.sum(r * g1, -1)
    return first, np.sum(r * (g1**2 + g2), -1) - first**2


def prior_data_conflict(prior: Mixture, control: ArmData, n_grid: int = 4001) -> np.ndarray:
    """Box's prior-predictive p-value of the current control data (small: conflict).

    ``P(m(Y) <= m(y_obs))`` under the prior predictive ``m``: of the estimate (normal
    scales; exact two-sided tail for one component, a grid of ``n_grid`` points otherwise) or
    of the event count (beta-binomial mixture, exact sum). NaN for a flat prior.
    """
    if prior.is_flat:
        return np.full(np.broadcast_shapes(prior.batch_shape, control.n.shape), np.nan)
    if isinstance(prior, BetaMixture):
        n_max = int(np.max(control.n))
        y = np.arange(n_max + 1, dtype=float)
        n = np.asarray(control.n, float)[..., None]

        def log_pred(count):
            count = count[..., None]
            nn = n[..., None]
            return special.logsumexp(
                np.log(np.maximum(prior.weights[..., None, :], 1e-300))
                + special.betaln(prior.a[..., None, :] + count, prior.b[..., None, :] + nn - count)
                - special.betaln(prior.a[..., None, :], prior.b[..., None, :])
                - special.betaln(count + 1, nn - count + 1) - np.log(nn + 1),
                axis=-1,
            )  # fmt: skip

        grid = np.broadcast_to(y, (*np.broadcast_shapes(prior.batch_shape, n.shape[:-1]), y.size))
        log_m = np.where(grid <= n, log_pred(grid), -np.inf)
        log_obs = log_pred(np.asarray(control.events, float)[..., None])[..., 0]
        keep = log_m <= log_obs[..., None] + 1e-9
        return np.sum(np.where(keep, np.exp(log_m), 0.0), -1)
    se = np.asarray(control.se, float)[..., None]
    predictive = NormalMixture(prior.weights, prior.means, np.sqrt(prior.sds**2 + se**2))
    y_obs = np.asarray(control.estimate, float)
    if predictive.n_components == 1:
        z = np.abs(y_obs - predictive.means[..., 0]) / predictive.sds[..., 0]
        return 2 * special.ndtr(-z)
    lo, hi = predictive._range()
    grid = lo[..., None] + (hi - lo)[..., None] * np.linspace(0, 1, n_grid)
    dens = predictive.pdf(np.moveaxis(grid, -1, 0))  # (G, ...)
    obs = predictive.pdf(y_obs)
    step = (hi - lo) / (n_grid - 1)
    return np.clip(np.sum(np.where(dens <= obs, dens, 0.0), 0) * step, 0, 1)
