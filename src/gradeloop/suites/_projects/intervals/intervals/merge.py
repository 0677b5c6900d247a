"""Combine intervals that overlap or touch."""

from .interval import Interval


def merge(intervals: list) -> list:
    """The fewest intervals covering the same days as ``intervals``, sorted by start."""
    merged = []
    for current in sorted(intervals):
        if merged and merged[-1].touches(current):
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def total_days(intervals: list) -> int:
    """How many distinct days ``intervals`` cover together."""
    return sum(interval.days() for interval in merge(intervals))
