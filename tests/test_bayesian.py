"""The Bayesian Weibull proportional-hazards generator (generators/bayesian/weibull.py).

References: the true parameters of simulated data (posterior within 3 posterior SDs), and
lifelines' maximum-likelihood ``WeibullAFTFitter`` and ``CoxPHFitter`` on the same data.
The slow tests (``pytest -m slow tests/test_bayesian.py -s``) check the frequentist coverage
of the 90 % credible interval of the treatment log HR and time a 700-patient fit with PyMC's
sampler and with nutpie.

The generator is imported inside the fixtures, not at module level, so that collecting this
file does not add ``bayesian_weibull`` to the registry that the shared contract suite
(tests/test_generator_contract.py) parametrizes over with a cohort that has no survival
columns.

The first fit in a fresh environment compiles the PyTensor model (about 20 s on 2 CPUs);
later fits reuse the on-disk compilation cache (about 2 s for the default fixture).
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

# PyMC / ArviZ / PyTensor may warn about their own internals (ArviZ's announced refactor,
# PyTensor's compilation fallbacks); these are third-party notices, not problems of the model.
pytestmark = [
    pytest.mark.filterwarnings("ignore:ArviZ is undergoing a major refactor:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pytensor"),
    # pip-installed PyTensor without a BLAS library: slower dot products, same results
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:arviz"),
]

TRUE_SHAPE = 1.5
TRUE_SCALE = 10.0
TRUE_LOG_HR = -0.5
TRUE_BETA = 0.3


def simulate(n: int, rng: np.random.Generator, log_hr: float = TRUE_LOG_HR) -> pd.DataFrame:
    """Weibull PH data: h(t|x,z) = h0(t) exp(0.3 x + log_hr z), h0 Weibull(1.5, scale 10);
    x ~ N(0, 1), z ~ Bernoulli(1/2), independent Uniform(0, 25) censoring (~40 % censored)."""
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n)
    eta = TRUE_BETA * x + log_hr * z
    t = TRUE_SCALE * (rng.standard_exponential(n) * np.exp(-eta)) ** (1 / TRUE_SHAPE)
    c = rng.uniform(0, 25, n)
    return pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "arm": z, "x": x})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(300, np.random.default_rng(20261123))


def fit_allowing_low_ess(model, data):
    """Fit; 2 chains x 300 draws often fall short of ESS 400 (the ConvergenceWarning is then
    expected), but R-hat and divergences must pass."""
    from trials.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(data)
    for w in caught:
        assert issubclass(w.category, ConvergenceWarning)
        assert "ESS" in str(w.message)
    assert all("ESS" in failed for failed in model.diagnostics_["warnings"])
    return model


@pytest.fixture(scope="module")
def model(data):
    from generators.bayesian import BayesianWeibull

    model = BayesianWeibull(treatment="arm", covariates=["x"], chains=2, draws=300, tune=300)
    return fit_allowing_low_ess(model, data)


def test_posterior_is_near_the_truth(model):
    # beta is per SD of the covariate: back to the unit of x to compare with the truth
    sd_x = model.numeric_["x"]["sd"]
    draws = {
        "shape": np.exp(model.draws_["log_shape"]),
        "scale": np.exp(model.draws_["log_scale"]),
        "log_hr": model.posterior_log_hr(),
        "beta": model.draws_["beta"][:, 0] / sd_x,
    }
    truth = {"shape": TRUE_SHAPE, "scale": TRUE_SCALE, "log_hr": TRUE_LOG_HR, "beta": TRUE_BETA}
    for name, values in draws.items():
        assert abs(values.mean() - truth[name]) < 3 * values.std(), name


def test_agrees_with_lifelines_maximum_likelihood(model, data):
    from lifelines import CoxPHFitter, WeibullAFTFitter

    aft = WeibullAFTFitter().fit(data, "time", "event")
    k = float(np.exp(aft.params_.loc[("rho_", "Intercept")]))
    # AFT: log T = a0 + a'x + log(E)/k  =>  PH coefficients are -k a, baseline scale exp(a0)
    ph_log_hr = -k * aft.params_.loc[("lambda_", "arm")]
    post_log_hr = model.posterior_log_hr()
    post_shape = np.exp(model.draws_["log_shape"])
    # with a N(0, 1) prior and 300 patients the posterior mean and the MLE differ by much
    # less than one posterior SD
    assert abs(post_shape.mean() - k) < 0.5 * post_shape.std()
    assert abs(post_log_hr.mean() - ph_log_hr) < 0.5 * post_log_hr.std()

    cox = CoxPHFitter().fit(data, "time", "event")
    # Cox's partial likelihood ignores the baseline hazard: a different estimator of the same
    # log HR; 0.1 is about 2/3 of the posterior SD (~0.15) at n = 300
    assert abs(cox.params_["arm"] - post_log_hr.mean()) < 0.1


def test_diagnostics_and_summary(model):
    keys = {"max_rhat", "min_ess_bulk", "min_ess_tail", "n_divergences", "warnings", "converged"}
    assert keys <= set(model.diagnostics_)
    assert model.diagnostics_["n_divergences"] == 0
    assert model.diagnostics_["max_rhat"] < 1.01
    summary = model.summary()
    assert list(summary.index) == ["shape", "scale", "log_hr", "hazard_ratio", "beta[x]"]
    assert {"mean", "sd", "hdi_5%", "hdi_95%", "r_hat", "ess_bulk", "ess_tail"} <= set(summary)
    assert model.idata_.posterior.sizes == {"chain": 2, "draw": 300, "term": 1}


def test_sample_schema_and_reproducibility(model, data):
    virtual = model.sample(200, rng=5)
    assert list(virtual.columns) == list(data.columns)
    assert len(virtual) == 200
    assert dict(virtual.dtypes) == dict(data.dtypes)
    assert (virtual["event"] == 1).all()
    assert (virtual["time"] > 0).all()
    assert set(virtual["arm"]) <= {0, 1}
    pd.testing.assert_frame_equal(virtual, model.sample(200, rng=5))
    assert not virtual.equals(model.sample(200, rng=6))


def test_sample_with_given_covariates_and_treatment(model):
    rng = np.random.default_rng(1)
    given = pd.DataFrame({"x": np.zeros(4000)})
    control = model.sample(4000, rng=rng, covariates=given, treatment=0)
    treated = model.sample(4000, rng=rng, covariates=given, treatment=1)
    assert (control["arm"] == 0).all()
    assert (treated["arm"] == 1).all()
    np.testing.assert_array_equal(control["x"], 0.0)
    # with a hazard ratio below 1 treated patients live longer
    assert treated["time"].median() > control["time"].median()


def test_save_load_round_trip(model, data, tmp_path):
    from generators.base import load

    path = tmp_path / "bayes.json"
    model.save(path)
    loaded = load(path)
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.sample(100, rng=3), model.sample(100, rng=3))
    np.testing.assert_array_equal(loaded.posterior_log_hr(), model.posterior_log_hr())
    pd.testing.assert_frame_equal(loaded.summary(), model.summary())
    assert f"{data['time'].iloc[0]!r}" not in path.read_text()  # no raw rows


def test_posterior_predictive_km(model, data):
    check = model.ppc_km(data, n_draws=100, rng=0)
    table = check.table
    assert list(table.columns) == [
        "arm",
        "time",
        "km",
        "curve_lower",
        "curve_upper",
        "lower",
        "upper",
        "inside",
    ]
    assert set(table["arm"]) == {0, 1}
    assert (table["lower"] <= table["upper"]).all()
    assert check.share_inside >= 0.9


def test_categorical_treatment_and_covariate(data):
    from generators.bayesian import BayesianWeibull
    from trials.exceptions import ConvergenceWarning, DataError

    frame = data.assign(
        arm=pd.Categorical(np.where(data["arm"] == 1, "treated", "control")),
        stage=pd.Categorical(np.where(data["x"] > 0.5, "II", "I")),
    )
    model = BayesianWeibull(
        treatment="arm", covariates=["x", "stage"], chains=2, draws=100, tune=100, seed=1
    )
    with pytest.warns(ConvergenceWarning, match="ESS"):  # 2 x 100 draws: too few, expected
        model.fit(frame)
    assert model.terms_ == ["x", "stage[II]"]
    assert model.treatment_levels_ == ["control", "treated"]
    virtual = model.sample(50, rng=0)
    assert list(virtual["arm"].cat.categories) == ["control", "treated"]
    assert list(virtual["stage"].cat.categories) == ["I", "II"]
    assert virtual["arm"].notna().all()
    with pytest.raises(DataError, match="'stage': rows 1 hold categories not seen"):
        model.sample(2, rng=0, covariates=pd.DataFrame({"x": [0.0, 1.0], "stage": ["I", "IV"]}))
    with pytest.raises(DataError, match="treatment column 'arm': rows 0 are not control or"):
        model.sample(1, rng=0, treatment="placebo")


def test_convergence_warning_and_strict(data):
    from generators.bayesian import BayesianWeibull
    from trials.exceptions import ConvergenceWarning, DataError

    small = BayesianWeibull(treatment="arm", covariates=["x"], chains=2, draws=30, tune=30)
    with pytest.warns(ConvergenceWarning, match="ESS"):
        small.fit(data)
    assert any("ESS" in w for w in small.diagnostics_["warnings"])
    assert small.diagnostics_["converged"] is False
    with pytest.raises(DataError, match="did not converge"):
        small.fit(data, strict=True)
    assert not small.is_fitted


def test_bad_input_is_refused(data):
    from generators.bayesian import BayesianWeibull
    from trials.exceptions import DataError

    first, second = data.index == 0, data.index == 1
    with pytest.raises(DataError, match="not fitted"):
        BayesianWeibull().sample(5, rng=0)
    with pytest.raises(DataError, match="no column.*'dose'"):
        BayesianWeibull(covariates=["dose"]).fit(data)
    with pytest.raises(DataError, match="'event': rows 0 must be 0 or 1"):
        BayesianWeibull(covariates=[]).fit(data.assign(event=data["event"].mask(first, 2)))
    with pytest.raises(DataError, match="'time': rows 1 must be finite and greater than 0"):
        BayesianWeibull(covariates=[]).fit(data.assign(time=data["time"].mask(second, 0.0)))
    with pytest.raises(DataError, match="'x'.*must be 0 \\(control\\) or 1"):
        BayesianWeibull(treatment="x", covariates=[]).fit(data)
    with pytest.raises(DataError, match="sampler must be"):
        BayesianWeibull(sampler="stan").fit(data)


def test_nutpie_requested_but_missing(data, monkeypatch):
    from generators.bayesian import BayesianWeibull
    from trials.exceptions import DataError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "nutpie" else real_find_spec(name, *args),
    )
    with pytest.raises(DataError, match="needs the nutpie package"):
        BayesianWeibull(sampler="nutpie").fit(data)


@pytest.mark.slow
def test_credible_interval_coverage_of_the_log_hr():
    """90 % equal-tailed intervals should cover the true log HR in ~90 % of data sets.

    With 40 data sets the number covering is Binomial(40, 0.9) if calibrated: mean 36,
    SD 1.9; we accept 31..40 (P(X <= 30) = 0.5 % under calibration)."""
    from generators.bayesian import BayesianWeibull
    from trials.exceptions import ConvergenceWarning

    seeds = np.random.SeedSequence(7).spawn(40)
    covered = 0
    not_converged = 0
    for i, seed in enumerate(seeds):
        frame = simulate(300, np.random.default_rng(seed))
        model = BayesianWeibull(
            treatment="arm", covariates=["x"], chains=2, draws=500, tune=500, seed=i
        )
        # 2 x 500 draws sometimes miss R-hat 1.01 / ESS 400 narrowly: counted, not fatal
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(frame)
        not_converged += bool(caught)
        assert model.diagnostics_["max_rhat"] < 1.05
        lo, hi = np.quantile(model.posterior_log_hr(), [0.05, 0.95])
        covered += lo <= TRUE_LOG_HR <= hi
    print(f"\n90% intervals covering the true log HR: {covered}/40 ({not_converged} fits warned)")
    assert covered >= 31


@pytest.mark.slow
@pytest.mark.parametrize(
    "sampler",
    [
        "pymc",
        pytest.param(
            "nutpie",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("nutpie") is None, reason="nutpie not installed"
            ),
        ),
    ],
)
def test_timing_700_patients_4_chains(sampler):
    """The issue's budget: 60 s for 700 patients and 4 chains (1000 draws after 1000 tuning
    steps), compilation included, with either sampler."""
    from generators.bayesian import BayesianWeibull

    frame = simulate(700, np.random.default_rng(700))
    start = time.perf_counter()
    model = BayesianWeibull(
        treatment="arm", covariates=["x"], chains=4, draws=1000, tune=1000, sampler=sampler
    )
    model.fit(frame)
    elapsed = time.perf_counter() - start
    sampling = model.idata_.posterior.attrs.get("sampling_time", float("nan"))
    print(
        f"\n{sampler}: fit of 700 patients, 4 chains x 1000 draws (+1000 tune): {elapsed:.1f} s "
        f"({sampling:.1f} s sampling), min bulk ESS {model.diagnostics_['min_ess_bulk']:.0f}"
    )
    assert model.diagnostics_["converged"]
    assert model.diagnostics_["sampler"] == sampler
    assert elapsed < 60
