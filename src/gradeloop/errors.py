"""Errors that gradeloop raises on purpose, each with the exit code the CLI uses."""

from __future__ import annotations

__all__ = ["GradeloopError", "InputError", "TemplateError", "ProviderError", "NotFoundError"]


class GradeloopError(Exception):
    """Base class for every error gradeloop raises deliberately."""

    exit_code = 1


class InputError(GradeloopError):
    """Bad user input: a file, a line and a field say where.

    The CLI prints ``str(error)`` and exits with code 2.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line:
                where += f":{self.line}"
        parts = [p for p in (where, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message

    def located(self, *, file: str | None = None, line: int | None = None,
                field: str | None = None) -> "InputError":
        """Return a copy with missing location parts filled in."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.file = self.file or file
        err.line = self.line or line
        if field and self.field:
            err.field = f"{field}.{self.field}"
        else:
            err.field = self.field or field
        Exception.__init__(err, str(err))
        return err


class TemplateError(InputError):
    """A template names a variable that the item or sample does not have.

    ``code`` is the OpenAI grader error flag this maps to (``invalid_variable_error``).
    """

    code = "invalid_variable_error"


class NotFoundError(InputError):
    """A run, eval or other object named by the user does not exist in the store."""


class ProviderError(GradeloopError):
    """A model call failed.

    ``retryable`` says whether the runner may try again; ``retry_after`` is the
    server's requested wait in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
        kind: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after
        self.kind = kind

    def to_dict(self) -> dict:
        """The error as stored with a sample: ``{code, message, status_code}``."""
        return {"code": self.kind, "message": self.message, "status_code": self.status_code}
