"""Stock levels per SKU, with the moves that change them."""

from .models import Item


class OutOfStock(Exception):
    """Raised when a removal asks for more units than are in stock."""


class Stock:
    """Quantities on hand for a catalogue of items."""

    def __init__(self):
        self._items = {}
        self._levels = {}

    def register(self, item: Item) -> None:
        """Add ``item`` to the catalogue with no units on hand."""
        if item.sku in self._items:
            raise ValueError(f"duplicate SKU {item.sku}")
        self._items[item.sku] = item
        self._levels[item.sku] = 0

    def item(self, sku: str) -> Item:
        """The catalogue entry for ``sku``."""
        return self._items[sku]

    def quantity(self, sku: str) -> int:
        """Units of ``sku`` on hand."""
        return self._levels[sku]

    def receive(self, sku: str, units: int) -> int:
        """Add ``units`` to the stock of ``sku``; returns the new quantity."""
        if units <= 0:
            raise ValueError("units must be positive")
        self._levels[sku] += units
        return self._levels[sku]

    def remove(self, sku: str, units: int) -> int:
        """Take ``units`` of ``sku`` out of stock; returns the new quantity."""
        if units <= 0:
            raise ValueError("units must be positive")
        if units > self._levels[sku]:
            raise OutOfStock(f"{sku}: {self._levels[sku]} on hand, {units} asked")
        self._levels[sku] -= units
        return self._levels[sku]

    def low_stock(self) -> list[str]:
        """SKUs at or below their reorder level, sorted."""
        return sorted(sku for sku, item in self._items.items() if self._levels[sku] <= item.reorder_level)

    def skus(self) -> list[str]:
        """Every SKU in the catalogue, sorted."""
        return sorted(self._items)
