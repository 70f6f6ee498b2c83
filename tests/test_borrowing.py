"""Bayesian dynamic borrowing (analysis/borrowing.py) against independent references.

References: the conjugate closed forms of the power prior (normal with known variance:
posterior precision = prior precision + a0 n0 / sigma^2 + n / sigma^2; beta-binomial);
numerical integration (``scipy.integrate.quad``) of prior x likelihood for the robust-MAP
mixture updating, of the normal-normal hierarchical model for the MAP prior and of the SD
prior for the commensurate prior; scipy's beta, beta-binomial and normal distributions;
Monte Carlo with its standard error for the prior-predictive p-value; the hand-computed ESS
of conjugate priors (Beta(a, b): a + b; N(m, sigma^2 / n0): n0) and a finite-difference
ELIR; and PyMC (MCMC, within its Monte Carlo error) for the fast path.

The PyMC tests compile PyTensor models (about 10-20 s the first time); the one in the
default run uses a normal endpoint, the others are ``slow`` (``pytest -m slow
tests/test_borrowing.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from analysis.borrowing import (
    ArmData,
    CommensuratePrior,
    HalfNormal,
    NoBorrowing,
    PowerPrior,
    RobustMAP,
    SpikeAndSlab,
    analyse_borrowing,
    calibrate_threshold,
    posterior_effect,
)
from analysis.mixtures import BetaMixture, NormalMixture, prior_data_conflict, prior_ess
from trials.exceptions import ConvergenceWarning, DataError, DesignError

PYMC_WARNINGS = [
    "ignore:ArviZ is undergoing a major refactor:FutureWarning",
    "ignore::DeprecationWarning:pytensor",
    "ignore:PyTensor could not link to a BLAS:UserWarning",
    "ignore::DeprecationWarning:arviz",
]


# ----------------------------------------------------------------------------- power prior
@pytest.mark.parametrize("a0", [0.0, 0.3, 1.0])
def test_power_prior_normal_posterior_is_its_closed_form(a0):
    sigma, n0, ybar0, n, ybar = 2.0, 80, 1.3, 25, 0.4
    m_init, s_init = 0.5, 3.0
    prior = PowerPrior(a0, initial=(m_init, s_init)).prior(
        ArmData.normal(n0, ybar0, sigma), "normal"
    )
    post = prior.update(ybar, sigma / math.sqrt(n))
    precision = 1 / s_init**2 + a0 * n0 / sigma**2 + n / sigma**2
    mean = (m_init / s_init**2 + a0 * n0 * ybar0 / sigma**2 + n * ybar / sigma**2) / precision
    assert post.mean() == pytest.approx(mean, rel=1e-12)
    assert post.var() == pytest.approx(1 / precision, rel=1e-12)


def test_power_prior_of_several_studies_multiplies_their_discounted_likelihoods():
    hist = ArmData.normal([40, 60], [1.0, 2.0], [1.0, 2.0])
    prior = PowerPrior(0.5).prior(hist, "normal")
    precision = 0.5 * (40 / 1.0 + 60 / 4.0)
    assert prior.var() == pytest.approx(1 / precision)
    assert prior.mean() == pytest.approx(0.5 * (40 * 1.0 + 60 * 2.0 / 4) / precision)


def test_power_prior_binary_is_the_beta_closed_form():
    a0, (x0, n0), (x, n) = 0.4, (30, 100), (7, 20)
    prior = PowerPrior(a0).prior(ArmData.binary(n0, x0), "binary")
    post = prior.update(x, n)
    expected = stats.beta(1 + a0 * x0 + x, 1 + a0 * (n0 - x0) + n - x)
    assert post.mean() == pytest.approx(expected.mean(), rel=1e-12)
    assert post.var() == pytest.approx(expected.var(), rel=1e-12)
    assert prior_ess(prior) == pytest.approx(2 + a0 * n0)


def test_a0_outside_unit_interval_is_refused():
    with pytest.raises(DesignError, match=r"a0 must lie in \[0, 1\] \(got 1.2\)"):
        PowerPrior(1.2)
    with pytest.raises(DesignError, match=r"vague_weight must lie in \[0, 1\]"):
        RobustMAP(HalfNormal(1.0), vague_weight=-0.1)


def test_mixture_weights_must_sum_to_one():
    with pytest.raises(DesignError, match=r"mixture weights must sum to 1 \(got 0.9\)"):
        NormalMixture([0.5, 0.4], [0.0, 1.0], [1.0, 1.0])
    with pytest.raises(DesignError, match="mixture weights must sum to 1"):
        BetaMixture([0.7, 0.7], [1, 2], [1, 2])


def test_bad_arm_data_is_refused():
    with pytest.raises(DataError, match="0 <= events <= n"):
        ArmData.binary(10, 12)
    with pytest.raises(DataError, match="sd > 0"):
        ArmData.normal(10, 0.0, -1.0)


# ----------------------------------------------------------------------------- robust MAP
def _normal_mixture_pdf(prior, theta):
    z = (theta - prior.means) / prior.sds
    return float(np.sum(prior.weights * np.exp(-0.5 * z * z) / prior.sds)) / math.sqrt(2 * math.pi)


def test_robust_map_updating_equals_numerical_integration_normal():
    hist = ArmData.normal([50, 80, 40], [0.2, 0.0, 0.5], 1.0)
    prior = RobustMAP(HalfNormal(0.3), vague_weight=0.25).prior(hist, "normal", unit_sd=1.0)
    y, se = 1.1, 1.0 / math.sqrt(20)  # in conflict with the MAP prior

    def lik(t):
        return math.exp(-0.5 * ((y - t) / se) ** 2) / (se * math.sqrt(2 * math.pi))

    lo, hi = -6.0, 8.0
    norm = integrate.quad(lambda t: _normal_mixture_pdf(prior, t) * lik(t), lo, hi,
                          points=[y], limit=200)[0]  # fmt: skip
    mean = integrate.quad(lambda t: t * _normal_mixture_pdf(prior, t) * lik(t), lo, hi,
                          points=[y], limit=200)[0] / norm  # fmt: skip
    below = integrate.quad(lambda t: _normal_mixture_pdf(prior, t) * lik(t), lo, 0.8,
                           limit=200)[0] / norm  # fmt: skip
    vague_density = stats.norm(prior.means[-1], prior.sds[-1]).pdf
    vague = prior.weights[-1] * integrate.quad(
        lambda t: vague_density(t) * lik(t), lo, hi, limit=200
    )[0] / norm
    post = prior.update(y, se)
    assert post.mean() == pytest.approx(mean, abs=1e-7)
    assert post.cdf(0.8) == pytest.approx(below, abs=1e-7)
    assert post.weights[-1] == pytest.approx(vague, abs=1e-7)
    assert post.weights[-1] > prior.weights[-1]  # the conflict moves weight to the vague part


def test_robust_map_updating_equals_numerical_integration_binary():
    prior = BetaMixture([0.5, 0.3, 0.2], [12.0, 30.0, 1.0], [28.0, 50.0, 1.0])
    x, n = 14, 25

    def dens(p):
        return sum(w * stats.beta.pdf(p, a, b)
                   for w, a, b in zip(prior.weights, prior.a, prior.b, strict=True))  # fmt: skip

    norm = integrate.quad(lambda p: dens(p) * stats.binom.pmf(x, n, p), 0, 1, limit=200)[0]
    mean = integrate.quad(lambda p: p * dens(p) * stats.binom.pmf(x, n, p), 0, 1, limit=200)[0]
    below = integrate.quad(lambda p: dens(p) * stats.binom.pmf(x, n, p), 0, 0.45, limit=200)[0]
    post = prior.update(x, n)
    assert post.mean() == pytest.approx(mean / norm, abs=1e-9)
    assert post.cdf(0.45) == pytest.approx(below / norm, abs=1e-9)


def test_map_prior_equals_the_hierarchical_model_by_integration():
    """P(theta* <= c | y) = int int Phi((c - mu) / tau) p(mu, tau | y) dmu dtau for the
    normal-normal hierarchical model (flat mu, half-normal tau), by nested quad."""
    y, s, scale = [0.1, 0.5, -0.2], [0.15, 0.2, 0.25], 0.4
    hist = ArmData.normal(1 / np.array(s) ** 2, y, 1.0)  # se = 1 / sqrt(n) = s
    prior = RobustMAP(HalfNormal(scale), vague_weight=0.0).map_prior(hist, "normal")

    def joint(mu, tau):  # p(tau) prod_j N(y_j; mu, s_j^2 + tau^2), unnormalized
        value = math.exp(-0.5 * (tau / scale) ** 2)
        for yj, sj in zip(y, s, strict=True):
            var = sj * sj + tau * tau
            value *= math.exp(-0.5 * (yj - mu) ** 2 / var) / math.sqrt(var)
        return value

    total = integrate.dblquad(joint, 0, 6 * scale, -3, 3, epsabs=1e-10)[0]
    for c in (-0.3, 0.13, 0.6):
        numerator = integrate.quad(lambda tau, c=c: integrate.quad(
            lambda mu: joint(mu, tau) * special.ndtr((c - mu) / tau), -3, 3, points=[c],
            epsabs=1e-11, limit=200)[0], 0, 6 * scale, epsabs=1e-11, limit=200)[0]  # fmt: skip
        assert prior.cdf(c) == pytest.approx(numerator / total, abs=2e-5)


def test_commensurate_prior_equals_integration_over_its_sd_prior():
    hist = ArmData.normal(100, 0.3, 1.0)  # theta_0 | hist ~ N(0.3, 0.01)
    prior = CommensuratePrior(HalfNormal(0.5)).prior(hist, "normal")
    for theta in (-0.5, 0.3, 1.4):
        expected = integrate.quad(
            lambda sd, t=theta: stats.halfnorm.pdf(sd, scale=0.5)
            * stats.norm.pdf(t, 0.3, math.sqrt(0.01 + sd**2)), 0, np.inf)[0]  # fmt: skip
        assert prior.pdf(theta) == pytest.approx(expected, rel=2e-3)
    fixed = CommensuratePrior(0.2).prior(hist, "normal")
    assert fixed.sd() == pytest.approx(math.sqrt(0.01 + 0.04))
    spike = CommensuratePrior(SpikeAndSlab(1e4, 1.0, 100.0, 0.6)).prior(hist, "normal")
    slab = integrate.quad(lambda tau: stats.norm.pdf(0.5, 0.3, math.sqrt(0.01 + 1 / tau)) / 99,
                          1, 100)[0]  # fmt: skip
    expected = 0.6 * stats.norm.pdf(0.5, 0.3, math.sqrt(0.01 + 1e-4)) + 0.4 * slab
    assert spike.pdf(0.5) == pytest.approx(expected, rel=1e-4)


# ----------------------------------------------------------------------------- ESS, conflict
def test_prior_ess_of_conjugate_priors_is_the_hand_computation():
    assert prior_ess(BetaMixture(1, 3.0, 7.0)) == pytest.approx(10)
    assert prior_ess(BetaMixture(1, 3.0, 7.0), method="moment") == pytest.approx(10)
    sigma, n0 = 2.0, 25
    normal = NormalMixture(1, 0.3, sigma / math.sqrt(n0))
    assert prior_ess(normal, unit_sd=sigma) == pytest.approx(n0, rel=1e-10)
    assert prior_ess(normal, unit_sd=sigma, method="moment") == pytest.approx(n0)
    hist = ArmData.normal(120, 0.0, sigma)
    assert prior_ess(PowerPrior(0.25).prior(hist, "normal"), unit_sd=sigma) == pytest.approx(30)
    assert prior_ess(NoBorrowing().prior(None, "normal")) == 0


def test_elir_of_a_mixture_equals_finite_differences():
    """ELIR = E[-(log pi)''(p) p (1 - p)] (Neuenschwander et al. 2020), the second
    derivative by central differences of scipy's log density."""
    prior = BetaMixture([0.6, 0.4], [8.0, 20.0], [12.0, 10.0])

    def log_pi(p):
        return np.log(0.6 * stats.beta.pdf(p, 8, 12) + 0.4 * stats.beta.pdf(p, 20, 10))

    h = 1e-4

    def integrand(p):
        second = (log_pi(p + h) - 2 * log_pi(p) + log_pi(p - h)) / h**2
        dens = np.exp(log_pi(p))
        return -second * p * (1 - p) * dens

    expected = integrate.quad(integrand, 2 * h, 1 - 2 * h, limit=200)[0]
    assert prior_ess(prior) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(DesignError, match="use method='moment'"):
        prior_ess(BetaMixture([0.5, 0.5], [0.5, 10], [2.0, 10]))


def test_prior_data_conflict_binary_is_the_beta_binomial_box_p_value():
    prior = BetaMixture([0.8, 0.2], [30.0, 1.0], [70.0, 1.0])
    n, x = 20, 12
    pred = 0.8 * stats.betabinom.pmf(np.arange(n + 1), n, 30, 70) + 0.2 * stats.betabinom.pmf(
        np.arange(n + 1), n, 1, 1)  # fmt: skip
    expected = pred[pred <= pred[x] * (1 + 1e-12)].sum()
    assert float(prior_data_conflict(prior, ArmData.binary(n, x))) == pytest.approx(expected)


def test_prior_data_conflict_normal_mixture_by_monte_carlo(rng):
    prior = NormalMixture([0.7, 0.3], [0.0, 1.0], [0.2, 0.6])
    control = ArmData.normal(25, 0.9, 1.0)
    p = float(prior_data_conflict(prior, control))
    predictive = NormalMixture([0.7, 0.3], [0.0, 1.0], np.sqrt(np.array([0.2, 0.6]) ** 2 + 0.04))
    draws = predictive.sample(400_000, rng)
    hits = predictive.pdf(draws) <= predictive.pdf(0.9)
    mc, mcse = hits.mean(), hits.std() / math.sqrt(hits.size)
    assert abs(p - mc) < 4 * mcse + 1e-4
    single = float(prior_data_conflict(NormalMixture(1, 0.0, 0.3), control))
    assert single == pytest.approx(2 * stats.norm.sf(0.9 / math.sqrt(0.09 + 0.04)))


# ----------------------------------------------------------------------------- effect
def test_probability_of_benefit_for_rates_equals_quad():
    prior = BetaMixture([0.8, 0.2], [30.0, 1.0], [70.0, 1.0])
    treated, control = ArmData.binary(40, 17), ArmData.binary(20, 5)
    out, post = posterior_effect(prior, treated, control)
    f_t = stats.beta(1 + 17, 1 + 23)

    def dens(p):
        return sum(w * stats.beta.pdf(p, a, b)
                   for w, a, b in zip(post.weights, post.a, post.b, strict=True))  # fmt: skip

    expected = integrate.quad(lambda p: dens(p) * f_t.sf(p), 0, 1, limit=200)[0]
    assert float(out["probability"]) == pytest.approx(expected, abs=1e-8)
    assert float(out["effect"]) == pytest.approx(f_t.mean() - post.mean())


def test_normal_effect_without_borrowing_is_the_z_test():
    treated, control = ArmData.normal(40, 0.5, 1.0), ArmData.normal(30, 0.1, 1.0)
    out, _ = posterior_effect(NoBorrowing().prior(None, "normal"), treated, control, level=0.9)
    se = math.sqrt(1 / 40 + 1 / 30)
    assert float(out["probability"]) == pytest.approx(stats.norm.cdf(0.4 / se))
    assert float(out["lower"]) == pytest.approx(0.4 - stats.norm.ppf(0.95) * se, abs=1e-10)
    assert float(out["upper"]) == pytest.approx(0.4 + stats.norm.ppf(0.95) * se, abs=1e-10)
    flat = NoBorrowing().prior(None, "time_to_event")
    tte, _ = posterior_effect(flat, ArmData.time_to_event(30, 600.0),
                              ArmData.time_to_event(20, 250.0))  # fmt: skip
    z = (math.log(30 / 600) - math.log(20 / 250)) / math.sqrt(1 / 30 + 1 / 20)
    assert float(tte["probability"]) == pytest.approx(stats.norm.cdf(-z))  # lower is better


def test_mixture_quantiles_invert_the_cdf():
    mix = NormalMixture([[0.3, 0.7], [0.9, 0.1]], [[0.0, 2.0], [1.0, -3.0]], [[1.0, 0.5], [0.2, 2]])
    q = np.array([0.001, 0.3, 0.975])[:, None]
    assert np.allclose(mix.cdf(mix.ppf(q)), np.broadcast_to(q, (3, 2)), atol=1e-12)
    beta = BetaMixture([0.3, 0.7], [2.0, 20.0], [5.0, 10.0])
    assert beta.cdf(beta.ppf(0.025)) == pytest.approx(0.025, abs=1e-12)


def test_calibrated_threshold_rejects_at_most_alpha():
    probabilities = np.linspace(0, 1, 1001)
    threshold = calibrate_threshold(probabilities, 0.025)
    assert (probabilities > threshold).mean() <= 0.025
    assert (probabilities >= threshold).mean() > 0.025


def test_analysis_result_summary():
    hist = ArmData.normal([60, 40], [0.1, 0.0], 1.0)
    res = analyse_borrowing(RobustMAP(HalfNormal(0.3), 0.2), ArmData.normal(40, 0.6, 1.0),
                            ArmData.normal(20, 0.0, 1.0), hist)  # fmt: skip
    row = res.summary().iloc[0]
    assert row["engine"] == "conjugate"
    assert row["method"] == "robust_map(w=0.2)"
    assert res.lower < res.effect < res.upper
    assert sum(res.posterior_weights) == pytest.approx(1)
    with pytest.raises(DataError, match="needs the historical"):
        analyse_borrowing(PowerPrior(0.5), ArmData.normal(4, 0, 1), ArmData.normal(4, 0, 1))


# ----------------------------------------------------------------------------- PyMC
def _agree(fast, pymc, mcse, slack=0.0):
    assert abs(fast - pymc) <= 4 * mcse + slack, (fast, pymc, mcse)


@pytest.mark.filterwarnings(*PYMC_WARNINGS)
def test_fast_path_agrees_with_pymc_normal():
    """On simulated replicates of a hybrid design (robust MAP, normal endpoint: exact)."""
    pytest.importorskip("pymc")
    from analysis.hybrid_design import HybridDesign, compare_with_pymc

    design = HybridDesign("normal", 30, 15, 80, control=0.0, effect=0.5)
    table = compare_with_pymc(design, RobustMAP(HalfNormal(0.3), 0.2), replicates=(0, 1),
                              drift=0.3, draws=1000, tune=500, chains=2, seed=3)  # fmt: skip
    for row in table.itertuples():
        _agree(row.fast_probability, row.pymc_probability, row.mcse_probability, 1e-3)
        _agree(row.fast_effect, row.pymc_effect, row.mcse_effect)
        assert row.pymc_effect_sd == pytest.approx(row.fast_effect_sd, rel=0.08)


@pytest.mark.filterwarnings(*PYMC_WARNINGS)
def test_pymc_path_warns_when_chains_do_not_converge():
    pytest.importorskip("pymc")
    with pytest.warns(ConvergenceWarning, match="R-hat not computable with 1 chain"):
        res = analyse_borrowing(NoBorrowing(), ArmData.normal(30, 0.5, 1.0),
                                ArmData.normal(15, 0.0, 1.0), engine="pymc", draws=100,
                                tune=100, chains=1)  # fmt: skip
    assert not res.diagnostics["converged"]
    assert "effect" in res.idata.posterior


SLOW_CASES = {
    "power_prior_binary": (PowerPrior(0.5), ArmData.binary(40, 20), ArmData.binary(20, 6),
                           ArmData.binary([100, 150], [30, 50]), 0.0),
    "commensurate_binary": (CommensuratePrior(HalfNormal(0.5)), ArmData.binary(40, 20),
                            ArmData.binary(20, 6), ArmData.binary([100, 150], [30, 50]), 0.01),
    "robust_map_binary": (RobustMAP(HalfNormal(0.5), 0.2), ArmData.binary(40, 20),
                          ArmData.binary(20, 6), ArmData.binary([100, 150], [30, 50]), 0.01),
    "commensurate_normal": (CommensuratePrior(HalfNormal(0.3)), ArmData.normal(40, 0.6, 1.0),
                            ArmData.normal(20, 0.0, 1.0), ArmData.normal(100, 0.1, 1.0), 0.0),
    "power_prior_tte": (PowerPrior(0.5), ArmData.time_to_event(60, 600.0),
                        ArmData.time_to_event(40, 300.0), ArmData.time_to_event(150, 1500.0),
                        0.02),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_CASES))
@pytest.mark.filterwarnings(*PYMC_WARNINGS)
def test_fast_path_agrees_with_pymc_slow(name):
    """The slack covers the approximations of the fast path (logit-normal components as
    betas; the normal approximation of the exponential likelihood)."""
    pytest.importorskip("pymc")
    method, treated, control, hist, slack = SLOW_CASES[name]
    fast = analyse_borrowing(method, treated, control, hist)
    pymc = analyse_borrowing(method, treated, control, hist, engine="pymc", draws=2000,
                             tune=1000, chains=2, seed=11)  # fmt: skip
    _agree(fast.probability, pymc.probability, pymc.diagnostics["mcse_probability"], slack)
    _agree(fast.effect, pymc.effect, pymc.diagnostics["mcse_effect"], slack)
