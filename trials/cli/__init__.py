"""The ``insilico`` command line: one module per command, each calling the library."""

from __future__ import annotations

import sys

import typer

from trials.cli import common, curve, events, schema, simulate, trial, validate
from trials.exceptions import InsilicoError, ProtocolError

app = typer.Typer(
    name="insilico",
    help="In-silico clinical trials: simulate designs and their operating characteristics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (simulate, validate, schema, curve, trial, events):
    app.command(name=module.NAME, help=module.__doc__)(module.command)


def report_error(error: InsilicoError) -> None:
    """Print a user error without a traceback."""
    if isinstance(error, ProtocolError):
        n = len(error.problems)
        print(f"error: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"error: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command; user errors exit with status 2."""
    common.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="insilico", standalone_mode=False)
    except InsilicoError as error:
        report_error(error)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except typer.TyperException as error:  # usage errors of the command line itself
        error.show()
        return 2
    return 0


def run() -> None:
    sys.exit(main())
