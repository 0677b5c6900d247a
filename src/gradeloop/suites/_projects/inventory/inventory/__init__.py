"""A small stock-keeping service: items, stock levels and their value."""

from .models import Item
from .pricing import stock_value, unit_price
from .stock import Stock

__all__ = ["Item", "Stock", "stock_value", "unit_price"]
