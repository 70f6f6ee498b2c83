"""A synthetic control arm: a single-arm trial against virtual patients drawn by a generator.

A **synthetic control arm** (:func:`synthetic_control_comparison`) replaces the external
patients by virtual patients that a generator fitted on them draws conditionally on each
trial patient's covariates (:func:`synthetic_control_arm`). Generated patients add no
information: the interval comes from a bootstrap (:func:`analysis.bootstrap.bootstrap`) over
the *real* external (and trial) patients that refits the generator in every resample, never
from the model's standard error on the generated arm. The hazard ratio is the Cox estimate of
:mod:`analysis.external_control`.

A **generated control test** (:func:`generated_control_test`) is the cheap alternative when
the generator is slow to fit (a VAE, an RHVAE, an MCMC posterior) and a bootstrap of a
hundred refits is out of reach: the generator is fitted ``K`` times, each time on a
bootstrap resample of the historical patients, each fit draws one virtual control arm, and
the log-rank estimate of the log hazard ratio is averaged over the ``K`` arms. Its variance
adds to the treated arm's sampling variance the variance of the mean generated control,
from the spread between the fits (the combining rule for fully synthetic data of
Raghunathan, Reiter and Rubin 2003): what the generator makes of the historical sample's
own error, whether it reproduces, amplifies or shrinks it, and its training noise. A trial
compared with a single generated arm by the plain log-rank test rejects a true null too
often; so does an ensemble of fits on the *same* historical patients, for a generator whose
output depends on its sample more than the sample's own error does.
``bench/bench_type1_generated_control.py`` measures these tests.

Assumptions: no unmeasured confounding given the covariates; the generator's model of the
outcome given the covariates; the same outcome definition, assessment and time zero in both
sources; proportional hazards; non-informative censoring.

References
----------
Raghunathan, T. E., Reiter, J. P. and Rubin, D. B. (2003). Multiple imputation for
statistical disclosure limitation. *Journal of Official Statistics* 19, 1-16 (the variance
``(1 + 1/m) b - u`` of an estimate from ``m`` fully synthetic data sets).
Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance
components. *Biometrics Bulletin* 2, 110-114 (the degrees of freedom).
van Breugel, B., Qian, Z. and van der Schaar, M. (2023). Synthetic data, real errors: how
(not) to publish and use synthetic data. *ICML* (an ensemble of generators carries the
generator's own uncertainty into downstream inference).
Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall
(percentile intervals, ch. 13).
FDA (2023). Considerations for the design and conduct of externally controlled trials for
drug and biological products (draft guidance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analysis.bootstrap import BootstrapResult, bootstrap
from analysis.external_control import _cox_log_hr
from trials.exceptions import DataError

__all__ = [
    "GeneratedControlTest",
    "SyntheticControlResult",
    "generated_control_test",
    "synthetic_control_arm",
    "synthetic_control_comparison",
]


def synthetic_control_arm(
    generator,
    trial: pd.DataFrame,
    covariates: Sequence[str],
    *,
    n_per_patient: int = 5,
    pool_size: int | None = None,
    rng: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Virtual control patients drawn from a generator near each trial patient's covariates.

    A pool of ``pool_size`` virtual patients is drawn from the generator; each trial
    patient takes the ``n_per_patient`` virtual patients with the same categories and the
    nearest numeric covariates (Euclidean distance after dividing each by its standard
    deviation in the pool). This approximates sampling the generator conditionally on the
    trial patient's covariates, for any generator.

    Parameters
    ----------
    generator : Generator
        Fitted on the external patients (covariates and outcome columns).
    trial : DataFrame
        The trial patients.
    covariates : sequence of str
    n_per_patient : int, default 5
    pool_size : int, optional
        Default ``max(10_000, 20 * n_per_patient * len(trial))``.
    rng : int or Generator

    Returns
    -------
    DataFrame
        ``n_per_patient * len(trial)`` virtual patients with ``trial_row`` (the trial
        patient's position) and ``distance`` (standardized distance to them).

    Raises
    ------
    DataError
        If the pool holds too few virtual patients with a trial patient's categories.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(rng)
    size = pool_size or max(10_000, 20 * n_per_patient * len(trial))
    pool = generator.sample(size, rng=rng).dropna().reset_index(drop=True)
    numeric = [
        c
        for c in covariates
        if pd.api.types.is_numeric_dtype(trial[c])
        and not isinstance(trial[c].dtype, pd.CategoricalDtype)
    ]
    categorical = [c for c in covariates if c not in numeric]
    scale = pool[numeric].astype(float).std().replace(0.0, 1.0) if numeric else None
    cells = _cells(trial, categorical)
    pool_cells = _cells(pool, categorical)
    frames = []
    positions = np.arange(len(trial))
    for cell in [None] if cells is None else cells.unique():
        mine = positions if cell is None else positions[(cells == cell).to_numpy()]
        candidates = pool if cell is None else pool[(pool_cells == cell).to_numpy()]
        if len(candidates) < n_per_patient:
            raise DataError(
                f"the generator drew {len(candidates)} virtual patients with "
                f"{dict(zip(categorical, cell.split('|'), strict=True))} in a pool of {size}; "
                f"{n_per_patient} are needed per trial patient (increase pool_size)"
            )
        if numeric:
            tree = cKDTree(candidates[numeric].to_numpy(float) / scale.to_numpy())
            points = trial.iloc[mine][numeric].to_numpy(float) / scale.to_numpy()
            distance, index = tree.query(points, k=n_per_patient)
            distance = distance.reshape(len(mine), n_per_patient)
            index = index.reshape(len(mine), n_per_patient)
        else:
            index = np.vstack(
                [rng.choice(len(candidates), n_per_patient, replace=False) for _ in mine]
            )
            distance = np.zeros(index.shape)
        chosen = candidates.iloc[index.ravel()].reset_index(drop=True)
        chosen.insert(0, "trial_row", np.repeat(mine, n_per_patient))
        chosen["distance"] = distance.ravel()
        frames.append(chosen)
    return pd.concat(frames, ignore_index=True).sort_values("trial_row", kind="stable")


def _cells(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series | None:
    """The combination of the categorical columns' values, as one text per row."""
    if not columns:
        return None
    out = frame[columns[0]].astype(str)
    for name in columns[1:]:
        out = out + "|" + frame[name].astype(str)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class SyntheticControlResult:
    """A single-arm trial against a generated (synthetic) control arm.

    Attributes
    ----------
    log_hr : float
        Cox estimate, trial / synthetic (unweighted; the generated arm's size only reduces
        Monte Carlo noise).
    bootstrap : BootstrapResult
        Over the real trial and real external patients, refitting the generator.
    n_trial, n_external, n_generated : int
        Real trial patients, real external patients the generator learned from, and
        generated patients in the synthetic arm.
    generator : str
        The generator's kind.
    mean_distance : float
        Mean standardized distance between a trial patient and their virtual controls.
    notes : tuple of str
        What the reader must know, in words.
    """

    log_hr: float
    bootstrap: BootstrapResult
    n_trial: int
    n_external: int
    n_generated: int
    generator: str
    mean_distance: float
    notes: tuple[str, ...]

    @property
    def hazard_ratio(self) -> float:
        return math.exp(self.log_hr)

    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        """Bootstrap percentile interval of the hazard ratio (the only interval given)."""
        low, high = self.bootstrap.conf_int(level)
        return math.exp(low), math.exp(high)

    def summary(self) -> pd.DataFrame:
        low, high = self.conf_int()
        return pd.DataFrame(
            {
                "hazard_ratio": [self.hazard_ratio],
                "conf_low": [low],
                "conf_high": [high],
                "n_trial": [self.n_trial],
                "n_external_real": [self.n_external],
                "n_generated": [self.n_generated],
                "generator": [self.generator],
            }
        )


def synthetic_control_comparison(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    time: str,
    event: str,
    generator: str = "copula",
    n_per_patient: int = 5,
    n_resamples: int = 100,
    rng: int | np.random.Generator | None = 0,
    level: float = 0.95,
) -> SyntheticControlResult:
    """Compare the trial with a synthetic control arm, with inference on the real sizes.

    A generator of kind ``generator`` (its default configuration) is fitted on the
    external patients' covariates, time and event; :func:`synthetic_control_arm` draws
    ``n_per_patient`` virtual patients for each trial patient; the Cox hazard ratio
    compares the trial with them. The interval is a percentile bootstrap that resamples
    the real trial and the real external patients and refits the generator in every
    resample, so its width reflects the number of real external patients, whatever the
    number generated.

    Parameters
    ----------
    data : DataFrame
        Trial and external patients, harmonised.
    treatment, covariates, time, event : str
        As in :func:`analysis.external_control.analyse_external_control`.
    generator : str, default "copula"
        A registered generator kind (:data:`generators.base.REGISTRY`).
    n_per_patient : int, default 5
    n_resamples : int, default 100
    rng : int or Generator
    level : float, default 0.95

    Returns
    -------
    SyntheticControlResult

    Notes
    -----
    Drawing the synthetic arm at the trial patients' covariates makes it match the
    trial's covariate distribution by construction (a g-computation of the control
    outcome), so the comparison rests on the generator's model of the outcome given the
    covariates (for the copula: Gaussian dependence) as well as on no unmeasured
    confounding.
    """
    import generators  # noqa: F401  (registers the generators)
    from generators.base import REGISTRY

    if generator not in REGISTRY:
        raise DataError(f"unknown generator {generator!r} (known: {', '.join(sorted(REGISTRY))})")
    cls = REGISTRY[generator]
    treated = data[treatment].to_numpy(dtype=float) == 1
    columns = [*covariates, time, event]

    def estimate(frame: pd.DataFrame, child: np.random.Generator) -> tuple[float, pd.DataFrame]:
        is_trial = frame[treatment].to_numpy(dtype=float) == 1
        model = cls().fit(frame.loc[~is_trial, columns].reset_index(drop=True))
        trial = frame.loc[is_trial].reset_index(drop=True)
        virtual = synthetic_control_arm(
            model, trial, covariates, n_per_patient=n_per_patient, rng=child
        )
        t = np.concatenate([trial[time].to_numpy(float), virtual[time].to_numpy(float)])
        e = np.concatenate([trial[event].to_numpy(float), virtual[event].to_numpy(float)])
        if not ((t > 0).all() and np.isin(e, (0.0, 1.0)).all()):
            raise DataError("the generator produced invalid times or events")
        arm = np.arange(t.size) < len(trial)
        return _cox_log_hr(t, e, arm, np.ones(t.size)), virtual

    point_rng, boot_rng = np.random.default_rng(rng).spawn(2)
    log_hr, virtual = estimate(data, point_rng)
    boot = bootstrap(
        lambda frame, child: estimate(frame, child)[0],
        data,
        treated,
        n_resamples=n_resamples,
        rng=boot_rng,
        level=level,
    )
    n_trial, n_external = int(treated.sum()), int((~treated).sum())
    notes = (
        f"The synthetic control arm holds {len(virtual)} patients generated by a {generator} "
        f"model fitted on {n_external} real external patients ({n_per_patient} per trial "
        "patient, the nearest to the trial patient's covariates in a large generated pool).",
        "Generated patients add no information: the confidence interval is a bootstrap over "
        f"the {n_trial} real trial and {n_external} real external patients that refits the "
        "generator in every resample, so it reflects the real external sample size; the Cox "
        "model's standard error on the generated arm is not used.",
    )
    return SyntheticControlResult(
        log_hr=log_hr,
        bootstrap=boot,
        n_trial=n_trial,
        n_external=n_external,
        n_generated=len(virtual),
        generator=generator,
        mean_distance=float(virtual["distance"].mean()),
        notes=notes,
    )


@dataclass(frozen=True)
class GeneratedControlTest:
    """Result of :func:`generated_control_test` (experimental arm against generated arms).

    Attributes
    ----------
    log_hr : float
        Mean over the generated arms of Peto's log-rank estimate of the log hazard ratio
        (treated / control).
    se : float
        ``sqrt(treated_variance + generator_variance)``.
    z : float
        ``log_hr / se``.
    df : float
        Degrees of freedom of the t reference (Satterthwaite); ``inf`` when the arms agree.
    p_value : float
        Two-sided, from the t distribution with ``df`` degrees of freedom.
    treated_variance : float
        Sampling variance of the treated arm's part of the estimate, ``1 / E``, with ``E``
        the treated arm's expected events under the null (mean over the arms).
    generator_variance : float
        Variance of the mean generated control: ``(1 + 1/K) b - w``, at least ``b / K``.
    between_variance : float
        ``b``, the sample variance of the log hazard ratio over the generated arms.
    within_variance : float
        ``w``, the generated arms' own sampling variance (the mean log-rank variance of
        the estimate less ``treated_variance``, at least 0).
    members : int
        ``K``, the number of generated arms (generator fits).
    naive_z : float
        The plain log-rank z against the first generated arm, for comparison: what a test
        that takes the generated arm for real patients would report.
    """

    log_hr: float
    se: float
    z: float
    df: float
    p_value: float
    treated_variance: float
    generator_variance: float
    between_variance: float
    within_variance: float
    members: int
    naive_z: float


def generated_control_test(
    treated: tuple[ArrayLike, ArrayLike],
    generated: Sequence[tuple[ArrayLike, ArrayLike]],
) -> GeneratedControlTest:
    """Log-rank comparison of an experimental arm with control arms drawn by generator fits.

    Each element of ``generated`` is the control arm drawn by one fit of the generator on
    its own **bootstrap resample** of the historical patients (and its own seed). With
    ``theta_k`` Peto's log-rank estimate of the log hazard ratio against arm ``k``, ``b``
    their sample variance over the ``K`` arms, ``v_T = 1 / E`` the treated arm's own
    sampling variance (``E``: its expected events under the null) and ``w`` the arms'
    own sampling variance (mean log-rank variance ``1 / V_k`` less ``v_T``), the test
    uses::

        theta = mean(theta_k),   se^2 = v_T + G,   G = max((1 + 1/K) b - w, b / K),
        df = (K - 1) (se^2 / (c b))^2   (c = 1 + 1/K, or 1/K where the floor holds),
        t = theta / se.

    ``G`` is the variance of the mean generated control about the population: the
    bootstrap spread ``b - w`` of the generator's output stands for the variance of what
    the generator makes of a historical sample (the historical patients' sampling error,
    as a generator changes it, plus training noise), and ``b / K`` for the variance of
    the mean over ``K`` fits: the combining rule of Raghunathan, Reiter and Rubin (2003)
    for fully synthetic data, with the treated arm real. Because the fits see resampled
    data, a generator that amplifies or shrinks the historical sample's deviations is
    covered; fits on the same data only see the training noise.

    Parameters
    ----------
    treated : (time, event) pair of 1-D arrays
        The real experimental patients.
    generated : sequence of (time, event) pairs
        At least two generated control arms, one per generator fit on a bootstrap
        resample of the historical patients. Draw large arms (several times the treated
        arm; generation is cheap): the test subtracts the arms' own sampling variance
        ``w``, and when it dominates ``b`` the floor ``b / K`` makes the test conservative.

    Returns
    -------
    GeneratedControlTest

    Raises
    ------
    DataError
        If fewer than two generated arms are given, or an arm has no event at a time
        where both arms are at risk.

    Notes
    -----
    The test assumes that the generator is centred on the historical patients (no bias):
    a generator that moves the event rate shifts ``theta`` and no variance term can
    correct that. Training noise is counted in ``b`` as if it were data variance, which
    makes the test conservative for a generator whose fits differ much from seed to seed.
    Under the null the historical and treated patients share one population.
    """
    from scipy import stats

    from analysis.logrank import logrank_test

    if len(generated) < 2:
        raise DataError(
            f"a generated control test needs at least 2 generated arms, got {len(generated)}"
        )
    treated_time = np.asarray(treated[0], float)
    treated_event = np.asarray(treated[1], bool)

    def against(control: tuple[ArrayLike, ArrayLike]):
        time = np.concatenate([treated_time, np.asarray(control[0], float)])
        event = np.concatenate([treated_event, np.asarray(control[1], bool)])
        result = logrank_test(time, event, np.arange(time.size) < treated_time.size)
        if not result.variance > 0:
            raise DataError("no event at a time where both arms are at risk")
        return result

    fits = [against(arm) for arm in generated]
    thetas = np.array([float(f.log_hr) for f in fits])
    members = len(thetas)
    expected = float(treated_event.sum()) - np.mean(
        [float(f.observed_minus_expected) for f in fits]
    )
    v_t = 1.0 / expected
    within = max(float(np.mean([1.0 / float(f.variance) for f in fits])) - v_t, 0.0)
    between = float(np.var(thetas, ddof=1))
    inflated = (1 + 1 / members) * between - within
    if inflated >= between / members:
        generator, coefficient = inflated, 1 + 1 / members
    else:
        generator, coefficient = between / members, 1 / members
    theta = float(thetas.mean())
    se = math.sqrt(v_t + generator)
    z = theta / se
    df = math.inf if between == 0 else (members - 1) * (se**2 / (coefficient * between)) ** 2
    return GeneratedControlTest(
        log_hr=theta,
        se=se,
        z=z,
        df=df,
        p_value=float(2 * stats.t.sf(abs(z), df)),
        treated_variance=v_t,
        generator_variance=generator,
        between_variance=between,
        within_variance=within,
        members=members,
        naive_z=float(fits[0].z),
    )
