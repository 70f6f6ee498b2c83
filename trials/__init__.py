"""Protocols, the trial engine, run directories and the command line.

The main entry points, importable from here::

    from trials import load_protocol, simulate
    result = simulate(load_protocol("protocols/oncology_os_phase3.yaml"))
    result.power(), result.type_i_error()
"""

from importlib import import_module

_EXPORTS = {
    "PowerCurve": "trials.curve",
    "power_curve": "trials.curve",
    "patient_table": "trials.engine",
    "Protocol": "trials.protocol",
    "SimulationResult": "trials.simulation",
    "simulate": "trials.simulation",
    "load_protocol": "trials.validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # imported on first use: trials.exceptions is needed by analysis, which trials uses
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trials' has no attribute {name!r}")
