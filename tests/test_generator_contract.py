"""The generator contract, checked on every registered generator (as scikit-learn's
``parametrize_with_checks``): fit returns self, same seed gives the same patients, the
output has the training schema, and save/load round-trips exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import generators  # noqa: F401  (registers the generators)
from generators.base import REGISTRY, data_hash, load


@pytest.fixture
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 300
    age = rng.normal(60, 10, n)
    treated = (rng.random(n) < 0.5).astype(int)
    time = 20 * (-np.log(rng.random(n)) * np.exp(0.5 * treated)) ** (1 / 1.3)
    censor = rng.uniform(5, 60, n)
    return pd.DataFrame(
        {
            "age": age,
            "weight": np.exp(rng.normal(4.3, 0.2, n)),
            "stage": pd.Categorical(rng.choice(["I", "II", "III"], n, p=[0.5, 0.3, 0.2])),
            "prior_lines": rng.integers(0, 4, n),
            "smoker": (rng.random(n) < 0.3).astype(int),
            "treated": treated,
            "time": np.minimum(time, censor),
            "event": (time <= censor).astype(int),
        }
    )


# generators that need a configuration for the contract cohort, kept small and fast
CONFIGURED = {
    "bayesian_weibull": dict(
        treatment="treated", covariates=["age", "stage"], chains=2, draws=200, tune=200
    ),
    "bayesian_piecewise_exponential": dict(
        treatment="treated", covariates=["age", "stage"], n_intervals=4, chains=2, draws=100,
        tune=100,
    ),
    "bayesian_logistic": dict(
        outcome="smoker", treatment="treated", covariates=["age", "stage"], chains=2, draws=100,
        tune=100,
    ),
    "bayesian_linear": dict(
        outcome="weight", treatment="treated", covariates=["age", "stage"], chains=2, draws=100,
        tune=100,
    ),
    "vae": dict(epochs=20, hidden=(32, 32), device="cpu"),
    "rhvae": dict(
        epochs=5, hidden=(32, 32), latent_dim=2, mcmc_chains=100, mcmc_warmup=5, device="cpu"
    ),
}
BAYESIAN_MARKS = [
    # third-party warnings of PyMC's stack, and short chains failing the ESS criterion
    pytest.mark.filterwarnings("ignore:ArviZ is undergoing a major refactor:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning"),
    pytest.mark.filterwarnings("ignore::trials.exceptions.ConvergenceWarning"),
]


@pytest.fixture(
    params=[
        pytest.param(kind, marks=BAYESIAN_MARKS if kind.startswith("bayesian_") else [])
        for kind in sorted(REGISTRY)
    ]
)
def generator(request):
    return REGISTRY[request.param](**CONFIGURED.get(request.param, {}))


def test_fit_returns_self_and_records_the_data(generator, cohort):
    assert generator.fit(cohort) is generator
    assert generator.data_hash_ == data_hash(cohort)
    assert generator.n_rows_ == len(cohort)


def test_same_seed_same_patients_and_the_training_schema(generator, cohort):
    generator.fit(cohort)
    a = generator.sample(50, rng=7)
    b = generator.sample(50, rng=7)
    pd.testing.assert_frame_equal(a, b)
    if not generator.learns_from_data:  # a mechanistic model has its own columns
        assert list(a.columns) == list(generator.sample(5, rng=1).columns)
        return
    # the modelled columns of the training data, in their order, with their dtypes
    assert list(a.columns) == [c for c in cohort.columns if c in a.columns]
    for column in a.columns:
        assert a[column].dtype.kind == cohort[column].dtype.kind or (
            isinstance(cohort[column].dtype, pd.CategoricalDtype)
        ), column
    assert len(a) == 50
    assert not a.equals(generator.sample(50, rng=8))


def test_save_load_round_trip(generator, cohort, tmp_path):
    generator.fit(cohort)
    path = tmp_path / "model.json"
    generator.save(path)
    loaded = load(path)
    assert type(loaded) is type(generator)
    assert loaded.get_params() == generator.get_params()
    pd.testing.assert_frame_equal(loaded.sample(40, rng=1), generator.sample(40, rng=1))
    text = path.read_text()
    assert repr(float(cohort["weight"].iloc[0])) not in text  # no raw rows by default


def test_unfitted_generator_refuses_to_sample(generator):
    from trials.exceptions import DataError

    with pytest.raises(DataError, match="not fitted"):
        generator.sample(5, rng=0)
