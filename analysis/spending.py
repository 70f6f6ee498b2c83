"""Alpha- and beta-spending functions of the information fraction (Lan & DeMets)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from trials.exceptions import DesignError

SpendingFamily = Literal["obrien_fleming", "pocock", "kim_demets", "hwang_shih_decani"]

_FAMILIES = ("obrien_fleming", "pocock", "kim_demets", "hwang_shih_decani")
_PARAMETER_NAMES = {"kim_demets": "rho", "hwang_shih_decani": "gamma"}
# rpact's typeOfDesign / typeBetaSpending codes
_CODES = {"OF": "obrien_fleming", "P": "pocock", "KD": "kim_demets", "HSD": "hwang_shih_decani"}


@dataclass(frozen=True)
class SpendingFunction:
    r"""A spending function :math:`f(t; \alpha)`: the cumulative error rate spent by
    information fraction ``t``, increasing from :math:`f(0) = 0` to :math:`f(1) = \alpha`.

    Families (``total`` is the error rate to spend, :math:`\alpha` or :math:`\beta`):

    - ``"obrien_fleming"`` (Lan-DeMets O'Brien-Fleming type):
      :math:`2 - 2\Phi(z_{1-\alpha/2} / \sqrt{t})`, rpact's ``"asOF"`` / ``"bsOF"`` for a
      one-sided ``alpha``; a two-sided design spends this function of ``alpha / 2`` on each
      side, as rpact does;
    - ``"pocock"`` (Lan-DeMets Pocock type): :math:`\alpha \log(1 + (e - 1) t)`;
    - ``"kim_demets"`` (power family): :math:`\alpha t^\rho`, ``parameter`` :math:`\rho > 0`;
    - ``"hwang_shih_decani"``: :math:`\alpha (1 - e^{-\gamma t}) / (1 - e^{-\gamma})`,
      ``parameter`` :math:`\gamma` (any finite number; :math:`\gamma = 0` is the linear
      limit :math:`\alpha t`). Negative :math:`\gamma` spends late (:math:`\gamma = -4` is
      close to O'Brien-Fleming), positive early (:math:`\gamma = 1` is close to Pocock).

    Parameters
    ----------
    family : {"obrien_fleming", "pocock", "kim_demets", "hwang_shih_decani"}
        The family.
    parameter : float or None
        :math:`\rho` for ``"kim_demets"``, :math:`\gamma` for ``"hwang_shih_decani"``;
        ``None`` for the other two families.

    Raises
    ------
    DesignError
        For an unknown family, a missing, superfluous or out-of-range parameter.

    References
    ----------
    .. [1] Lan, K. K. G. & DeMets, D. L. (1983). Discrete sequential boundaries for clinical
       trials. *Biometrika*, 70(3), 659-663.
    .. [2] Kim, K. & DeMets, D. L. (1987). Design and analysis of group sequential tests
       based on the type I error spending rate function. *Biometrika*, 74(1), 149-154.
    .. [3] Hwang, I. K., Shih, W. J. & DeCani, J. S. (1990). Group sequential designs using a
       family of type I error probability spending functions. *Statistics in Medicine*,
       9(12), 1439-1445.
    .. [4] Jennison, C. & Turnbull, B. W. (2000). *Group Sequential Methods with Applications
       to Clinical Trials*, ch. 7. Chapman & Hall/CRC.
    .. [5] rpact, ``getDesignGroupSequential``, https://www.rpact.org.

    Examples
    --------
    >>> f = SpendingFunction("kim_demets", 2)
    >>> round(f(0.5, 0.025), 6)
    0.00625
    >>> round(SpendingFunction("obrien_fleming")(0.5, 0.025), 6)
    0.001525
    """

    family: SpendingFamily
    parameter: float | None = None

    def __post_init__(self) -> None:
        if self.family not in _FAMILIES:
            raise DesignError(
                f"spending family must be one of {', '.join(map(repr, _FAMILIES))}, "
                f"got {self.family!r}"
            )
        name = _PARAMETER_NAMES.get(self.family)
        if name is None:
            if self.parameter is not None:
                raise DesignError(
                    f"the {self.family} spending function takes no parameter, "
                    f"got {self.parameter!r}"
                )
            return
        if self.parameter is None:
            raise DesignError(f"the {self.family} spending function needs its parameter {name}")
        try:
            value = float(self.parameter)
        except (TypeError, ValueError):
            raise DesignError(
                f"the {self.family} parameter {name} must be a number, got {self.parameter!r}"
            ) from None
        if not math.isfinite(value):
            raise DesignError(f"the {self.family} parameter {name} must be finite, got {value}")
        if self.family == "kim_demets" and value <= 0:
            raise DesignError(f"the kim_demets parameter rho must be positive, got {value}")
        object.__setattr__(self, "parameter", value)

    @classmethod
    def from_code(cls, code: str, parameter: float | None = None) -> SpendingFunction:
        """The spending function of an rpact code: ``"asOF"``, ``"bsP"``, ``"asKD"``,
        ``"bsHSD"``, ...

        Raises
        ------
        DesignError
            For a code that is not ``"as"`` or ``"bs"`` followed by OF, P, KD or HSD.
        """
        family = _CODES.get(code[2:]) if isinstance(code, str) else None
        if family is None or code[:2] not in ("as", "bs"):
            raise DesignError(
                f"unknown spending function {code!r}: use 'as' (alpha) or 'bs' (beta) "
                "followed by OF, P, KD or HSD"
            )
        return cls(family, parameter)

    def __call__(self, t, total: float):
        """The cumulative error spent by information fraction ``t``.

        Parameters
        ----------
        t : float or array_like
            Information fraction(s), at least 0; fractions above 1 spend ``total``.
        total : float
            The error rate to spend, in ``(0, 1)``.

        Returns
        -------
        float or numpy.ndarray
            As ``t``.

        Raises
        ------
        DesignError
            For a negative or missing ``t``, or ``total`` outside ``(0, 1)``.
        """
        try:
            total = float(total)
        except (TypeError, ValueError):
            raise DesignError(f"total must be a number, got {total!r}") from None
        if not 0 < total < 1:
            raise DesignError(f"total must lie strictly between 0 and 1, got {total}")
        scalar = np.ndim(t) == 0
        t = np.asarray(t, dtype=float)
        if np.isnan(t).any() or (t < 0).any():
            raise DesignError(f"information fractions must be at least 0, got {t.tolist()}")
        t = np.minimum(t, 1.0)
        spent = self._spend(t, total)
        spent = np.where(t >= 1, total, np.where(t <= 0, 0.0, spent))
        return float(spent) if scalar else spent

    def _spend(self, t: np.ndarray, total: float) -> np.ndarray:
        if self.family == "obrien_fleming":
            z = -special.ndtri(total / 2)
            with np.errstate(divide="ignore"):
                return 2 * special.ndtr(-z / np.sqrt(t))
        if self.family == "pocock":
            return total * np.log1p((math.e - 1) * t)
        if self.family == "kim_demets":
            return total * t**self.parameter
        gamma = self.parameter
        if gamma == 0:
            return total * t
        return total * np.expm1(-gamma * t) / math.expm1(-gamma)

    def __str__(self) -> str:
        name = _PARAMETER_NAMES.get(self.family)
        return self.family if name is None else f"{self.family} ({name} = {self.parameter:g})"
