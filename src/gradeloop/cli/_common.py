"""Shared CLI helpers: JSON output, error handling, the store."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from ..errors import InputError
from ..redact import scrub, scrub_json
from ..store import Store

# off a terminal rich would wrap at 80 columns: tables and ids then get cut
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    """Print one ``error: …`` line on stderr (never wrapped, so it stays greppable), secrets scrubbed."""
    prefix = "\x1b[31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{prefix} {scrub(message)}\n")
    sys.stderr.flush()


@contextmanager
def flag_errors(*names: str) -> Iterator[None]:
    """Name the flag in an InputError that the Python API raised about option ``names``
    (``field="max_attempts"`` → ``--max-attempts``)."""
    try:
        yield
    except InputError as exc:
        if exc.file or exc.field not in names:
            raise
        raise InputError(exc.message, field="--" + exc.field.replace("_", "-")) from None


@contextmanager
def output_errors(flag: str) -> Iterator[None]:
    """Turn an OSError while writing the file named by ``flag`` into one line (exit 2)."""
    try:
        yield
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise InputError(f"cannot write {where}{exc.strerror or exc} (a path in a writable folder)",
                         field=flag) from None


def usage_line(exc: Exception) -> str:
    """One line for a command-line parsing error: the flag, what is wrong, and the help command."""
    param = getattr(exc, "param", None)
    if param is not None and type(exc).__name__ == "BadParameter":
        return f"{_flag(param)}: {_bad_value(exc)}"
    ctx = getattr(exc, "ctx", None)
    where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    return f"{exc.format_message()}{where}"


def _bad_value(exc: Any) -> str:
    cause = exc.__cause__
    if not hasattr(cause, "errors"):  # click's own message (typer before 0.2x)
        return exc.message
    first = cause.errors()[0]  # typer converts values with pydantic
    wrong = {"int_parsing": "is not a whole number", "float_parsing": "is not a number",
             "bool_parsing": "is not true or false"}.get(first["type"])
    if wrong is None and repr(first["input"]) in first["msg"]:  # a choice: the message lists the allowed
        return first["msg"].removeprefix("Value error, ").rstrip(".")
    return f"{first['input']!r} " + (wrong or f"is not allowed ({first['msg']})")


def _flag(param: Any) -> str:
    opts = list(getattr(param, "opts", []) or [])
    long = [o for o in opts if o.startswith("--")]
    return (long or opts or [str(getattr(param, "human_readable_name", param.name))])[0]


def allow_outside_option() -> Any:
    """The ``--allow-outside-paths`` flag of every command that loads an eval file."""
    return typer.Option(False, "--allow-outside-paths",
                        help="Let the eval file name files outside its own folder (only for files you trust).")


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (plain, for scripts), secrets scrubbed."""
    sys.stdout.write(json.dumps(scrub_json(value), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def open_store() -> Store:
    """The store at GRADELOOP_HOME (default ./.gradeloop)."""
    return Store()
