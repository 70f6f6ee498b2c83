"""The analysis of one simulated trial's patient table, as a study report shows it."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from analysis.single_trial import means_report, proportions_report, survival_report
from trials.protocol import BinaryEndpoint, Protocol, TimeToEventEndpoint


def analyse_trial(protocol: Protocol, table: pd.DataFrame) -> Iterator[tuple[str, str, object]]:
    """Yield (endpoint, experimental arm, report) for every endpoint and arm."""
    control = protocol.control_arm.name
    for endpoint in [protocol.endpoints.primary, *protocol.endpoints.secondary]:
        name = endpoint.name
        rows = table[table[f"{name}_analysed"]]
        for arm in protocol.experimental_arms:
            if isinstance(endpoint, TimeToEventEndpoint):
                report = survival_report(
                    rows[f"{name}_time"], rows[f"{name}_event"], rows["arm"], control, arm.name
                )
            elif isinstance(endpoint, BinaryEndpoint):
                report = proportions_report(
                    rows[f"{name}_value"] > 0.5, rows["arm"], control, arm.name
                )
            else:
                report = means_report(rows[f"{name}_value"], rows["arm"], control, arm.name)
            yield name, arm.name, report
