"""Bayesian dynamic borrowing of external control data for the control arm of a hybrid trial.

A hybrid trial randomizes a small concurrent control arm and augments it with external
(historical or real-world) controls. What is borrowed is the prior of the control-arm
parameter ``theta_c``; the treated arm keeps a vague prior and the effect is treated minus
control on the analysis scale.

Endpoints and scales
--------------------
``normal``
    ``theta_c`` is the control mean. An arm is summarized by (n, mean, sd); the likelihood of
    the mean is N(theta, sd^2 / n) with the SD known, or the sample SD plugged in (a normal
    approximation whose error is O(1/n)). Effect: difference of means.
``binary``
    ``theta_c`` is the control rate, binomial likelihood. Effect: difference of rates.
``time_to_event``
    ``theta_c`` is the log hazard of an exponential control, from (events d, exposure T).
    The fast path uses the normal approximation log(d/T) ~ N(theta, 1/d) (d < 0.5 is taken as
    0.5); the PyMC path the exact exponential likelihood ``d theta - exp(theta) T``. Effect:
    the log hazard ratio (``log_hr``), lower is better.

Priors
------
Every prior is represented, for the fast path, by a mixture of conjugate components
(:class:`NormalMixture` on the normal scales, :class:`BetaMixture` for a rate), updated exactly:
each component by conjugacy, the weights in proportion to the components' marginal
likelihoods of the current control data (Schmidli et al. 2014, section 2.3).

- :class:`NoBorrowing`: flat prior (Beta(1, 1) for a rate).
- :class:`PowerPrior`: the historical likelihood raised to a fixed ``a0`` in [0, 1] times an
  initial prior (Ibrahim & Chen 2000); ``a0 = 1`` is full pooling. Conjugate: N(pooled
  estimate, se^2 / a0) on the normal scales, Beta(a + a0 x0, b + a0 (n0 - x0)) for a rate.
- :class:`CommensuratePrior`: theta_c ~ N(theta_0, 1/tau) around the historical parameter
  theta_0 (flat prior), commensurability precision tau fixed or with a prior on its SD
  1/sqrt(tau) (half-normal, half-Cauchy, or the spike-and-slab on tau of Hobbs et al. 2012)
  (Hobbs et al. 2011). Integrating theta_0 gives the scale mixture
  ``integral N(theta_hat_0, se_0^2 + sd^2) p(sd) d sd``, computed by Gauss-Legendre quadrature
  on the prior's quantile scale; the data then update the mixture weights, i.e. the posterior
  of tau.
- :class:`RobustMAP`: the meta-analytic-predictive prior of a normal-normal hierarchical model
  of one or more historical studies (y_j ~ N(theta_j, s_j^2), theta_j ~ N(mu, tau^2), flat mu,
  a prior on tau), the predictive of a new study's theta. Given tau it is normal, so the MAP
  prior is the mixture over quadrature nodes of tau with weights from p(tau | y); a vague
  component with weight ``vague_weight`` makes it robust (Schmidli et al. 2014).

For a rate, commensurate and MAP priors are built on the logit scale (normal approximation
of the historical logits, with 0.5 added to the cells) and each logit-normal component is
replaced by the beta with the same mean and variance; this approximation (and the normal
approximation of time-to-event data) is what the comparison with the exact PyMC models
measures.

Prior effective sample size: the expected local-information-ratio (ELIR) of Neuenschwander,
Weber, Schmidli & O'Hagan (2020), ``E_prior[i_prior(theta) / i_F(theta)]`` with ``i_F`` the
Fisher information of one observation (1/sd^2, 1/(p(1-p)), 1 per event); it equals n0 for
N(m, sd^2/n0) and a + b for Beta(a, b). ``method="moment"`` gives the precision-ratio ESS
(Morita, Thall & Müller 2008 style moment matching).

Prior-data conflict: Box's (1980) prior-predictive p-value
``P(m(Y) <= m(y_obs))`` with ``m`` the prior predictive density of the current control data.

References
----------
Ibrahim, J. G. and Chen, M.-H. (2000). Power prior distributions for regression models.
*Statistical Science* 15, 46-60.
Hobbs, B. P., Carlin, B. P., Mandrekar, S. J. and Sargent, D. J. (2011). Hierarchical
commensurate and power prior models for adaptive incorporation of historical information in
clinical trials. *Biometrics* 67, 1047-1056.
Hobbs, B. P., Sargent, D. J. and Carlin, B. P. (2012). Commensurate priors for incorporating
historical information in clinical trials using general and generalized linear models.
*Bayesian Analysis* 7, 639-674.
Schmidli, H., Gsteiger, S., Roychoudhury, S., O'Hagan, A., Spiegelhalter, D. and Neuenschwander,
B. (2014). Robust meta-analytic-predictive priors in clinical trials with historical control
information. *Biometrics* 70, 1023-1032.
Neuenschwander, B., Weber, S., Schmidli, H. and O'Hagan, A. (2020). Predictively consistent
prior effective sample sizes. *Biometrics* 76, 578-587.
Morita, S., Thall, P. F. and Müller, P. (2008). Determining the effective sample size of a
parametric prior. *Biometrics* 64, 595-602.
Box, G. E. P. (1980). Sampling and Bayes' inference in scientific modelling and robustness.
*JRSS A* 143, 383-430.
Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: an improved R-hat.
*Bayesian Analysis* 16, 667-718 (the convergence criteria of the PyMC path).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import integrate, special

from trials.exceptions import ConvergenceWarning, DataError, DesignError

__all__ = [
    "ENDPOINTS",
    "ArmData",
    "BetaMixture",
    "BorrowingResult",
    "CommensuratePrior",
    "HalfCauchy",
    "HalfNormal",
    "NoBorrowing",
    "NormalMixture",
    "PowerPrior",
    "RobustMAP",
    "SpikeAndSlab",
    "analyse_borrowing",
    "calibrate_threshold",
    "fit_pymc",
    "posterior_effect",
    "prior_data_conflict",
    "prior_ess",
]

ENDPOINTS = ("normal", "binary", "time_to_event")
#: Convergence criteria of the PyMC path (Vehtari et al. 2021).
MAX_RHAT = 1.01
MIN_ESS = 400
_MAX_STEPS = 100


def _legendre01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on (0, 1)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1) / 2, w / 2


def _float_array(value: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(array)):
        raise DataError(f"{name} must be finite numbers")
    return array


# ----------------------------------------------------------------------------- arm data
@dataclass(frozen=True)
class ArmData:
    """Sufficient statistics of one arm (or of historical studies), vectorized.

    Build with :meth:`normal`, :meth:`binary` or :meth:`time_to_event`. Arrays broadcast; for
    historical data the *last* axis indexes the studies (a scalar is one study), leading axes
    index replicates.
    """

    endpoint: str
    n: np.ndarray
    mean: np.ndarray | None = None
    sd: np.ndarray | None = None
    events: np.ndarray | None = None
    exposure: np.ndarray | None = None

    @classmethod
    def normal(cls, n: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> ArmData:
        """Patients ``n``, sample mean and SD (the known SD, or the sample SD)."""
        n, mean, sd = np.broadcast_arrays(
            _float_array(n, "n"), _float_array(mean, "mean"), _float_array(sd, "sd")
        )
        if np.any(n < 1) or np.any(sd <= 0):
            raise DataError("normal arm data need n >= 1 and sd > 0")
        return cls("normal", n, mean=mean, sd=sd)

    @classmethod
    def binary(cls, n: ArrayLike, events: ArrayLike) -> ArmData:
        """Patients ``n`` and responders ``events``."""
        n, events = np.broadcast_arrays(_float_array(n, "n"), _float_array(events, "events"))
        if np.any(n < 1) or np.any(events < 0) or np.any(events > n):
            raise DataError("binary arm data need n >= 1 and 0 <= events <= n")
        return cls("binary", n, events=events)

    @classmethod
    def time_to_event(
        cls, events: ArrayLike, exposure: ArrayLike, n: ArrayLike | None = None
    ) -> ArmData:
        """Events and total exposure (time at risk) of an exponential model."""
        events, exposure = np.broadcast_arrays(
            _float_array(events, "events"), _float_array(exposure, "exposure")
        )
        if np.any(events < 0) or np.any(exposure <= 0):
            raise DataError("time-to-event arm data need events >= 0 and exposure > 0")
        n = events if n is None else np.broadcast_to(_float_array(n, "n"), events.shape)
        return cls("time_to_event", np.asarray(n), events=events, exposure=exposure)

    @property
    def estimate(self) -> np.ndarray:
        """The estimate on the normal-approximation scale (mean, logit, log hazard)."""
        if self.endpoint == "normal":
            return self.mean
        if self.endpoint == "binary":
            return np.log((self.events + 0.5) / (self.n - self.events + 0.5))
        return np.log(np.maximum(self.events, 0.5) / self.exposure)

    @property
    def se(self) -> np.ndarray:
        """Standard error of :attr:`estimate`."""
        if self.endpoint == "normal":
            return self.sd / np.sqrt(self.n)
        if self.endpoint == "binary":
            return np.sqrt(1 / (self.events + 0.5) + 1 / (self.n - self.events + 0.5))
        return 1 / np.sqrt(np.maximum(self.events, 0.5))

    def unit_sd(self) -> float:
        """SD of one observation on the parameter's scale (ESS units): the pooled SD for a
        normal endpoint, 1 per event for time to event (NaN for a rate)."""
        if self.endpoint == "normal":
            return float(np.sqrt(np.sum(self.n * self.sd**2) / np.sum(self.n)))
        return 1.0 if self.endpoint == "time_to_event" else math.nan


def _pooled(historical: ArmData) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance pooled estimate and SE over the study axis (flat prior)."""
    precision = np.sum(historical.se**-2.0, axis=-1)
    estimate = np.sum(historical.estimate * historical.se**-2.0, axis=-1) / precision
    return estimate, precision**-0.5


# ----------------------------------------------------------------------------- SD priors
@dataclass(frozen=True)
class HalfNormal:
    """Half-normal prior on a standard deviation (commensurability or between-study SD)."""

    scale: float

    def __post_init__(self):
        if not self.scale > 0:
            raise DesignError(f"half-normal scale must be > 0 (got {self.scale})")

    def nodes(self, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        u, w = _legendre01(n_nodes)
        return self.scale * special.ndtri((1 + u) / 2), w


@dataclass(frozen=True)
class HalfCauchy:
    """Half-Cauchy prior on a standard deviation."""

    scale: float

    def __post_init__(self):
        if not self.scale > 0:
            raise DesignError(f"half-Cauchy scale must be > 0 (got {self.scale})")

    def nodes(self, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        u, w = _legendre01(n_nodes)
        return self.scale * np.tan(np.pi * u / 2), w


@dataclass(frozen=True)
class SpikeAndSlab:
    """Spike-and-slab prior on the commensurability *precision* tau (Hobbs et al. 2012):
    tau = ``spike_precision`` with probability ``spike_probability``, else
    Uniform(``slab_lower``, ``slab_upper``)."""

    spike_precision: float
    slab_lower: float
    slab_upper: float
    spike_probability: float

    def __post_init__(self):
        if not (0 <= self.slab_lower < self.slab_upper and self.spike_precision > 0):
            raise DesignError("spike-and-slab needs 0 <= slab_lower < slab_upper, spike > 0")
        if not 0 <= self.spike_probability <= 1:
            raise DesignError(
                f"spike_probability must lie in [0, 1] (got {self.spike_probability})"
            )

    def nodes(self, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        u, w = _legendre01(n_nodes)
        tau = self.slab_lower + (self.slab_upper - self.slab_lower) * u
        p = self.spike_probability
        return (
            np.concatenate([[self.spike_precision**-0.5], tau**-0.5]),
            np.concatenate([[p], (1 - p) * w]),
        )


SDPrior = float | HalfNormal | HalfCauchy | SpikeAndSlab


def _sd_nodes(prior: SDPrior, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(prior, HalfNormal | HalfCauchy | SpikeAndSlab):
        return prior.nodes(n_nodes)
    if not (isinstance(prior, int | float) and prior >= 0 and math.isfinite(prior)):
        raise DesignError(f"a fixed SD must be a finite number >= 0 (got {prior!r})")
    return np.array([float(prior)]), np.array([1.0])


# ----------------------------------------------------------------------------- mixtures
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


def _beta_from_logit_normal(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The beta with the mean and variance of expit(N(mean, sd^2)) (Gauss-Hermite)."""
    z, wz = special.roots_hermitenorm(60)
    wz = wz / wz.sum()
    p = special.expit(mean[..., None] + sd[..., None] * z)
    m = np.sum(wz * p, -1)
    v = np.maximum(np.sum(wz * p**2, -1) - m**2, 1e-300)
    total = np.maximum(m * (1 - m) / v - 1, 1e-6)
    return np.maximum(m * total, 1e-6), np.maximum((1 - m) * total, 1e-6)


def _to_family(endpoint: str, normal: NormalMixture) -> Mixture:
    """A logit-scale normal mixture as a beta mixture for a rate; unchanged otherwise."""
    if endpoint != "binary":
        return normal
    a, b = _beta_from_logit_normal(normal.means, normal.sds)
    return BetaMixture(normal.weights, a, b)


def _vague(endpoint: str, shape: tuple[int, ...] = ()) -> Mixture:
    if endpoint == "binary":
        return BetaMixture(np.ones((*shape, 1)), 1.0, 1.0)
    return NormalMixture(np.ones((*shape, 1)), 0.0, np.inf)


# ----------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class NoBorrowing:
    """The concurrent controls alone: a flat prior (Beta(1, 1) for a rate)."""

    @property
    def label(self) -> str:
        return "no_borrowing"

    def prior(self, historical: ArmData | None, endpoint: str, unit_sd: float | None = None):
        shape = () if historical is None else _with_study_axis(historical).n.shape[:-1]
        return _vague(endpoint, shape)


@dataclass(frozen=True)
class PowerPrior:
    """Power prior with a fixed discount ``a0`` in [0, 1] (``a0 = 1``: full pooling).

    ``initial``: the initial prior, (mean, sd) of a normal on the normal scales (default
    flat) or (a, b) of a beta for a rate (default (1, 1)). Several historical studies enter
    through the product of their likelihoods, each raised to ``a0``.
    """

    a0: float
    initial: tuple[float, float] | None = None

    def __post_init__(self):
        _check_unit("a0", self.a0)

    @property
    def label(self) -> str:
        return "pooling" if self.a0 == 1 else f"power_prior(a0={self.a0:g})"

    def prior(self, historical: ArmData, endpoint: str, unit_sd: float | None = None):
        historical = _with_study_axis(historical)
        shape = historical.n.shape[:-1]
        if endpoint == "binary":
            a, b = self.initial or (1.0, 1.0)
            x0 = np.sum(historical.events, -1)
            n0 = np.sum(historical.n, -1)
            return BetaMixture(np.ones((*shape, 1)), a + self.a0 * x0[..., None],
                               b + self.a0 * (n0 - x0)[..., None])  # fmt: skip
        estimate, se = _pooled(historical)
        precision = self.a0 / se**2
        mean_part = precision * estimate
        if self.initial is not None:
            m, s = self.initial
            precision, mean_part = precision + s**-2, mean_part + m / s**2
        if np.all(precision == 0):
            return _vague(endpoint, shape)
        return NormalMixture(np.ones((*shape, 1)), (mean_part / precision)[..., None],
                             (precision**-0.5)[..., None])  # fmt: skip


@dataclass(frozen=True)
class CommensuratePrior:
    """Commensurate prior: theta_c ~ N(theta_0, sd^2), sd = tau^(-1/2) fixed (a float) or
    with a prior (:class:`HalfNormal`, :class:`HalfCauchy`, :class:`SpikeAndSlab`);
    ``n_nodes`` quadrature nodes of that prior."""

    sd_prior: SDPrior
    n_nodes: int = 24

    def __post_init__(self):
        _sd_nodes(self.sd_prior, 1)

    @property
    def label(self) -> str:
        return f"commensurate({_describe_prior(self.sd_prior)})"

    def prior(self, historical: ArmData, endpoint: str, unit_sd: float | None = None):
        estimate, se = _pooled(_with_study_axis(historical))
        sd, w = _sd_nodes(self.sd_prior, self.n_nodes)
        shape = (*estimate.shape, sd.size)
        normal = NormalMixture(
            np.broadcast_to(w, shape),
            np.broadcast_to(estimate[..., None], shape),
            np.sqrt(se[..., None] ** 2 + sd**2),
        )
        return _to_family(endpoint, normal)


@dataclass(frozen=True)
class RobustMAP:
    """Robust meta-analytic-predictive prior: the MAP prior of a normal-normal hierarchical
    model of the historical studies (between-study SD with ``heterogeneity_prior``; flat prior
    on the mean) plus a vague component with weight ``vague_weight``.

    The vague component is N(MAP mean, ``vague_sd``^2) on the normal scales (default: the unit
    SD, i.e. one observation's worth of information: ESS 1), Beta(1, 1) for a rate.
    """

    heterogeneity_prior: SDPrior
    vague_weight: float = 0.2
    vague_sd: float | None = None
    n_nodes: int = 24

    def __post_init__(self):
        _check_unit("vague_weight", self.vague_weight)
        _sd_nodes(self.heterogeneity_prior, 1)

    @property
    def label(self) -> str:
        return f"robust_map(w={self.vague_weight:g})"

    def map_prior(self, historical: ArmData, endpoint: str) -> Mixture:
        """The (non-robust) MAP prior, as a mixture over the quadrature nodes of tau."""
        historical = _with_study_axis(historical)
        y, s = historical.estimate, historical.se
        tau, w = _sd_nodes(self.heterogeneity_prior, self.n_nodes)
        var = s[..., :, None] ** 2 + tau**2  # (..., J, G)
        precision = np.sum(1 / var, axis=-2)
        mu = np.sum(y[..., :, None] / var, axis=-2) / precision
        log_lik = -0.5 * (
            np.sum(np.log(var) + (y[..., :, None] - mu[..., None, :]) ** 2 / var, axis=-2)
            + np.log(precision)
        )
        log_w = np.log(w) + log_lik
        weights = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
        normal = NormalMixture(weights, mu, np.sqrt(1 / precision + tau**2))
        return _to_family(endpoint, normal)

    def prior(self, historical: ArmData, endpoint: str, unit_sd: float | None = None):
        informative = self.map_prior(historical, endpoint)
        if endpoint == "binary":
            return informative.robustify(self.vague_weight)
        vague_sd = self.vague_sd or unit_sd or historical.unit_sd()
        return informative.robustify(self.vague_weight, informative.mean(), vague_sd)


Method = NoBorrowing | PowerPrior | CommensuratePrior | RobustMAP


def _describe_prior(prior: SDPrior) -> str:
    if isinstance(prior, HalfNormal):
        return f"sd~HN({prior.scale:g})"
    if isinstance(prior, HalfCauchy):
        return f"sd~HC({prior.scale:g})"
    if isinstance(prior, SpikeAndSlab):
        return f"tau~spike-slab(p={prior.spike_probability:g})"
    return f"sd={prior:g}"


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


# ----------------------------------------------------------------------------- posterior
def _direction(endpoint: str, higher_is_better: bool | None) -> bool:
    if endpoint not in ENDPOINTS:
        raise DesignError(f"endpoint must be one of {', '.join(ENDPOINTS)} (got {endpoint!r})")
    return endpoint != "time_to_event" if higher_is_better is None else bool(higher_is_better)


def posterior_effect(
    prior: Mixture,
    treated: ArmData,
    control: ArmData,
    *,
    higher_is_better: bool | None = None,
    level: float = 0.95,
    n_nodes: int = 128,
) -> tuple[dict[str, np.ndarray], Mixture]:
    """The fast (conjugate) posterior of the effect, vectorized over replicates.

    Parameters
    ----------
    prior : NormalMixture or BetaMixture
        Prior of the control parameter (batched like the data, or unbatched).
    treated, control : ArmData
        Current data of each arm (arrays over replicates).
    higher_is_better : bool, optional
        Direction of benefit; default: higher for normal and binary, lower (log HR < 0)
        for time to event.
    level : float
        Level of the central credible interval of the effect.
    n_nodes : int
        Nodes of the composite Gauss-Legendre rule giving P(p_t > p_c) for a rate (8 per
        panel).

    Returns
    -------
    dict
        ``probability`` (posterior probability of benefit), ``effect`` (posterior mean),
        ``effect_sd``, ``lower``, ``upper``, ``control_mean``, ``control_sd``.
    Mixture
        The posterior of the control parameter.

    Notes
    -----
    Normal scales: the treated arm's posterior under a flat prior is N(estimate, se^2), so
    the effect's posterior is the normal mixture with component means ``mean_t - m_k`` and
    variances ``se_t^2 + v_k``: probability and interval are exact. Rate: the treated
    posterior is Beta(1 + x, 1 + n - x); ``P(p_t > p_c) = int f_c(p) S_t(p) dp`` by a
    composite Gauss-Legendre rule over the range of the control posterior's components
    (mean +- 12 SD), ``f_c`` the control posterior density and ``S_t`` the treated
    survival function; the interval of ``p_t - p_c`` is that of the normal mixture with each
    component's mean and variance (an approximation; the PyMC path gives the exact one).
    """
    higher = _direction(control.endpoint, higher_is_better)
    if control.endpoint == "binary":
        post = prior.update(control.events, control.n)
        a_t, b_t = 1 + treated.events, 1 + treated.n - treated.events
        p_greater = _treated_greater(post, a_t, b_t, n_nodes)
        m_c, v_c = post._component_moments()
        m_t = a_t / (a_t + b_t)
        v_t = a_t * b_t / ((a_t + b_t) ** 2 * (a_t + b_t + 1))
        effect = NormalMixture(post.weights, m_t[..., None] - m_c, np.sqrt(v_t[..., None] + v_c))
    else:
        post = prior.update(control.estimate, control.se)
        t_mean, t_sd = treated.estimate, treated.se
        effect_sd = np.sqrt(t_sd[..., None] ** 2 + post.sds**2)
        effect = NormalMixture(post.weights, t_mean[..., None] - post.means, effect_sd)
        p_greater = 1 - effect.cdf(0.0)
    lower, upper = effect.interval(level)
    out = {
        "probability": p_greater if higher else 1 - p_greater,
        "effect": effect.mean(),
        "effect_sd": effect.sd(),
        "lower": lower,
        "upper": upper,
        "control_mean": post.mean(),
        "control_sd": post.sd(),
    }
    return out, post


def _treated_greater(post: BetaMixture, a_t, b_t, n_nodes: int) -> np.ndarray:
    """``P(p_t > p_c)``: control ``post`` (beta mixture), treated Beta(a_t, b_t)."""
    m, v = post._component_moments()
    sd = np.sqrt(v)
    keep = post.weights > 1e-9
    lo = np.clip(np.min(np.where(keep, m - 12 * sd, np.inf), -1), 0, 1)
    hi = np.clip(np.max(np.where(keep, m + 12 * sd, -np.inf), -1), 0, 1)
    panels = max(n_nodes // 8, 1)
    x, w = _legendre01(8)
    nodes = ((np.arange(panels)[:, None] + x) / panels).ravel()
    p = lo[..., None] + (hi - lo)[..., None] * nodes  # (..., G)
    a, b = post.a[..., None, :], post.b[..., None, :]
    log_f = (special.xlogy(a - 1, p[..., None]) + special.xlog1py(b - 1, -p[..., None])
             - special.betaln(a, b))  # fmt: skip
    density = np.sum(post.weights[..., None, :] * np.exp(log_f), -1)
    survival = special.betainc(b_t[..., None], a_t[..., None], 1 - p)  # P(p_t > p)
    total = (hi - lo) * np.sum(np.tile(w, panels) / panels * density * survival, -1)
    return np.clip(total, 0, 1)


def calibrate_threshold(probabilities: ArrayLike, alpha: float) -> float:
    """The posterior-probability threshold giving one-sided type I error ``alpha``.

    ``probabilities``: P(benefit | data) of trials simulated with no effect (at the drift the
    calibration is for). Returns the ``ceil((1 - alpha) R)``-th smallest, so that the rule
    *success when P(benefit | data) > threshold* rejects in at most ``alpha R`` of them.
    """
    p = np.sort(np.asarray(probabilities, float)[np.isfinite(probabilities)])
    if p.size == 0 or not 0 < alpha < 1:
        raise DesignError("calibration needs simulated probabilities and 0 < alpha < 1")
    k = math.ceil((1 - alpha) * p.size)
    return float(p[min(max(k, 1), p.size) - 1])


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class BorrowingResult:
    """Final analysis of a hybrid trial with borrowed controls (one trial).

    ``probability`` is P(benefit | data); ``success`` is ``probability > threshold``.
    ``posterior_weights``: the posterior weights of the control prior's components (the last
    one is the vague component of a robust MAP prior). ``diagnostics`` (PyMC path): max
    R-hat, min bulk and tail ESS, divergences, Monte Carlo SEs, convergence warnings.
    """

    method: str
    endpoint: str
    engine: str
    effect: float
    effect_sd: float
    lower: float
    upper: float
    level: float
    probability: float
    threshold: float
    success: bool
    control_mean: float
    control_sd: float
    prior_ess: float
    conflict_p_value: float
    prior_ess_method: str = "elir"
    posterior_weights: tuple[float, ...] | None = None
    diagnostics: dict[str, Any] | None = None
    idata: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> pd.DataFrame:
        """One row: the numbers of the result."""
        keys = ("method", "engine", "effect", "effect_sd", "lower", "upper", "probability",
                "threshold", "success", "control_mean", "control_sd", "prior_ess",
                "conflict_p_value")  # fmt: skip
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])


def analyse_borrowing(
    method: Method,
    treated: ArmData,
    control: ArmData,
    historical: ArmData | None = None,
    *,
    engine: str = "conjugate",
    higher_is_better: bool | None = None,
    threshold: float = 0.975,
    level: float = 0.95,
    unit_sd: float | None = None,
    **pymc_options: Any,
) -> BorrowingResult:
    """Analyse one hybrid trial: the posterior of the effect with the borrowing ``method``.

    Parameters
    ----------
    method : NoBorrowing, PowerPrior, CommensuratePrior or RobustMAP
        How the external controls enter the control arm's prior.
    treated, control : ArmData
        The randomized arms (scalars).
    historical : ArmData, optional
        The external controls (last axis: studies); not needed for :class:`NoBorrowing`.
    engine : {"conjugate", "pymc"}
        The fast exact/normal-approximation path, or MCMC with PyMC (:func:`fit_pymc`).
    higher_is_better : bool, optional
        Direction of benefit (default per endpoint, see :func:`posterior_effect`).
    threshold : float
        Success when P(benefit | data) > threshold (see :func:`calibrate_threshold`).
    level : float
        Level of the credible interval.
    unit_sd : float, optional
        SD of one observation for the ESS and the robust MAP's vague component (default:
        the historical pooled SD; 1 per event for time to event).
    **pymc_options
        ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept`` of :func:`fit_pymc`.

    Returns
    -------
    BorrowingResult

    Examples
    --------
    >>> from analysis.borrowing import ArmData, PowerPrior, analyse_borrowing
    >>> hist = ArmData.normal(100, 0.1, 1.0)
    >>> res = analyse_borrowing(PowerPrior(0.5), ArmData.normal(40, 0.6, 1.0),
    ...                         ArmData.normal(20, 0.0, 1.0), hist)
    >>> round(res.prior_ess, 6)
    50.0
    """
    endpoint = control.endpoint
    if historical is None and not isinstance(method, NoBorrowing):
        raise DataError(f"{method.label} needs the historical (external) control data")
    if historical is not None:
        historical = _with_study_axis(historical)
    unit = unit_sd or (historical.unit_sd() if historical is not None else control.unit_sd())
    prior = method.prior(historical, endpoint, unit)
    ess, ess_method = _ess_auto(prior, unit)
    conflict = float(prior_data_conflict(prior, control))
    if engine == "pymc":
        return fit_pymc(
            method, treated, control, historical, prior=prior, higher_is_better=higher_is_better,
            threshold=threshold, level=level, prior_ess=(ess, ess_method), conflict=conflict,
            **pymc_options,
        )  # fmt: skip
    if engine != "conjugate":
        raise DesignError(f"engine must be 'conjugate' or 'pymc' (got {engine!r})")
    out, post = posterior_effect(
        prior, treated, control, higher_is_better=higher_is_better, level=level
    )
    probability = float(out["probability"])
    return BorrowingResult(
        method.label, endpoint, "conjugate", float(out["effect"]), float(out["effect_sd"]),
        float(out["lower"]), float(out["upper"]), level, probability, threshold,
        probability > threshold, float(out["control_mean"]), float(out["control_sd"]), ess,
        conflict, ess_method, tuple(float(w) for w in np.ravel(post.weights)),
    )  # fmt: skip


def _with_study_axis(data: ArmData) -> ArmData:
    if data.n.ndim >= 1:
        return data
    fields = {k: (None if v is None else np.asarray(v)[None])
              for k, v in vars(data).items() if k != "endpoint"}  # fmt: skip
    return ArmData(data.endpoint, **fields)


# ----------------------------------------------------------------------------- PyMC path
def _pymc_loglik(pm, pt, endpoint: str, theta, data: ArmData):
    """Log-likelihood of arm(s) ``data`` at ``theta`` (mean, rate or log hazard)."""
    if endpoint == "normal":
        return pt.sum(pm.logp(pm.Normal.dist(mu=theta, sigma=data.se), data.mean))
    if endpoint == "binary":
        n, events = data.n.astype(int), data.events.astype(int)
        return pt.sum(pm.logp(pm.Binomial.dist(n=n, p=theta), events))
    return pt.sum(data.events * theta - pt.exp(theta) * data.exposure)


def _pymc_control(pm, pt, method: Method, endpoint: str, historical: ArmData | None, prior):
    """The control parameter (mean, rate or log hazard) under ``method``'s prior."""
    binary = endpoint == "binary"
    if isinstance(method, NoBorrowing):
        return pm.Beta("control", 1, 1) if binary else pm.Flat("control")
    if isinstance(method, PowerPrior):
        if binary:
            a, b = method.initial or (1.0, 1.0)
            theta = pm.Beta("control", a, b)
        elif method.initial is not None:
            theta = pm.Normal("control", *method.initial)
        else:
            theta = pm.Flat("control")
        if method.a0 > 0:
            pm.Potential("power_prior", method.a0 * _pymc_loglik(pm, pt, endpoint, theta,
                                                                 historical))  # fmt: skip
        return theta
    if isinstance(method, RobustMAP):
        if binary:
            return pm.Mixture("control", w=prior.weights,
                              comp_dists=pm.Beta.dist(alpha=prior.a, beta=prior.b))  # fmt: skip
        return pm.NormalMixture("control", w=prior.weights, mu=prior.means, sigma=prior.sds)
    # commensurate: theta_0 flat (logit for a rate) with the historical likelihood
    theta0 = pm.Flat("historical")
    pm.Potential("historical_loglik", _pymc_loglik(
        pm, pt, endpoint, pm.math.invlogit(theta0) if binary else theta0, historical))  # fmt: skip
    sd_prior = method.sd_prior
    if isinstance(sd_prior, SpikeAndSlab):
        slab = pm.Uniform("slab_precision", sd_prior.slab_lower, sd_prior.slab_upper)
        sds = pt.stack([pt.as_tensor(sd_prior.spike_precision**-0.5), slab**-0.5])
        p = sd_prior.spike_probability
        latent = pm.NormalMixture("control_latent", w=np.array([p, 1 - p]), mu=theta0, sigma=sds)
    else:
        if isinstance(sd_prior, HalfNormal):
            sd = pm.HalfNormal("commensurability_sd", sigma=sd_prior.scale)
        elif isinstance(sd_prior, HalfCauchy):
            sd = pm.HalfCauchy("commensurability_sd", beta=sd_prior.scale)
        else:
            sd = float(sd_prior)
        latent = pm.Deterministic("control_latent", theta0 + sd * pm.Normal("z_control", 0, 1))
    return pm.Deterministic("control", pm.math.invlogit(latent) if binary else latent)


def fit_pymc(
    method: Method,
    treated: ArmData,
    control: ArmData,
    historical: ArmData | None = None,
    *,
    prior: Mixture | None = None,
    higher_is_better: bool | None = None,
    threshold: float = 0.975,
    level: float = 0.95,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.95,
    prior_ess: tuple[float, str] = (math.nan, ""),
    conflict: float = math.nan,
) -> BorrowingResult:
    """The final analysis with PyMC (NUTS); the InferenceData is kept in ``result.idata``.

    The models are the exact ones: power prior as a ``Potential`` of ``a0`` times the
    historical log-likelihood; commensurate prior with theta_0 (flat; logit scale for a
    rate) and the commensurability SD sampled (non-centred); robust MAP with the mixture
    prior of :meth:`RobustMAP.prior`. Treated arm: flat prior (Beta(1, 1) for a rate).
    Binomial likelihood for rates and the exponential likelihood ``d theta - exp(theta) T``
    for time to event.

    Warns
    -----
    ConvergenceWarning
        When max R-hat > 1.01, a bulk or tail ESS < 400 or any divergent transition; the
        failures are listed in ``diagnostics["warnings"]``.
    """
    import arviz as az
    import pymc as pm
    import pytensor.tensor as pt

    endpoint = control.endpoint
    higher = _direction(endpoint, higher_is_better)
    if historical is not None:
        historical = _with_study_axis(historical)
    if prior is None and isinstance(method, RobustMAP):
        prior = method.prior(historical, endpoint, historical.unit_sd())
    with pm.Model() as model:
        theta_c = _pymc_control(pm, pt, method, endpoint, historical, prior)
        theta_t = pm.Beta("treated", 1, 1) if endpoint == "binary" else pm.Flat("treated")
        pm.Potential("likelihood", _pymc_loglik(pm, pt, endpoint, theta_c, control)
                     + _pymc_loglik(pm, pt, endpoint, theta_t, treated))  # fmt: skip
        pm.Deterministic("effect", theta_t - theta_c)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            idata = pm.sample(
                draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=False,
                target_accept=target_accept, compute_convergence_checks=False, cores=1,
            )  # fmt: skip
    effect = idata.posterior["effect"].to_numpy()
    benefit = (effect > 0) if higher else (effect < 0)
    free = [rv.name for rv in model.free_RVs]
    diagnostics = _diagnostics(idata, free, az)
    draws_of = az.convert_to_dataset({"effect": effect, "benefit": benefit.astype(float)})
    mcse = az.mcse(draws_of)
    diagnostics["mcse_effect"] = float(mcse["effect"])
    diagnostics["mcse_probability"] = float(mcse["benefit"])
    if diagnostics["warnings"]:
        warnings.warn(
            f"{method.label}: the posterior sampling did not converge: "
            + "; ".join(diagnostics["warnings"]),
            ConvergenceWarning,
            stacklevel=2,
        )
    tail = (1 - level) / 2
    lower, upper = np.quantile(effect, [tail, 1 - tail])
    control_draws = idata.posterior["control"].to_numpy()
    probability = float(benefit.mean())
    return BorrowingResult(
        method.label, endpoint, "pymc", float(effect.mean()), float(effect.std(ddof=1)),
        float(lower), float(upper), level, probability, threshold, probability > threshold,
        float(control_draws.mean()), float(control_draws.std(ddof=1)), prior_ess[0], conflict,
        prior_ess[1], None, diagnostics, idata,
    )  # fmt: skip


def _diagnostics(idata, names: list[str], az) -> dict[str, Any]:
    rhat = az.rhat(idata, var_names=names)
    bulk = az.ess(idata, var_names=names, method="bulk")
    tail = az.ess(idata, var_names=names, method="tail")

    def extreme(dataset, fn) -> float:
        return float(fn([float(fn(dataset[name].to_numpy())) for name in names]))

    n_chains = idata.posterior.sizes["chain"]
    out = {
        "max_rhat": extreme(rhat, np.max) if n_chains > 1 else math.nan,
        "min_ess_bulk": extreme(bulk, np.min),
        "min_ess_tail": extreme(tail, np.min),
        "n_divergences": int(idata.sample_stats["diverging"].sum()),
    }
    failed = []
    if n_chains == 1:
        failed.append("R-hat not computable with 1 chain")
    elif not out["max_rhat"] <= MAX_RHAT:
        failed.append(f"max R-hat {out['max_rhat']:.3f} > {MAX_RHAT}")
    for key, label in (("min_ess_bulk", "bulk"), ("min_ess_tail", "tail")):
        if not out[key] >= MIN_ESS:
            failed.append(f"min {label} ESS {out[key]:.0f} < {MIN_ESS}")
    if out["n_divergences"]:
        failed.append(f"{out['n_divergences']} divergent transitions")
    out["warnings"] = failed
    out["converged"] = not failed
    return out
