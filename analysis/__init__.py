"""Statistical analyses: survival tests, proportions, means, power and sample size,
operating characteristics."""

from analysis.cox import CoxResult, cox_treatment
from analysis.logrank import LogrankResult, logrank_test
from analysis.means import MeansResult, ancova, t_test
from analysis.operating import OperatingCharacteristics
from analysis.proportions import CMHResult, ProportionsResult, cmh_test, proportions_test

__all__ = [
    "CMHResult",
    "CoxResult",
    "LogrankResult",
    "MeansResult",
    "OperatingCharacteristics",
    "ProportionsResult",
    "ancova",
    "cmh_test",
    "cox_treatment",
    "logrank_test",
    "proportions_test",
    "t_test",
]
