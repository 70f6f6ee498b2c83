"""Comparisons of a continuous endpoint between two arms, vectorized over simulated trials.

Every input is an ``(R, N)`` array (``R`` replicate trials of ``N`` patients) or one trial of
shape ``(N,)``; covariates add a last axis.  The statistics are computed for all replicates at
once, with no Python loop over patients or replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

__all__ = ["MeansResult", "ancova", "t_test"]


@dataclass(frozen=True)
class MeansResult:
    """Result of :func:`t_test` and :func:`ancova`: one value per replicate.

    Fields are arrays of shape ``(R,)`` for ``(R, N)`` inputs, numpy scalars for one trial.

    Attributes
    ----------
    difference : ndarray of float
        Estimated treatment effect, experimental minus control: the difference of the arm
        means (:func:`t_test`) or the covariate-adjusted difference (:func:`ancova`).
    se : ndarray of float
        Its standard error.
    t : ndarray of float
        ``difference / se``.
    df : ndarray of int
        Residual degrees of freedom, ``n - k`` with ``k`` coefficients (2 for the t-test).
    n_exp, n_ctl : ndarray of int
        Patients in each arm.

    Notes
    -----
    Where an arm is empty, ``df < 1``, or the design is singular, every statistic is ``nan``.
    Where the residual variance is 0, ``t`` is ``+-inf`` (``nan`` if the difference is 0 too).
    """

    difference: np.ndarray
    se: np.ndarray
    t: np.ndarray
    df: np.ndarray
    n_exp: np.ndarray
    n_ctl: np.ndarray

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value from Student's t distribution with ``df`` degrees of freedom."""
        with np.errstate(invalid="ignore"):
            df = np.where(np.asarray(self.df) > 0, self.df, np.nan)
            return 2.0 * special.stdtr(df, -np.abs(self.t))

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """Confidence interval of the difference, ``difference -+ t_{df} se``.

        Parameters
        ----------
        level : float
            Two-sided confidence level, in (0, 1).

        Returns
        -------
        ndarray
            ``(R, 2)`` lower and upper bounds (``(2,)`` for one trial).
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level!r}")
        with np.errstate(invalid="ignore"):
            df = np.where(np.asarray(self.df) > 0, self.df, np.nan)
            half = special.stdtrit(df, 0.5 + level / 2.0) * self.se
        return np.stack([self.difference - half, self.difference + half], axis=-1)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """One row per replicate: estimate, standard error, test and confidence interval."""
        ci = np.atleast_2d(self.conf_int(level))
        pct = f"{100 * level:g}%"
        return pd.DataFrame(
            {
                "n_exp": np.atleast_1d(self.n_exp),
                "n_ctl": np.atleast_1d(self.n_ctl),
                "difference": np.atleast_1d(self.difference),
                "se": np.atleast_1d(self.se),
                f"difference lower {pct}": ci[:, 0],
                f"difference upper {pct}": ci[:, 1],
                "t": np.atleast_1d(self.t),
                "df": np.atleast_1d(self.df),
                "p_value": np.atleast_1d(self.p_value),
            },
            index=pd.RangeIndex(np.size(self.t), name="replicate"),
        )


def t_test(y: ArrayLike, group: ArrayLike, valid: ArrayLike | None = None) -> MeansResult:
    """Student's two-sample t-test (pooled variance) on each replicate trial.

    Parameters
    ----------
    y : array_like of float, shape (R, N) or (N,)
        The endpoint; values of patients not ``valid`` are ignored (``nan`` allowed there).
    group : array_like of bool, shape like `y`
        True for the experimental arm, False for the control arm.
    valid : array_like of bool, shape like `y`, optional
        Patients included (default: all).

    Returns
    -------
    MeansResult
        ``difference = mean_exp - mean_ctl``, ``se = s_p sqrt(1/n_exp + 1/n_ctl)`` with the
        pooled variance ``s_p^2``, ``df = n_exp + n_ctl - 2``.  Arrays of shape ``(R,)`` for
        2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the inputs do not have one shape, are not 1-D or 2-D, or a valid ``y`` is not
        finite.

    Notes
    -----
    Assumes independent, normally distributed outcomes with equal variances in the two arms
    (as scipy's ``ttest_ind(equal_var=True)``).  The arm means are computed first and the
    sums of squares around them (two passes), for accuracy.

    References
    ----------
    .. [1] Student (1908). The probable error of a mean. *Biometrika* 6(1), 1-25.
    .. [2] Snedecor, G. W. and Cochran, W. G. (1989). *Statistical Methods*, 8th ed.,
       chapter 6. Iowa State University Press.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.means import t_test
    >>> y = np.array([5.0, 6.0, 7.0, 1.0, 2.0, 3.0])
    >>> group = np.array([True, True, True, False, False, False])
    >>> res = t_test(y, group)
    >>> float(res.difference), round(float(res.t), 4), int(res.df)
    (4.0, 4.899, 4)
    """
    one_trial, y2, g, v, _ = _prepare(y, group, valid, None)
    w_exp = (g & v).astype(np.float64)
    w_ctl = (~g & v).astype(np.float64)
    n_exp = np.count_nonzero(w_exp, axis=1)
    n_ctl = np.count_nonzero(w_ctl, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_exp = np.einsum("rn,rn->r", w_exp, y2) / n_exp
        mean_ctl = np.einsum("rn,rn->r", w_ctl, y2) / n_ctl
        centred = y2 - np.where(g, mean_exp[:, None], mean_ctl[:, None])
        centred *= v
        ss = np.einsum("rn,rn->r", centred, centred)
        df = n_exp + n_ctl - 2
        ok = (n_exp > 0) & (n_ctl > 0) & (df > 0)
        difference = np.where(ok, mean_exp - mean_ctl, np.nan)
        se = np.where(ok, np.sqrt(ss / df * (1.0 / n_exp + 1.0 / n_ctl)), np.nan)
        t = difference / se
    return _result(one_trial, difference, se, t, df, n_exp, n_ctl)


def ancova(
    y: ArrayLike,
    group: ArrayLike,
    covariates: ArrayLike | None,
    valid: ArrayLike | None = None,
) -> MeansResult:
    """Analysis of covariance: OLS of the endpoint on arm and covariates, per replicate.

    Fits ``y = b0 + b1 * group + covariates @ c + e`` by least squares in each replicate and
    tests ``b1``, the covariate-adjusted treatment effect, with ``t = b1 / se(b1)`` on
    ``n - k`` degrees of freedom (``k = 2 + p`` coefficients), as statsmodels' ``OLS`` on each
    replicate alone.

    Parameters
    ----------
    y : array_like of float, shape (R, N) or (N,)
        The endpoint; values of patients not ``valid`` are ignored.
    group : array_like of bool, shape like `y`
        True for the experimental arm, False for the control arm.
    covariates : array_like of float, shape (R, N, p) or (N, p), or None
        Baseline covariates (without an intercept column); ``(R, N)`` or ``(N,)`` is taken as
        one covariate.  None: no covariate, the same as :func:`t_test`.
    valid : array_like of bool, shape like `y`, optional
        Patients included (default: all).

    Returns
    -------
    MeansResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the shapes disagree or a valid value of `y` or of a covariate is not finite.

    Notes
    -----
    Assumes a linear effect of each covariate, common to both arms, and independent normal
    errors of equal variance.  Computation: within each replicate the arm indicator and the
    covariates are centred on their means over the valid patients (which removes the
    intercept without changing the other coefficients, their covariance or the residuals),
    the ``(R, k-1, k-1)`` normal equations are solved in one batched ``numpy.linalg.solve``,
    and the residual sum of squares is computed from the residuals themselves.  Replicates
    whose design is singular (an empty arm, fewer patients than coefficients, collinear
    covariates) get ``nan``.

    References
    ----------
    .. [1] Fisher, R. A. (1932). *Statistical Methods for Research Workers*, 4th ed., section
       49.1. Oliver and Boyd.
    .. [2] EMA (2015). Guideline on adjustment for baseline covariates in clinical trials.
       EMA/CHMP/295050/2013.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.means import ancova
    >>> y = np.array([5.0, 6.5, 7.0, 1.0, 2.5, 3.0])
    >>> group = np.array([True, True, True, False, False, False])
    >>> baseline = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    >>> res = ancova(y, group, baseline)
    >>> float(res.difference), int(res.df)
    (4.0, 3)
    """
    if covariates is None:
        return t_test(y, group, valid)
    one_trial, y2, g, v, x = _prepare(y, group, valid, covariates)
    n_exp = np.count_nonzero(g & v, axis=1)
    n_ctl = np.count_nonzero(~g & v, axis=1)
    n = n_exp + n_ctl
    n_coef = 2 + x.shape[1]
    df = n - n_coef

    # Design without intercept, laid out (R, k-1, N): the arm, then the covariates, centred on
    # the valid patients' means and zero for the others.
    w = v.astype(np.float64)
    design = np.empty((x.shape[0], n_coef - 1, x.shape[2]))
    design[:, 0, :] = g
    design[:, 1:, :] = x
    inv_n = 1.0 / np.maximum(n, 1)
    means = np.matmul(design, w[:, :, None])
    means *= inv_n[:, None, None]
    design -= means
    design *= w[:, None, :]
    yc = y2 - (np.einsum("rn,rn->r", w, y2) * inv_n)[:, None]
    yc *= w
    gram = np.matmul(design, design.transpose(0, 2, 1))
    rhs = np.matmul(design, yc[:, :, None])[:, :, 0]
    solvable = (n_exp > 0) & (n_ctl > 0) & (df > 0)
    solution = _solve_batched(gram, rhs, solvable)
    coef = solution[:, :, 0]
    fitted = np.matmul(coef[:, None, :], design)[:, 0, :]
    yc -= fitted  # the residuals (0 for patients not valid)
    rss = np.einsum("rn,rn->r", yc, yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = coef[:, 0]
        se = np.sqrt(rss / df * solution[:, 0, 1])
        t = difference / se
    return _result(one_trial, difference, se, t, df, n_exp, n_ctl)


def _solve_batched(gram: np.ndarray, rhs: np.ndarray, solvable: np.ndarray) -> np.ndarray:
    """Solve ``gram @ [coef, e0] = [rhs, e0]`` for every replicate.

    Returns ``(R, q, 2)``: the coefficients, and the first column of ``gram``'s inverse.
    Replicates not ``solvable`` or whose ``gram`` is numerically singular get ``nan``.
    """
    n_rep, q = rhs.shape
    unit = np.zeros((n_rep, q, 1))
    unit[:, 0, 0] = 1.0
    right = np.concatenate([rhs[:, :, None], unit], axis=2)
    singular = ~solvable
    # Rank check (relative to the largest singular value) on the solvable replicates only.
    values = np.linalg.svd(gram[solvable], compute_uv=False)
    rank_deficient = values[:, -1] <= values[:, 0] * q * np.finfo(np.float64).eps
    singular[np.flatnonzero(solvable)[rank_deficient]] = True
    gram = np.where(singular[:, None, None], np.eye(q), gram)
    solution = np.linalg.solve(gram, right)
    solution[singular] = np.nan
    return solution


def _result(
    one_trial: bool,
    difference: np.ndarray,
    se: np.ndarray,
    t: np.ndarray,
    df: np.ndarray,
    n_exp: np.ndarray,
    n_ctl: np.ndarray,
) -> MeansResult:
    fields = (difference, se, t, df, n_exp, n_ctl)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return MeansResult(*fields)


def _finite_where_valid(a: np.ndarray, valid: np.ndarray) -> bool:
    """Whether every value of ``a`` where ``valid`` is finite."""
    finite = np.isfinite(a)
    if finite.all():
        return True
    return bool((finite | ~valid).all())


def _prepare(
    y: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None,
    covariates: ArrayLike | None,
) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Check the inputs and return them as ``(R, N)`` arrays (covariates ``(R, p, N)``).

    Invalid patients' ``y`` and covariates are set to 0 so that they drop out of every sum.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    if y_arr.ndim not in (1, 2):
        raise ValueError(
            f"y must be 1-D (one trial) or 2-D (replicates, patients); got {y_arr.ndim} dimensions"
        )
    one_trial = y_arr.ndim == 1
    shape = y_arr.shape

    def as_2d(name: str, a: ArrayLike) -> np.ndarray:
        arr = np.asarray(a)
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}; expected {shape}, the shape of y")
        arr = arr.astype(bool, copy=False)
        return arr[None, :] if one_trial else arr

    g = as_2d("group", group)
    if valid is None:
        v = np.ones((1,) + shape if one_trial else shape, dtype=bool)
    else:
        v = as_2d("valid", valid)
    y2 = y_arr[None, :] if one_trial else y_arr
    if not _finite_where_valid(y2, v):
        raise ValueError("y must be finite for every valid patient")
    if valid is not None:
        y2 = np.where(v, y2, 0.0)
    x = None
    if covariates is not None:
        x = np.asarray(covariates, dtype=np.float64)
        if x.shape == shape:
            x = x[..., None]
        if x.ndim != len(shape) + 1 or x.shape[:-1] != shape:
            raise ValueError(
                f"covariates has shape {x.shape}; expected {shape + ('p',)} (or {shape} for "
                "one covariate)"
            )
        x = np.moveaxis(x[None] if one_trial else x, -1, 1)  # (R, p, N)
        if not _finite_where_valid(x, v[:, None, :]):
            raise ValueError("covariates must be finite for every valid patient")
        if valid is not None:
            x = np.where(v[:, None, :], x, 0.0)
    return one_trial, y2, g, v, x
