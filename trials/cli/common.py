"""Helpers shared by the commands."""

from __future__ import annotations

from trials.validation import load_protocol

__all__ = ["ARGV", "command_line", "load_protocol"]

#: The arguments of the running command (recorded in run manifests).
ARGV: list[str] = []


def command_line() -> list[str]:
    return ["insilico", *ARGV]
