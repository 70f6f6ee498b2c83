"""The final analysis of a hybrid trial by MCMC with PyMC: the exact models of the borrowing
methods of :mod:`analysis.borrowing`, against which its fast (conjugate, normal
approximation) path is checked.

:func:`fit_pymc` is what ``analyse_borrowing(..., engine="pymc")`` runs; a fit that misses
the convergence criteria (:data:`MAX_RHAT`, :data:`MIN_ESS`, no divergent transition) warns.

References
----------
Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: an improved R-hat.
*Bayesian Analysis* 16, 667-718 (the convergence criteria of the PyMC path).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from analysis.borrowing import (
    ArmData,
    BorrowingResult,
    HalfCauchy,
    HalfNormal,
    Method,
    NoBorrowing,
    PowerPrior,
    RobustMAP,
    SpikeAndSlab,
    _direction,
    _with_study_axis,
)
from analysis.mixtures import Mixture
from trials.exceptions import ConvergenceWarning

__all__ = ["fit_pymc"]

#: Convergence criteria of the PyMC path (Vehtari et al. 2021).
MAX_RHAT = 1.01
MIN_ESS = 400


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
    prior of :meth:`analysis.borrowing.RobustMAP.prior`. Treated arm: flat prior (Beta(1, 1)
    for a rate). Binomial likelihood for rates and the exponential likelihood
    ``d theta - exp(theta) T`` for time to event.

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
