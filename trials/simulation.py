"""Simulate a protocol's operating characteristics: chunks of replicates through the
engine and the analysis, into a per-replicate table and its summary."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.operating import OperatingCharacteristics, OperatingCharacteristicsBuilder
from trials.analyse import Comparison, analyse
from trials.engine import (
    SCENARIOS,
    Layout,
    analysis_cutoff,
    apply_cutoff,
    chunks,
    draw_cohort,
    simulate_outcomes,
)
from trials.exceptions import SimulationWarning
from trials.protocol import Protocol
from trials.sequential import SequentialAnalysis


@dataclass(frozen=True)
class SimulationResult:
    """Result of :func:`simulate`.

    Attributes
    ----------
    replicates : DataFrame or None
        One row per scenario, replicate, endpoint and experimental arm, in that order;
        ``None`` when the table was streamed to a sink (memory then does not grow with
        the number of replicates).
    operating_characteristics : OperatingCharacteristics
    """

    protocol: Protocol
    n_replicates: int
    seed: int
    chunk_size: int
    scenarios: tuple[str, ...]
    replicates: pd.DataFrame | None
    operating_characteristics: OperatingCharacteristics
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return self.operating_characteristics.summary()

    def power(self, endpoint: str | None = None, arm: str | None = None) -> float:
        """Rejection rate under the design effect (primary endpoint by default)."""
        endpoint = endpoint or self.protocol.endpoints.primary.name
        return self.operating_characteristics.rate("design", endpoint, arm)

    def type_i_error(self, endpoint: str | None = None, arm: str | None = None) -> float:
        """Rejection rate under the null (primary endpoint by default)."""
        endpoint = endpoint or self.protocol.endpoints.primary.name
        return self.operating_characteristics.rate("null", endpoint, arm)


def simulate(
    protocol: Protocol,
    *,
    n_replicates: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    scenarios: tuple[str, ...] = SCENARIOS,
    n_draw: int | None = None,
    sink: Callable[[pd.DataFrame], None] | None = None,
    progress: Callable[[int], None] | None = None,
    start: int = 0,
    device: str | None = None,
) -> SimulationResult:
    """Simulate the protocol ``n_replicates`` times under each scenario and analyse.

    Parameters
    ----------
    protocol : Protocol
    n_replicates, seed, chunk_size : int, optional
        Override the protocol's ``simulation`` settings. The results do not depend on
        ``chunk_size``.
    scenarios : tuple of {'design', 'null'}
        ``design`` uses the protocol's effects; ``null`` sets every effect to none. Both
        use the same random draws (common random numbers).
    n_draw : int, optional
        Lay out the random draws for this many patients (at least ``n_patients``), so
        that designs of different sizes share their patients (common random numbers
        across a grid of sample sizes).
    sink : callable, optional
        Called with each chunk's per-replicate table (e.g. to write Parquet); the result
        then holds no per-replicate table.
    progress : callable, optional
        Called with the number of replicates finished after each chunk.
    start : int
        First replicate index (to resume a run).
    device : str, optional
        Simulate on the torch engine on this device (``cuda``, ``cuda:N`` or
        ``torch-cpu``; see :mod:`trials.torch_engine`); ``None``: the numpy engine.
    """
    sim = protocol.simulation
    n_replicates = sim.n_replicates if n_replicates is None else n_replicates
    seed = sim.seed if seed is None else seed
    n_patients = protocol.population.n_patients
    layout = Layout(protocol, n_patients, max(n_draw or n_patients, n_patients))
    chunk_size = chunk_size or sim.chunk_size or default_chunk_size(layout, device)
    started = time.perf_counter()
    builder = OperatingCharacteristicsBuilder()
    frames = []
    sequential = SequentialAnalysis(layout) if protocol.analysis.group_sequential else None
    for replicates in chunks(n_replicates, chunk_size, start):
        frame = simulate_replicates(layout, replicates, seed, scenarios, sequential, device)
        builder.add(frame)
        if sink is not None:
            sink(frame)
        else:
            frames.append(frame)
        if progress is not None:
            progress(len(replicates))
    simulated = time.perf_counter()
    table = None
    if frames:
        table = _categorical(pd.concat(frames, ignore_index=True), protocol, scenarios)
        order = ["scenario", "endpoint", "arm", "replicate"]  # whatever the chunking
        table = table.sort_values(order, kind="stable", ignore_index=True)
    oc = builder.result()
    _warn_target_not_reached(oc)
    timings = {
        "simulate_seconds": simulated - started,
        "summarise_seconds": time.perf_counter() - simulated,
    }
    return SimulationResult(
        protocol, n_replicates, seed, chunk_size, tuple(scenarios), table, oc, timings
    )


def _warn_target_not_reached(oc: OperatingCharacteristics) -> None:
    rates = oc.table["target_reached_rate"].dropna()
    if rates.empty or (rates == 1).all():
        return
    warnings.warn(
        f"the target number of events was not reached in up to {1 - rates.min():.1%} of "
        "the simulated trials; those were analysed at their last event and are counted in "
        "target_reached_rate",
        SimulationWarning,
        stacklevel=3,
    )


def default_chunk_size(layout: Layout, device: str | None) -> int:
    """Replicates per chunk: what keeps the numpy engine's arrays in a few hundred MB, or
    one block of the torch engine."""
    if device is None:
        return layout.default_chunk_size()
    from trials.torch_engine import block_size, check_supported

    check_supported(layout.protocol, device)
    return block_size(device)


def simulate_replicates(
    layout: Layout,
    replicates: np.ndarray,
    seed: int,
    scenarios=SCENARIOS,
    sequential: SequentialAnalysis | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """The per-replicate table of one chunk (with interim looks when ``sequential``), on
    the numpy engine or, for a ``device``, the torch engine."""
    if device is not None:
        from trials import torch_engine

        return torch_engine.simulate_replicates(layout, replicates, seed, scenarios, device)
    cohort = draw_cohort(layout, replicates, seed)
    frames = []
    for scenario in scenarios:
        null = scenario == "null"
        data = simulate_outcomes(layout, cohort, null)
        if sequential is None:
            cutoff = analysis_cutoff(layout, cohort, data[0])
            analysed = [apply_cutoff(d, cutoff) for d in data]
            comparisons = analyse(layout, cohort.arm, cohort.covariates, analysed, null)
            stop_looks = [np.ones(len(replicates), dtype=np.int64)] * len(comparisons)
            reasons = [np.repeat("final", len(replicates))] * len(comparisons)
        else:
            comparisons, cutoff, stop_looks, reasons = sequential.run(cohort, data, null)
        for comparison, stop_look, reason in zip(comparisons, stop_looks, reasons, strict=True):
            frame = _comparison_frame(scenario, replicates, cohort.n_screened, cutoff, comparison)
            frame["stop_look"] = stop_look
            frame["stop_reason"] = reason
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _comparison_frame(scenario, replicates, n_screened, cutoff, c: Comparison) -> pd.DataFrame:
    n = len(replicates)
    return pd.DataFrame(
        {
            "scenario": np.repeat(scenario, n),
            "replicate": replicates.astype(np.int64),
            "endpoint": np.repeat(c.endpoint, n),
            "arm": np.repeat(c.arm, n),
            "scale": np.repeat(c.scale, n),
            "true_value": np.full(n, c.true_value),
            "n_screened": n_screened.astype(np.int64),
            "n_analysed": c.n_analysed.astype(np.int64),
            "events": c.events,
            "analysis_time": cutoff.analysis_time,
            "target_reached": cutoff.target_reached,
            "estimate": c.estimate,
            "se": c.se,
            "ci_lower": c.ci_lower,
            "ci_upper": c.ci_upper,
            "statistic": c.statistic,
            "p_value": c.p_value,
            "reject": c.reject,
        }
    )


def _categorical(table: pd.DataFrame, protocol: Protocol, scenarios) -> pd.DataFrame:
    if table.empty:
        return table
    endpoints = [protocol.endpoints.primary.name] + [e.name for e in protocol.endpoints.secondary]
    arms = [a.name for a in protocol.experimental_arms]
    return table.assign(
        scenario=pd.Categorical(table["scenario"], categories=list(scenarios)),
        endpoint=pd.Categorical(table["endpoint"], categories=endpoints),
        arm=pd.Categorical(table["arm"], categories=arms),
    )
