import pytest

from inventory import Item, Stock, stock_value, unit_price


def make_stock():
    stock = Stock()
    stock.register(Item("A1", "bolt", 25))
    stock.register(Item("B2", "nut", 199))
    return stock


def test_unit_price_with_discount_rounds_down():
    stock = make_stock()
    assert unit_price(stock, "A1") == 25
    assert unit_price(stock, "B2", discount_percent=15) == 169
    assert unit_price(stock, "A1", discount_percent=100) == 0


def test_discount_out_of_range():
    stock = make_stock()
    with pytest.raises(ValueError):
        unit_price(stock, "A1", discount_percent=101)
    with pytest.raises(ValueError):
        unit_price(stock, "A1", discount_percent=-5)


def test_stock_value():
    stock = make_stock()
    stock.receive("A1", 4)
    stock.receive("B2", 2)
    assert stock_value(stock) == 4 * 25 + 2 * 199


def test_empty_stock_is_worth_nothing():
    assert stock_value(make_stock()) == 0
