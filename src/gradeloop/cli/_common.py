"""Shared CLI helpers: JSON output, error handling, the store."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from ..store import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout (plain, for scripts)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def open_store() -> Store:
    """The store at GRADELOOP_HOME (default ./.gradeloop)."""
    return Store()
