from datetime import date

import pytest

from intervals import Interval, merge, parse_interval, total_days


def d(day):
    return date(2026, 3, day)


def test_merge_overlapping_touching_and_separate():
    parts = [Interval(d(10), d(12)), Interval(d(1), d(3)), Interval(d(4), d(5)), Interval(d(2), d(2)),
             Interval(d(20), d(21))]
    assert merge(parts) == [Interval(d(1), d(5)), Interval(d(10), d(12)), Interval(d(20), d(21))]


def test_merge_keeps_the_later_end():
    assert merge([Interval(d(1), d(9)), Interval(d(2), d(3))]) == [Interval(d(1), d(9))]


def test_total_days_counts_shared_days_once():
    assert total_days([Interval(d(1), d(4)), Interval(d(3), d(6))]) == 6
    assert total_days([]) == 0


def test_parse_interval():
    assert parse_interval("2026-03-01..2026-03-05") == Interval(d(1), d(5))
    assert parse_interval(" 2026-03-07 ") == Interval(d(7), d(7))


def test_parse_rejects_reversed_and_bad_dates():
    with pytest.raises(ValueError):
        parse_interval("2026-03-05..2026-03-01")
    with pytest.raises(ValueError):
        parse_interval("2026-13-01")
