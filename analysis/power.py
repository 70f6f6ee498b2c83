"""Analytic power and sample size for fixed (single-analysis) two-arm designs.

Time-to-event endpoints (log-rank test): the number of events from Schoenfeld's or
Freedman's formula, and the number of patients and the study duration that produce them
under piecewise-constant accrual, exponential survival and exponential loss to follow-up
(Lachin & Foulkes). Continuous and binary endpoints: the usual normal approximations (and the
t-test for means). Everything follows rpact's conventions and is tested against it
(``tests/results/power_rpact.R``).

Conventions
-----------
- Time is in months, hazards and accrual intensities are per month.
- ``alpha`` is one-sided unless ``sided=2``, in which case it is the two-sided level and each
  tail gets ``alpha / 2`` (rpact's ``sided``).
- ``allocation_ratio`` is ``n_experimental / n_control`` (rpact's ``allocationRatioPlanned``).
- One-sided power is the probability of rejecting in the direction of the assumed effect
  (rpact's ``directionUpper = hazard_ratio > 1``); two-sided power adds the probability of
  rejecting in the other direction, as rpact's ``getPower*`` functions do. Sample sizes for
  ``sided=2`` use ``alpha / 2`` and ignore the far tail (rpact's default
  ``twoSidedPower = FALSE``).
- Sizes are returned unrounded (as rpact reports them); round them up before use.
"""

from analysis.logrank_events import freedman_events, logrank_power, schoenfeld_events
from analysis.normal_design import (
    MeansDesign,
    ProportionsDesign,
    means_power,
    means_sample_size,
    proportions_power,
    proportions_sample_size,
)
from analysis.survival_design import (
    SurvivalDesign,
    expected_events,
    survival_power,
    survival_sample_size,
)

__all__ = [
    "MeansDesign",
    "ProportionsDesign",
    "SurvivalDesign",
    "expected_events",
    "freedman_events",
    "logrank_power",
    "means_power",
    "means_sample_size",
    "proportions_power",
    "proportions_sample_size",
    "schoenfeld_events",
    "survival_power",
    "survival_sample_size",
]
