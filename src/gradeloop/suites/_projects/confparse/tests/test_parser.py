import pytest

from confparse import ConfigError, parse_config

TEXT = """
# global settings
name = demo

[db]
host = localhost
port = 5432
; a comment
[ web ]
debug = yes
"""


def test_sections_and_defaults():
    assert parse_config(TEXT) == {"default": {"name": "demo"}, "db": {"host": "localhost", "port": "5432"},
                                  "web": {"debug": "yes"}}


def test_value_may_contain_equals():
    assert parse_config("url = a=b")["default"] == {"url": "a=b"}


def test_bad_line_names_its_number():
    with pytest.raises(ConfigError) as info:
        parse_config("[db]\nhost localhost\n")
    assert info.value.line == 2


def test_bad_section_header():
    with pytest.raises(ConfigError):
        parse_config("[db\n")
    with pytest.raises(ConfigError):
        parse_config("[]\n")
