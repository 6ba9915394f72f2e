"""One exception tree. Each error knows its exit code and renders as one line.

Exit codes (documented in docs/exit-codes.md and decided only here):
  0  success
  1  the model failed (forward raised) or a budget was exceeded
  2  usage error: bad spec, bad input, missing file, unknown option value
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CnnprofError(Exception):
    """Base class: a problem cnnprof explains to the user in one line."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(CnnprofError):
    """The command line or arguments are wrong."""


class InputSpecError(UsageError):
    """An --input / --batch / --dtype value cannot be parsed."""


class UnknownModelError(UsageError):
    """A model spec names nothing the zoo can build."""


class ModelLoadError(UsageError):
    """A model file or module exists but cannot be loaded or constructed."""


class ModelCodeError(ModelLoadError):
    """The model's own code failed while it was imported or constructed (it raised, or
    called ``sys.exit``): not a mistake in how cnnprof was asked, but reported before any
    forward ran, so still exit 2 for ``cnnprof MODEL``; ``cnnprof check`` makes it a failed
    row of that model and checks the others."""


class DeviceError(UsageError):
    """The requested device is not available."""


class BudgetFileError(UsageError):
    """A budget file is malformed."""


class ModelFailedError(CnnprofError):
    """The model's forward raised. Carries the partial report when one exists."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None, report: object = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class BudgetExceededError(CnnprofError):
    exit_code = EXIT_FAILURE


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is
    empty: what one-line errors and report notes quote of a model's or torch's exception."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def named_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type:`` when it is empty)."""
    return f"{type(exc).__name__}: " + (str(exc).strip().splitlines() or [""])[0]
