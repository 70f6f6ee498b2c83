"""The ``insilico`` command line: one module per command, each calling the library."""

from __future__ import annotations

import sys
import warnings

import typer

from trials.cli import (
    common,
    curve,
    design,
    dictionary,
    drift,
    events,
    example_data,
    external_control,
    fit,
    generate,
    report,
    runs,
    schema,
    simulate,
    trial,
    validate,
    validate_cohort,
)
from trials.exceptions import InsilicoError, InsilicoWarning, ProtocolError

app = typer.Typer(
    name="insilico",
    help="In-silico clinical trials: simulate designs and their operating characteristics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (
    simulate,
    validate,
    schema,
    design,
    curve,
    trial,
    events,
    example_data,
    dictionary,
    drift,
    fit,
    generate,
    validate_cohort,
    report,
    external_control,
):
    app.command(name=module.NAME, help=module.__doc__)(module.command)
app.add_typer(runs.app, name=runs.NAME)


def report_error(error: InsilicoError) -> None:
    """Print a user error without a traceback."""
    if isinstance(error, ProtocolError):
        n = len(error.problems)
        print(f"error: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"error: {error}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of the package as one plain line; others as Python shows them."""
    if issubclass(category, InsilicoWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command; user errors exit with status 2."""
    common.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
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
    finally:
        warnings.showwarning = shown
    return 0


def run() -> None:
    sys.exit(main())
