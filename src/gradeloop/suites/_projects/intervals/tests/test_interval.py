from datetime import date

import pytest

from intervals import Interval


def d(day):
    return date(2026, 3, day)


def test_days_counts_both_ends():
    assert Interval(d(1), d(1)).days() == 1
    assert Interval(d(1), d(10)).days() == 10


def test_end_before_start():
    with pytest.raises(ValueError):
        Interval(d(5), d(4))


def test_contains():
    interval = Interval(d(3), d(6))
    assert interval.contains(d(3)) and interval.contains(d(6))
    assert not interval.contains(d(7))


def test_overlaps_and_touches():
    a, b, c = Interval(d(1), d(5)), Interval(d(5), d(9)), Interval(d(6), d(8))
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c) and a.touches(c)
    assert not a.touches(Interval(d(7), d(8)))
