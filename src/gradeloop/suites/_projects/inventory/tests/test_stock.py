import pytest

from inventory import Item, Stock
from inventory.stock import OutOfStock


def make_stock():
    stock = Stock()
    stock.register(Item("A1", "bolt", 25, reorder_level=10))
    stock.register(Item("B2", "nut", 10))
    return stock


def test_receive_and_remove():
    stock = make_stock()
    assert stock.receive("A1", 30) == 30
    assert stock.remove("A1", 12) == 18
    assert stock.quantity("A1") == 18


def test_remove_all_units():
    stock = make_stock()
    stock.receive("B2", 4)
    assert stock.remove("B2", 4) == 0


def test_remove_too_many():
    stock = make_stock()
    stock.receive("B2", 3)
    with pytest.raises(OutOfStock):
        stock.remove("B2", 4)
    assert stock.quantity("B2") == 3


def test_units_must_be_positive():
    stock = make_stock()
    with pytest.raises(ValueError):
        stock.receive("A1", 0)
    with pytest.raises(ValueError):
        stock.remove("A1", -1)


def test_duplicate_sku():
    stock = make_stock()
    with pytest.raises(ValueError):
        stock.register(Item("A1", "other bolt", 30))


def test_low_stock_includes_items_at_their_level():
    stock = make_stock()
    stock.receive("A1", 10)
    stock.receive("B2", 6)
    assert stock.low_stock() == ["A1"]
    stock.remove("B2", 1)
    assert stock.low_stock() == ["A1", "B2"]


def test_item_validation():
    with pytest.raises(ValueError):
        Item("", "nameless", 5)
    with pytest.raises(ValueError):
        Item("C3", "refund", -1)
