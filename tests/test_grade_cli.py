"""``gradeloop grade validate | run | file`` as a user runs them."""

import json

from conftest import run_cli

GRADER = {"type": "multi", "name": "combined", "calculate_output": "0.5 * exact + 0.5 * contains", "graders": {
    "exact": {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
              "reference": "{{ item.reference }}", "operation": "eq"},
    "contains": {"type": "string_check", "name": "contains", "input": "{{ sample.output_text }}",
                 "reference": "{{ item.reference }}", "operation": "like"}}}


def test_validate_run_file(tmp_path):
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(GRADER))
    validated = run_cli("grade", "validate", str(grader), "--json")
    assert validated.returncode == 0 and len(json.loads(validated.stdout)["hash"]) == 64

    ran = run_cli("grade", "run", str(grader), "--sample", "The answer is 42", "--item", '{"reference": "42"}', "--json")
    assert ran.returncode == 0, ran.stderr
    response = json.loads(ran.stdout)
    assert response["reward"] == 0.5 and response["sub_rewards"] == {"exact": 0.0, "contains": 1.0}
    assert response["metadata"]["errors"]["formula_parse_error"] is False

    rows = tmp_path / "samples.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [
        {"item": {"reference": "42"}, "sample": "42"},
        {"item": {"reference": "42"}, "sample": {"output_text": "it is 42"}},
        {"item": {"reference": "7"}, "sample": "no"},
        {"item": {}, "sample": "missing reference"}]) + "\n")
    out = tmp_path / "results.jsonl"
    graded = run_cli("grade", "file", str(grader), str(rows), "--json", "--out", str(out))
    assert graded.returncode == 0, graded.stderr
    summary = json.loads(graded.stdout)
    assert summary["rows"] == 4 and summary["mean_reward"] == (1 + 0.5 + 0 + 0) / 4
    assert summary["errors"] == {"invalid_variable_error": 1} and summary["passed"] == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4] and lines[0]["reward"] == 1.0

    human = run_cli("grade", "file", str(grader), str(rows))
    assert "mean reward 0.3750" in human.stdout and "invalid_variable_error: 1" in human.stdout


def test_bad_inputs_exit_2(tmp_path):
    grader = tmp_path / "grader.yaml"
    grader.write_text("type: string_check\nname: s\ninput: x\nreference: y\noperation: equal\n")
    result = run_cli("grade", "validate", str(grader))
    assert result.returncode == 2 and f"{grader}:5: operation:" in result.stderr
    grader.write_text("type: multi\nname: m\ngraders: {a: {type: string_check, name: a, input: x, reference: y, "
                      "operation: eq}}\ncalculate_output: a +* 2\n")
    result = run_cli("grade", "validate", str(grader))
    assert result.returncode == 2 and "calculate_output" in result.stderr
    grader.write_text("type: string_check\nname: s\ninput: x\nreference: y\noperation: eq\n")
    result = run_cli("grade", "run", str(grader), "--sample", "x", "--item", "{not json")
    assert result.returncode == 2 and "--item" in result.stderr
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"item": {}, "sample": "x"}\n{"item": {}}\n')
    result = run_cli("grade", "file", str(grader), str(rows))
    assert result.returncode == 2 and f"{rows}:2: sample:" in result.stderr
