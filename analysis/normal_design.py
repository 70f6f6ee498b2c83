"""Sample size and power for comparisons of means (z or t) and of proportions (normal
approximation with Farrington–Manning restricted variance, as rpact). Conventions as in
:mod:`analysis.power`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import pandas as pd
from scipy import special

from analysis.design_inputs import (
    _check_test,
    _finite,
    _positive,
    _root,
    _two_tail_power,
    _unit_open,
    _z,
)
from trials.exceptions import DesignError

# ------------------------------------------------------------------------------ means


def _check_allocation(allocation_ratio: float) -> float:
    return _positive("allocation_ratio", allocation_ratio)


@dataclass(frozen=True)
class MeansDesign:
    """A fixed two-arm comparison of means (normal outcome, common standard deviation).

    The test is of ``H0: mu_experimental - mu_control = null_difference`` against the
    direction of ``difference``, by a z-test (``normal_approximation=True``) or a
    two-sample t-test with ``n_patients - 2`` degrees of freedom.

    Attributes
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation.
    null_difference : float
        The difference under the null hypothesis (rpact's ``thetaH0``).
    alpha, sided, allocation_ratio, normal_approximation
        The test (see :func:`means_sample_size`).
    power : float
        Target power (:func:`means_sample_size`) or power (:func:`means_power`).
    n_patients : float
        Total number of patients; ``n_experimental`` and ``n_control`` split it.
    """

    difference: float
    sd: float
    null_difference: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    normal_approximation: bool
    n_patients: float

    @property
    def n_experimental(self) -> float:
        return self.n_patients * self.allocation_ratio / (1 + self.allocation_ratio)

    @property
    def n_control(self) -> float:
        return self.n_patients / (1 + self.allocation_ratio)

    def summary(self) -> pd.DataFrame:
        """The design's inputs and results, one row each (column ``value``)."""
        names = [f.name for f in fields(self)] + ["n_experimental", "n_control"]
        rows = {name: getattr(self, name) for name in names}
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _means_inputs(difference, sd, null_difference, alpha, sided, allocation_ratio, power=None):
    difference = _finite("difference", difference)
    sd = _positive("sd", sd)
    null_difference = _finite("null_difference", null_difference)
    alpha, sided = _check_test(alpha, sided, power)
    allocation_ratio = _check_allocation(allocation_ratio)
    # standardized effect per sqrt(total patients), in the direction of the effect
    theta = (
        math.sqrt(allocation_ratio)
        / (1 + allocation_ratio)
        * abs(difference - null_difference)
        / sd
    )
    return difference, sd, null_difference, alpha, sided, allocation_ratio, theta


def _t_power(n_patients: float, theta: float, tail_alpha: float, both_tails: bool) -> float:
    """Power of the two-sample t-test, ``tail_alpha`` in each tail that is tested."""
    df = max(n_patients - 2.0, 1e-3)  # as rpact, to keep the search defined near N = 2
    t_crit = float(special.stdtrit(df, 1 - tail_alpha))
    ncp = theta * math.sqrt(n_patients)
    power = float(special.nctdtr(df, -ncp, -t_crit))  # = 1 - F(t_crit; df, ncp)
    if both_tails:
        power += float(special.nctdtr(df, ncp, -t_crit))
    return power


def means_sample_size(
    difference: float,
    sd: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
    normal_approximation: bool = True,
) -> MeansDesign:
    r"""Number of patients to compare two means.

    With the normal approximation,

    .. math::

        N = \frac{(1 + r)^2}{r}
            \frac{(z_{1-\alpha/s} + z_{1-\beta})^2 \sigma^2}{(\delta - \delta_0)^2};

    otherwise the smallest (real) ``N`` at which the one-tailed power of the two-sample
    t-test, ``1 - F_{t}(t_{1-\alpha/s, N-2}; N - 2, \mathrm{ncp})`` with
    ``ncp = sqrt(N r) / (1 + r) |delta - delta0| / sigma``, reaches ``power``. Both as
    rpact's ``getSampleSizeMeans`` (``normalApproximation = TRUE / FALSE``).

    Parameters
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation (positive).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        The difference under the null hypothesis (for a non-inferiority or superiority
        margin); ``difference`` must differ from it.
    normal_approximation : bool
        z-test (default) or t-test (rpact's default).

    Returns
    -------
    MeansDesign

    Raises
    ------
    DesignError
        For ``difference == null_difference``, a non-positive ``sd`` or allocation ratio,
        or ``alpha`` or ``power`` outside ``(0, 1)``.

    References
    ----------
    .. [1] Chow, S.-C., Shao, J. & Wang, H. (2008). *Sample Size Calculations in Clinical
       Research*, 2nd ed., ch. 3. Chapman & Hall/CRC.
    .. [2] rpact, ``getSampleSizeMeans``, https://www.rpact.org.

    Examples
    --------
    >>> round(means_sample_size(1.0, 3.0, power=0.9).n_patients, 2)
    378.27
    """
    difference, sd, null_difference, alpha, sided, allocation_ratio, theta = _means_inputs(
        difference, sd, null_difference, alpha, sided, allocation_ratio, power
    )
    if theta == 0:
        raise DesignError(
            f"difference ({difference}) equals null_difference ({null_difference}): there is "
            "no effect to detect"
        )
    n_patients = ((_z(alpha / sided) + _z(1 - power)) / theta) ** 2
    if not normal_approximation:
        # one-tailed power (rpact's twoSidedPower = FALSE), increasing in N for N > 2
        n_patients = _root(
            lambda n: _t_power(n, theta, alpha / sided, both_tails=False) - power,
            2.001,
            n_patients + 10.0,
        )
    return MeansDesign(
        difference=difference,
        sd=sd,
        null_difference=null_difference,
        alpha=alpha,
        power=float(power),
        sided=sided,
        allocation_ratio=allocation_ratio,
        normal_approximation=bool(normal_approximation),
        n_patients=float(n_patients),
    )


def means_power(
    difference: float,
    sd: float,
    n_patients: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
    normal_approximation: bool = True,
) -> MeansDesign:
    r"""Power of a comparison of two means with ``n_patients`` patients in all.

    With the normal approximation ``Phi(theta sqrt(N) - z_{1-alpha/s})`` with
    ``theta = sqrt(r) / (1 + r) |delta - delta0| / sigma`` (plus the far tail when
    two-sided); otherwise the power of the two-sample t-test with ``N - 2`` degrees of
    freedom from the noncentral t distribution (both tails when two-sided).

    Parameters
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation (positive).
    n_patients : float
        Total number of patients (more than 2 for the t-test).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        The difference under the null hypothesis.
    normal_approximation : bool
        z-test (default) or t-test.

    Returns
    -------
    MeansDesign
        With ``power`` the power (rpact's ``getPowerMeans`` ``overallReject`` with
        ``directionUpper = difference > null_difference``).

    Raises
    ------
    DesignError
        For invalid inputs.

    References
    ----------
    .. [1] Chow, S.-C., Shao, J. & Wang, H. (2008). *Sample Size Calculations in Clinical
       Research*, 2nd ed., ch. 3. Chapman & Hall/CRC.
    .. [2] rpact, ``getPowerMeans``, https://www.rpact.org.

    Examples
    --------
    >>> round(means_power(1.0, 3.0, n_patients=378.3).power, 3)
    0.9
    """
    difference, sd, null_difference, alpha, sided, allocation_ratio, theta = _means_inputs(
        difference, sd, null_difference, alpha, sided, allocation_ratio
    )
    n_patients = _positive("n_patients", n_patients)
    if normal_approximation:
        power = _two_tail_power(theta * math.sqrt(n_patients), _z(alpha / sided), sided)
    else:
        if n_patients <= 2:
            raise DesignError(f"the t-test needs more than 2 patients, got {n_patients}")
        power = _t_power(n_patients, theta, alpha / sided, both_tails=sided == 2)
    return MeansDesign(
        difference=difference,
        sd=sd,
        null_difference=null_difference,
        alpha=alpha,
        power=power,
        sided=sided,
        allocation_ratio=allocation_ratio,
        normal_approximation=bool(normal_approximation),
        n_patients=n_patients,
    )


# ------------------------------------------------------------------------ proportions


@dataclass(frozen=True)
class ProportionsDesign:
    """A fixed two-arm comparison of proportions (binary outcome), by a z-test.

    The test is of ``H0: p_experimental - p_control = null_difference`` against the
    direction of ``p_experimental - p_control``, with the variance under the null hypothesis
    from the restricted maximum likelihood estimates of Farrington & Manning (the pooled
    proportion when ``null_difference = 0``).

    Attributes
    ----------
    p_control, p_experimental : float
        Proportions (probabilities of response) under the alternative.
    null_difference : float
        The difference under the null hypothesis (rpact's ``thetaH0``).
    alpha, sided, allocation_ratio
        The test (see :func:`proportions_sample_size`).
    power : float
        Target power (:func:`proportions_sample_size`) or power
        (:func:`proportions_power`).
    n_patients : float
        Total number of patients; ``n_experimental`` and ``n_control`` split it.
    """

    p_control: float
    p_experimental: float
    null_difference: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    n_patients: float

    @property
    def n_experimental(self) -> float:
        return self.n_patients * self.allocation_ratio / (1 + self.allocation_ratio)

    @property
    def n_control(self) -> float:
        return self.n_patients / (1 + self.allocation_ratio)

    def summary(self) -> pd.DataFrame:
        """The design's inputs and results, one row each (column ``value``)."""
        names = [f.name for f in fields(self)] + ["n_experimental", "n_control"]
        rows = {name: getattr(self, name) for name in names}
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _restricted_mle(
    p_experimental: float, p_control: float, null_difference: float, allocation_ratio: float
) -> tuple[float, float]:
    """Proportions maximizing the likelihood subject to ``p1 - p2 = null_difference``.

    The closed-form root of Farrington & Manning's (1990) cubic, as rpact's
    ``.getFarringtonManningValuesDiff`` (``p1`` experimental, allocation ``n1 / n2``).
    """
    p1, p2, theta, r = p_experimental, p_control, null_difference, allocation_ratio
    if theta == 0:
        pooled = (r * p1 + p2) / (1 + r)
        return pooled, pooled
    a = 1 + 1 / r
    b = -(1 + 1 / r + p1 + p2 / r + theta * (1 / r + 2))
    c = theta**2 + theta * (2 * p1 + 1 / r + 1) + p1 + p2 / r
    d = -theta * (1 + theta) * p1
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    root = math.sqrt(b**2 / (3 * a) ** 2 - c / (3 * a))
    if v == 0:
        u, w = root, math.pi / 2
    else:
        u = math.copysign(root, v)
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3
    ml1 = min(max(0.0, 2 * u * math.cos(w) - b / (3 * a)), 1.0)
    ml2 = min(max(0.0, ml1 - theta), 1.0)
    return ml1, ml2


def _proportions_inputs(
    p_control, p_experimental, null_difference, alpha, sided, allocation_ratio, power=None
):
    p_control = _unit_open("p_control", p_control)
    p_experimental = _unit_open("p_experimental", p_experimental)
    null_difference = _finite("null_difference", null_difference)
    if not -1 < null_difference < 1:
        raise DesignError(f"null_difference must lie in (-1, 1), got {null_difference}")
    alpha, sided = _check_test(alpha, sided, power)
    allocation_ratio = _check_allocation(allocation_ratio)
    effect = p_experimental - p_control - null_difference
    ml1, ml2 = _restricted_mle(p_experimental, p_control, null_difference, allocation_ratio)
    r = allocation_ratio
    # variances of sqrt(n_experimental) * (p1_hat - p2_hat) under H1 and H0
    var1 = p_experimental * (1 - p_experimental) + r * p_control * (1 - p_control)
    var0 = ml1 * (1 - ml1) + r * ml2 * (1 - ml2)
    return p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1


def proportions_sample_size(
    p_control: float,
    p_experimental: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
) -> ProportionsDesign:
    r"""Number of patients to compare two proportions.

    .. math::

        n_E = \frac{\left(z_{1-\alpha/s}\sqrt{\tilde p_E \tilde q_E + r \tilde p_C \tilde q_C}
              + z_{1-\beta}\sqrt{p_E q_E + r p_C q_C}\right)^2}
              {(p_E - p_C - \delta_0)^2},
        \qquad N = n_E (1 + r) / r,

    with the null variance from the restricted maximum likelihood estimates
    ``tilde p`` (Farrington & Manning; the pooled proportion ``(r p_E + p_C) / (1 + r)``
    when ``null_difference = 0``), as rpact's ``getSampleSizeRates``.

    Parameters
    ----------
    p_control, p_experimental : float
        Proportions under the alternative, in ``(0, 1)``.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        ``p_experimental - p_control`` under the null hypothesis (negative for a
        non-inferiority test when higher is better).

    Returns
    -------
    ProportionsDesign

    Raises
    ------
    DesignError
        For proportions outside ``(0, 1)``, no effect
        (``p_experimental - p_control == null_difference``), or ``alpha`` or ``power``
        outside ``(0, 1)``.

    References
    ----------
    .. [1] Farrington, C. P. & Manning, G. (1990). Test statistics and sample size formulae
       for comparative binomial trials with null hypothesis of non-zero risk difference or
       non-unity relative risk. *Statistics in Medicine*, 9(12), 1447-1454.
    .. [2] rpact, ``getSampleSizeRates``, https://www.rpact.org.

    Examples
    --------
    >>> round(proportions_sample_size(0.3, 0.45, power=0.8).n_patients, 1)
    324.7
    """
    p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1 = (
        _proportions_inputs(
            p_control, p_experimental, null_difference, alpha, sided, allocation_ratio, power
        )
    )
    if effect == 0:
        raise DesignError(
            f"p_experimental - p_control ({p_experimental - p_control}) equals "
            f"null_difference ({null_difference}): there is no effect to detect"
        )
    n_experimental = (
        (_z(alpha / sided) * math.sqrt(var0) + _z(1 - power) * math.sqrt(var1)) / effect
    ) ** 2
    return ProportionsDesign(
        p_control=p_control,
        p_experimental=p_experimental,
        null_difference=null_difference,
        alpha=alpha,
        power=float(power),
        sided=sided,
        allocation_ratio=r,
        n_patients=n_experimental * (1 + r) / r,
    )


def proportions_power(
    p_control: float,
    p_experimental: float,
    n_patients: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
) -> ProportionsDesign:
    r"""Power of a comparison of two proportions with ``n_patients`` patients in all.

    ``Phi((|p_E - p_C - delta0| sqrt(n_E) - z sqrt(v0)) / sqrt(v1))`` with the variances of
    :func:`proportions_sample_size` and ``z = z_{1-alpha/s}``; when two-sided, the far tail
    is added as rpact's ``getPowerRates`` does.

    Parameters
    ----------
    p_control, p_experimental : float
        Proportions under the alternative, in ``(0, 1)``.
    n_patients : float
        Total number of patients.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        ``p_experimental - p_control`` under the null hypothesis.

    Returns
    -------
    ProportionsDesign
        With ``power`` the power (rpact's ``getPowerRates`` ``overallReject`` with
        ``directionUpper = p_experimental - p_control > null_difference``).

    Raises
    ------
    DesignError
        For invalid inputs.

    References
    ----------
    .. [1] Farrington, C. P. & Manning, G. (1990). *Statistics in Medicine*, 9(12),
       1447-1454.
    .. [2] rpact, ``getPowerRates``, https://www.rpact.org.

    Examples
    --------
    >>> round(proportions_power(0.3, 0.45, n_patients=324.8).power, 3)
    0.8
    """
    p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1 = (
        _proportions_inputs(
            p_control, p_experimental, null_difference, alpha, sided, allocation_ratio
        )
    )
    n_patients = _positive("n_patients", n_patients)
    z_crit = _z(alpha / sided)
    n_experimental = n_patients * r / (1 + r)
    # rpact's drift: the z-statistic's mean in null-variance units, shifted so that
    # Phi(drift - z) is the one-tailed power
    drift = abs(effect) * math.sqrt(n_experimental / var1) + z_crit * (1 - math.sqrt(var0 / var1))
    return ProportionsDesign(
        p_control=p_control,
        p_experimental=p_experimental,
        null_difference=null_difference,
        alpha=alpha,
        power=_two_tail_power(drift, z_crit, sided),
        sided=sided,
        allocation_ratio=r,
        n_patients=n_patients,
    )
