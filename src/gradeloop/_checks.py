"""Range and format checks for option values the Python API takes (epochs, concurrency, URLs, ports).

Each check raises :class:`~gradeloop.errors.InputError` with ``field`` set to the option's name and a
message that says what is wrong and, in parentheses, what is allowed; the CLI turns the field into
its flag (``--epochs``) and exits 2.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from .errors import InputError

__all__ = ["at_least", "positive", "fraction", "in_range", "check_port", "check_base_url"]


def _is_number(value: Any, integer: bool) -> bool:
    kinds = (int,) if integer else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool)


def at_least(value: Any, minimum: int, field: str) -> None:
    """Refuse ``value`` unless it is None or a whole number of at least ``minimum``."""
    if value is None:
        return
    if not _is_number(value, integer=True) or value < minimum:
        raise InputError(f"{value!r} is not allowed (a whole number, {minimum} or more)", field=field)


def positive(value: Any, field: str, unit: str = "a number") -> None:
    """Refuse ``value`` unless it is None or a finite number above 0."""
    if value is None:
        return
    if not _is_number(value, integer=False) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{value!r} is not allowed ({unit}, more than 0)", field=field)


def in_range(value: Any, low: float, high: float, field: str) -> None:
    """Refuse ``value`` unless it is None or a number from ``low`` to ``high``."""
    if value is None:
        return
    if not _is_number(value, integer=False) or not low <= value <= high:  # NaN fails both comparisons
        raise InputError(f"{value!r} is not allowed (a number from {low:g} to {high:g})", field=field)


def fraction(value: Any, field: str) -> None:
    """Refuse ``value`` unless it is None or a number from 0 to 1."""
    in_range(value, 0, 1, field)


def check_port(value: Any, field: str = "port") -> None:
    """Refuse a TCP port outside 1..65535."""
    if not _is_number(value, integer=True) or not 1 <= value <= 65535:
        raise InputError(f"{value!r} is not allowed (a port from 1 to 65535)", field=field)


def check_base_url(url: str | None, field: str = "base_url") -> None:
    """Refuse a server URL that is not ``http(s)://host[:port][/path]`` with a port in 1..65535.

    The message never repeats the URL: it may carry a password.
    """
    if url is None:
        return
    allowed = "an http:// or https:// URL such as http://localhost:8000/v1"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise InputError(f"the URL is malformed: {exc} ({allowed})", field=field) from None
    if parts.scheme not in ("http", "https"):
        problem = (f"the scheme '{parts.scheme}' is not supported" if parts.scheme and parts.netloc
                   else "the URL has no http:// or https:// scheme")
        raise InputError(f"{problem} ({allowed})", field=field)
    if not parts.hostname:
        raise InputError(f"the URL has no host ({allowed})", field=field)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raw = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise InputError(f"the port '{raw}' is not allowed ({allowed}; a port from 1 to 65535)", field=field)
