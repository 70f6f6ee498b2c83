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
(:class:`~analysis.mixtures.NormalMixture` on the normal scales,
:class:`~analysis.mixtures.BetaMixture` for a rate), updated exactly: each component by
conjugacy, the weights in proportion to the components' marginal likelihoods of the current
control data (Schmidli et al. 2014, section 2.3).

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

Prior effective sample size and prior-data conflict, which :func:`analyse_borrowing`
reports: :func:`analysis.mixtures.prior_ess` and :func:`analysis.mixtures.prior_data_conflict`.
The PyMC path (``engine="pymc"``) is :func:`analysis.borrowing_pymc.fit_pymc`.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from analysis.mixtures import (
    BetaMixture,
    Mixture,
    NormalMixture,
    _check_unit,
    _ess_auto,
    prior_data_conflict,
)
from trials.exceptions import DataError, DesignError

__all__ = [
    "ENDPOINTS",
    "ArmData",
    "BorrowingResult",
    "CommensuratePrior",
    "HalfCauchy",
    "HalfNormal",
    "NoBorrowing",
    "PowerPrior",
    "RobustMAP",
    "SpikeAndSlab",
    "analyse_borrowing",
    "calibrate_threshold",
    "posterior_effect",
]

ENDPOINTS = ("normal", "binary", "time_to_event")


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


# ----------------------------------------------------------------------------- priors as mixtures
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
        The fast exact/normal-approximation path, or MCMC with PyMC
        (:func:`analysis.borrowing_pymc.fit_pymc`).
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
        ``draws``, ``tune``, ``chains``, ``seed``, ``target_accept`` of
        :func:`analysis.borrowing_pymc.fit_pymc`.

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
        from analysis.borrowing_pymc import fit_pymc  # it imports this module

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


def __getattr__(name: str) -> Any:
    # fit_pymc lives in analysis.borrowing_pymc, which imports this module: importable from
    # here as before, on first use
    if name == "fit_pymc":
        from analysis.borrowing_pymc import fit_pymc

        return fit_pymc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
