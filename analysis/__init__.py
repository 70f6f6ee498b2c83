"""Statistical analyses: survival tests, proportions, means, power and sample size,
operating characteristics."""

from analysis.ahr import AHRResult, average_hazard_ratio
from analysis.boundaries import GroupSequentialDesign, boundaries_at, group_sequential_design
from analysis.cox import CoxResult, cox_treatment
from analysis.logrank import LogrankResult, logrank_test
from analysis.means import MeansResult, ancova, t_test
from analysis.operating import OperatingCharacteristics
from analysis.proportions import CMHResult, ProportionsResult, cmh_test, proportions_test
from analysis.rmst import RMSTResult, rmst_difference
from analysis.weighted_logrank import (
    MaxComboResult,
    WeightedLogrankResult,
    maxcombo_test,
    weighted_logrank_test,
)

__all__ = [
    "AHRResult",
    "CMHResult",
    "CoxResult",
    "GroupSequentialDesign",
    "LogrankResult",
    "MaxComboResult",
    "MeansResult",
    "OperatingCharacteristics",
    "ProportionsResult",
    "RMSTResult",
    "WeightedLogrankResult",
    "ancova",
    "average_hazard_ratio",
    "boundaries_at",
    "cmh_test",
    "cox_treatment",
    "group_sequential_design",
    "logrank_test",
    "maxcombo_test",
    "proportions_test",
    "rmst_difference",
    "t_test",
    "weighted_logrank_test",
]
