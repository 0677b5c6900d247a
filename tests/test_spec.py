import json
import textwrap
from pathlib import Path

import pytest

from conftest import EXAMPLES
from gradeloop.errors import InputError
from gradeloop.spec import CompletionsDataSource, StringCheckGrader, grader_hash, load_eval

GOOD = textwrap.dedent("""\
    name: demo
    data_source_config:
      type: custom
      item_schema:
        type: object
        properties:
          question: {type: string}
          answer: {type: string}
        required: [question, answer]
      include_sample_schema: true
    testing_criteria:
      - type: string_check
        name: exact
        input: "{{ sample.output_text }}"
        operation: eq
        reference: "{{ item.answer }}"
    data_source:
      type: completions
      source: {type: file, path: rows.jsonl}
      input_messages:
        type: template
        template:
          - {role: developer, content: Answer briefly.}
          - {role: user, content: "{{ item.question }}"}
      sampling_params: {temperature: 0, max_completion_tokens: 16, seed: 7}
""")
ROWS = '{"item": {"question": "2+2?", "answer": "4"}}\n\n{"item": {"question": "3+3?", "answer": "6"}}\n'


def write(tmp_path: Path, text: str = GOOD, rows: str = ROWS, name: str = "eval.yaml") -> Path:
    (tmp_path / "rows.jsonl").write_text(rows)
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_eval(path)
    assert info.value.exit_code == 2
    return info.value


def test_valid_eval_loads_with_rows_and_typed_criteria(tmp_path):
    spec = load_eval(write(tmp_path))
    assert spec.name == "demo"
    assert [r.item["answer"] for r in spec.rows] == ["4", "6"]
    assert [r.line for r in spec.rows] == [1, 3]  # blank lines are skipped, line numbers kept
    assert isinstance(spec.testing_criteria[0], StringCheckGrader)
    assert isinstance(spec.data_source, CompletionsDataSource)
    assert spec.data_source.sampling_params.to_request() == {"temperature": 0, "max_completion_tokens": 16, "seed": 7}
    assert spec.needs_model


@pytest.mark.parametrize("name", ["ticket-triage.yaml", "instruction-following.yaml", "graded-samples.yaml"])
def test_examples_load(name):
    spec = load_eval(EXAMPLES / name)
    assert spec.rows and spec.testing_criteria


def test_ticket_triage_example_is_realistic():
    spec = load_eval(EXAMPLES / "ticket-triage.yaml")
    labels = [r.item["correct_label"] for r in spec.rows]
    assert len(labels) >= 40 and len(set(labels)) >= 4


def test_json_definition_and_inline_rows(tmp_path):
    body = {
        "name": "inline",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "c", "input": "{{ sample.output_text }}",
                              "operation": "like", "reference": "x"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": [
            {"item": {"a": 1}, "sample": {"output_text": "xyz"}},
            {"item": {"a": 2}, "sample": {"choices": [{"message": {"role": "assistant", "content": "abc"}}]}}]}},
    }
    path = tmp_path / "e.json"
    path.write_text(json.dumps(body, indent=2))
    spec = load_eval(path)
    assert [r.sample["output_text"] for r in spec.rows] == ["xyz", "abc"]
    assert not spec.needs_model


def test_stored_eval_object_form_and_responses_source(tmp_path):
    # an eval as OpenAI returns it (schema instead of item_schema, ids) and a responses run
    text = textwrap.dedent("""\
        id: eval_123
        object: eval
        created_at: 1700000000
        name: stored
        data_source_config:
          type: custom
          schema: {type: object, properties: {item: {type: object, required: [q]}}}
        testing_criteria:
          - {id: "x-1", type: string_check, name: s, input: "{{ sample.output_text }}", operation: ilike, reference: "{{ item.q }}"}
        data_source:
          type: responses
          model: gpt-4.1
          source: {type: file_content, content: [{item: {q: hello}}]}
          input_messages: {type: template, template: [{type: message, role: user, content: {type: input_text, text: "{{ item.q }}"}}]}
          sampling_params:
            max_completion_tokens: 5
            text: {format: {type: json_schema, name: out, schema: {type: object}, strict: true}}
            tools: [{type: function, name: f, parameters: {type: object}}]
        """)
    spec = load_eval(write(tmp_path, text))
    params = spec.data_source.sampling_params
    assert params.response_format == {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert params.tools == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert spec.data_source.model == "gpt-4.1"
    bad = text.replace("{q: hello}", "{r: hello}").replace("input_text, text: \"{{ item.q }}\"", "input_text, text: hi")
    err = error_of(write(tmp_path, bad))
    assert err.field == "item" and "'q' is a required property" in err.message


# -- one test per class of bad input: each names file, line and field ------------------

def test_missing_file(tmp_path):
    err = error_of(tmp_path / "nope.yaml")
    assert "file not found" in str(err) and err.file.endswith("nope.yaml")


def test_yaml_syntax_error_has_line(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("operation: eq", "operation: [eq")))
    assert err.line is not None and "invalid YAML" in err.message


def test_json_syntax_error_has_line(tmp_path):
    path = tmp_path / "e.json"
    path.write_text('{\n  "name": "x",\n  "testing_criteria": [,]\n}')
    err = error_of(path)
    assert err.line == 3 and "invalid JSON" in err.message


def test_not_a_mapping(tmp_path):
    err = error_of(write(tmp_path, "- just\n- a list\n"))
    assert "must be a mapping" in err.message


def test_missing_required_field(tmp_path):
    text = GOOD[:GOOD.index("testing_criteria:")] + GOOD[GOOD.index("data_source:\n"):]
    err = error_of(write(tmp_path, text))
    assert err.field == "testing_criteria" and "required" in err.message


def test_unknown_field_is_a_typo_error_with_line(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("temperature: 0", "temprature: 0")))
    assert err.field == "data_source.sampling_params.temprature"
    assert err.line == 25 and "unknown field" in err.message
    assert str(err).startswith(str(tmp_path / "eval.yaml") + ":25: data_source.sampling_params.temprature: ")


def test_unknown_grader_type(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("type: string_check", "type: regex_check")))
    assert err.field == "testing_criteria[0].type" and err.line == 12
    assert "unknown grader type 'regex_check'" in err.message and "string_check" in err.message


def test_bad_operation(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("operation: eq", "operation: neq")))
    assert err.field == "testing_criteria[0].operation" and "'neq'" in err.message and err.line == 15


def test_value_out_of_range(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("temperature: 0", "temperature: 9")))
    assert err.field == "data_source.sampling_params.temperature"


def test_logs_data_source_config_is_explained(tmp_path):
    text = GOOD.replace("  type: custom\n", "  type: logs\n", 1)
    err = error_of(write(tmp_path, text))
    assert "logs" in err.message and "custom" in err.message


def test_rows_file_missing(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("rows.jsonl", "absent.jsonl")))
    assert err.field == "data_source.source.path" and "absent.jsonl" in err.message


def test_malformed_jsonl_line(tmp_path):
    err = error_of(write(tmp_path, rows=ROWS + '{"item": {"question": "x", "answer": }\n'))
    assert err.file.endswith("rows.jsonl") and err.line == 4 and "invalid JSON" in err.message


def test_truncated_jsonl_line_is_called_truncated(tmp_path):
    for cut in ('{"item": {"question": "x", "ans', '{"item": {"question": "x", "answer": '):
        err = error_of(write(tmp_path, rows=ROWS + cut))
        assert err.line == 4 and "truncated" in err.message and "column" not in err.message
    err = error_of(write(tmp_path, rows=ROWS + '{"item": {"question": "x"} oops}\n'))
    assert err.line == 4 and "column 28" in err.message and "truncated" not in err.message


def test_row_without_item(tmp_path):
    err = error_of(write(tmp_path, rows='{"question": "2+2?", "answer": "4"}\n'))
    assert err.line == 1 and '"item"' in err.message


def test_item_does_not_match_schema(tmp_path):
    err = error_of(write(tmp_path, rows=ROWS + '{"item": {"question": "x", "answer": 5}}\n'))
    assert (err.line, err.field) == (4, "item.answer") and "not of type 'string'" in err.message


def test_invalid_item_schema(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("question: {type: string}", "question: {type: strng}")))
    assert err.field.startswith("data_source_config.item_schema") and "not a valid JSON Schema" in err.message


def test_template_names_missing_item_field(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("{{ item.answer }}", "{{ item.answr }}")))
    assert err.file.endswith("rows.jsonl") and err.line == 1 and err.field == "item"
    assert "answr" in err.message and "testing_criteria[0].reference" in err.message


def test_template_names_missing_field_in_input_messages(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace('content: "{{ item.question }}"', 'content: "{{ item.prompt }}"')))
    assert "prompt" in err.message and "input_messages" in err.message


def test_unknown_sample_field(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("{{ sample.output_text }}", "{{ sample.text }}")))
    assert err.field == "testing_criteria[0].input" and "output_text" in err.message


def test_file_id_source_is_explained(tmp_path):
    err = error_of(write(tmp_path, GOOD.replace("{type: file, path: rows.jsonl}", "{type: file_id, id: file-abc}")))
    assert "file-abc" in err.message and "type: file" in err.message


def test_jsonl_row_without_sample(tmp_path):
    text = textwrap.dedent("""\
        data_source_config: {type: custom, item_schema: {type: object}}
        testing_criteria: [{type: string_check, name: c, input: "{{ sample.output_text }}", operation: eq, reference: a}]
        data_source:
          type: jsonl
          source: {type: file_content, content: [{item: {a: 1}, sample: {output_text: a}}, {item: {a: 2}}]}
        """)
    err = error_of(write(tmp_path, text))
    assert err.line == 5 and err.field == "sample" and "no 'sample'" in err.message


def test_duplicate_criterion_names(tmp_path):
    criterion = GOOD[GOOD.index("  - type: string_check"):GOOD.index("data_source:\n")]
    text = GOOD.replace(criterion, criterion + criterion)
    err = error_of(write(tmp_path, text))
    assert err.field == "testing_criteria[1].name"


def test_item_reference_must_be_messages(tmp_path):
    text = GOOD.replace(
        "  input_messages:\n    type: template\n    template:\n      - {role: developer, content: Answer briefly.}\n"
        "      - {role: user, content: \"{{ item.question }}\"}\n",
        "  input_messages: {type: item_reference, item_reference: item.question}\n")
    err = error_of(write(tmp_path, text))
    assert err.line == 1 and "list of messages" in err.message


def test_empty_rows(tmp_path):
    err = error_of(write(tmp_path, rows="\n"))
    assert "no rows" in err.message


def test_grader_hash_is_stable_and_ignores_id():
    a = StringCheckGrader(type="string_check", name="n", input="{{ sample.output_text }}", operation="eq", reference="x")
    b = StringCheckGrader.model_validate({**a.model_dump(), "id": "n-123"})
    assert grader_hash(a) == grader_hash(b) == grader_hash(a.model_dump())
    assert len(grader_hash(a)) == 64
    c = a.model_copy(update={"operation": "ne"})
    assert grader_hash(c) != grader_hash(a)
