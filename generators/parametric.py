"""Parametric baseline covariates through a Gaussian copula.

Each covariate is a transform of one latent standard normal variable: normal and
log-normal covariates by their quantile function, binary and categorical ones by
thresholds at the normal quantiles of their cumulative probabilities. The latent
variables are correlated with the matrix built from the protocol's correlations, so the
correlation of two normal covariates is exactly ``rho`` and that of the others is the
latent (polychoric-type) correlation.

References
----------
Nelsen, R. B. (2006). *An Introduction to Copulas*, 2nd ed. Springer.
Patki, N., Wedge, R. and Veeramachaneni, K. (2016). The Synthetic Data Vault. IEEE DSAA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from array_api_compat import device
from scipy.special import ndtri

from trials.arrays import like, namespace
from trials.protocol import (
    BinaryCovariate,
    CategoricalCovariate,
    Correlation,
    Covariate,
    LogNormalCovariate,
    NormalCovariate,
)


@dataclass(frozen=True)
class ParametricCovariates:
    """Baseline covariates from parametric marginals joined by a Gaussian copula.

    Parameters
    ----------
    covariates : sequence of protocol covariates
        Marginal distributions, in order.
    correlations : sequence of Correlation
        Correlations of the latent normal variables; unspecified pairs are 0.

    Notes
    -----
    Categorical covariates are returned as integer codes ``0 .. n_levels - 1`` in the
    order of ``levels(name)``; binary covariates as 0.0 / 1.0.
    """

    covariates: Sequence[Covariate]
    correlations: Sequence[Correlation] = ()
    _cholesky: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cholesky", self._latent_cholesky())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.covariates]

    @property
    def n_latent(self) -> int:
        """The number of latent normal variables (one per covariate)."""
        return len(self.covariates)

    def levels(self, name: str) -> list[str] | None:
        """Level names of a categorical covariate, ``None`` for numeric ones."""
        cov = self._by_name(name)
        return list(cov.categories) if isinstance(cov, CategoricalCovariate) else None

    def categorical_levels(self) -> dict[str, list[str]]:
        return {
            c.name: list(c.categories)
            for c in self.covariates
            if isinstance(c, CategoricalCovariate)
        }

    def numeric_names(self) -> list[str]:
        return [c.name for c in self.covariates if not isinstance(c, CategoricalCovariate)]

    def n_levels(self, name: str) -> int:
        cov = self._by_name(name)
        if isinstance(cov, CategoricalCovariate):
            return len(cov.categories)
        if isinstance(cov, BinaryCovariate):
            return 2
        raise ValueError(f"covariate {name!r} is not binary or categorical")

    def kind(self, name: str) -> str:
        """``"categorical"`` (integer codes), ``"binary"`` (0.0 / 1.0) or ``"continuous"``."""
        cov = self._by_name(name)
        if isinstance(cov, CategoricalCovariate):
            return "categorical"
        return "binary" if isinstance(cov, BinaryCovariate) else "continuous"

    def mean(self, name: str) -> float:
        """The mean of a continuous covariate (the centring of its effects)."""
        return covariate_mean(self._by_name(name))

    def latent_correlation(self) -> np.ndarray:
        """The correlation matrix of the latent normal variables."""
        index = {name: i for i, name in enumerate(self.names)}
        corr = np.eye(len(index))
        for c in self.correlations:
            i, j = index[c.between[0]], index[c.between[1]]
            corr[i, j] = corr[j, i] = c.rho
        return corr

    def transform(self, normals: np.ndarray) -> dict[str, np.ndarray]:
        """Covariates from independent standard normals of shape ``(..., n_latent)``."""
        if self.n_latent == 0:
            return {}
        latent = normals if self._cholesky is None else normals @ like(self._cholesky.T, normals)
        return {cov.name: _marginal(cov, latent[..., i]) for i, cov in enumerate(self.covariates)}

    def sample(self, n_patients: int, rng: int | np.random.Generator | None = None):
        """Draw ``n_patients`` virtual patients as a pandas DataFrame."""
        import pandas as pd

        rng = np.random.default_rng(rng)
        values = self.transform(rng.standard_normal((n_patients, self.n_latent)))
        frame = pd.DataFrame(values)
        for name, levels in self.categorical_levels().items():
            frame[name] = pd.Categorical.from_codes(frame[name].astype(int), levels)
        return frame

    def _latent_cholesky(self) -> np.ndarray | None:
        if not self.correlations:
            return None
        corr = self.latent_correlation()
        try:
            return np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            raise ValueError(
                "the covariate correlations do not form a valid correlation matrix "
                "(not positive definite)"
            ) from None

    def _by_name(self, name: str) -> Covariate:
        for cov in self.covariates:
            if cov.name == name:
                return cov
        raise KeyError(name)


def _marginal(cov: Covariate, z):
    """One covariate from its latent standard normal (a numpy array or a torch tensor)."""
    xp = namespace(z)
    if isinstance(cov, NormalCovariate):
        return cov.mean + cov.sd * z
    if isinstance(cov, LogNormalCovariate):
        return xp.exp(cov.meanlog + cov.sdlog * z)
    if isinstance(cov, BinaryCovariate):
        return xp.astype(z < ndtri(cov.p), xp.float64)
    probabilities = np.fromiter(cov.categories.values(), float)
    cuts = ndtri(np.cumsum(probabilities / probabilities.sum())[:-1])
    codes = xp.zeros(z.shape, dtype=xp.int64, device=device(z))
    for cut in cuts:  # the number of cuts at or below z (searchsorted, side="right")
        codes += xp.astype(z >= cut, xp.int64)
    return codes


def covariate_mean(cov: Covariate) -> float:
    """The mean of a numeric covariate (the centring of its effect)."""
    if isinstance(cov, NormalCovariate):
        return cov.mean
    if isinstance(cov, LogNormalCovariate):
        return float(np.exp(cov.meanlog + cov.sdlog**2 / 2))
    raise ValueError(f"covariate {cov.name!r} has no mean")


__all__ = ["ParametricCovariates", "covariate_mean"]
