"""Check protocol files and report every problem (exit status 2 if any)."""

from __future__ import annotations

from pathlib import Path

import typer

from trials.cli.common import load_protocol
from trials.exceptions import Problem, ProtocolError

NAME = "validate"


def command(
    files: list[Path] = typer.Argument(..., help="Protocol YAML files."),
) -> None:
    problems: list[Problem] = []
    for path in files:
        try:
            protocol = load_protocol(path)
        except ProtocolError as error:
            problems.extend(error.problems)
        else:
            typer.echo(f"{path}: ok ({protocol.id} v{protocol.version})")
    if problems:
        raise ProtocolError(problems)
