"""The records the service keeps."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """A product that can be stocked: a unique SKU, a name and a price in cents."""

    sku: str
    name: str
    price_cents: int
    reorder_level: int = 5

    def __post_init__(self):
        if not self.sku:
            raise ValueError("an item needs a SKU")
        if self.price_cents < 0:
            raise ValueError("price must not be negative")
