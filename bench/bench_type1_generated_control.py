"""Type I error of a trial whose control arm is generated (a "virtual control arm").

Question: when the treated arm of a new trial has *no* effect, does a trial that compares it
with a control arm drawn from a generator fitted on historical patients reject the null at
its nominal rate? (Synthetic controls from VAEs have been reported to miscalibrate error
rates.) The generators: the Gaussian copula (:class:`generators.copula.GaussianCopula`), a
Bayesian survival model (:class:`generators.bayesian.BayesianPiecewiseExponential`, and the
:class:`~generators.bayesian.BayesianWeibull` in the fit-once variant), the VAE
(:class:`generators.vae.TabularVAE`) and the RHVAE (:class:`generators.rhvae.RHVAE`).

Data: lifelines' GBSG2, restricted to the 440 patients *without* hormonal therapy
(``horTh == "no"``; the column is then dropped), so that every patient comes from one
population and no treatment effect exists: recurrence-free survival ``time`` (days) with
event ``cens``, and 7 covariates (age, menostat, tsize, tgrade, pnodes, progrec, estrec).

One replicate:

1. split the 440 patients at random into a *historical* part (300) and a disjoint *trial
   pool* (140);
2. the treated arm of the new trial: 100 patients drawn without replacement from the pool
   (real patients, no effect: the same population);
3. a control arm of 100 patients from the source under study (below);
4. a two-sided log-rank test of treated against control at alpha = 0.05
   (:func:`analysis.logrank.logrank_test`); record whether it rejects.

The type I error is the rejection rate over ``R`` replicates, given with its Monte Carlo SE
``sqrt(p (1 - p) / R)`` and a 95 % Wilson interval; "within +/-2 pp" says whether the
estimate lies in [3 %, 7 %], and "CI vs band" whether the whole interval lies inside that
band, outside it, or straddles an edge (the replicates cannot tell). Each row also gives the
mean and SD of the log-rank z over the replicates: under a calibrated test they are 0 and 1;
a mean away from 0 is a bias of the generated arm, an SD above 1 an excess of variance.

Control-arm sources:

- ``real_subsample``: 100 real historical patients drawn without replacement. The control
  and treated arms are then disjoint sets of real patients of one population: the real-data
  baseline, which should be at the nominal 5 %.
- ``real_bootstrap``: 100 draws *with* replacement from the 300 historical patients, that
  is the empirical distribution of the historical sample: the "perfect" non-parametric
  generator, which reproduces its training data's distribution exactly, no better.
- the generators, fitted on the historical patients and asked for 100 virtual patients.
  The Bayesian survival models draw uncensored event times; they are censored with times
  drawn from the reverse Kaplan-Meier estimate of the censoring distribution of the
  historical patients (beyond its last time: censored at the longest historical
  follow-up). The copula models time and event as two columns; the VAE and RHVAE model them
  as a censored pair (see their docstrings).

Three variants per source:

- ``refit`` (the honest one): every replicate draws a new split and refits the generator on
  its historical part, so that the error rate includes the uncertainty of the fit;
- ``fit_once``: one split (fixed by the seed) and one fit; each replicate draws only a new
  treated arm (100 of the fixed pool of 140) and a new virtual arm. Its rate is the type I
  error *conditional on that one fit* (and on the one pool): it ignores the uncertainty of
  the fit, and its departure from 5 % depends on how far that particular fit (and pool) lie
  from the population. The main table gives the first split; a second table repeats it on
  ``FIT_ONCE_SPLITS`` = 5 independent splits, each with its own fit, to show how much the
  conditional rate moves from one fit to the next. The ``real_*`` sources are also run this
  way: ``real_subsample`` on a split is the conditional rate of that split's real data,
  the yardstick of the generators on the same split.
- ``ensemble`` (the calibrated analysis): every replicate draws a new split as in
  ``refit``, fits the generator ``ENSEMBLE_MEMBERS`` = 5 times, each time on a bootstrap
  resample of its historical part (new seeds), draws one control arm of ``ENSEMBLE_ARM`` =
  1,000 from each fit (censored, for the Bayesian models, from the resample's reverse
  Kaplan-Meier) and tests with :func:`analysis.synthetic_control.generated_control_test`:
  the mean log-rank log hazard ratio over the arms, its variance the treated arm's
  sampling variance plus ``(1 + 1/5) b - w`` (``b``: between-arm variance, ``w``: the arms'
  own sampling variance; t reference). ``real_bootstrap`` here is the perfect generator
  of a resample (1,000 draws with replacement from it); ``real_subsample`` cannot draw
  1,000 of 300 and is not run. The row also gives the plain log-rank test against the
  first arm on the same replicates ("naive").

Why a generated control arm cannot be exactly calibrated here: the log-rank variance
counts the 100 + 100 patients of the trial, but a generated arm is drawn from a fitted
distribution that differs from the population by the sampling error of the ``n_h = 300``
historical patients. For an unbiased generator as precise as the empirical distribution the
variance of the statistic grows by the factor ``1 + n_t n_c / (n_h (n_t + n_c))`` (here
``1 + 100 / 600``), and the type I error becomes ``2 (1 - Phi(1.96 / sqrt(factor)))``
= 7.0 %, reported as ``predicted_type1_perfect_generator``; ``real_bootstrap`` checks it
empirically. A smoothed or parametric generator may have less variance than the empirical
distribution (if its model is right) or a bias (if not); early stopping or an MCMC posterior
add their own noise.

Compute (2 shared CPU cores, torch on 1 thread): common random numbers: replicate ``r``
uses the same split and treated arm for every source. The refit replicates of the VAE use
its default settings (at most 300 epochs, early stopping after 30 without improvement;
about 2.3 s per fit on 300 patients in the full run); the RHVAE is refitted with
``RHVAE_EPOCHS`` = 40 epochs (about 4.2 s) and with its default settings (its fit stops
after 100 to 200 epochs, about 11 s): rows ``rhvae`` and ``rhvae_default``, in both
variants. The Bayesian models run 2 chains of 250 draws
after 250 tuning steps (PyMC's NUTS, about 2.7 s per fit); at that size the convergence
check often flags a bulk ESS below 400, which is counted in the notes (the posterior is
only used to draw patients). ``R`` per row is in ``REPLICATES``: 4,000 for the cheap
real-data references (MC SE 0.3 to 0.4 pp), 400 for the copula (1.1 pp at a true 5 %), 120
to 150 for the Bayesian model and the VAE (1.8 to 2 pp) and 75 for each RHVAE row (2.5 pp) in
the refit variant; per split in the fit-once variant, 400 (100 for the RHVAE, whose latent
MCMC makes each draw slower). Each
row also gives the rate of a normal distribution with the replicates' mean and SD of z,
which is more precise than the share of rejections (the log-rank z of 100 + 100 patients is
close to normal). The refit and fit-once variants take about 40 minutes on 2 CPU cores;
the ensemble variant (5 fits and 5,000 virtual patients per replicate: about 0.8 s for
the copula, 9 s for the VAE, 12 s for the Bayesian model, 68 s for the default RHVAE)
about 1 hour as two processes, ``--sources`` split between them.

Usage: ``python bench/bench_type1_generated_control.py [--quick] [--seed S] [--threads N]
[--sources copula,vae,...] [--output-dir DIR]``. ``--quick``: a smoke run (few replicates,
few epochs; nothing is written unless ``--output-dir`` is given). Otherwise the results go
to bench/output/bench_type1_generated_control.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
OUTPUT = HERE / "output"

from bench_deep import clean  # noqa: E402  (JSON-ready numbers)

ALPHA = 0.05
BAND = 0.02  # the tolerance of the requirement: within +/-2 percentage points of alpha
N_HISTORICAL = 300
N_ARM = 100  # treated arm and virtual control arm
TIME, EVENT = "time", "cens"
RHVAE_EPOCHS = 40
BAYES_MCMC = {"chains": 2, "draws": 250, "tune": 250}
FIXED_SPLIT = 999_999  # seed-sequence key of the fixed splits of the fit-once variant

FIT_ONCE_SPLITS = 5  # independent (split, fit) pairs of the fit-once variant
ENSEMBLE_MEMBERS = 5  # generator fits per replicate in the ensemble variant
ENSEMBLE_ARM = 1000  # virtual patients per fit in the ensemble variant

#: Replicates per (source, variant) at the default setting; for the fit-once variant, per
#: split (each of the ``FIT_ONCE_SPLITS`` splits has its own fit and this many replicates).
REPLICATES: dict[tuple[str, str], int] = {
    ("real_subsample", "refit"): 4000,
    ("real_bootstrap", "refit"): 4000,
    ("copula", "refit"): 400,
    ("bayesian_pwe", "refit"): 120,
    ("vae", "refit"): 150,
    ("rhvae", "refit"): 75,
    ("rhvae_default", "refit"): 75,
    ("real_subsample", "fit_once"): 400,
    ("real_bootstrap", "fit_once"): 400,
    ("copula", "fit_once"): 400,
    ("bayesian_pwe", "fit_once"): 400,
    ("bayesian_weibull", "fit_once"): 400,
    ("vae", "fit_once"): 400,
    ("rhvae", "fit_once"): 100,
    ("rhvae_default", "fit_once"): 100,
    ("real_bootstrap", "ensemble"): 4000,
    ("copula", "ensemble"): 400,
    ("bayesian_pwe", "ensemble"): 80,
    ("vae", "ensemble"): 120,
    ("rhvae_default", "ensemble"): 40,
}
QUICK_REPLICATES: dict[tuple[str, str], int] = {
    key: 200 if key[0].startswith("real_") else (20 if key[1] == "fit_once" else 3)
    for key in REPLICATES
} | {("copula", "refit"): 20, ("copula", "ensemble"): 20}
QUICK_SPLITS = 2
QUICK_EPOCHS = 10


# -- data and control-arm sources ------------------------------------------------------------


def load_data() -> pd.DataFrame:
    """GBSG2 patients without hormonal therapy (one population, no treatment effect)."""
    from lifelines.datasets import load_gbsg2

    data = load_gbsg2()
    return data[data["horTh"] == "no"].drop(columns="horTh").reset_index(drop=True)


@dataclass(frozen=True)
class Source:
    """Where a control arm comes from.

    ``make(seed)`` returns an unfitted generator (``None`` for the real-data references,
    whose ``reference`` is ``"subsample"`` or ``"bootstrap"``); ``censor``: the generator
    draws uncensored event times, to be censored like the historical patients.
    """

    name: str
    description: str
    make: Callable[[int], Any] | None = None
    reference: str | None = None
    censor: bool = False


def sources(epochs: int | None = None) -> dict[str, Source]:
    """The control-arm sources; ``epochs`` overrides the VAE/RHVAE epochs (quick runs)."""

    def copula(seed: int):
        from generators.copula import GaussianCopula

        return GaussianCopula()

    def bayesian(kind: str):
        def make(seed: int):
            from generators.bayesian import BayesianPiecewiseExponential, BayesianWeibull

            cls = BayesianPiecewiseExponential if kind == "pwe" else BayesianWeibull
            return cls(time=TIME, event=EVENT, seed=seed, **BAYES_MCMC)

        return make

    def deep(kind: str, default_epochs: int | None):
        def make(seed: int):
            from generators.rhvae import RHVAE
            from generators.vae import TabularVAE

            cls = RHVAE if kind == "rhvae" else TabularVAE
            chosen = epochs if epochs is not None else default_epochs
            extra = {} if chosen is None else {"epochs": chosen}
            return cls(time=TIME, event=EVENT, device="cpu", seed=seed, **extra)

        return make

    mcmc = f"{BAYES_MCMC['chains']} chains x {BAYES_MCMC['draws']} draws"
    listed = [
        Source("real_subsample", "real historical patients, without replacement",
               reference="subsample"),
        Source("real_bootstrap", "real historical patients, with replacement",
               reference="bootstrap"),
        Source("copula", "Gaussian copula, all columns", copula),
        Source("bayesian_pwe", f"Bayesian piecewise exponential PH, 8 intervals, all "
               f"covariates, {mcmc}; reverse-KM censoring", bayesian("pwe"), censor=True),
        Source("bayesian_weibull", f"Bayesian Weibull PH, all covariates, {mcmc}; "
               "reverse-KM censoring", bayesian("weibull"), censor=True),
        Source("vae", "TabularVAE, default settings (<= 300 epochs, early stopping)",
               deep("vae", None)),
        Source("rhvae", f"RHVAE, {RHVAE_EPOCHS} epochs", deep("rhvae", RHVAE_EPOCHS)),
        Source("rhvae_default", "RHVAE, default settings (<= 300 epochs, early stopping)",
               deep("rhvae", None)),
    ]  # fmt: skip
    if epochs is not None:
        listed = [
            Source(s.name, s.description + f" [quick: {epochs} epochs]", s.make, s.reference,
                   s.censor) if s.name in ("vae", "rhvae", "rhvae_default") else s
            for s in listed
        ]  # fmt: skip
    return {s.name: s for s in listed}


# -- one replicate ---------------------------------------------------------------------------


def split(
    data: pd.DataFrame, n_historical: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random split into ``n_historical`` historical patients and the disjoint rest."""
    order = rng.permutation(len(data))
    return data.iloc[np.sort(order[:n_historical])], data.iloc[np.sort(order[n_historical:])]


def censoring_times(
    historical: pd.DataFrame, n: int, rng: np.random.Generator, time: str = TIME,
    event: str = EVENT,
) -> np.ndarray:  # fmt: skip
    """``n`` censoring times from the reverse Kaplan-Meier estimate of the historical
    censoring distribution; beyond its last time, the longest historical follow-up."""
    t = historical[time].to_numpy(float)
    censored = historical[event].to_numpy() == 0
    order = np.argsort(t, kind="stable")
    t, censored = t[order], censored[order]
    times, first = np.unique(t, return_index=True)
    at_risk = len(t) - first
    counts = np.add.reduceat(censored.astype(float), first)
    survival = np.cumprod(1.0 - counts / at_risk)  # S_C at each distinct time
    u = rng.random(n)
    # the first time at which S_C(t) <= u, i.e. F_C(t) >= 1 - u
    index = np.searchsorted(-survival, -u, side="left")
    return np.where(index < len(times), times[np.minimum(index, len(times) - 1)], t.max())


def control_arm(
    source: Source, historical: pd.DataFrame, n: int, rng: np.random.Generator, model=None
) -> tuple[np.ndarray, np.ndarray]:
    """Times and event flags of an ``n``-patient control arm from ``source``."""
    if source.reference is not None:
        rows = rng.choice(len(historical), size=n, replace=source.reference == "bootstrap")
        arm = historical.iloc[rows]
        return arm[TIME].to_numpy(float), arm[EVENT].to_numpy() == 1
    virtual = model.sample(n, rng=rng)
    times = virtual[TIME].to_numpy(float)
    events = virtual[EVENT].to_numpy().astype(int) == 1
    if source.censor:
        censor = censoring_times(historical, n, rng)
        events = events & (times <= censor)
        times = np.minimum(times, censor)
    return times, events


def logrank_z(treated: tuple[np.ndarray, np.ndarray], control: tuple[np.ndarray, np.ndarray]):
    """The log-rank z of the treated arm against the control arm."""
    from analysis.logrank import logrank_test

    time = np.concatenate([treated[0], control[0]])
    event = np.concatenate([treated[1], control[1]])
    group = np.arange(len(time)) < len(treated[0])
    return float(logrank_test(time, event, group).z)


def fit(source: Source, historical: pd.DataFrame, seed: int):
    """The source's generator fitted on the historical patients, its fit time and notes."""
    model = source.make(seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is recorded below
        model.fit(historical)
    seconds = time.perf_counter() - start
    info: dict[str, Any] = {"fit_seconds": seconds}
    if hasattr(model, "diagnostics_"):
        info["converged"] = bool(model.diagnostics_["converged"])
        info["max_rhat"] = float(model.diagnostics_["max_rhat"])
    if hasattr(model, "history_"):
        info["epochs_run"] = len(model.history_["train"])
    return model, info


def replicate(
    data: pd.DataFrame,
    source: Source,
    seed: Sequence[int] | int,
    *,
    n_historical: int = N_HISTORICAL,
    n_arm: int = N_ARM,
    alpha: float = ALPHA,
    fixed: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    model=None,
) -> dict[str, Any]:
    """One trial with a treated arm of real patients and a control arm from ``source``.

    ``seed`` (an int or a sequence of ints, e.g. ``(base_seed, r)``) fixes the split, the
    treated arm, the generator's fit seed and the control arm: the same seed gives the same
    split and treated arm for every source (common random numbers). ``fixed``: a
    ``(historical, pool)`` split to use instead of a new one, and ``model``: a generator
    already fitted on its historical part (the fit-once variant; the source's generator is
    refitted when ``model`` is None).

    Returns ``reject`` (two-sided log-rank at ``alpha``), ``z`` and, when the generator was
    fitted here, the fit's ``fit_seconds`` and notes.
    """
    split_ss, treated_ss, fit_ss, control_ss = np.random.SeedSequence(seed).spawn(4)
    if fixed is None:
        historical, pool = split(data, n_historical, np.random.default_rng(split_ss))
    else:
        historical, pool = fixed
    rows = np.random.default_rng(treated_ss).choice(len(pool), size=n_arm, replace=False)
    treated = pool.iloc[rows]
    info: dict[str, Any] = {}
    if source.reference is None and model is None:
        model, info = fit(source, historical, int(fit_ss.generate_state(1)[0] % 2**31))
    control = control_arm(source, historical, n_arm, np.random.default_rng(control_ss), model)
    z = logrank_z((treated[TIME].to_numpy(float), treated[EVENT].to_numpy() == 1), control)
    critical = float(ndtri(1 - alpha / 2))
    return {"reject": bool(abs(z) > critical), "z": z, **info}


def replicate_ensemble(
    data: pd.DataFrame,
    source: Source,
    seed: Sequence[int] | int,
    *,
    members: int = ENSEMBLE_MEMBERS,
    n_historical: int = N_HISTORICAL,
    n_arm: int = N_ARM,
    n_generated: int = ENSEMBLE_ARM,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """One trial analysed by :func:`analysis.synthetic_control.generated_control_test`.

    The split and the treated arm are drawn as in :func:`replicate` (the same seed gives
    the same ones); the generator is then fitted ``members`` times, each time on a
    bootstrap resample of the historical patients (new seeds), and each fit draws one
    control arm of ``n_generated`` patients (the real-data reference draws them with
    replacement from its resample). Returns ``reject`` and ``z`` of the test, ``naive_z``
    (the plain log-rank against the first arm), the share of the test's variance that
    comes from the generator and the total fit time.
    """
    from analysis.synthetic_control import generated_control_test

    split_ss, treated_ss, fit_ss, control_ss = np.random.SeedSequence(seed).spawn(4)
    historical, pool = split(data, n_historical, np.random.default_rng(split_ss))
    rows = np.random.default_rng(treated_ss).choice(len(pool), size=n_arm, replace=False)
    treated = pool.iloc[rows]
    arms, infos = [], []
    for fit_k, control_k in zip(fit_ss.spawn(members), control_ss.spawn(members), strict=True):
        resample_k, seed_k = fit_k.spawn(2)
        picks = np.random.default_rng(resample_k).integers(0, len(historical), len(historical))
        resample = historical.iloc[picks].reset_index(drop=True)
        model = None
        if source.reference is None:
            model, info = fit(source, resample, int(seed_k.generate_state(1)[0] % 2**31))
            infos.append(info)
        rng = np.random.default_rng(control_k)
        arms.append(control_arm(source, resample, n_generated, rng, model))
    result = generated_control_test(
        (treated[TIME].to_numpy(float), treated[EVENT].to_numpy() == 1), arms
    )
    critical = float(ndtri(1 - alpha / 2))
    out: dict[str, Any] = {
        "reject": bool(result.p_value < alpha),
        "z": result.z,
        "naive_z": result.naive_z,
        "naive_reject": bool(abs(result.naive_z) > critical),
        "generator_share": result.generator_variance / result.se**2,
    }
    if infos:
        out["fit_seconds"] = float(sum(i["fit_seconds"] for i in infos))
        for key in ("converged", "max_rhat", "epochs_run"):
            if key in infos[0]:
                out[key] = infos[0][key]
    return out


# -- summaries -------------------------------------------------------------------------------


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    z = float(ndtri(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def predicted_type1(n_treated: int, n_control: int, n_historical: int, alpha: float) -> float:
    """Type I error of a log-rank test against a control arm drawn from the empirical
    distribution of ``n_historical`` patients (variance factor ``1 + n_t n_c / (n_h (n_t +
    n_c))``; large-sample approximation)."""
    factor = 1 + n_treated * n_control / (n_historical * (n_treated + n_control))
    return float(2 * (1 - ndtr(ndtri(1 - alpha / 2) / math.sqrt(factor))))


def normal_rejection(mean: np.ndarray, sd: np.ndarray, alpha: float) -> np.ndarray:
    """P(|Z| > z_(1 - alpha/2)) for Z ~ N(mean, sd^2)."""
    c = float(ndtri(1 - alpha / 2))
    return ndtr((-c - mean) / sd) + 1 - ndtr((c - mean) / sd)


def type1_from_z(z: np.ndarray, alpha: float, n_boot: int = 2000) -> tuple[float, float]:
    """The rejection rate of a normal distribution with the mean and SD of the replicates'
    z, and its bootstrap SE (over the replicates; fixed seed). More precise than the share
    of rejections when z is close to normal, which holds for the log-rank z of 100 + 100
    patients; a check on the rejection rate, not a replacement."""
    z = z[np.isfinite(z)]
    estimate = float(normal_rejection(np.mean(z), np.std(z, ddof=1), alpha))
    rows = np.random.default_rng(0).integers(0, len(z), size=(n_boot, len(z)))
    boot = normal_rejection(z[rows].mean(axis=1), z[rows].std(axis=1, ddof=1), alpha)
    return estimate, float(np.std(boot, ddof=1))


def summarize(results: list[dict[str, Any]], alpha: float = ALPHA) -> dict[str, Any]:
    z = np.array([r["z"] for r in results], dtype=float)
    k = int(sum(r["reject"] for r in results))
    n = len(results)
    p = k / n
    low, high = wilson(k, n)
    if alpha - BAND <= low and high <= alpha + BAND:
        versus = "inside"
    elif high < alpha - BAND or low > alpha + BAND:
        versus = "outside"
    else:
        versus = "straddles"
    out: dict[str, Any] = {
        "replicates": n,
        "rejections": k,
        "type1_error": p,
        "mc_se": math.sqrt(p * (1 - p) / n),
        "ci95_wilson": [low, high],
        "within_2pp": bool(abs(p - alpha) <= BAND + 1e-12),
        "ci_vs_band": versus,
        "mean_z": float(np.nanmean(z)),
        "sd_z": float(np.nanstd(z, ddof=1)) if n > 1 else None,
    }
    if n > 2:
        out["type1_from_z"], out["type1_from_z_se"] = type1_from_z(z, alpha)
    if results and "naive_z" in results[0]:
        naive = np.array([r["naive_z"] for r in results], dtype=float)
        out["naive_type1_error"] = float(np.mean([r["naive_reject"] for r in results]))
        out["naive_sd_z"] = float(np.nanstd(naive, ddof=1)) if n > 1 else None
        out["generator_share_mean"] = float(np.mean([r["generator_share"] for r in results]))
    fits = [r for r in results if "fit_seconds" in r]
    if fits:
        out["fit_seconds_mean"] = float(np.mean([r["fit_seconds"] for r in fits]))
    if any("converged" in r for r in fits):
        out["share_fits_flagged_by_convergence_check"] = float(
            np.mean([not r["converged"] for r in fits])
        )
        out["max_rhat_worst"] = float(max(r["max_rhat"] for r in fits))
    if any("epochs_run" in r for r in fits):
        out["epochs_run_mean"] = float(np.mean([r["epochs_run"] for r in fits]))
    return out


def run_refit(data, source: Source, n_rep: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    results = [replicate(data, source, (seed, r)) for r in range(n_rep)]
    return {**summarize(results), "wall_seconds": time.perf_counter() - start}


def run_ensemble(data, source: Source, n_rep: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    results = [replicate_ensemble(data, source, (seed, r)) for r in range(n_rep)]
    return {
        **summarize(results),
        "members": ENSEMBLE_MEMBERS,
        "wall_seconds": time.perf_counter() - start,
    }


def run_fit_once(data, source: Source, n_rep: int, seed: int, n_splits: int) -> dict[str, Any]:
    """``n_splits`` fixed splits, one fit on each, ``n_rep`` replicates per fit. The row's
    numbers are those of the first split (one fit, as a fit-once study would have);
    ``per_split`` gives every split's conditional rate."""
    start = time.perf_counter()
    per_split = []
    for k in range(n_splits):
        split_ss, fit_ss = np.random.SeedSequence((seed, FIXED_SPLIT, k)).spawn(2)
        fixed = split(data, N_HISTORICAL, np.random.default_rng(split_ss))
        model, info = (None, {})
        if source.reference is None:
            model, info = fit(source, fixed[0], int(fit_ss.generate_state(1)[0] % 2**31))
        results = [
            replicate(data, source, (seed, FIXED_SPLIT, k, r), fixed=fixed, model=model)
            for r in range(n_rep)
        ]
        per_split.append({**summarize(results), **{f"single_{a}": b for a, b in info.items()}})
    rates = [p["type1_error"] for p in per_split]
    return {
        **per_split[0],
        "splits": n_splits,
        "per_split": per_split,
        "split_rate_mean": float(np.mean(rates)),
        "split_rate_min": float(np.min(rates)),
        "split_rate_max": float(np.max(rates)),
        "wall_seconds": time.perf_counter() - start,
    }


# -- output ----------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(results: dict) -> str:
    m = results["machine"]
    d = results["design"]
    lines = [
        "# Type I error of trials with a generated control arm "
        "(bench/bench_type1_generated_control.py)",
        "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, torch "
        f"{m['torch']} ({m['torch_threads']} threads), PyMC {m['pymc']}, lifelines "
        f"{m['lifelines']}. Seed {results['seed']}"
        f"{' (quick run)' if results['quick'] else ''}; total "
        f"{results['total_seconds'] / 60:.1f} min.",
        "",
        f"Data: {d['data']}. Each replicate: {d['n_historical']} historical patients (the "
        f"generator's training data) and a disjoint pool of {d['n_pool']}; treated arm = "
        f"{d['n_arm']} real pool patients (no effect), control arm = {d['n_arm']} patients "
        f"from the source; two-sided log-rank at alpha = {d['alpha']}. *refit*: new split "
        "and new fit every replicate (includes the fit's uncertainty); *fit_once*: one "
        "split and one fit, new treated and control arms every replicate (the rate given "
        f"that fit; the first of {d['fit_once_splits']} splits, all of them below).",
        "",
        f"Predicted type I error of a perfect non-parametric generator (control drawn from "
        f"the empirical distribution of the {d['n_historical']} historical patients, "
        f"variance factor 1 + n_t n_c / (n_h (n_t + n_c))): "
        f"{pct(results['predicted_type1_perfect_generator'])} %.",
        "",
        "| source | variant | R | type I error (%) | MC SE (pp) | 95 % CI (%) | within ±2 pp "
        "| CI vs [3, 7] % | mean z | SD z | normal fit of z (%) | fit (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        if row["variant"] == "ensemble":
            continue
        fit_s = row.get("fit_seconds_mean", row.get("single_fit_seconds"))
        lo, hi = row["ci95_wilson"]
        sd = "" if row["sd_z"] is None else f"{row['sd_z']:.2f}"
        from_z = (
            f"{pct(row['type1_from_z'])} ± {pct(row['type1_from_z_se'])}"
            if "type1_from_z" in row
            else ""
        )
        lines.append(
            f"| {row['source']} | {row['variant']} | {row['replicates']} | "
            f"{pct(row['type1_error'])} | {pct(row['mc_se'])} | {pct(lo)}-{pct(hi)} | "
            f"{'yes' if row['within_2pp'] else 'no'} | {row['ci_vs_band']} | "
            f"{row['mean_z']:+.2f} | {sd} | {from_z} | "
            f"{'' if fit_s is None else f'{fit_s:.2f}'} |"
        )
    ensemble = [r for r in results["rows"] if r["variant"] == "ensemble"]
    if ensemble:
        lines += [
            "",
            f"Ensemble test (analysis.synthetic_control.generated_control_test): per "
            f"replicate, a new split, {ensemble[0]['members']} generator fits, each on a "
            "bootstrap resample of its historical patients (new seeds), one control arm of "
            f"{d['ensemble_arm']} from each; the mean log-rank log hazard ratio over the "
            "arms, with variance = the treated arm's sampling variance + (1 + 1/K) b - w "
            "(b: between-arm variance, w: the arms' own sampling variance), t reference. "
            "*Naive*: the plain log-rank test against the first arm, on the same "
            "replicates. *Generator share*: the share of the test's variance that comes "
            "from the generated control.",
            "",
            "| source | R | type I error (%) | MC SE (pp) | 95 % CI (%) | within ±2 pp | "
            "CI vs [3, 7] % | mean z | SD z | normal fit of z (%) | naive type I (%) | "
            "naive SD z | generator share | fits (s, all K) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in ensemble:
            lo, hi = row["ci95_wilson"]
            fit_s = row.get("fit_seconds_mean")
            from_z = (
                f"{pct(row['type1_from_z'])} ± {pct(row['type1_from_z_se'])}"
                if "type1_from_z" in row
                else ""
            )
            share = row["generator_share_mean"]
            lines.append(
                f"| {row['source']} | {row['replicates']} | {pct(row['type1_error'])} | "
                f"{pct(row['mc_se'])} | {pct(lo)}-{pct(hi)} | "
                f"{'yes' if row['within_2pp'] else 'no'} | {row['ci_vs_band']} | "
                f"{row['mean_z']:+.2f} | {row['sd_z']:.2f} | {from_z} | "
                f"{pct(row['naive_type1_error'])} | {row['naive_sd_z']:.2f} | {share:.2f} | "
                f"{'' if fit_s is None else f'{fit_s:.1f}'} |"
            )
    once = [r for r in results["rows"] if r["variant"] == "fit_once"]
    if once:
        k = once[0]["splits"]
        lines += [
            "",
            f"Fit once: type I error (%) given the fit, for each of {k} fixed splits (one "
            f"fit each, {once[0]['replicates']} replicates per split for the real-data and "
            "cheap sources; MC SE about 1.1 pp at 5 %), with the mean z in brackets",
            "",
            "| source | " + " | ".join(f"split {i + 1}" for i in range(k)) + " | mean | range |",
            "|---|" + "---|" * (k + 2),
        ]
        for row in once:
            cells = [f"{pct(p['type1_error'])} ({p['mean_z']:+.2f})" for p in row["per_split"]]
            lines.append(
                f"| {row['source']} (R={row['replicates']}) | " + " | ".join(cells)
                + f" | {pct(row['split_rate_mean'])} | {pct(row['split_rate_min'])}-"
                f"{pct(row['split_rate_max'])} |"
            )  # fmt: skip
    lines += ["", "Sources:", ""]
    for name, text in results["sources"].items():
        lines.append(f"- `{name}`: {text}")
    notes = []
    for row in results["rows"]:
        bits = []
        if "share_fits_flagged_by_convergence_check" in row:
            bits.append(
                f"{pct(row['share_fits_flagged_by_convergence_check'])} % of fits flagged by "
                f"the convergence check (worst R-hat {row['max_rhat_worst']:.3f})"
            )
        if "per_split" in row and any("single_converged" in p for p in row["per_split"]):
            flagged = sum(not p["single_converged"] for p in row["per_split"])
            bits.append(f"{flagged} of {row['splits']} fits flagged by the convergence check")
        if "epochs_run_mean" in row:
            bits.append(f"{row['epochs_run_mean']:.0f} epochs run on average")
        if "per_split" in row and any("single_epochs_run" in p for p in row["per_split"]):
            runs = ", ".join(str(p["single_epochs_run"]) for p in row["per_split"])
            bits.append(f"epochs run per split: {runs}")
        if bits:
            notes.append(f"- {row['source']} / {row['variant']}: " + "; ".join(bits))
    if notes:
        lines += ["", "Fit notes:", "", *notes]
    lines += [
        "",
        "Columns: *fit (s)* is the mean refit time per replicate (refit) or the time of the "
        "first split's fit (fit_once). *Normal fit of z*: the rejection rate of a normal "
        "distribution with the replicates' mean and SD of z, ± its bootstrap SE; more "
        "precise than the share of rejections while z is close to normal. *CI vs [3, 7] %*: "
        "whether the 95 % Wilson interval lies inside the ±2 pp band, outside it, or "
        "straddles an edge (not resolved by the replicates). The fit_once rates are "
        "conditional on one split and one fit (and their treated arms share one pool of "
        "140 real patients), so they measure how far that split and fit lie from the "
        "population, not the error rate of the method; compare each with real_subsample "
        "on the same split.",
        "",
    ]
    return "\n".join(lines)


def merged(path: Path, results: dict) -> dict:
    """A partial run (``--sources`` / ``--variants``) merged into the results already at
    ``path`` when they were run with the same seed and mode: its rows replace those of the
    same source and variant, and rows of a (source, variant) no longer run are dropped; the
    total time adds up."""
    if not path.exists():
        return results
    earlier = json.loads(path.read_text())
    if (earlier.get("seed"), earlier.get("quick")) != (results["seed"], results["quick"]):
        return results
    ran = {(row["source"], row["variant"]) for row in results["rows"]}
    order = {key: i for i, key in enumerate(REPLICATES)}
    rows = [
        r
        for r in earlier["rows"]
        if (r["source"], r["variant"]) not in ran and (r["source"], r["variant"]) in order
    ]
    rows = sorted(
        [*rows, *results["rows"]], key=lambda r: order.get((r["source"], r["variant"]), 0)
    )
    return {
        **results,
        "design": {**earlier["design"], **results["design"]},
        "sources": {**earlier["sources"], **results["sources"]},
        "rows": rows,
        "total_seconds": earlier.get("total_seconds", 0.0) + results["total_seconds"],
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 2 min)")
    parser.add_argument("--seed", type=int, default=20240917)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sources", default=None, help="comma-separated subset of sources")
    parser.add_argument(
        "--variants", default=None, help="comma-separated subset of refit,fit_once,ensemble"
    )
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import lifelines
    import pymc
    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("pymc").setLevel(logging.ERROR)
    table = QUICK_REPLICATES if args.quick else REPLICATES
    n_splits = QUICK_SPLITS if args.quick else FIT_ONCE_SPLITS
    all_sources = sources(QUICK_EPOCHS if args.quick else None)
    chosen = None if args.sources is None else set(args.sources.split(","))
    variants = None if args.variants is None else set(args.variants.split(","))
    data = load_data()
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "pymc": pymc.__version__,
            "lifelines": lifelines.__version__,
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
        },
        "seed": args.seed,
        "quick": args.quick,
        "design": {
            "data": f"lifelines GBSG2, horTh == 'no' ({len(data)} patients, "
            f"event rate {data[EVENT].mean():.3f})",
            "n_patients": len(data),
            "n_historical": N_HISTORICAL,
            "n_pool": len(data) - N_HISTORICAL,
            "n_arm": N_ARM,
            "alpha": ALPHA,
            "test": "two-sided log-rank (analysis.logrank.logrank_test)",
            "rhvae_refit_epochs": RHVAE_EPOCHS,
            "bayesian_mcmc": BAYES_MCMC,
            "fit_once_splits": n_splits,
            "ensemble_members": ENSEMBLE_MEMBERS,
            "ensemble_arm": ENSEMBLE_ARM,
        },
        "predicted_type1_perfect_generator": predicted_type1(N_ARM, N_ARM, N_HISTORICAL, ALPHA),
        "sources": {},
        "rows": [],
    }
    start = time.perf_counter()
    for (name, variant), n_rep in table.items():
        if (chosen is not None and name not in chosen) or (
            variants is not None and variant not in variants
        ):
            continue
        source = all_sources[name]
        results["sources"][name] = source.description
        if variant == "refit":
            outcome = run_refit(data, source, n_rep, args.seed)
        elif variant == "ensemble":
            outcome = run_ensemble(data, source, n_rep, args.seed)
        else:
            outcome = run_fit_once(data, source, n_rep, args.seed, n_splits)
        row = {"source": name, "variant": variant, **outcome}
        results["rows"].append(row)
        print(json.dumps(clean(row)), flush=True)
    results["total_seconds"] = time.perf_counter() - start
    output = args.output_dir if args.output_dir is not None else (None if args.quick else OUTPUT)
    if output is not None and (chosen is not None or variants is not None):
        results = merged(output / "bench_type1_generated_control.json", results)
    text = markdown(results)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        body = json.dumps(clean(results), indent=2, allow_nan=False)
        (output / "bench_type1_generated_control.json").write_text(body + "\n")
        (output / "bench_type1_generated_control.md").write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
