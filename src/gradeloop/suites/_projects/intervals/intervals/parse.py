"""Read intervals written as ``2026-03-01..2026-03-05`` or a single ``2026-03-01``."""

from datetime import date

from .interval import Interval

SEPARATOR = ".."


def parse_date(text: str) -> date:
    """An ISO date (``YYYY-MM-DD``) with surrounding spaces allowed."""
    return date.fromisoformat(text.strip())


def parse_interval(text: str) -> Interval:
    """``"START..END"`` or ``"DAY"`` (a one-day interval) as an Interval."""
    start, sep, end = text.partition(SEPARATOR)
    first = parse_date(start)
    return Interval(first, parse_date(end) if sep else first)
