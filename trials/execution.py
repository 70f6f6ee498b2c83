"""Where the chunks of a simulation run: in this process, or on a Dask cluster.

A chunk is a range of replicate indices of one simulation of a run (see
:mod:`trials.run`); it is simulated by :func:`simulate_chunk`, a pure function of the
protocol, the seed and the replicate indices (replicate ``r`` draws from its own stream,
``SeedSequence(seed, spawn_key=(r,))``), so a chunk gives the same rows wherever and
whenever it runs. The executors only decide where: :class:`InProcess` runs the chunks in
order here; :class:`DaskExecutor` submits them to a local Dask cluster (``workers``
processes on this machine) or to an existing one (``scheduler`` address) and yields each
result as it finishes, keeping a bounded number of chunks in flight so that memory does
not grow with the number of replicates.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trials.exceptions import RunDirectoryError
from trials.protocol import Protocol


@dataclass(frozen=True)
class Chunk:
    """Replicates ``start .. stop - 1`` of simulation ``item`` of a run."""

    item: int
    index: int
    start: int
    stop: int


@dataclass(frozen=True)
class Simulation:
    """One simulation of a run: a protocol, its scenarios and how its rows are labelled.

    ``label`` replaces the scenario name of the rows when given (conditional powers) and
    ``point`` fills a ``grid_point`` column (the points of a scenario grid), so that all
    simulations of a run share one replicate table.
    """

    protocol: Protocol
    scenarios: tuple[str, ...]
    label: str | None = None
    n_draw: int | None = None
    point: str | None = None
    device: str | None = None  # the torch engine's device (None: the numpy engine)


def simulate_chunk(simulation: Simulation, chunk: Chunk, seed: int) -> pd.DataFrame:
    """The per-replicate rows of one chunk (a pure function of its arguments)."""
    from trials.simulation import simulate_replicates

    layout, sequential = _layout(simulation.protocol, simulation.n_draw)
    replicates = np.arange(chunk.start, chunk.stop)
    frame = simulate_replicates(
        layout, replicates, seed, simulation.scenarios, sequential, simulation.device
    )
    if simulation.label is not None:
        frame = frame.assign(scenario=simulation.label)
    if simulation.point is not None:
        frame = frame.assign(grid_point=simulation.point)
    return frame


_LAYOUTS: dict[tuple[str, int | None], tuple] = {}


def _layout(protocol: Protocol, n_draw: int | None):
    """The engine layout of a protocol, built once per process (a worker receives a new
    copy of the protocol object with every task, so the key is its content)."""
    from trials.engine import Layout
    from trials.sequential import SequentialAnalysis

    key = (protocol.model_dump_json(), n_draw)
    if key not in _LAYOUTS:
        if len(_LAYOUTS) >= 8:
            _LAYOUTS.clear()
        n_patients = protocol.population.n_patients
        layout = Layout(protocol, n_patients, max(n_draw or n_patients, n_patients))
        sequential = SequentialAnalysis(layout) if protocol.analysis.group_sequential else None
        _LAYOUTS[key] = (layout, sequential)
    return _LAYOUTS[key]


class InProcess:
    """Run the chunks one after the other in this process."""

    n_workers = 1

    def map(
        self, simulations: list[Simulation], chunks: Iterable[Chunk], seed: int, write
    ) -> Iterator[Chunk]:
        """Simulate each chunk and ``write(chunk, frame)`` it; yields the chunks done."""
        for chunk in chunks:
            write(chunk, simulate_chunk(simulations[chunk.item], chunk, seed))
            yield chunk

    def close(self) -> None:
        pass


class DaskExecutor:
    """Run the chunks on a Dask distributed cluster.

    Parameters
    ----------
    workers : int
        Worker processes of a local cluster on this machine (one thread each).
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``); ``workers`` is then ignored.
    in_flight : int, optional
        Chunks submitted ahead of the results collected (default: twice the workers).
    """

    def __init__(self, workers: int = 2, scheduler: str | None = None, in_flight=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RunDirectoryError(
                "running on several workers needs Dask: pip install 'dask[distributed]'"
            ) from None
        self._cluster = None
        try:
            if scheduler is not None:
                self.client = Client(scheduler, timeout="10s")
            else:
                import dask

                # Dask starts workers with one BLAS thread (good: they share the cores)
                # and glibc's malloc told to return memory at 64 KiB, which also fixes its
                # mmap threshold low, so every large temporary array is mapped and faulted
                # in afresh: 40 % slower here. Large arrays stay on the heap instead.
                environ = dask.config.get("distributed.nanny.pre-spawn-environ")
                with dask.config.set({"distributed.nanny.pre-spawn-environ": environ | _MALLOC}):
                    self._cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=40,
                    )
                self.client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            # the failed connection leaves sockets to the garbage collector: close them now
            # rather than warn about them at some later point of the program
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
            where = scheduler or "a local cluster"
            raise RunDirectoryError(f"cannot reach the Dask scheduler at {where}: {exc}") from None
        self.n_workers = max(1, len(self.client.scheduler_info()["workers"]))
        self.in_flight = in_flight or 2 * self.n_workers

    def map(
        self, simulations: list[Simulation], chunks: Iterable[Chunk], seed: int, write
    ) -> Iterator[Chunk]:
        """Simulate the chunks on the workers and ``write(chunk, frame)`` each: on the
        worker for a local cluster (the run directory is on its file system, and the rows
        never travel), here for a remote one; yields the chunks as they are written."""
        from distributed import as_completed

        shared = self.client.scatter(simulations, broadcast=True)
        remote_write = write if self._cluster is not None else None
        pending = iter(chunks)
        running = as_completed()
        for chunk in _take(pending, self.in_flight):
            running.add(self._submit(shared, chunk, seed, remote_write))
        for future in running:
            chunk, frame = future.result()
            future.release()
            for more in _take(pending, 1):
                running.add(self._submit(shared, more, seed, remote_write))
            if frame is not None:
                write(chunk, frame)
            yield chunk

    def _submit(self, shared, chunk: Chunk, seed: int, write):
        return self.client.submit(
            _run_chunk, shared[chunk.item], chunk, seed, write, pure=False, key=f"chunk-{chunk}"
        )

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


_MALLOC = {"MALLOC_TRIM_THRESHOLD_": 1 << 30, "MALLOC_MMAP_THRESHOLD_": 1 << 30}


def _run_chunk(simulation: Simulation, chunk: Chunk, seed: int, write=None):
    frame = simulate_chunk(simulation, chunk, seed)
    if write is None:
        return chunk, frame
    write(chunk, frame)
    return chunk, None


def _take(iterator: Iterator, n: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def executor(workers: int = 1, scheduler: str | None = None):
    """In this process for one worker, a Dask cluster otherwise."""
    if scheduler is None and workers <= 1:
        return InProcess()
    return DaskExecutor(workers=workers, scheduler=scheduler)
