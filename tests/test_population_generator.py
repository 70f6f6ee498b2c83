"""Trial populations drawn from a fitted Gaussian copula (phase 2 -> phase 3)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from generators.copula import GaussianCopula
from generators.population import GeneratorCovariates
from trials.engine import patient_table
from trials.exceptions import ProtocolError
from trials.validation import load_protocol

LATENT = np.array(
    [[1.0, 0.6, 0.4, 0.0], [0.6, 1.0, 0.3, 0.0], [0.4, 0.3, 1.0, 0.2], [0.0, 0.0, 0.2, 1.0]]
)


@pytest.fixture(scope="module")
def phase2() -> pd.DataFrame:
    """Patients from a known Gaussian copula: age N(60, 10), marker log-normal(0, 1),
    sex F/M (P(M) = 0.5), smoker 0/1 (P(1) = 0.3)."""
    z = np.random.default_rng(11).multivariate_normal(np.zeros(4), LATENT, size=3000)
    return pd.DataFrame(
        {
            "age": 60 + 10 * z[:, 0],
            "marker": np.exp(z[:, 1]),
            "sex": np.where(z[:, 2] < 0, "F", "M"),
            "smoker": (z[:, 3] > stats.norm.ppf(0.7)).astype(int),
            "stage": np.random.default_rng(12).choice(["I", "II", "III"], size=3000),
        }
    )


@pytest.fixture(scope="module")
def copula(phase2) -> GaussianCopula:
    return GaussianCopula().fit(phase2)


def test_kinds_levels_and_means(copula):
    model = GeneratorCovariates(copula, ["age", "marker", "sex", "smoker"])
    kinds = [model.kind(n) for n in model.names]
    assert kinds == ["continuous", "continuous", "categorical", "binary"]
    assert model.categorical_levels() == {"sex": ["F", "M"]}
    assert model.n_levels("smoker") == 2
    # population means of the known distribution, within the phase-2 sampling error
    assert model.mean("age") == pytest.approx(60.0, abs=4 * 10 / np.sqrt(3000))
    assert model.mean("marker") == pytest.approx(np.exp(0.5), abs=4 * 2.16 / np.sqrt(3000))
    assert model.mean("smoker") == pytest.approx(0.3, abs=4 * np.sqrt(0.21 / 3000))


def test_marginals_and_dependence_are_the_known_ones(copula):
    model = GeneratorCovariates(copula, ["age", "marker", "sex", "smoker"])
    draws = model.transform(np.random.default_rng(3).standard_normal((100_000, 4)))
    assert draws["sex"].dtype == np.int64
    assert draws["sex"].mean() == pytest.approx(0.5, abs=0.03)
    assert np.std(draws["age"]) == pytest.approx(10.0, rel=0.06)
    # the normal scores of the continuous columns keep the latent correlation 0.6
    assert np.corrcoef(draws["age"], np.log(draws["marker"]))[0, 1] == pytest.approx(0.6, abs=0.05)
    assert set(np.unique(draws["smoker"])) == {0.0, 1.0}


def test_a_subset_of_columns_is_the_copula_of_the_submatrix(copula):
    model = GeneratorCovariates(copula, ["marker", "age"])
    index = [copula.columns_modelled_.index(c) for c in ("marker", "age")]
    expected = copula.correlation_[np.ix_(index, index)]
    np.testing.assert_allclose(model._cholesky @ model._cholesky.T, expected, atol=1e-12)


def test_unknown_columns_and_other_generators_are_refused(copula):
    from generators.mechanistic import TumourGrowthInhibition

    with pytest.raises(Exception, match=r"\['weight'\] are not columns of the generator"):
        GeneratorCovariates(copula, ["age", "weight"])
    with pytest.raises(Exception, match="needs a Gaussian copula generator"):
        GeneratorCovariates(TumourGrowthInhibition(), ["age"])


PROTOCOL = """
id: P3-FROM-P2
title: Phase 3 population from a phase-2 copula
phase: 3
version: "1"
arms:
  - {{name: control, control: true}}
  - {{name: experimental}}
population:
  n_patients: {n}
  accrual: {{periods: [{{rate: 50}}]}}
  generator:
    model: {model}
    covariates: [age, sex, smoker]
  eligibility: ["age >= 55"]
randomization: {{method: blocks, block_sizes: [4]}}
endpoints:
  primary:
    name: score
    type: continuous
    assessment_month: 1
    estimand: {{summary_measure: difference_in_means}}
    control: {{mean: 10, sd: 5}}
    better: higher
    effect: {{mean_difference: 2}}
    covariate_effects: {{{effects}}}
analysis:
  primary: {{test: t_test}}
  timing: {{type: follow_up, months: 1}}
simulation: {{n_replicates: 200, seed: 5}}
"""


def write_protocol(tmp_path, copula, n=2000, model="models/copula.json",
                   effects="age: 0.3, sex: {M: 1.0}"):
    (tmp_path / "models").mkdir(exist_ok=True)
    copula.save(tmp_path / "models" / "copula.json")
    path = tmp_path / "protocol.yaml"
    path.write_text(textwrap.dedent(PROTOCOL.format(n=n, model=model, effects=effects)))
    return path


def test_protocol_population_from_a_generator_with_eligibility(tmp_path, copula):
    protocol = load_protocol(write_protocol(tmp_path, copula))
    table = patient_table(protocol, replicate=0)
    assert (table["age"] >= 55).all()
    assert set(table["sex"].cat.categories) == {"F", "M"}
    # covariate effects are centred at the generator's population mean (about 60), so the
    # control mean is 10 + 0.3 (E[age | age >= 55] - E[age]) + 1.0 (P(M | age >= 55) - 0),
    # from the known distribution: truncated normal and the latent correlation 0.4
    shift = 10 * stats.norm.pdf(-0.5) / stats.norm.sf(-0.5)
    z_age = np.random.default_rng(9).multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], 400_000)
    p_male = (z_age[z_age[:, 0] >= -0.5, 1] >= 0).mean()
    expected = 10 + 0.3 * shift + 1.0 * p_male
    control = table[table["arm"] == "control"]["score_value"]
    assert control.mean() == pytest.approx(expected, abs=4 * 5.3 / np.sqrt(len(control)) + 0.15)


def test_simulation_with_a_generator_population(tmp_path, copula):
    from trials.simulation import simulate

    protocol = load_protocol(write_protocol(tmp_path, copula, n=200))
    result = simulate(protocol, n_replicates=200)
    table = result.operating_characteristics.table
    design = table[table["scenario"] == "design"].iloc[0]
    # the mean difference is estimated without bias whatever the covariates
    assert abs(design["estimate_bias"]) < 4 * design["estimate_bias_mcse"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"effects": "weight: 0.1"}, "unknown covariate 'weight'"),
        ({"effects": "sex: {X: 1.0}"}, "'X' is not a level of 'sex'"),
        ({"effects": "sex: 1.0"}, "categorical covariate 'sex' takes one effect per level"),
        ({"model": "models/none.json"}, "model file 'models/none.json' not found"),
    ],
)
def test_protocol_errors_name_the_field(tmp_path, copula, kwargs, message):
    with pytest.raises(ProtocolError, match=message) as error:
        load_protocol(write_protocol(tmp_path, copula, **kwargs))
    assert "protocol.yaml" in str(error.value)


def test_covariates_and_a_generator_together_are_refused(tmp_path, copula):
    path = write_protocol(tmp_path, copula)
    text = path.read_text().replace(
        "  generator:", "  covariates: [{name: bmi, distribution: normal}]\n  generator:"
    )
    path.write_text(text)
    with pytest.raises(ProtocolError, match="not both"):
        load_protocol(path)


def test_ancova_on_generator_covariates_equals_statsmodels(tmp_path, copula):
    """ANCOVA with a three-level categorical and a numeric generator covariate: the treatment
    estimate and SE of one simulated trial equal statsmodels OLS on its patient table."""
    import statsmodels.formula.api as smf

    from trials.simulation import simulate

    path = write_protocol(tmp_path, copula, n=300)
    text = path.read_text().replace("primary: {test: t_test}",
                                    "primary: {test: ancova, covariates: [age, stage]}")
    text = text.replace("covariates: [age, sex, smoker]", "covariates: [age, sex, smoker, stage]")
    path.write_text(text.replace("sex: {M: 1.0}", "sex: {M: 1.0}, stage: {II: 2.0, III: 5.0}"))
    protocol = load_protocol(path)
    table = patient_table(protocol, replicate=0)
    table = table[table["score_analysed"]].assign(
        treated=(table["arm"] == "experimental").astype(float), stage=table["stage"].astype(str)
    )
    fit = smf.ols("score_value ~ treated + age + C(stage)", data=table).fit()
    row = simulate(protocol, n_replicates=1, scenarios=("design",)).replicates.iloc[0]
    assert row["estimate"] == pytest.approx(fit.params["treated"], rel=1e-9)
    assert row["se"] == pytest.approx(fit.bse["treated"], rel=1e-9)
