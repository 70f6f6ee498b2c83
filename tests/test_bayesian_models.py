"""The Bayesian piecewise-exponential, logistic and linear models (generators/bayesian/).

References, each independent of the code under test:

- statsmodels' maximum-likelihood ``Logit`` and ``OLS`` on the same design: with weakly
  informative priors and 500 patients the posterior mean is within a quarter of the MLE's
  standard error of the MLE, and the posterior SD within 15-20 % of that SE (the posterior
  mean's Monte Carlo error is about SD / sqrt(ESS) ~ 0.05 SE at the ESS of these fits);
- lifelines' ``CoxPHFitter`` (Efron's partial likelihood) on lifelines' bundled Rossi
  recidivism data (and, slow, the GBSG2 breast-cancer data): with 8 intervals the
  piecewise-exponential log hazard ratios are within a quarter of Cox's SE of Cox's;
- the true parameters of simulated data (posterior within 3 posterior SDs), for the
  Student-t model;
- closed forms computed in the tests from the posterior draws (the posterior predictive
  probability, mean and survival function) for the virtual patients, within their binomial
  or normal Monte Carlo error.

The slow tests (``pytest -m slow tests/test_bayesian_models.py -s``) check the frequentist
coverage of the 90 % credible interval of each model's treatment effect over 40 simulated
data sets (accepting 31 to 40 covering: Binomial(40, 0.9) falls at or below 30 with
probability 0.5 %), and compare PyMC's sampler with nutpie.

Fits use 2 chains of a few hundred draws to stay fast; they often fall short of the ESS
criterion of 400 (and sometimes of R-hat 1.01, narrowly), so that the ConvergenceWarning is
expected there; divergences must not occur and R-hat must stay below 1.02.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

pytestmark = [
    pytest.mark.filterwarnings("ignore:ArviZ is undergoing a major refactor:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pytensor"),
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:arviz"),
]

# the simulated phase-2 data: the truth on the scale of each model
TRUE = {
    "logit_intercept": -0.4,
    "log_or": 0.7,
    "logit_age": 0.03,  # per year
    "linear_intercept": 10.0,
    "mean_difference": 1.2,
    "linear_age": 0.05,  # per year
    "sigma": 2.0,
    "nu": 4.0,
    "log_hr": -0.5,
}
STAGE_LOGIT = {"I": 0.0, "II": 0.5, "III": -0.6}
STAGE_MEAN = {"I": 0.0, "II": 0.8, "III": -0.5}


def simulate(
    n: int, rng: np.random.Generator, residuals: str = "normal", stage_effects: bool = True
) -> pd.DataFrame:
    """Patients with age ~ N(60, 10), stage I/II/III (50/30/20 %), arm ~ Bernoulli(1/2); a
    binary response (logistic), a continuous score (linear; normal or t_4 residuals with
    scale 2) and a survival time (exponential PH, hazard 0.05, log HR -0.5; Uniform(0, 40)
    censoring). Stage acts on the response and the score unless ``stage_effects=False``."""
    age = rng.normal(60, 10, n)
    stage = rng.choice(["I", "II", "III"], n, p=[0.5, 0.3, 0.2])
    arm = rng.integers(0, 2, n)
    on = float(stage_effects)
    logit = (
        TRUE["logit_intercept"]
        + TRUE["logit_age"] * (age - 60)
        + TRUE["log_or"] * arm
        + on * np.vectorize(STAGE_LOGIT.get)(stage)
    )
    noise = rng.standard_t(TRUE["nu"], n) if residuals == "t" else rng.normal(size=n)
    score = (
        TRUE["linear_intercept"]
        + TRUE["linear_age"] * (age - 60)
        + TRUE["mean_difference"] * arm
        + on * np.vectorize(STAGE_MEAN.get)(stage)
        + TRUE["sigma"] * noise
    )
    t = rng.standard_exponential(n) / (0.05 * np.exp(TRUE["log_hr"] * arm))
    c = rng.uniform(0, 40, n)
    return pd.DataFrame(
        {
            "age": age,
            "stage": pd.Categorical(stage, categories=["I", "II", "III"]),
            "arm": arm,
            "response": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64),
            "score": score,
            "time": np.minimum(t, c),
            "event": (t <= c).astype(np.int64),
        }
    )


def fit_allowing_low_ess(model, data):
    """Fit; short chains may fall short of ESS 400 or R-hat 1.01 (expected, narrowly), but
    without divergences and with R-hat below 1.02."""
    from trials.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(data)
    for w in caught:
        assert issubclass(w.category, ConvergenceWarning)
    assert model.diagnostics_["n_divergences"] == 0
    assert model.diagnostics_["max_rhat"] < 1.02
    return model


def design(data: pd.DataFrame, model) -> np.ndarray:
    """The design of statsmodels' fits: constant, age per SD (the model's standardization),
    stage II and III against I, and arm (treatment last)."""
    spec = model.numeric_["age"]
    return np.column_stack(
        [
            np.ones(len(data)),
            (data["age"] - spec["mean"]) / spec["sd"],
            (data["stage"] == "II").astype(float),
            (data["stage"] == "III").astype(float),
            data["arm"].astype(float),
        ]
    )


def posterior_columns(model) -> np.ndarray:
    """Posterior draws in the order of :func:`design`."""
    return np.column_stack(
        [model.draws_["intercept"], model.draws_["beta"], model.posterior_effect()]
    )


def assert_agrees_with_mle(post: np.ndarray, params: np.ndarray, se: np.ndarray, sd_tol=0.15):
    diff = (post.mean(axis=0) - params) / se
    ratio = post.std(axis=0) / se
    assert np.all(np.abs(diff) < 0.25), diff
    assert np.all(np.abs(ratio - 1) < sd_tol), ratio


@pytest.fixture(scope="module")
def phase2() -> pd.DataFrame:
    return simulate(500, np.random.default_rng(20261124))


@pytest.fixture(scope="module")
def logistic(phase2):
    from generators.bayesian import BayesianLogistic

    model = BayesianLogistic(
        "response", treatment="arm", covariates=["age", "stage"], chains=2, draws=400, tune=400
    )
    return fit_allowing_low_ess(model, phase2)


@pytest.fixture(scope="module")
def linear(phase2):
    from generators.bayesian import BayesianLinear

    model = BayesianLinear(
        "score", treatment="arm", covariates=["age", "stage"], chains=2, draws=400, tune=400
    )
    return fit_allowing_low_ess(model, phase2)


@pytest.fixture(scope="module")
def student_data() -> pd.DataFrame:
    return simulate(400, np.random.default_rng(4), "t", stage_effects=False).drop(columns="stage")


@pytest.fixture(scope="module")
def student(student_data):
    from generators.bayesian import BayesianLinear

    model = BayesianLinear(
        "score",
        treatment="arm",
        covariates=["age"],
        likelihood="student_t",
        chains=2,
        draws=400,
        tune=400,
    )
    return fit_allowing_low_ess(model, student_data)


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    from lifelines.datasets import load_rossi

    return load_rossi()[["week", "arrest", "fin", "age", "prio"]]


@pytest.fixture(scope="module")
def piecewise(rossi):
    from generators.bayesian import BayesianPiecewiseExponential

    model = BayesianPiecewiseExponential(
        "week", "arrest", treatment="fin", covariates=["age", "prio"], chains=2, draws=400,
        tune=400,
    )  # fmt: skip
    return fit_allowing_low_ess(model, rossi)


# -- agreement with maximum likelihood --------------------------------------------------------


def test_logistic_agrees_with_statsmodels_logit(logistic, phase2):
    import statsmodels.api as sm

    fit = sm.Logit(phase2["response"], design(phase2, logistic)).fit(disp=0)
    # the logistic posterior is a little wider than the Wald SE at n = 500 (skewness)
    assert_agrees_with_mle(posterior_columns(logistic), fit.params, fit.bse, sd_tol=0.2)
    assert logistic.effect_scale == "log_odds_ratio"
    assert not hasattr(logistic, "posterior_log_hr")  # the engine's hook is for survival only


def test_linear_agrees_with_statsmodels_ols(linear, phase2):
    import statsmodels.api as sm

    fit = sm.OLS(phase2["score"], design(phase2, linear)).fit()
    assert_agrees_with_mle(posterior_columns(linear), fit.params, fit.bse)
    # residual SD: posterior mean vs the OLS estimate, within a quarter of its SE
    sigma, n_params = linear.draws_["sigma"], 5
    se_sigma = np.sqrt(fit.scale / (2 * (len(phase2) - n_params)))
    assert abs(sigma.mean() - np.sqrt(fit.scale)) < 0.25 * se_sigma
    assert linear.effect_scale == "mean_difference"


def test_student_t_recovers_the_simulated_parameters(student):
    age = student.numeric_["age"]
    truth = {
        # the intercept is the control mean at the mean age of the data
        "intercept": TRUE["linear_intercept"] + TRUE["linear_age"] * (age["mean"] - 60),
        "mean_difference": TRUE["mean_difference"],
        "age": TRUE["linear_age"],
        "sigma": TRUE["sigma"],
        "nu": TRUE["nu"],
    }
    draws = {
        "intercept": student.draws_["intercept"],
        "mean_difference": student.posterior_effect(),
        "age": student.draws_["beta"][:, 0] / age["sd"],
        "sigma": student.draws_["sigma"],
        "nu": student.draws_["nu"],
    }
    for name, values in draws.items():
        assert abs(values.mean() - truth[name]) < 3 * values.std(), name
    assert student.diagnostics_["n_divergences"] == 0
    summary = student.summary()
    assert list(summary.index) == ["intercept", "sigma", "nu", "mean_difference", "beta[age]"]


def test_piecewise_agrees_with_lifelines_cox(piecewise, rossi):
    from lifelines import CoxPHFitter

    cox = CoxPHFitter().fit(rossi, "week", "arrest")
    names = ["fin", "age", "prio"]
    sd = np.array([1.0] + [piecewise.numeric_[c]["sd"] for c in ("age", "prio")])
    post = np.column_stack([piecewise.posterior_log_hr(), piecewise.draws_["beta"]]) / sd
    assert_agrees_with_mle(post, cox.params_[names], cox.standard_errors_[names])
    assert piecewise.effect_scale == "log_hazard_ratio"
    np.testing.assert_array_equal(piecewise.posterior_log_hr(), piecewise.posterior_effect())


# -- the fitted objects ------------------------------------------------------------------------


def test_piecewise_cuts_and_summary(piecewise, rossi):
    events = rossi.loc[rossi["arrest"] == 1, "week"]
    expected = np.unique(np.quantile(events, np.arange(1, 8) / 8))
    np.testing.assert_allclose(piecewise.cuts_, expected[expected < rossi["week"].max()])
    summary = piecewise.summary()
    n_intervals = len(piecewise.cuts_) + 1
    assert list(summary.index[:n_intervals]) == [
        f"hazard[{label}]" for label in piecewise.interval_labels_
    ]
    assert list(summary.index[n_intervals:]) == [
        "log_hr", "hazard_ratio", "beta[age]", "beta[prio]",
    ]  # fmt: skip
    assert piecewise.idata_.posterior.sizes["interval"] == n_intervals


def test_piecewise_baseline_hazards_match_events_per_exposure(rossi):
    """Without covariates, the likelihood of interval j's hazard is that of a Poisson count
    d_j with exposure E_j: the MLE is d_j / E_j with SE sqrt(d_j) / E_j (and the posterior
    under a flat prior on log hazard is Gamma(d_j, E_j), mean d_j / E_j)."""
    from generators.bayesian import BayesianPiecewiseExponential

    cuts = [10.0, 20.0, 30.0, 40.0]
    model = BayesianPiecewiseExponential(
        "week", "arrest", covariates=[], cuts=cuts, baseline_prior="independent",
        chains=2, draws=400, tune=400,
    )  # fmt: skip
    fit_allowing_low_ess(model, rossi)
    bounds = [0.0, *cuts, np.inf]
    week, arrest = rossi["week"].to_numpy(float), rossi["arrest"].to_numpy()
    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        exposure = np.clip(week - lo, 0, hi - lo).sum()
        events = np.sum(arrest[(week >= lo) & (week < hi)])
        hazard = np.exp(model.draws_["log_hazard"][:, j])
        se = np.sqrt(events) / exposure
        assert abs(hazard.mean() - events / exposure) < 0.25 * se, j
        assert abs(hazard.std() / se - 1) < 0.15, j


def test_diagnostics_are_recorded(logistic, linear, piecewise):
    keys = {"max_rhat", "min_ess_bulk", "min_ess_tail", "n_divergences", "warnings", "converged"}
    for model in (logistic, linear, piecewise):
        assert keys | {"sampler"} <= set(model.diagnostics_)
        assert model.diagnostics_["sampler"] == "pymc"
        assert model.diagnostics_["n_divergences"] == 0
        assert model.diagnostics_["max_rhat"] < 1.02
        assert model.idata_.posterior.sizes["chain"] == 2
        assert model.idata_.posterior.sizes["draw"] == 400
    assert "y" in logistic.idata_.observed_data


def test_posterior_predictive_checks_pass_on_the_fitted_data(logistic, linear, piecewise,
                                                             phase2, rossi):  # fmt: skip
    binary = logistic.ppc(phase2, n_draws=200, rng=0)
    assert list(binary.table.columns) == [
        "arm", "statistic", "observed", "lower", "upper", "p_value", "inside",
    ]  # fmt: skip
    assert list(binary.table["statistic"]) == ["proportion", "proportion"]
    observed = phase2.groupby("arm")["response"].mean().to_numpy()
    np.testing.assert_allclose(binary.table["observed"], observed)
    assert binary.share_inside == 1.0
    continuous = linear.ppc(phase2, n_draws=200, rng=0)
    assert list(continuous.table["statistic"]) == ["mean", "sd", "mean", "sd"]
    assert continuous.share_inside == 1.0
    assert continuous.summary().shape == (2, 2)
    survival = piecewise.ppc(rossi, n_draws=50, rng=0)
    assert survival.share_inside >= 0.9


def test_posterior_predictive_check_detects_unequal_variances():
    """A normal model with one residual SD, fitted to arms with SDs 1 and 3, predicts an SD
    near 2.2 in both arms: the check must flag both observed SDs."""
    from generators.bayesian import BayesianLinear

    rng = np.random.default_rng(11)
    arm = np.repeat([0, 1], 150)
    data = pd.DataFrame({"arm": arm, "y": rng.normal(0, np.where(arm == 1, 3.0, 1.0))})
    from trials.exceptions import ConvergenceWarning

    model = BayesianLinear("y", treatment="arm", covariates=[], chains=2, draws=200, tune=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short chains; not the point here
        model.fit(data)
    check = model.ppc(data, n_draws=200, rng=1)
    sd_rows = check.table[check.table["statistic"] == "sd"]
    assert not sd_rows["inside"].any()
    control, treated = sd_rows["p_value"]
    assert control > 0.99  # observed SD 1, replicated about 2.2
    assert treated < 0.01  # observed SD 3


# -- virtual patients ---------------------------------------------------------------------------


def test_logistic_virtual_patients_follow_the_posterior_predictive(logistic, phase2):
    n = 20000
    given = pd.DataFrame({"age": np.full(n, logistic.numeric_["age"]["mean"]), "stage": "I"})
    virtual = logistic.sample(n, rng=3, covariates=given, treatment=1)
    assert list(virtual.columns) == ["age", "stage", "arm", "response"]
    assert virtual["response"].dtype == phase2["response"].dtype
    # P(y = 1) for these patients, averaged over the posterior (each patient has a draw)
    p = np.mean(1 / (1 + np.exp(-(logistic.draws_["intercept"] + logistic.draws_["log_or"]))))
    assert abs(virtual["response"].mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_linear_virtual_patients_follow_the_posterior_predictive(linear, phase2):
    n = 20000
    given = pd.DataFrame({"age": np.full(n, linear.numeric_["age"]["mean"]), "stage": "I"})
    virtual = linear.sample(n, rng=4, covariates=given, treatment=0)
    mean = linear.draws_["intercept"]
    variance = np.mean(linear.draws_["sigma"] ** 2) + mean.var()  # predictive variance
    assert abs(virtual["score"].mean() - mean.mean()) < 4 * np.sqrt(variance / n)
    # the SD of a sample SD of normal data is about sd / sqrt(2 n)
    assert abs(virtual["score"].std() - np.sqrt(variance)) < 4 * np.sqrt(variance / (2 * n))
    default = linear.sample(300, rng=5)
    assert list(default.columns) == list(phase2[["age", "stage", "arm", "score"]].columns)
    assert dict(default.dtypes) == dict(phase2[default.columns].dtypes)


def test_piecewise_virtual_patients_follow_the_model_survival(piecewise):
    """Kaplan-Meier of virtual event times against S(t) = mean over draws of
    exp(-H0(t) exp(eta)), H0 summed interval by interval here."""
    n = 20000
    given = pd.DataFrame({"age": np.full(n, 25.0), "prio": np.full(n, 2.0)})
    virtual = piecewise.sample(n, rng=6, covariates=given, treatment=1)
    assert (virtual["arrest"] == 1).all()
    times = np.array([5.0, 20.0, 45.0, 80.0])
    lower = [0.0, *piecewise.cuts_]
    upper = [*piecewise.cuts_, np.inf]
    hazard = np.exp(piecewise.draws_["log_hazard"])
    spec = piecewise.numeric_
    x = np.array([(25.0 - spec["age"]["mean"]) / spec["age"]["sd"],
                  (2.0 - spec["prio"]["mean"]) / spec["prio"]["sd"]])  # fmt: skip
    eta = piecewise.draws_["beta"] @ x + piecewise.draws_["log_hr"]
    for t in times:
        cum = sum(
            hazard[:, j] * max(0.0, min(t, upper[j]) - lower[j]) for j in range(len(lower))
        )
        expected = np.mean(np.exp(-cum * np.exp(eta)))
        share = np.mean(virtual["week"] > t)
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n), t


# -- save / load --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic", "linear", "student", "piecewise"])
def test_save_load_round_trip(name, request, tmp_path):
    from generators.base import load

    model = request.getfixturevalue(name)
    path = tmp_path / "model.json"
    model.save(path)
    loaded = load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.sample(100, rng=3), model.sample(100, rng=3))
    np.testing.assert_array_equal(loaded.posterior_effect(), model.posterior_effect())
    pd.testing.assert_frame_equal(loaded.summary(), model.summary())
    assert loaded.diagnostics_ == model.diagnostics_
    assert loaded.idata_ is None


# -- convergence failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("bayesian_logistic", {"outcome": "response"}),
        ("bayesian_linear", {"outcome": "score"}),
        ("bayesian_piecewise_exponential", {"n_intervals": 3, "baseline_prior": "independent"}),
    ],
)
def test_convergence_warning_and_strict_refusal(kind, config, monkeypatch):
    from generators.base import REGISTRY
    from trials.exceptions import ConvergenceWarning, DataError

    data = simulate(80, np.random.default_rng(8)).drop(columns="stage")
    # a labelled binary outcome: its second level is the event
    data["response"] = np.where(data["response"] == 1, "yes", "no")
    # without nutpie, sampler="auto" falls back to PyMC's sampler and says so
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "nutpie" else real_find_spec(name, *args),
    )
    model = REGISTRY[kind](
        treatment="arm", covariates=["age"], chains=2, draws=30, tune=30, sampler="auto",
        **config,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="did not converge: .*ESS"):
        model.fit(data)
    assert model.diagnostics_["converged"] is False
    assert model.diagnostics_["sampler"] == "pymc"
    if kind == "bayesian_logistic":
        assert model.outcome_levels_ == ["no", "yes"]
        assert set(model.sample(20, rng=0)["response"]) == {"no", "yes"}  # training labels
        with pytest.raises(DataError, match="'response': rows 1 are not no or yes"):
            model.ppc(data.assign(response=data["response"].mask(data.index == 1, "maybe")))
    with pytest.raises(DataError, match="did not converge"):
        model.fit(data, strict=True)
    assert not model.is_fitted


# -- bad input ----------------------------------------------------------------------------------


@pytest.fixture
def small(phase2) -> pd.DataFrame:
    return phase2.head(40).copy()


def test_logistic_refuses_bad_outcomes(small):
    from generators.bayesian import BayesianLogistic
    from trials.exceptions import DataError

    model = BayesianLogistic("response", treatment="arm", covariates=["age"])
    with pytest.raises(DataError, match="outcome column 'response': rows 0, 3 must be 0 or 1"):
        model.fit(small.assign(response=small["response"].mask(small.index.isin([0, 3]), 2)))
    with pytest.raises(DataError, match="column 'response': rows 4 are missing"):
        model.fit(small.assign(response=small["response"].mask(small.index == 4)))
    with pytest.raises(DataError, match="column 'age': rows 2, 5 are missing"):
        model.fit(small.assign(age=small["age"].mask(small.index.isin([2, 5]))))
    with pytest.raises(DataError, match="no column\\(s\\) 'response'"):
        model.fit(small.drop(columns="response"))
    with pytest.raises(DataError, match="'stage' must be binary: two levels .* got 3"):
        BayesianLogistic("stage", covariates=[]).fit(small)
    with pytest.raises(DataError, match="'response' takes a single value"):
        model.fit(small.assign(response=1))


def test_linear_and_piecewise_refuse_bad_input(small):
    from generators.bayesian import BayesianLinear, BayesianPiecewiseExponential
    from trials.exceptions import DataError

    with pytest.raises(DataError, match="outcome column 'score': rows 1 are not finite"):
        BayesianLinear("score", covariates=[]).fit(
            small.assign(score=small["score"].mask(small.index == 1, np.inf))
        )
    with pytest.raises(DataError, match="'stage' is not continuous"):
        BayesianLinear("stage", covariates=[]).fit(small)
    with pytest.raises(DataError, match="likelihood must be 'normal' or 'student_t'"):
        BayesianLinear("score", likelihood="cauchy").fit(small)
    with pytest.raises(DataError, match="cuts must be positive, finite and increasing"):
        BayesianPiecewiseExponential(cuts=[5.0, 3.0]).fit(small)
    with pytest.raises(DataError, match="baseline_prior must be"):
        BayesianPiecewiseExponential(baseline_prior="gamma").fit(small)
    with pytest.raises(DataError, match="n_intervals must be a positive integer"):
        BayesianPiecewiseExponential(n_intervals=0).fit(small)
    with pytest.raises(DataError, match="'time': rows 2 must be finite and greater than 0"):
        BayesianPiecewiseExponential(covariates=[]).fit(
            small.assign(time=small["time"].mask(small.index == 2, -1.0))
        )
    with pytest.raises(DataError, match="sampler must be 'pymc', 'nutpie', 'auto'"):
        BayesianLinear("score", sampler="stan").fit(small)


def test_for_data_takes_the_roles():
    from generators.base import DataRoles
    from generators.bayesian import (
        BayesianLinear,
        BayesianLogistic,
        BayesianPiecewiseExponential,
    )
    from trials.exceptions import DataError

    roles = DataRoles(
        columns=("id", "arm", "response", "age", "time", "event"),
        id="id", arm="arm", time="time", event="event",
        outcomes=("response",), covariates=("age",),
    )  # fmt: skip
    logistic = BayesianLogistic.for_data(roles, seed=5)
    assert (logistic.outcome, logistic.treatment, logistic.covariates, logistic.seed) == (
        "response", "arm", ["age"], 5,
    )  # fmt: skip
    assert BayesianLinear.for_data(roles).outcome == "response"
    piecewise = BayesianPiecewiseExponential.for_data(roles)
    assert (piecewise.time, piecewise.event, piecewise.treatment) == ("time", "event", "arm")
    no_outcome = DataRoles(columns=("age",), covariates=("age",))
    with pytest.raises(DataError, match="bayesian_logistic model needs an outcome column"):
        BayesianLogistic.for_data(no_outcome)
    with pytest.raises(DataError, match="needs a time and an event column"):
        BayesianPiecewiseExponential.for_data(no_outcome)


# -- slow: coverage, and the nutpie sampler -------------------------------------------------------


def _coverage(make_model, effect: float, simulate_data) -> tuple[int, int]:
    from trials.exceptions import ConvergenceWarning

    covered = warned = 0
    for i, seed in enumerate(np.random.SeedSequence(2026).spawn(40)):
        data = simulate_data(np.random.default_rng(seed))
        model = make_model(i)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(data)
        warned += bool(caught)
        assert model.diagnostics_["max_rhat"] < 1.05
        lo, hi = np.quantile(model.posterior_effect(), [0.05, 0.95])
        covered += lo <= effect <= hi
    return covered, warned


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["logistic", "linear", "student_t", "piecewise"])
def test_credible_interval_coverage_of_the_treatment_effect(kind):
    """90 % equal-tailed intervals of the treatment effect cover the truth in 31..40 of 40
    simulated data sets (Binomial(40, 0.9): mean 36, SD 1.9)."""
    from generators.bayesian import BayesianLinear, BayesianLogistic, BayesianPiecewiseExponential

    sampling = dict(treatment="arm", covariates=["age"], chains=2, draws=500, tune=500)
    if kind == "logistic":
        effect = TRUE["log_or"]

        def make(i):
            return BayesianLogistic("response", seed=i, **sampling)
    elif kind == "piecewise":
        effect = TRUE["log_hr"]

        def make(i):
            return BayesianPiecewiseExponential(n_intervals=6, seed=i, **sampling)
    else:
        effect = TRUE["mean_difference"]
        likelihood = "normal" if kind == "linear" else "student_t"

        def make(i):
            return BayesianLinear("score", likelihood=likelihood, seed=i, **sampling)

    residuals = "t" if kind == "student_t" else "normal"
    covered, warned = _coverage(
        make,
        effect,
        lambda rng: simulate(300, rng, residuals, stage_effects=False).drop(columns="stage"),
    )
    print(f"\n{kind}: 90% intervals covering the true effect {covered}/40 ({warned} fits warned)")
    assert covered >= 31


@pytest.mark.slow
def test_piecewise_agrees_with_cox_on_gbsg2():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_gbsg2

    from generators.bayesian import BayesianPiecewiseExponential

    data = load_gbsg2()[["time", "cens", "horTh", "age", "tsize", "pnodes"]]
    model = BayesianPiecewiseExponential(
        "time", "cens", treatment="horTh", covariates=["age", "tsize", "pnodes"],
        chains=4, draws=1000, tune=1000,
    )  # fmt: skip
    model.fit(data)
    assert model.treatment_levels_ == ["no", "yes"]
    cox = CoxPHFitter().fit(data.assign(horTh=(data["horTh"] == "yes").astype(int)), "time", "cens")
    names = ["horTh", "age", "tsize", "pnodes"]
    sd = np.array([1.0] + [model.numeric_[c]["sd"] for c in names[1:]])
    post = np.column_stack([model.posterior_log_hr(), model.draws_["beta"]]) / sd
    assert_agrees_with_mle(post, cox.params_[names], cox.standard_errors_[names])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nutpie") is None, reason="nutpie not installed")
@pytest.mark.parametrize("kind", ["logistic", "linear", "student_t", "piecewise"])
def test_nutpie_and_pymc_give_the_same_posterior(kind, phase2):
    """Same model, both samplers, 4 x 1000 draws: posterior means of the effect within
    4 Monte Carlo SEs of each other (each SE = posterior SD / sqrt(ESS))."""
    import arviz as az

    from generators.bayesian import BayesianLinear, BayesianLogistic, BayesianPiecewiseExponential

    sampling = dict(treatment="arm", covariates=["age", "stage"], chains=4, draws=1000, tune=1000)
    make = {
        "logistic": lambda s: BayesianLogistic("response", sampler=s, **sampling),
        "linear": lambda s: BayesianLinear("score", sampler=s, **sampling),
        "student_t": lambda s: BayesianLinear("score", likelihood="student_t", sampler=s,
                                              **sampling),
        "piecewise": lambda s: BayesianPiecewiseExponential(sampler=s, **sampling),
    }[kind]  # fmt: skip
    fits = {}
    for sampler in ("pymc", "nutpie"):
        start = time.perf_counter()
        model = make(sampler).fit(phase2)
        seconds = time.perf_counter() - start
        assert model.diagnostics_["converged"], model.diagnostics_["warnings"]
        assert model.diagnostics_["sampler"] == sampler
        effect = model.posterior_effect()
        ess = float(az.ess(effect.reshape(4, 1000)))
        fits[sampler] = (effect.mean(), effect.std() / np.sqrt(ess), seconds)
        print(f"\n{kind} {sampler}: {seconds:.1f} s, effect {effect.mean():.4f}, ESS {ess:.0f}")
    (m1, se1, _), (m2, se2, _) = fits["pymc"], fits["nutpie"]
    assert abs(m1 - m2) < 4 * np.hypot(se1, se2)
