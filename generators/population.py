"""Baseline covariates of simulated trial patients, from the protocol or a fitted generator.

The trial engine draws each patient's covariates as a transform of independent standard
normal variables (one per covariate, from the patient's own uniforms), so that every
replicate is reproducible from its seed whatever the chunking. Two models provide that
transform: :class:`generators.parametric.ParametricCovariates` (the protocol's own
marginals and correlations) and :class:`GeneratorCovariates` (the marginals and latent
correlations of a Gaussian copula fitted to real patients, e.g. a phase-2 study).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol as Interface

import numpy as np
import pandas as pd

from trials.exceptions import DataError

#: Size and seed of the fixed pilot sample that gives a generator's covariate means.
_PILOT_SIZE = 200_000
_PILOT_SEED = 20_261_123


class CovariateModel(Interface):
    """What the trial engine needs of a model of baseline covariates.

    ``transform`` maps independent standard normals of shape ``(..., n_latent)`` to one
    array per covariate: float values for continuous and binary (0.0 / 1.0) covariates,
    integer codes ``0 .. n_levels - 1`` (in the order of ``levels(name)``) for
    categorical ones.
    """

    @property
    def names(self) -> list[str]: ...

    @property
    def n_latent(self) -> int: ...

    def kind(self, name: str) -> str: ...

    def levels(self, name: str) -> list[str] | None: ...

    def categorical_levels(self) -> dict[str, list[str]]: ...

    def numeric_names(self) -> list[str]: ...

    def n_levels(self, name: str) -> int: ...

    def mean(self, name: str) -> float: ...

    def transform(self, normals: np.ndarray) -> dict[str, np.ndarray]: ...


class GeneratorCovariates:
    """Trial covariates drawn from a fitted Gaussian copula generator.

    The chosen columns keep their fitted marginals and the latent correlations between
    them (a Gaussian copula restricted to some of its columns is the Gaussian copula of
    the submatrix: the other columns are integrated out exactly).

    Parameters
    ----------
    generator : GaussianCopula
        A fitted copula (``insilico fit DATA --generator copula``).
    covariates : list of str
        Columns of the generator to use as the trial's baseline covariates.

    Notes
    -----
    * Columns with text categories are categorical covariates (codes in the order of the
      fitted categories, the first the reference level); columns whose categories are
      numbers are numeric: ``binary`` when they are 0 and 1, ``continuous`` otherwise
      (e.g. a tumour grade 1, 2, 3 has a per-grade effect).
    * Virtual trial patients have complete covariates: the generator's missing-value
      rates are not reproduced (a missing covariate has no effect on an outcome).
    * The mean of a continuous covariate, which centres its effects on the outcomes, is
      that of a fixed pilot sample of 200,000 virtual patients (relative Monte Carlo
      error about ``0.002`` standard deviations), so it is the same in every run.
    """

    def __init__(self, generator, covariates: list[str]):
        if not hasattr(generator, "latent_values"):
            raise DataError(
                f"a trial population needs a Gaussian copula generator (got {generator.kind!r})"
            )
        columns = list(generator.columns_modelled_)
        unknown = [c for c in covariates if c not in columns]
        if unknown:
            raise DataError(
                f"covariates {unknown} are not columns of the generator "
                f"(its columns: {', '.join(columns)})"
            )
        self.generator = generator
        self._names = list(covariates)
        self._index = [columns.index(c) for c in covariates]
        corr = generator.correlation_[np.ix_(self._index, self._index)]
        self._cholesky = np.linalg.cholesky(corr)
        self._kinds: dict[str, str] = {}
        self._levels: dict[str, list[str]] = {}
        for name in self._names:
            categories = generator.categories(name)
            if categories is None:
                self._kinds[name] = "continuous"
            elif all(_is_number(c) for c in categories):
                binary = sorted(float(c) for c in categories) == [0.0, 1.0]
                self._kinds[name] = "binary" if binary else "continuous"
            else:
                self._kinds[name] = "categorical"
                self._levels[name] = [str(c) for c in categories]
        rng = np.random.default_rng(_PILOT_SEED)
        pilot = self.transform(rng.standard_normal((_PILOT_SIZE, self.n_latent)))
        self._means = {n: float(pilot[n].mean()) for n in self.numeric_names()}

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def n_latent(self) -> int:
        return len(self._names)

    def kind(self, name: str) -> str:
        return self._kinds[name]

    def levels(self, name: str) -> list[str] | None:
        return self._levels.get(name)

    def categorical_levels(self) -> dict[str, list[str]]:
        return {name: list(levels) for name, levels in self._levels.items()}

    def numeric_names(self) -> list[str]:
        return [n for n in self._names if n not in self._levels]

    def n_levels(self, name: str) -> int:
        if name in self._levels:
            return len(self._levels[name])
        if self._kinds[name] == "binary":
            return 2
        raise ValueError(f"covariate {name!r} is not binary or categorical")

    def mean(self, name: str) -> float:
        return self._means[name]

    def transform(self, normals: np.ndarray) -> dict[str, np.ndarray]:
        """Covariates from independent standard normals of shape ``(..., n_latent)``."""
        shape = normals.shape[:-1]
        latent = normals.reshape(-1, self.n_latent) @ self._cholesky.T
        out = {}
        for j, name in enumerate(self._names):
            values = self.generator.latent_values(name, latent[:, j])
            if name in self._levels:
                codes = pd.Categorical(values.astype(str), categories=self._levels[name]).codes
                out[name] = codes.astype(np.int64).reshape(shape)
            else:
                out[name] = np.asarray(values, dtype=float).reshape(shape)
        return out

    def sample(self, n_patients: int, rng: int | np.random.Generator | None = None):
        """``n_patients`` virtual patients as a DataFrame (for inspection)."""
        rng = np.random.default_rng(rng)
        frame = pd.DataFrame(self.transform(rng.standard_normal((n_patients, self.n_latent))))
        for name, levels in self._levels.items():
            frame[name] = pd.Categorical.from_codes(frame[name], levels)
        return frame


def covariate_model(population) -> CovariateModel:
    """The covariate model of a protocol's ``population``: its generator's, or its own
    covariates and correlations."""
    if population.generator is not None:
        spec = population.generator
        return _generator_covariates(spec.model, tuple(spec.covariates))
    from generators.parametric import ParametricCovariates

    return ParametricCovariates(population.covariates, population.correlations)


@lru_cache(maxsize=8)
def _generator_covariates(path: str, covariates: tuple[str, ...]) -> GeneratorCovariates:
    import generators  # noqa: F401  (registers the generators)
    from generators.base import load

    return GeneratorCovariates(load(path), list(covariates))


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


__all__ = ["CovariateModel", "GeneratorCovariates", "covariate_model"]
