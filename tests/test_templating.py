import pytest

from gradeloop.errors import TemplateError
from gradeloop.templating import has_template, render, render_value, resolve, sample_namespace, variables

CTX = {
    "item": {"a": {"b": ["x", "y"]}, "name": "Ada", "n": 3, "flag": True, "odd key": 1, "nested": {"k": None}},
    "sample": sample_namespace('{"compliant": "yes"}', tool_calls=[
        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]),
}


@pytest.mark.parametrize("text,expected", [
    ("{{ item.a.b[0] }}", "x"),
    ("{{item.a.b[1]}}", "y"),
    ("{{   item.name   }}!", "Ada!"),
    ("{{ item.a.b[-1] }}", "y"),
    ('{{ item["odd key"] }}', "1"),
    ("n={{ item.n }} flag={{ item.flag }}", "n=3 flag=true"),
    ("{{ item.a }}", '{"b": ["x", "y"]}'),
    ("{{ item.nested.k }}", "null"),
    ("{{ sample.output_text }}", '{"compliant": "yes"}'),
    ("{{ sample.output_json.compliant }}", "yes"),
    ("{{ sample.output_tools[0].function.name }}", "lookup"),
    ("{{ sample.choices[0].message.content }}", '{"compliant": "yes"}'),
    ("no templates here", "no templates here"),
])
def test_render(text, expected):
    assert render(text, CTX) == expected


@pytest.mark.parametrize("text,fragment", [
    ("{{ item.missing }}", "item has no field 'missing'"),
    ("{{ item.a.b[5] }}", "item.a.b has no index 5"),
    ("{{ item.name.first }}", "item.name has no field 'first'"),
    ("{{ sample.output_tools[1].function.name }}", "no index 1"),
    ("{{ other.x }}", "unknown namespace 'other'"),
    ("{{ item.a..b }}", "cannot parse"),
])
def test_missing_variable_is_an_error_never_empty(text, fragment):
    with pytest.raises(TemplateError) as info:
        render(text, CTX)
    assert fragment in str(info.value)
    assert info.value.code == "invalid_variable_error"


def test_output_json_only_when_output_parses():
    assert "output_json" not in sample_namespace("plain text")
    assert "output_json" not in sample_namespace("42")  # a bare number is not an object
    assert sample_namespace(" [1, 2] ")["output_json"] == [1, 2]
    with pytest.raises(TemplateError):
        render("{{ sample.output_json.x }}", {"sample": sample_namespace("not json"), "item": {}})


def test_render_value_returns_objects_for_single_reference():
    assert render_value("{{ item.a.b }}", CTX) == ["x", "y"]
    assert render_value("list: {{ item.a.b }}", CTX) == 'list: ["x", "y"]'


def test_helpers():
    assert has_template("a {{item.x}}") and not has_template("a {item.x}")
    assert variables("{{ item.a }} and {{sample.output_text}}") == ["item.a", "sample.output_text"]
    assert resolve("item.a.b[0]", CTX) == "x"
    with pytest.raises(TemplateError, match="no sample"):
        resolve("sample.output_text", {"item": {}})
