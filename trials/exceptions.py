"""Exceptions and warnings of insilico-trials.

User errors (a bad protocol, a bad data file, an impossible design) derive from
:class:`InsilicoError`; the command line reports them without a traceback and exits
with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Parameters
    ----------
    file : str
        The file the problem is in.
    field : str
        Dotted path of the field (``endpoints.primary.hazard_ratio``), or ``""`` for the
        whole document.
    message : str
        What is wrong and what is allowed.
    line : int or None
        1-based line of the field in the file, when known.
    column : int or None
        1-based column, when known.
    """

    file: str
    field: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class InsilicoError(Exception):
    """Base class of the errors a user can cause and fix."""


class ProtocolError(InsilicoError, ValueError):
    """A protocol file is malformed or describes an impossible design.

    Holds every problem found, not only the first.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataError(InsilicoError, ValueError):
    """A data file is missing columns or holds invalid values."""


class DesignError(InsilicoError, ValueError):
    """A requested design or analysis cannot be computed (e.g. no solution exists)."""


class RunDirectoryError(InsilicoError, OSError):
    """A run directory cannot be written or read."""


class InsilicoWarning(UserWarning):
    """Base class of the warnings of insilico-trials."""


class ConvergenceWarning(InsilicoWarning):
    """An iterative fit did not converge; the result records it."""


class SimulationWarning(InsilicoWarning):
    """A simulated design did something the user should know (e.g. a target not reached)."""
