"""Shared CLI helpers: JSON output, error handling, the store."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

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


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (plain, for scripts), secrets scrubbed."""
    sys.stdout.write(json.dumps(scrub_json(value), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def open_store() -> Store:
    """The store at GRADELOOP_HOME (default ./.gradeloop)."""
    return Store()
