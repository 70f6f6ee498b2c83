"""Benchmark of the deep generators (VAE, RHVAE) against the Gaussian copula and a
Bayesian survival generator.

Two public data sets shipped by lifelines, each split 70 / 30 into real training and
real holdout rows (:func:`generators.validation.split_holdout`, seed 0):

- GBSG2 (German Breast Cancer Study Group 2; 686 patients, 8 covariates, recurrence-free
  survival ``time`` in days with event ``cens``);
- Rossi (recidivism of 432 released prisoners; 7 covariates, ``week`` of arrest with
  event ``arrest``, administratively censored at week 52): the small, low-event set;
- GBSG2 with only 100 of its training rows (``gbsg2_100``, same holdout): the low-sample
  setting in which the RHVAE literature reports its gains.

The generators: the Gaussian copula (:class:`generators.copula.GaussianCopula`), the VAE
and RHVAE (:mod:`generators.vae`, :mod:`generators.rhvae`, defaults, CPU, seed 0) and
``bayesian``: covariates from a Gaussian copula fitted to the covariate columns, the
event time from the posterior predictive distribution of a Bayesian Weibull
proportional-hazards model (:class:`generators.bayesian.BayesianWeibull`, 2 chains of 500
draws after 500 tuning steps; treatment ``horTh`` for GBSG2, ``fin`` for Rossi) given
those covariates, and -- as the model draws uncensored event times only -- a censoring
time from the reverse Kaplan-Meier estimate of the training rows' censoring distribution
(independent censoring, the model's assumption; the sampler of the model's posterior
predictive check), ``time = min(T, C)``, ``event = 1{T <= C}``, the time rounded as the
training column is integer.

Per data set and generator: fit time on the training rows, time to sample 5,000 virtual
patients, the :func:`generators.validation.validate_cohort` metrics of those 5,000
against the real data with the real holdout (fidelity, detection AUC, privacy, train on
virtual / test on real; :func:`~generators.validation.validate_cohort` compares
fidelity, detection and its survival figures, the hazard ratio and
``km_max_difference_holdout_whole``, with the holdout rows), the event rate and the
Kaplan-Meier differences against all the real rows (:func:`km_differences`); and an
augmentation experiment: a Cox model (ridge 0.01) fitted on the real training rows alone
and on the real training rows plus ``k`` times as many virtual patients, ``k`` in 2, 5,
10, 20, scored by Harrell's C-index on the real holdout. As references for the
Kaplan-Meier differences, those of the real training rows and of the real holdout rows
against all the real rows.

Usage: ``python bench/bench_deep.py [--quick] [--threads N] [--only NAMES]
[--no-survival-calibration] [--output DIR]`` (``--quick``: 30 epochs and short chains,
for a smoke run; ``--only``: comma-separated generators; ``--no-survival-calibration``:
the VAE and RHVAE without the Kaplan-Meier calibration of their survival heads, an
ablation); results go to bench/output/bench_deep.json and bench_deep.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUTPUT = HERE / "output"

FACTORS = (2, 5, 10, 20)
SMALL_TRAINING = 100
N_VIRTUAL = 5000
COX_PENALIZER = 0.01
#: Posterior sampling of the Bayesian generator: chains, draws and tuning steps per chain.
BAYES_CHAINS, BAYES_DRAWS, BAYES_TUNE = 2, 500, 500
#: Kaplan-Meier curves are compared up to the time at which this share of the real
#: patients is still at risk (the 90th percentile of the real times).
KM_AT_RISK_SHARE = 0.10


def datasets() -> dict[str, tuple[pd.DataFrame, str, str, str, int | None]]:
    """Name -> (data, time column, event column, treatment column, training rows kept or
    None for all)."""
    from lifelines.datasets import load_gbsg2, load_rossi

    return {
        "gbsg2": (load_gbsg2(), "time", "cens", "horTh", None),
        "rossi": (load_rossi(), "week", "arrest", "fin", None),
        "gbsg2_100": (load_gbsg2(), "time", "cens", "horTh", SMALL_TRAINING),
    }


class CopulaBayesianWeibull:
    """Covariates from a Gaussian copula, the event time from the posterior predictive
    distribution of a Bayesian Weibull proportional-hazards model given them, a censoring
    time from the reverse Kaplan-Meier estimate of the training rows (see the module
    docstring). ``event_rate_uncensored_`` records that the model's own draws are all
    events."""

    def __init__(self, time: str, event: str, treatment: str, quick: bool = False):
        self.time, self.event, self.treatment = time, event, treatment
        self.quick = quick

    def fit(self, data: pd.DataFrame) -> CopulaBayesianWeibull:
        from generators.bayesian import BayesianWeibull
        from generators.bayesian.survival import _censoring_sampler
        from generators.copula import GaussianCopula

        covariates = [c for c in data.columns if c not in (self.time, self.event)]
        self.columns_ = list(data.columns)
        self.dtypes_ = data.dtypes
        self.copula_ = GaussianCopula(columns=covariates).fit(data)
        draws, tune = (100, 100) if self.quick else (BAYES_DRAWS, BAYES_TUNE)
        self.model_ = BayesianWeibull(
            time=self.time,
            event=self.event,
            treatment=self.treatment,
            covariates=[c for c in covariates if c != self.treatment],
            chains=BAYES_CHAINS,
            draws=draws,
            tune=tune,
            seed=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is recorded in diagnostics_
            self.model_.fit(data)
        self.censoring_ = _censoring_sampler(
            data[self.time].to_numpy(dtype=float), data[self.event].to_numpy(dtype=float)
        )
        return self

    def sample(self, n_patients: int, rng=None) -> pd.DataFrame:
        rng = np.random.default_rng(rng)
        covariates = self.copula_.sample(n_patients, rng=rng)
        drawn = self.model_.sample(
            n_patients,
            rng=rng,
            covariates=covariates,
            treatment=covariates[self.treatment].to_numpy(),
        )
        self.event_rate_uncensored_ = float(drawn[self.event].mean()) if n_patients else None
        event_time = drawn[self.time].to_numpy(dtype=float)
        censoring = self.censoring_(rng, (n_patients,))
        observed = np.minimum(event_time, censoring)
        out = covariates.copy()
        if pd.api.types.is_integer_dtype(self.dtypes_[self.time]):
            observed = np.maximum(np.rint(observed), 1.0)
        out[self.time] = observed.astype(self.dtypes_[self.time])
        out[self.event] = (event_time <= censoring).astype(self.dtypes_[self.event])
        return out[self.columns_]


def generators(
    time_col: str,
    event_col: str,
    treatment: str,
    epochs: int | None,
    calibrate: bool = True,
    only: set[str] | None = None,
) -> dict:
    from generators.copula import GaussianCopula
    from generators.rhvae import RHVAE
    from generators.vae import TabularVAE

    extra = {"calibrate_survival": calibrate, **({} if epochs is None else {"epochs": epochs})}
    pair = {"time": time_col, "event": event_col, "device": "cpu", "seed": 0}
    factories = {
        "copula": lambda: GaussianCopula(),
        "bayesian": lambda: CopulaBayesianWeibull(
            time_col, event_col, treatment, quick=epochs is not None
        ),
        "vae": lambda: TabularVAE(**pair, **extra),
        "rhvae": lambda: RHVAE(**pair, **extra),
    }
    return {k: v for k, v in factories.items() if only is None or k in only}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def design(frames: list[pd.DataFrame], covariates: list[str]) -> list[pd.DataFrame]:
    """Numeric covariates as they are, the others as dummies of the first frame's levels."""
    first = frames[0]
    out = [pd.DataFrame(index=f.index) for f in frames]
    for col in covariates:
        if pd.api.types.is_numeric_dtype(first[col]):
            for o, f in zip(out, frames, strict=True):
                o[col] = f[col].to_numpy(dtype=float)
            continue
        levels = sorted(pd.unique(first[col].astype(str)))
        for level in levels[1:]:
            for o, f in zip(out, frames, strict=True):
                o[f"{col}={level}"] = (f[col].astype(str) == level).to_numpy(dtype=float)
    return out


def cox_c_index(fit: pd.DataFrame, test: pd.DataFrame, time_col: str, event_col: str) -> float:
    from lifelines import CoxPHFitter
    from lifelines.utils import concordance_index

    covariates = [c for c in fit.columns if c not in (time_col, event_col)]
    x_fit, x_test = design([fit, test], covariates)
    keep = [c for c in x_fit.columns if x_fit[c].std() > 0]
    frame = x_fit[keep].assign(_T=fit[time_col].to_numpy(float), _E=fit[event_col].to_numpy(float))
    cph = CoxPHFitter(penalizer=COX_PENALIZER).fit(frame, duration_col="_T", event_col="_E")
    risk = cph.predict_partial_hazard(x_test[keep]).to_numpy()
    return float(
        concordance_index(test[time_col].to_numpy(float), -risk, test[event_col].to_numpy(float))
    )


def km_differences(
    real: pd.DataFrame, virtual: pd.DataFrame, time_col: str, event_col: str
) -> dict[str, float]:
    """Largest ``|S_real - S_virtual|`` of the Kaplan-Meier curves, ``deciles_1_9``: at
    the deciles 1-9 of the real times; ``to_q90``: at every time (real or virtual) up to
    the 90th percentile of the real times, where 10% of the real patients are still at
    risk; ``whole``: at every time up to the common follow-up (as
    :func:`generators.validation.validate_cohort`'s ``km_max_difference``). The first two
    leave out the far tail, where the real curve rests on a handful of patients (GBSG2:
    10 at risk at its last event, day 2456, 95% interval of S 0.25-0.44) and which
    dominates ``whole``; ``to_q90`` also catches a difference between two deciles."""
    from lifelines import KaplanMeierFitter

    curves = [KaplanMeierFitter().fit(f[time_col], f[event_col]) for f in (real, virtual)]
    t_real = real[time_col].to_numpy(dtype=float)
    horizon = float(np.quantile(t_real, 1 - KM_AT_RISK_SHARE))
    deciles = np.quantile(t_real, np.linspace(0.1, 0.9, 9))
    times = np.concatenate([t_real, virtual[time_col].to_numpy(dtype=float), [horizon]])
    grid = np.unique(times[times <= horizon])
    follow_up = min(t_real.max(), float(virtual[time_col].max()))
    whole = np.unique(np.concatenate([[0.0, follow_up], times[times <= follow_up]]))
    out = {}
    for name, at in (("deciles_1_9", deciles), ("to_q90", grid), ("whole", whole)):
        values = [c.survival_function_at_times(at).to_numpy() for c in curves]
        out[name] = float(np.abs(values[0] - values[1]).max())
    return out


def evaluate(name, real, time_col, event_col, model_factory, training, holdout, rng_seed):
    from generators.validation import validate_cohort

    model, fit_seconds = timed(model_factory().fit, training)
    virtual, sample_seconds = timed(model.sample, N_VIRTUAL, rng=rng_seed)
    mask = real.index.isin(holdout.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' convergence chatter is recorded in notes
        report = validate_cohort(
            real, virtual, time=time_col, event=event_col, holdout=mask, rng=rng_seed
        )
    result = {
        "fit_seconds": fit_seconds,
        "sample_5000_seconds": sample_seconds,
        "epochs_run": len(getattr(model, "history_", {}).get("train", [])) or None,
        "best_epoch": getattr(model, "best_epoch_", None),
        "fidelity": report.fidelity_score,
        "fidelity_holdout_reference": report.reference_fidelity_score,
        "column_shape_score": report.column_shape_score,
        "pair_trend_score": report.pair_trend_score,
        "detection_auc_logistic": report.detection_auc["logistic"],
        "detection_auc_gradient_boosting": report.detection_auc["gradient_boosting"],
        "privacy_share_close_virtual": report.share_close_virtual,
        "privacy_share_close_holdout": report.share_close_holdout,
        "privacy_dcr_median_virtual": report.dcr_virtual_median,
        "privacy_dcr_median_holdout": report.dcr_holdout_median,
        "privacy_n_exact_copies": report.n_exact_copies,
        "privacy_membership_auc": report.membership_auc,
        "utility_c_index_trained_on_virtual": report.utility[0].trained_on_virtual,
        "utility_c_index_trained_on_real": report.utility[0].trained_on_real,
        "event_rate_real_training": float(training[event_col].mean()),
        "event_rate_virtual": float(virtual[event_col].mean()),
        "km_max_difference_holdout_whole": report.km_max_difference,
        "hazard_ratio_virtual_vs_real": report.hazard_ratio,
    }
    km = km_differences(real, virtual, time_col, event_col)
    result["km_max_difference_deciles_1_9"] = km["deciles_1_9"]
    result["km_max_difference_to_q90"] = km["to_q90"]
    result["km_max_difference"] = km["whole"]
    if hasattr(model, "event_rate_uncensored_"):
        result["event_rate_virtual_uncensored"] = model.event_rate_uncensored_
        result["mcmc_diagnostics"] = {
            k: model.model_.diagnostics_.get(k)
            for k in ("sampler", "max_rhat", "min_ess_bulk", "min_ess_tail", "n_divergent")
        }
    if hasattr(model, "sample_latent"):
        import torch

        _, info = model.sample_latent(N_VIRTUAL, torch.Generator().manual_seed(rng_seed))
        result["latent_sampler_acceptance_rate"] = info["acceptance_rate"]
    baseline = cox_c_index(training, holdout, time_col, event_col)
    augmentation = {"real_only": baseline}
    for k in FACTORS:
        extra = model.sample(k * len(training), rng=1000 + k)
        combined = pd.concat([training, extra[list(training.columns)]], ignore_index=True)
        augmentation[f"x{k}"] = cox_c_index(combined, holdout, time_col, event_col)
    result["augmentation_c_index"] = augmentation
    print(f"{name}: {json.dumps(result, default=float)}", flush=True)
    return result


def km_reference(real, training, holdout, time_col, event_col) -> dict:
    """The Kaplan-Meier differences of the real training and holdout rows against all the
    real rows: how far apart two samples of the same patients are."""
    return {
        part: km_differences(real, rows, time_col, event_col)
        for part, rows in (("training", training), ("holdout", holdout))
    }


def markdown(results: dict) -> str:
    lines = [
        "# Deep generators benchmark (bench/bench_deep.py)",
        "",
        f"Machine: {results['machine']['platform']}, Python {results['machine']['python']}, "
        f"torch {results['machine']['torch']} ({results['machine']['torch_threads']} threads). "
        f"Each generator is fitted on 70% of the rows and judged against the real data with "
        f"the 30% holdout; {N_VIRTUAL} virtual patients per generator. Fidelity, detection "
        f"and the hazard ratio compare them with the holdout rows (validate_cohort); the VAE "
        f"and RHVAE survival heads are "
        f"{'' if results.get('survival_calibration', True) else 'not '}calibrated to the "
        f"Kaplan-Meier estimates (calibrate_survival).",
        "",
    ]
    rows = [
        ("fit (s)", "fit_seconds", "{:.1f}"),
        ("sample 5,000 (s)", "sample_5000_seconds", "{:.2f}"),
        ("fidelity (holdout reference)", None, None),
        ("detection AUC, logistic", "detection_auc_logistic", "{:.3f}"),
        ("detection AUC, gradient boosting", "detection_auc_gradient_boosting", "{:.3f}"),
        ("privacy: share closer than the holdout 5th pct", "privacy_share_close_virtual", "{:.3f}"),
        ("privacy: membership AUC", "privacy_membership_auc", "{:.3f}"),
        ("utility: C-index trained on virtual (on real)", None, None),
        ("event rate virtual (real training)", None, None),
        ("KM max difference, deciles 1-9", "km_max_difference_deciles_1_9", "{:.3f}"),
        ("KM max difference, all times to the real q90", "km_max_difference_to_q90", "{:.3f}"),
        ("KM max difference, whole follow-up (tail-dominated)", "km_max_difference", "{:.3f}"),
        ("hazard ratio virtual vs real holdout", "hazard_ratio_virtual_vs_real", "{:.2f}"),
    ]
    for dataset, by_generator in results["datasets"].items():
        names = list(by_generator)
        reference = results["km_reference"][dataset]
        lines += [f"## {dataset}", "",
                  "KM max difference of real rows against all real rows (deciles 1-9 / to the "
                  f"q90 / whole follow-up): training {reference['training']['deciles_1_9']:.3f}"
                  f" / {reference['training']['to_q90']:.3f} / "
                  f"{reference['training']['whole']:.3f}, holdout "
                  f"{reference['holdout']['deciles_1_9']:.3f} / "
                  f"{reference['holdout']['to_q90']:.3f} / {reference['holdout']['whole']:.3f}."
                  "", "", "| metric | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]  # fmt: skip
        for label, key, fmt in rows:
            cells = []
            for g in names:
                r = by_generator[g]
                if label.startswith("fidelity"):
                    cells.append(f"{r['fidelity']:.3f} ({r['fidelity_holdout_reference']:.3f})")
                elif label.startswith("utility"):
                    cells.append(
                        f"{r['utility_c_index_trained_on_virtual']:.3f} "
                        f"({r['utility_c_index_trained_on_real']:.3f})"
                    )
                elif label.startswith("event rate"):
                    cells.append(
                        f"{r['event_rate_virtual']:.3f} ({r['event_rate_real_training']:.3f})"
                    )
                elif r.get(key) is None:
                    cells.append("-")
                else:
                    cells.append(fmt.format(r[key]))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "Augmentation: Cox C-index on the real holdout", "",
                  "| generator | real only | " + " | ".join(f"+{k}x virtual" for k in FACTORS)
                  + " |", "|---|---|" + "---|" * len(FACTORS)]  # fmt: skip
        for g in names:
            a = by_generator[g]["augmentation_c_index"]
            cells = [f"{a['real_only']:.3f}"] + [f"{a[f'x{k}']:.3f}" for k in FACTORS]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Notes: one training/holdout split and one seed per generator, so differences of "
        "about 0.02 in a C-index (holdouts of 130-206 patients) or in a detection AUC are "
        "within noise, and an event rate of 5,000 virtual patients has a standard error of "
        "about 0.007. The Kaplan-Meier curves are compared with all the real rows: at the "
        "deciles 1-9 of the real times, at every time up to their 90th percentile (10% of "
        "the real patients still at risk), and over the whole common follow-up, whose "
        "largest difference sits in the far tail where the real curve rests on a few "
        "patients (compare the references of the real training and holdout rows); a "
        "generator that reproduces its training rows inherits their difference (gbsg2_100: "
        "100 training rows 0.086 apart at the deciles). The "
        "event rate is compared with the real training rows. The bayesian generator's "
        "Weibull model draws uncensored event times; its censoring is drawn from the "
        "reverse Kaplan-Meier estimate of the training rows (see bench/bench_deep.py).",
        "",
    ]
    return "\n".join(lines)


def clean(value):
    """``value`` with numpy numbers as Python numbers and non-finite floats as None (JSON)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 epochs (smoke run)")
    parser.add_argument("--only", help="comma-separated generators (default: all)")
    parser.add_argument(
        "--no-survival-calibration", action="store_true",
        help="VAE and RHVAE without the Kaplan-Meier calibration of the survival heads",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=OUTPUT, help="output folder")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: the networks are small, and on a shared "
        "machine torch's spinning worker threads slow down when the cores are busy)",
    )  # fmt: skip
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    from generators.validation import split_holdout

    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "n_virtual": N_VIRTUAL,
        "augmentation_factors": list(FACTORS),
        "survival_calibration": not args.no_survival_calibration,
        "km_reference": {},
        "datasets": {},
    }
    only = None if args.only is None else set(args.only.split(","))
    for name, (real, time_col, event_col, treatment, n_training) in datasets().items():
        training, holdout = split_holdout(real, 0.3, rng=0)
        if n_training is not None:  # the low-sample setting: a random subset of the rows
            training = training.sample(n_training, random_state=0).sort_index()
            real = real.loc[training.index.union(holdout.index)]
        results["km_reference"][name] = km_reference(real, training, holdout, time_col, event_col)
        results["datasets"][name] = {}
        factories = generators(
            time_col,
            event_col,
            treatment,
            30 if args.quick else None,
            calibrate=not args.no_survival_calibration,
            only=only,
        )
        for kind, factory in factories.items():
            results["datasets"][name][kind] = evaluate(
                f"{name}/{kind}", real, time_col, event_col, factory, training, holdout, 1
            )
    output = args.output
    output.mkdir(exist_ok=True)

    text = json.dumps(clean(results), indent=2, allow_nan=False)
    (output / "bench_deep.json").write_text(text + "\n")
    (output / "bench_deep.md").write_text(markdown(results) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
