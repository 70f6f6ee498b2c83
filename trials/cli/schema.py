"""Write the JSON Schema of protocol files (for editors to validate and complete)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trials.protocol import Protocol

NAME = "schema"


def protocol_schema() -> dict:
    schema = Protocol.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "insilico-trials protocol"
    return schema


def command(
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
) -> None:
    text = json.dumps(protocol_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
