"""Helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

from trials.loader import load_yaml_model
from trials.protocol import Protocol
from trials.validation import check_protocol

#: The arguments of the running command (recorded in run manifests).
ARGV: list[str] = []


def command_line() -> list[str]:
    return ["insilico", *ARGV]


def load_protocol(path: str | Path) -> Protocol:
    """Load and check a protocol file; raises ProtocolError with every problem."""
    return load_yaml_model(Path(path), Protocol, checks=(check_protocol,))
