"""Tumour growth inhibition with a survival link: a mechanistic generator.

The tumour size (sum of longest diameters, mm) of each virtual patient follows the
tumour growth inhibition model of Claret et al. (2009),

.. math::

    \\frac{dS}{dt} = k_g S - k_d e^{-\\lambda t} S, \\qquad S(0) = S_0,

whose solution is :math:`S(t) = S_0 \\exp(k_g t - (k_d/\\lambda)(1 - e^{-\\lambda t}))`
(:math:`k_d t` in place of the last term when :math:`\\lambda = 0`). The drug effect
:math:`k_d` decays at the resistance rate :math:`\\lambda`, so the tumour shrinks, reaches a
nadir and regrows. Survival is linked to the early tumour size ratio, as in Claret et al.

References
----------
Claret, L., Girard, P., Hoff, P. M., et al. (2009). Model-based prediction of phase III
overall survival in colorectal cancer on the basis of phase II tumor dynamics. *J Clin
Oncol* 27(25), 4103-4108.
Stein, W. D., Gulley, J. L., Schlom, J., et al. (2011). Tumor regression and growth rates
determined in five intramural NCI prostate cancer trials. *Clin Cancer Res* 17(4), 907-917.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from generators.base import Generator, register
from trials.exceptions import DataError

#: Eight weeks in months (30.4375 days a month), the link time of Claret et al. (week 7-8).
EIGHT_WEEKS = 56 / 30.4375


def _decay_integral(t: np.ndarray, resistance_rate: float) -> np.ndarray:
    """:math:`\\int_0^t e^{-\\lambda u} du`, equal to ``t`` when ``lambda == 0``."""
    t = np.asarray(t, dtype=float)
    if resistance_rate == 0:
        return t
    return -np.expm1(-resistance_rate * t) / resistance_rate


@register("tumour_growth")
class TumourGrowthInhibition(Generator):
    """Virtual patients from the Claret et al. (2009) tumour growth inhibition model.

    Each patient's baseline size :math:`S_0`, growth rate :math:`k_g` and drug shrinkage
    rate :math:`k_d` are log-normal around their typical (median) values, independently,
    with the given coefficients of variation (``sdlog = sqrt(log(1 + cv**2))``, as for
    exponential random effects in population pharmacokinetics); the resistance rate
    :math:`\\lambda` is the same for all patients. Time is in months, sizes in mm.

    Survival is exponential with the hazard of death

    .. math::

        h = h_0 \\exp(\\beta_1 \\, \\mathrm{TSR} + \\beta_2 \\log(S_0 / S_{0,\\mathrm{typ}})),

    where :math:`\\mathrm{TSR} = S(t_\\mathrm{link}) / S_0 - 1` is the relative change in
    tumour size at ``link_month`` (negative when the tumour shrank). This simplifies
    Claret et al.'s log-normal survival model, whose predictors were the tumour size
    ratio at week 7 and the baseline tumour size, to a constant hazard; every death is
    observed (``event = 1``, no censoring: censoring belongs to the trial design).

    Nothing is learned from data: the parameters come from the protocol or the
    literature. The defaults are illustrative, of the order of the colorectal cancer
    estimates of Claret et al. (2009) converted to months; they are not a fit to any
    trial.

    Parameters
    ----------
    baseline_size : float
        Typical (median) baseline tumour size :math:`S_0`, mm.
    baseline_cv : float
        Between-patient coefficient of variation of :math:`S_0`.
    growth_rate : float
        Typical tumour growth rate :math:`k_g`, per month.
    growth_cv : float
        Between-patient coefficient of variation of :math:`k_g`.
    shrinkage_rate : float
        Typical drug-induced shrinkage rate :math:`k_d` at the start of treatment, per month.
    shrinkage_cv : float
        Between-patient coefficient of variation of :math:`k_d`.
    resistance_rate : float
        Rate :math:`\\lambda` at which the drug effect decays (resistance), per month;
        0 means no resistance.
    baseline_hazard : float
        Hazard of death :math:`h_0` of a typical-size patient whose tumour does not change,
        per month.
    tsr_effect : float
        Log hazard ratio :math:`\\beta_1` per unit of relative change in tumour size at the
        link time (positive: shrinkage lowers the hazard).
    size_effect : float
        Log hazard ratio :math:`\\beta_2` per unit of log baseline size relative to the
        typical size.
    link_month : float
        Time of the tumour size ratio in the survival link, months (default 8 weeks).

    Raises
    ------
    DataError
        From :meth:`fit`, when a parameter is out of range.

    Examples
    --------
    >>> model = TumourGrowthInhibition().fit()
    >>> patients = model.sample(3, rng=1)
    >>> list(patients.columns)[:3]
    ['baseline_size', 'growth_rate', 'shrinkage_rate']
    """

    learns_from_data = False

    def __init__(
        self,
        baseline_size: float = 50.0,
        baseline_cv: float = 0.3,
        growth_rate: float = 0.06,
        growth_cv: float = 0.5,
        shrinkage_rate: float = 0.25,
        shrinkage_cv: float = 0.5,
        resistance_rate: float = 0.15,
        baseline_hazard: float = 0.05,
        tsr_effect: float = 1.0,
        size_effect: float = 0.3,
        link_month: float = EIGHT_WEEKS,
    ) -> None:
        self.baseline_size = baseline_size
        self.baseline_cv = baseline_cv
        self.growth_rate = growth_rate
        self.growth_cv = growth_cv
        self.shrinkage_rate = shrinkage_rate
        self.shrinkage_cv = shrinkage_cv
        self.resistance_rate = resistance_rate
        self.baseline_hazard = baseline_hazard
        self.tsr_effect = tsr_effect
        self.size_effect = size_effect
        self.link_month = link_month

    # -- closed forms -------------------------------------------------------------------

    @staticmethod
    def size(
        t: Any,
        baseline_size: Any,
        growth_rate: Any,
        shrinkage_rate: Any,
        resistance_rate: float,
    ) -> np.ndarray:
        """Tumour size at time ``t``, the closed-form solution of the model's ODE.

        ``S0 * exp(kg * t - kd * (1 - exp(-lambda * t)) / lambda)``; the arguments
        broadcast together (``resistance_rate`` is a scalar).
        """
        t = np.asarray(t, dtype=float)
        exponent = np.asarray(growth_rate, dtype=float) * t - np.asarray(
            shrinkage_rate, dtype=float
        ) * _decay_integral(t, float(resistance_rate))
        return np.asarray(baseline_size, dtype=float) * np.exp(exponent)

    @staticmethod
    def time_to_nadir(growth_rate: Any, shrinkage_rate: Any, resistance_rate: float) -> np.ndarray:
        """Time at which the tumour is smallest, months.

        ``log(kd / kg) / lambda`` when ``kd > kg``; 0 when ``kd <= kg`` (the tumour never
        shrinks); infinite when the tumour shrinks forever (``lambda == 0`` or ``kg == 0``
        with ``kd > kg``).
        """
        kg = np.asarray(growth_rate, dtype=float)
        kd = np.asarray(shrinkage_rate, dtype=float)
        shrinks = kd > kg
        with np.errstate(divide="ignore", invalid="ignore"):
            if resistance_rate == 0:
                nadir = np.where(shrinks, np.inf, 0.0)
            else:
                nadir = np.where(shrinks, np.log(kd / kg) / resistance_rate, 0.0)
        return nadir

    def hazard(self, tsr: Any, baseline_size: Any) -> np.ndarray:
        """Hazard of death (per month) given the tumour size ratio and baseline size."""
        log_size = np.log(np.asarray(baseline_size, dtype=float) / self.baseline_size)
        return self.baseline_hazard * np.exp(
            self.tsr_effect * np.asarray(tsr, dtype=float) + self.size_effect * log_size
        )

    # -- the generator contract -----------------------------------------------------------

    def fit(self, data: pd.DataFrame | None = None) -> TumourGrowthInhibition:
        """Validate the parameters; nothing is learned from data.

        Parameters
        ----------
        data : DataFrame or None
            Ignored for the model (the parameters are mechanistic); when given, its hash
            and shape are recorded as the generator's provenance. When ``None``, a one-row
            frame of the parameters is recorded instead.

        Returns
        -------
        self

        Raises
        ------
        DataError
            When a parameter is not a finite number, a rate, a CV or the link time is
            negative, or the baseline size or hazard is not positive.
        """
        params = self.get_params()
        problems = [
            f"{name} must be a finite number, got {value!r}"
            for name, value in params.items()
            if isinstance(value, bool)
            or not isinstance(value, int | float)
            or not np.isfinite(value)
        ]
        if problems:
            raise DataError("; ".join(problems))
        for name in ("baseline_size", "baseline_hazard"):
            if params[name] <= 0:
                problems.append(f"{name} must be positive, got {params[name]!r}")
        for name in (
            "baseline_cv",
            "growth_rate",
            "growth_cv",
            "shrinkage_rate",
            "shrinkage_cv",
            "resistance_rate",
            "link_month",
        ):
            if params[name] < 0:
                problems.append(f"{name} must be non-negative, got {params[name]!r}")
        if problems:
            raise DataError("; ".join(problems))
        if data is None:
            data = pd.DataFrame({name: [float(value)] for name, value in params.items()})
        elif not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame or None, got {type(data).__name__}")
        self._remember(data)
        return self

    def sample(self, n_patients: int, rng: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Draw virtual patients.

        Returns
        -------
        DataFrame
            One row per patient: ``baseline_size`` (mm), ``growth_rate`` and
            ``shrinkage_rate`` (per month), ``size_at_link`` (mm at ``link_month``),
            ``tsr`` (relative change in size at ``link_month``), ``time`` (months to
            death) and ``event`` (1).
        """
        self._check_fitted()
        if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
            raise DataError(f"n_patients must be an integer, got {n_patients!r}")
        if n_patients < 0:
            raise DataError(f"n_patients must be non-negative, got {n_patients}")
        rng = np.random.default_rng(rng)
        z = rng.standard_normal((int(n_patients), 3))
        exponential = rng.standard_exponential(int(n_patients))
        typical = np.array([self.baseline_size, self.growth_rate, self.shrinkage_rate])
        sdlog = np.sqrt(
            np.log1p(np.array([self.baseline_cv, self.growth_cv, self.shrinkage_cv]) ** 2)
        )
        s0, kg, kd = (typical * np.exp(sdlog * z)).T
        at_link = self.size(self.link_month, s0, kg, kd, self.resistance_rate)
        tsr = at_link / s0 - 1.0
        time = exponential / self.hazard(tsr, s0)
        return pd.DataFrame(
            {
                "baseline_size": s0,
                "growth_rate": kg,
                "shrinkage_rate": kd,
                "size_at_link": at_link,
                "tsr": tsr,
                "time": time,
                "event": np.ones(int(n_patients), dtype=np.int64),
            }
        )

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        if state:
            raise DataError(f"unexpected state for a tumour_growth generator: {sorted(state)}")
