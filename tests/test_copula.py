"""Tests of the Gaussian copula generator against a known data-generating distribution.

Reference distribution (closed forms, no other implementation needed). Latent standard
normals ``(z0, z1, z2, z3)`` with ``corr(z0, z1) = 0.6``, ``corr(z0, z2) = 0.3``,
``corr(z1, z3) = 0.5`` and the other pairs 0, and

* ``x = 10 + 2 z0`` (normal), ``y = z1`` (normal, 10% missing completely at random),
* ``w = exp(0.5 z2)`` (log-normal), ``age = round(60 + 10 z2)`` (integer, > 10 levels),
* ``stage`` = low / mid / high as ``z3`` falls below 0, between 0 and ``Phi^-1(0.8)``,
  or above (ordered Categorical, probabilities 0.5 / 0.3 / 0.2),
* ``flag = 1{z0 > 0.5}`` (integer 0/1, so categorical by default; P(1) = 1 - Phi(0.5)),
* ``sex`` = "F" / "M" with probability 1/2 each, independent of the rest (object).

Tolerances are Monte Carlo standard errors of the comparison, which has two sources of
noise: the fitted generator estimates the distribution from ``N_TRAIN`` rows and its
output is a sample of ``N_SYNTH`` rows, so a proportion's SE is
``sqrt(p (1 - p) (1 / N_TRAIN + 1 / N_SYNTH))``; assertions use 4 SE.

Integer columns have a second reference: a count with a point mass and heaped values whose
probability mass function is known in closed form (see ``_heaped_pmf``), and a smooth
integer ``round(50 + 10 z)``, joined by a Gaussian copula with latent correlation 0.5.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from generators.base import REGISTRY, load
from generators.copula import GaussianCopula
from generators.marginals import WINDOWS, Z_GRID, latent_kernel_quantiles
from trials.exceptions import DataError

N_TRAIN = 10_000
N_SYNTH = 20_000
RHO_XY = 0.6
RHO_XW = 0.3
RHO_Y_STAGE = 0.5
STAGE_P = {"low": 0.5, "mid": 0.3, "high": 0.2}
FLAG_P = 1 - stats.norm.cdf(0.5)
MISSING_Y = 0.10


def _se_proportion(p: float, n_train: float = N_TRAIN, n_synth: float = N_SYNTH) -> float:
    return math.sqrt(p * (1 - p) * (1 / n_train + 1 / n_synth))


def _ks_pvalue(sample: np.ndarray, cdf, n_train: int) -> float:
    """Kolmogorov p-value of the synthetic sample against the true CDF.

    The synthetic CDF deviates from the truth by the fitting noise plus the sampling
    noise, two independent Brownian bridges: the two-sample effective size applies.
    """
    statistic = stats.kstest(sample, cdf).statistic
    n_eff = n_train * len(sample) / (n_train + len(sample))
    return float(stats.kstwobign.sf(statistic * math.sqrt(n_eff)))


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    rng = np.random.default_rng(20261123)
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = RHO_XY
    corr[0, 2] = corr[2, 0] = RHO_XW
    corr[1, 3] = corr[3, 1] = RHO_Y_STAGE
    z = rng.standard_normal((N_TRAIN, 4)) @ np.linalg.cholesky(corr).T
    stage = np.array(list(STAGE_P))[np.searchsorted([0.0, stats.norm.ppf(0.8)], z[:, 3])]
    y = z[:, 1].copy()
    y[rng.random(N_TRAIN) < MISSING_Y] = np.nan
    return pd.DataFrame(
        {
            "x": 10 + 2 * z[:, 0],
            "y": y,
            "w": np.exp(0.5 * z[:, 2]),
            "age": np.round(60 + 10 * z[:, 2]).astype(np.int64),
            "stage": pd.Categorical(stage, categories=list(STAGE_P), ordered=True),
            "flag": (z[:, 0] > 0.5).astype(np.int64),
            "sex": rng.choice(np.array(["F", "M"], dtype=object), N_TRAIN),
        }
    )


@pytest.fixture(scope="module")
def copula(training) -> GaussianCopula:
    return GaussianCopula().fit(training)


@pytest.fixture(scope="module")
def synthetic(copula) -> pd.DataFrame:
    return copula.sample(N_SYNTH, rng=7)


# -- contract and schema -------------------------------------------------------------------


def test_registered_and_fit_returns_self(training):
    generator = GaussianCopula(smoothing=0.5)
    assert generator.fit(training) is generator
    assert REGISTRY["copula"] is GaussianCopula
    assert generator.get_params() == {"columns": None, "categorical": None, "smoothing": 0.5}
    assert generator.columns_ == list(training.columns)


def test_output_schema(training, copula, synthetic):
    assert list(synthetic.columns) == list(training.columns)
    assert synthetic.dtypes.equals(training.dtypes)
    assert synthetic["stage"].cat.categories.tolist() == list(STAGE_P)
    assert synthetic["stage"].cat.ordered
    assert set(synthetic["sex"]) == {"F", "M"}
    assert set(synthetic["flag"]) == {0, 1}
    kinds = {m["name"]: m["kind"] for m in copula.marginals_}
    assert kinds == {
        "x": "continuous",
        "y": "continuous",
        "w": "continuous",
        "age": "integer",
        "stage": "categorical",
        "flag": "categorical",
        "sex": "categorical",
    }


def test_integer_column_within_observed_range(training, synthetic):
    age = synthetic["age"]
    assert age.between(training["age"].min(), training["age"].max()).all()
    # round(60 + 10 z): mean 60, variance 100 + 1/12 (Sheppard)
    sd = math.sqrt(100 + 1 / 12)
    assert abs(age.mean() - 60) < 4 * sd * math.sqrt(1 / N_TRAIN + 1 / N_SYNTH)
    assert abs(age.std() / sd - 1) < 4 * math.sqrt((1 / N_TRAIN + 1 / N_SYNTH) / 2)


# -- marginals -----------------------------------------------------------------------------


def test_normal_marginal_recovered(synthetic):
    p_value = _ks_pvalue(synthetic["x"].to_numpy(), stats.norm(10, 2).cdf, N_TRAIN)
    assert p_value > 1e-3
    y = synthetic["y"].dropna().to_numpy()
    assert _ks_pvalue(y, stats.norm.cdf, round(N_TRAIN * (1 - MISSING_Y))) > 1e-3


def test_lognormal_marginal_recovered(synthetic):
    w = synthetic["w"].to_numpy()
    truth = stats.lognorm(s=0.5)
    assert _ks_pvalue(w, truth.cdf, N_TRAIN) > 1e-3
    for p in (0.05, 0.25, 0.5, 0.75, 0.95):
        q = truth.ppf(p)
        # SE of a sample quantile: sqrt(p (1 - p) / n) / f(q), from both sources of noise
        se = _se_proportion(p) / truth.pdf(q)
        assert abs(np.quantile(w, p) - q) < 4 * se, p
    assert (w > 0).all()


def test_category_frequencies(synthetic):
    shares = synthetic["stage"].value_counts(normalize=True)
    for level, p in STAGE_P.items():
        assert abs(shares[level] - p) < 4 * _se_proportion(p), level
    assert abs(synthetic["flag"].mean() - FLAG_P) < 4 * _se_proportion(FLAG_P)
    assert abs((synthetic["sex"] == "M").mean() - 0.5) < 4 * _se_proportion(0.5)


def test_missing_rate_reproduced(synthetic):
    assert abs(synthetic["y"].isna().mean() - MISSING_Y) < 4 * _se_proportion(MISSING_Y)
    others = synthetic.drop(columns="y")
    assert not others.isna().any().any()


def test_smoothing_zero_interpolates_order_statistics(training):
    generator = GaussianCopula(columns=["x"], smoothing=0).fit(training)
    x = generator.sample(N_SYNTH, rng=3)["x"].to_numpy()
    assert _ks_pvalue(x, stats.norm(10, 2).cdf, N_TRAIN) > 1e-3
    observed = training["x"]
    spacing = (observed.max() - observed.min()) / (N_TRAIN - 1)
    assert observed.min() - spacing <= x.min()
    assert x.max() <= observed.max() + spacing
    assert generator.marginals_[0]["bandwidth"] == 0


# -- dependence ----------------------------------------------------------------------------


def test_pearson_correlation_of_normal_pair(synthetic):
    pairs = synthetic[["x", "y"]].dropna()
    r = pairs["x"].corr(pairs["y"])
    n_train = N_TRAIN * (1 - MISSING_Y)
    se = (1 - RHO_XY**2) * math.sqrt(1 / n_train + 1 / len(pairs))
    assert abs(r - RHO_XY) < 4 * se


def test_latent_correlations_estimated(copula):
    names = [m["name"] for m in copula.marginals_]
    corr = pd.DataFrame(copula.correlation_, index=names, columns=names)
    se = 1 / math.sqrt(N_TRAIN)  # (1 - rho^2) / sqrt(n) is smaller; polyserial SE ~1/sqrt(n)
    assert abs(corr.loc["x", "y"] - RHO_XY) < 4 * se * 1.1
    assert abs(corr.loc["x", "w"] - RHO_XW) < 4 * se
    # ad hoc polyserial correction of the mid-rank scores of a 3-level category
    assert abs(corr.loc["y", "stage"] - RHO_Y_STAGE) < 4 * se * 1.1
    assert abs(corr.loc["w", "age"] - 1) < 0.01  # age and w are monotone in the same latent
    assert abs(corr.loc["sex", "x"]) < 4 * se
    assert np.all(np.linalg.eigvalsh(copula.correlation_) > 0)


# -- randomness, privacy and persistence ---------------------------------------------------


def test_same_seed_same_output_different_seed_different(copula):
    first = copula.sample(500, rng=11)
    pd.testing.assert_frame_equal(first, copula.sample(500, rng=11))
    pd.testing.assert_frame_equal(first, copula.sample(500, rng=np.random.default_rng(11)))
    other = copula.sample(500, rng=12)
    assert not np.allclose(first["x"], other["x"])


def test_continuous_values_are_not_copies(training, synthetic):
    for name in ("x", "w"):
        share = np.isin(synthetic[name].to_numpy(), training[name].to_numpy()).mean()
        assert share < 1e-3, name


def test_save_load_round_trip(tmp_path, training, copula):
    path = tmp_path / "copula.json"
    copula.save(path)
    loaded = load(path)
    assert isinstance(loaded, GaussianCopula)
    assert loaded.get_params() == copula.get_params()
    np.testing.assert_array_equal(loaded.correlation_, copula.correlation_)
    pd.testing.assert_frame_equal(loaded.sample(2000, rng=5), copula.sample(2000, rng=5))
    conditions = {"stage": "high", "x": 11.0}
    pd.testing.assert_frame_equal(
        loaded.sample(300, rng=6, conditions=conditions),
        copula.sample(300, rng=6, conditions=conditions),
    )


def test_saved_file_holds_no_rows(tmp_path, training, copula):
    path = tmp_path / "copula.json"
    copula.save(path)
    text = path.read_text()
    assert not any(repr(float(v)) in text for v in training["x"].iloc[:200])
    state = json.loads(text)["state"]
    assert state["z_grid"]["shape"] == [len(Z_GRID)]


# -- conditional sampling ------------------------------------------------------------------


def test_conditional_on_continuous_value(copula):
    # x fixed at +1 SD: y | x ~ N(0.6, 0.8^2)
    sample = copula.sample(N_SYNTH, rng=21, conditions={"x": 12.0})
    assert (sample["x"] == 12.0).all()
    y = sample["y"].dropna()
    # Var of the mean: 0.64 / n_synth from sampling, and from fitting about
    # (1 + (1 - rho^2)^2 + rho^2 * 2.27) / n_train (the mean of y, rho-hat, and the normal
    # score of x = 12, whose variance is Phi(1)(1 - Phi(1)) / (n phi(1)^2) = 2.27 / n).
    n_y = N_TRAIN * (1 - MISSING_Y)
    se = math.sqrt(0.64 / len(y) + (1 + 0.64**2 + 0.36 * 2.27) / n_y)
    assert abs(y.mean() - 0.6) < 4 * se
    assert abs(y.std() - 0.8) < 0.03  # SE 0.8 * sqrt(1/(2 n_synth) + 1/(2 n_train)) ~ 0.007
    # the rest still follows the copula: age and w are monotone in one latent
    assert sample["age"].corr(sample["w"], method="spearman") > 0.99


def test_conditional_on_category(copula):
    # y | stage = high: E = rho * phi(c) / (1 - Phi(c)) with c = Phi^-1(0.8), about 0.700
    c = stats.norm.ppf(0.8)
    expected = RHO_Y_STAGE * stats.norm.pdf(c) / 0.2
    sample = copula.sample(N_SYNTH, rng=22, conditions={"stage": "high"})
    assert (sample["stage"] == "high").all()
    assert sample["stage"].cat.categories.tolist() == list(STAGE_P)
    y = sample["y"].dropna()
    # fitting noise dominates: d E / d rho = 1.4 times SE(rho-hat) ~ 0.01, plus the mean of y
    se = math.sqrt(0.8 / len(y) + 1.4**2 * 1e-4 + 1 / N_TRAIN)
    assert abs(y.mean() - expected) < 4 * se


def test_conditional_on_several_columns(copula):
    conditions = {"stage": "mid", "flag": 1, "age": 70, "y": 0.5}
    sample = copula.sample(1000, rng=23, conditions=conditions)
    for name, value in conditions.items():
        assert (sample[name] == value).all(), name
    assert sample["flag"].dtype == np.int64
    assert sample["age"].dtype == np.int64
    # flag = 1 means z0 > 0.5, so x > 11 up to the smoothing of x
    assert (sample["x"] > 10.5).mean() > 0.99


def test_condition_errors(copula):
    with pytest.raises(DataError, match="unknown columns 'weight'"):
        copula.sample(10, rng=1, conditions={"weight": 70})
    with pytest.raises(DataError, match="'severe' is not a category"):
        copula.sample(10, rng=1, conditions={"stage": "severe"})
    with pytest.raises(DataError, match="outside the fitted range"):
        copula.sample(10, rng=1, conditions={"x": 1000.0})
    with pytest.raises(DataError, match="not an integer in the fitted range"):
        copula.sample(10, rng=1, conditions={"age": 60.5})
    with pytest.raises(DataError, match="missing value"):
        copula.sample(10, rng=1, conditions={"y": np.nan})


def test_sample_where_respects_predicate(copula):
    def eligible(frame):
        return (frame["x"] > 12) & (frame["stage"] != "low")

    sample = copula.sample_where(500, eligible, rng=31)
    assert len(sample) == 500
    assert list(sample.index) == list(range(500))
    assert eligible(sample).all()
    pd.testing.assert_frame_equal(sample, copula.sample_where(500, eligible, rng=31))
    # y missing counts as not eligible
    with_y = copula.sample_where(200, lambda f: f["y"] > 0, rng=32)
    assert with_y["y"].notna().all()
    assert (with_y["y"] > 0).all()


def test_sample_where_rejects_low_acceptance(copula):
    with pytest.raises(DataError, match="satisfied the predicate"):
        copula.sample_where(10, lambda f: f["x"] > 1e6, rng=33, max_tries=20)
    with pytest.raises(DataError, match="one boolean per row"):
        copula.sample_where(10, lambda f: np.array([True]), rng=33)


# -- configuration and input errors --------------------------------------------------------


def test_columns_and_categorical_options(training):
    generator = GaussianCopula(columns=["age", "x"], categorical=["age"]).fit(training)
    sample = generator.sample(1000, rng=41)
    assert list(sample.columns) == ["age", "x"]
    assert sample["age"].dtype == np.int64
    assert set(sample["age"]) <= set(training["age"])
    assert generator.marginals_[0]["kind"] == "categorical"


def test_input_errors(training):
    with pytest.raises(DataError, match="not fitted"):
        GaussianCopula().sample(10, rng=1)
    with pytest.raises(DataError, match="columns not in the data: 'bmi'"):
        GaussianCopula(columns=["x", "bmi"]).fit(training)
    with pytest.raises(DataError, match="has no observed values"):
        GaussianCopula().fit(pd.DataFrame({"x": [1.0, 2.0], "y": [np.nan, np.nan]}))
    with pytest.raises(ValueError, match="smoothing must be"):
        GaussianCopula(smoothing=-1).fit(training)
    dates = pd.DataFrame({"d": pd.date_range("2020-01-01", periods=5), "x": np.arange(5.0)})
    with pytest.raises(DataError, match="neither numeric nor categorical"):
        GaussianCopula().fit(dates)


def test_constant_and_boolean_columns(rng):
    data = pd.DataFrame(
        {
            "site": ["A"] * 300,
            "smoker": rng.random(300) < 0.3,
            "dose": np.full(300, 10.0),
            "bmi": rng.normal(27, 4, 300),
        }
    )
    sample = GaussianCopula().fit(data).sample(400, rng=rng)
    assert sample.dtypes.equals(data.dtypes)
    assert (sample["site"] == "A").all()
    assert (sample["dose"] == 10.0).all()
    assert 0.2 < sample["smoker"].mean() < 0.4


# -- integer columns: latent kernel, lattice, cross-validated window ----------------------

ATOM = 0.15  # P(count = 0)
HEAP = 0.5  # share of counts k >= 3 recorded as the nearest multiple of 5
N_COUNTS = 5_000
RHO_COUNTS = 0.5


def _heaped_pmf() -> np.ndarray:
    """Mass function on 0, 1, ..., of a count that is 0 with probability ``ATOM`` and
    otherwise ``k = 1 + round(G)``, ``G ~ Gamma(3, scale=8)``, recorded as
    ``5 * round(k / 5)`` with probability ``HEAP`` when ``k >= 3``."""
    k = np.arange(1, 400)
    gamma = stats.gamma(3, scale=8)
    base = gamma.cdf(k - 0.5) - gamma.cdf(k - 1.5)
    heaped = np.where(k >= 3, 5 * np.round(k / 5), k).astype(np.int64)
    pmf = np.zeros(405)
    pmf[0] = ATOM
    np.add.at(pmf, k, (1 - ATOM) * (1 - HEAP) * base)
    np.add.at(pmf, heaped, (1 - ATOM) * HEAP * base)
    return pmf / pmf.sum()  # the mass beyond 400 (< 1e-15) is dropped


HEAPED_PMF = _heaped_pmf()


def _heaped_counts(u: np.ndarray) -> np.ndarray:
    """The count with mass function ``HEAPED_PMF`` at uniform ``u`` (quantile transform)."""
    return np.searchsorted(np.cumsum(HEAPED_PMF), u, side="right").astype(np.int64)


def _smooth_scores(z: np.ndarray) -> np.ndarray:
    return np.round(50 + 10 * z).astype(np.int64)


def _counts_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    corr = np.array([[1.0, RHO_COUNTS], [RHO_COUNTS, 1.0]])
    z = rng.standard_normal((n, 2)) @ np.linalg.cholesky(corr).T
    return pd.DataFrame(
        {"nodes": _heaped_counts(stats.norm.cdf(z[:, 0])), "score": _smooth_scores(z[:, 1])}
    )


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return _counts_frame(N_COUNTS, np.random.default_rng(20261124))


@pytest.fixture(scope="module")
def counts_copula(counts) -> GaussianCopula:
    return GaussianCopula().fit(counts)


@pytest.fixture(scope="module")
def counts_synthetic(counts_copula) -> pd.DataFrame:
    return counts_copula.sample(N_SYNTH, rng=8)


def test_point_mass_and_heaping_reproduced(counts, counts_copula, counts_synthetic):
    nodes = counts_synthetic["nodes"].to_numpy()
    kinds = {m["name"]: m["kind"] for m in counts_copula.marginals_}
    assert kinds == {"nodes": "integer", "score": "integer"}
    assert nodes.min() >= counts["nodes"].min()
    assert nodes.max() <= counts["nodes"].max()
    # the point mass at 0
    assert abs((nodes == 0).mean() - ATOM) < 4 * _se_proportion(ATOM, N_COUNTS)
    # heaping: the share of multiples of 5 among positive counts (about 0.60, against
    # about 0.2 for a smooth count); the smoothing bias is well within the 4 SE
    positive = HEAPED_PMF[1:].sum()
    p5 = HEAPED_PMF[5::5].sum() / positive
    synthetic = nodes[nodes > 0]
    se = math.sqrt(p5 * (1 - p5) * (1 / (N_COUNTS * positive) + 1 / len(synthetic)))
    assert abs((synthetic % 5 == 0).mean() - p5) < 4 * se
    # the largest atom above zero, at 20
    assert abs((nodes == 20).mean() - HEAPED_PMF[20]) < 4 * _se_proportion(HEAPED_PMF[20], N_COUNTS)


def test_integer_dependence_recovered(counts_copula, counts, counts_synthetic):
    # latent correlation: the polyserial correction of the tied normal scores
    assert abs(counts_copula.correlation_[0, 1] - RHO_COUNTS) < 4 * 1.1 / math.sqrt(N_COUNTS)
    # Spearman correlation of the counts, against 10^6 draws of the true model (MC SE
    # about 0.001); the SE of a sample Spearman correlation is below 1 / sqrt(n)
    truth = _counts_frame(1_000_000, np.random.default_rng(5))
    expected = stats.spearmanr(truth["nodes"], truth["score"]).statistic
    observed = stats.spearmanr(counts_synthetic["nodes"], counts_synthetic["score"]).statistic
    assert abs(observed - expected) < 4 * math.sqrt(1 / N_COUNTS + 1 / N_SYNTH) + 0.004


def _squared_cdf_error(column: np.ndarray, smoothing, truth_cdf: np.ndarray) -> tuple[float, float]:
    """Sum over the lattice 0, 1, ... of (fitted CDF - true CDF)**2, and the window used."""
    copula = GaussianCopula(smoothing=smoothing).fit(pd.DataFrame({"v": column}))
    marginal = copula.marginals_[0]
    edges = np.arange(len(truth_cdf)) + 0.5
    q = marginal["quantiles"]
    fitted = np.where(
        edges < q[0],
        0.0,
        np.where(edges >= q[-1], 1.0, stats.norm.cdf(np.interp(edges, q, Z_GRID))),
    )
    return float(np.sum((fitted - truth_cdf) ** 2)), marginal["window"]


@pytest.mark.parametrize("shape", ["heaped", "smooth"])
def test_cross_validated_window_is_near_the_oracle(shape):
    """The window chosen by cross-validation does about as well as the best of WINDOWS
    judged against the true distribution (the oracle), for a rough and a smooth column."""
    rng = np.random.default_rng(31 if shape == "heaped" else 32)
    if shape == "heaped":
        column, pmf = _heaped_counts(rng.random(2000)), HEAPED_PMF
    else:
        column = _smooth_scores(rng.standard_normal(2000))
        grid = np.arange(101)
        pmf = stats.norm.cdf(grid + 0.5, 50, 10) - stats.norm.cdf(grid - 0.5, 50, 10)
    truth = np.cumsum(pmf)
    errors = {w: _squared_cdf_error(column, w, truth)[0] for w in WINDOWS}
    error, window = _squared_cdf_error(column, None, truth)
    assert error <= 1.25 * min(errors.values())
    # a heaped count is smoothed little; a smooth one much more
    assert window <= 1.0 if shape == "heaped" else window >= 4.0


def test_latent_kernel_quantiles_by_quadrature(rng):
    """``Q(z) = E Q_n(Phi(z + tau e))`` against a direct numerical integration over ``e``."""
    values = np.sort(np.concatenate([np.zeros(40), rng.poisson(6, 160)])).astype(float)
    levels, counts = np.unique(values, return_counts=True)
    z = np.linspace(-3, 3, 13)
    e = np.linspace(-9, 9, 360_001)
    weights = stats.norm.pdf(e) * (e[1] - e[0])
    cumulative = np.cumsum(counts) / counts.sum()
    for window in (0.5, 4.0):
        tau = window / math.sqrt(len(values))
        p = stats.norm.cdf(z[:, None] + tau * e[None, :])
        step = levels[np.minimum(np.searchsorted(cumulative, p, side="left"), len(levels) - 1)]
        expected = step @ weights
        np.testing.assert_allclose(
            latent_kernel_quantiles(levels, counts, window, z), expected, atol=2e-3
        )


def test_lattice_of_the_observed_precision(rng):
    # tumour sizes recorded to 10 mm: 20 levels, all multiples of 10
    sizes = 10 * np.clip(np.round(rng.gamma(4, 2.5, 800)), 1, 20).astype(np.int64)
    data = pd.DataFrame({"size": sizes, "age": np.round(rng.normal(60, 9, 800)).astype(np.int64)})
    copula = GaussianCopula().fit(data)
    assert copula.marginals_[0]["step"] == 10
    assert copula.marginals_[1]["step"] == 1
    sample = copula.sample(5000, rng=rng)
    assert (sample["size"] % 10 == 0).all()
    assert sample["size"].between(sizes.min(), sizes.max()).all()
    values = copula.latent_values("size", np.linspace(-6, 6, 101))
    assert set(np.unique(values)) <= set(range(10, 210, 10))
    given = copula.sample(200, rng=rng, conditions={"size": 50})
    assert (given["size"] == 50).all()
    with pytest.raises(DataError, match="plus a multiple of 10"):
        copula.sample(10, rng=rng, conditions={"size": 55})


def test_integer_smoothing_options(counts, counts_copula):
    fixed = GaussianCopula(columns=["nodes"], smoothing=2.0).fit(counts)
    assert fixed.marginals_[0]["window"] == 2.0
    # smoothing=0: interpolated order statistics, then rounding: the empirical heaping
    raw = GaussianCopula(columns=["nodes"], smoothing=0).fit(counts)
    assert raw.marginals_[0]["window"] == 0.0
    nodes = raw.sample(N_SYNTH, rng=9)["nodes"]
    observed = counts["nodes"]
    p = (observed == 20).mean()
    assert abs((nodes == 20).mean() - p) < 4 * math.sqrt(p * (1 - p) / N_SYNTH)
    # a generator saved before the lattice step was stored samples with step 1
    old = GaussianCopula().fit(counts)
    del old.marginals_[0]["step"]
    pd.testing.assert_frame_equal(old.sample(500, rng=10), counts_copula.sample(500, rng=10))
