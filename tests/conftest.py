"""Shared fixtures: a seeded generator, protocol loading, and a guard on global random state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

# torch (imported lazily by the deep generators) reads this when it starts: its worker
# threads spin-wait, which on a busy 2-core machine makes small fits many times slower
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
RESULTS = Path(__file__).resolve().parent / "results"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(autouse=True)
def _no_global_random_state():
    """Fail any test that draws from numpy's global random state."""
    before = np.random.get_state()  # noqa: NPY002 (the guard reads it, never draws)
    yield
    after = np.random.get_state()  # noqa: NPY002
    same = before[2:] == after[2:] and np.array_equal(before[1], after[1])
    assert same, "the test touched numpy's global random state"


def protocol_dict(name: str) -> dict:
    return yaml.safe_load((PROTOCOLS / f"{name}.yaml").read_text())


def make_protocol(content: dict):
    from trials.protocol import Protocol
    from trials.validation import check_protocol

    protocol = Protocol.model_validate(content)
    problems = check_protocol(protocol)
    assert not problems, problems
    return protocol


def load_example(name: str):
    return make_protocol(protocol_dict(name))


def load_bench(name: str):
    """The module ``bench/<name>.py``, imported once (benchmarks are scripts, not a
    package; dataclasses look their module up in ``sys.modules`` while being built)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
