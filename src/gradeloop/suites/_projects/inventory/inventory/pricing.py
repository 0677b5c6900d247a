"""What the stock is worth."""

from .stock import Stock


def unit_price(stock: Stock, sku: str, discount_percent: int = 0) -> int:
    """The price of one unit of ``sku`` in cents after a percentage discount, rounded down."""
    if not 0 <= discount_percent <= 100:
        raise ValueError("discount must be between 0 and 100")
    price = stock.item(sku).price_cents
    return price * (100 - discount_percent) // 100


def stock_value(stock: Stock) -> int:
    """The value in cents of every unit on hand, at full price."""
    return sum(unit_price(stock, sku) * stock.quantity(sku) for sku in stock.skus())
