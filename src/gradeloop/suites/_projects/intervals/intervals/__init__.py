"""Date intervals: parse them, compare them, merge them."""

from .interval import Interval
from .merge import merge, total_days
from .parse import parse_interval

__all__ = ["Interval", "merge", "parse_interval", "total_days"]
