"""Exit codes, the CLI's errors, and the one place that turns any exception into an exit.

Exit codes (documented in docs/cli.md): 0 ok, 1 a check failed (or the command could not do
its work), 2 usage, 3 not found, 4 conflict. A failure prints one line on stderr; `--debug`
adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

from eventsource.exceptions import EventSourceError, OptimisticLockError

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "CheckFailedError",
    "CliError",
    "CliUsageError",
    "ConflictError",
    "NotFoundError",
    "exit_for",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4


class CliError(EventSourceError):
    """A failure the command line reports in one line and exits with `exit_code`."""

    exit_code = EXIT_FAILED


class CheckFailedError(CliError):
    """A check found something wrong (e.g. `db check` on a database without the tables)."""


class CliUsageError(CliError):
    """An option or argument is malformed (a URL, a tenant id, an `--app` path)."""

    exit_code = EXIT_USAGE


class NotFoundError(CliError):
    """The thing asked for does not exist (a stream, a DLQ entry, a tenant, a database)."""

    exit_code = EXIT_NOT_FOUND


class ConflictError(CliError):
    """The state changed under the command, or does not allow the change."""

    exit_code = EXIT_CONFLICT


def _code_of(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, OptimisticLockError):
        return EXIT_CONFLICT
    return EXIT_FAILED


def _line_of(exc: BaseException) -> str:
    """One line saying what went wrong: our own messages as they are, others with their type."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, CliError):
        return f"error: {text}"
    return f"error: {type(exc).__name__}: {text}"


def exit_for(exc: BaseException, *, debug: bool) -> NoReturn:
    """Print `exc` on stderr (one line, or the traceback with `debug`) and exit with its code."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message = _line_of(exc)
    if not debug and not isinstance(exc, CliError):
        message += " (run with --debug for the traceback)"
    print(message, file=sys.stderr)
    raise SystemExit(_code_of(exc))
