import pytest

from confparse import apply_overrides, to_bool, to_int, to_list
from confparse.cli import parse_override


def test_to_bool():
    assert to_bool("Yes") is True and to_bool(" off ") is False
    with pytest.raises(ValueError):
        to_bool("maybe")


def test_to_int_and_list():
    assert to_int(" 10_000 ") == 10000
    assert to_list("a, b,,c ") == ["a", "b", "c"]
    assert to_list("x|y", separator="|") == ["x", "y"]


def test_parse_override():
    assert parse_override("db.port=6000") == ("db", "port", "6000")
    assert parse_override("name = x") == ("default", "name", "x")


def test_apply_overrides_copies_and_applies_in_order():
    config = {"default": {"name": "demo"}, "db": {"port": "5432"}}
    result = apply_overrides(config, ["run", "--set", "db.port=1", "--set", "db.port=2", "--set", "web.debug=on"])
    assert result == {"default": {"name": "demo"}, "db": {"port": "2"}, "web": {"debug": "on"}}
    assert config["db"]["port"] == "5432"
