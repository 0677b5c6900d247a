"""A closed range of calendar days."""

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, order=True)
class Interval:
    """The days from ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")

    def days(self) -> int:
        """How many days the interval covers (1 when start == end)."""
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls inside the interval."""
        return self.start <= day <= self.end

    def overlaps(self, other: "Interval") -> bool:
        """Whether the two intervals share at least one day."""
        return self.start <= other.end and other.start <= self.end

    def touches(self, other: "Interval") -> bool:
        """Whether the intervals overlap or one starts the day after the other ends."""
        one_day = timedelta(days=1)
        return self.start <= other.end + one_day and other.start <= self.end + one_day
