"""Power curves over a grid of effects or sizes, and the size that reaches a target power.

Every point of the grid is simulated with the same seed, so replicate ``r`` uses the same
random draws at every point (common random numbers): its patients are the same, their
outcomes move monotonically with the effect, and a larger trial adds patients to a
smaller one. The curve is then smooth and the comparison between points sharp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from trials.exceptions import DesignError
from trials.protocol import Protocol
from trials.simulation import simulate
from trials.validation import check_protocol

EFFECTS = {
    "hazard_ratio": ("effect", "hazard_ratio"),
    "odds_ratio": ("effect", "odds_ratio"),
    "risk_difference": ("effect", "risk_difference"),
    "mean_difference": ("effect", "mean_difference"),
}
SIZES = ("n_patients", "target_events")
PARAMETERS = (*EFFECTS, *SIZES)


def with_parameter(protocol: Protocol, parameter: str, value: float) -> Protocol:
    """The protocol with one design parameter changed (effects apply to every arm)."""
    content = protocol.model_dump(mode="python", exclude_unset=False)
    if parameter in EFFECTS:
        endpoint = content["endpoints"]["primary"]
        section, key = EFFECTS[parameter]
        if key not in endpoint[section] or endpoint[section][key] is None:
            raise DesignError(f"the primary endpoint has no {parameter.replace('_', ' ')} to vary")
        endpoint[section] = {key: value}
    elif parameter == "n_patients":
        content["population"]["n_patients"] = int(value)
    elif parameter == "target_events":
        if content["analysis"]["timing"]["type"] != "events":
            raise DesignError("target_events can only vary in an event-driven design")
        content["analysis"]["timing"]["target_events"] = int(value)
    else:
        raise DesignError(f"unknown parameter {parameter!r} (one of {', '.join(PARAMETERS)})")
    try:
        changed = Protocol.model_validate(content)
    except ValueError as exc:
        raise DesignError(f"{parameter} = {value}: {exc}") from None
    problems = check_protocol(changed)
    if problems:
        loc, message = problems[0]
        raise DesignError(f"{parameter} = {value}: {'.'.join(map(str, loc))}: {message}")
    return changed


@dataclass(frozen=True)
class PowerCurve:
    """Simulated power (and Monte Carlo error) at each value of a design parameter."""

    parameter: str
    table: pd.DataFrame

    def solve(self, target_power: float) -> dict:
        """The parameter value at which the curve reaches ``target_power``.

        Returns the first grid value whose simulated power reaches the target and the
        value interpolated linearly in probit(power) between the bracketing grid points
        (rounded up for sizes). Raises DesignError if the grid does not reach it.
        """
        values = self.table["value"].to_numpy(float)
        power = self.table["power"].to_numpy(float)
        reached = np.flatnonzero(power >= target_power)
        if reached.size == 0:
            raise DesignError(
                f"no {self.parameter} in the grid reaches power {target_power} "
                f"(largest simulated power {power.max():.4f}); extend the grid"
            )
        first = int(reached[0])
        out = {"target_power": target_power, "grid_value": float(values[first])}
        if first == 0:
            out["value"] = float(values[0])
            out["note"] = "the first grid value already reaches the target"
        else:
            clip = np.clip(power[first - 1 : first + 1], 1e-6, 1 - 1e-6)
            z0, z1 = ndtri(clip)
            weight = (ndtri(target_power) - z0) / (z1 - z0) if z1 != z0 else 1.0
            value = values[first - 1] + weight * (values[first] - values[first - 1])
            out["value"] = float(np.ceil(value)) if self.parameter in SIZES else float(value)
        return out


def power_curve(
    protocol: Protocol,
    parameter: str,
    values: list[float],
    *,
    n_replicates: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
) -> PowerCurve:
    """Simulate the primary endpoint's power at each value of ``parameter``."""
    if not values:
        raise DesignError("give at least one value for the grid")
    values = sorted(set(values))
    protocols = [with_parameter(protocol, parameter, v) for v in values]
    n_draw = int(max(values)) if parameter == "n_patients" else None
    rows = []
    primary = protocol.endpoints.primary.name
    for value, design in zip(values, protocols, strict=True):
        result = simulate(
            design,
            n_replicates=n_replicates,
            seed=seed,
            chunk_size=chunk_size,
            scenarios=("design",),
            n_draw=n_draw,
        )
        oc = result.operating_characteristics.table
        rows_primary = oc[(oc["endpoint"] == primary) & (oc["scenario"] == "design")]
        row = rows_primary[rows_primary["arm"] == "any"]
        row = (row if len(row) else rows_primary).iloc[0]
        rows.append(
            {
                "value": value,
                "power": row["rejection_rate"],
                "mcse": row["rejection_mcse"],
                "ci_lower": row["rejection_ci_lower"],
                "ci_upper": row["rejection_ci_upper"],
                "events_mean": row.get("events_mean", np.nan),
                "analysis_time_mean": row.get("analysis_time_mean", np.nan),
                "n_replicates": result.n_replicates,
            }
        )
    return PowerCurve(parameter, pd.DataFrame(rows))
