"""Training files built from eval runs, and valid for training."""

import json

from conftest import run_cli
from gradeloop import Store, eval_from_dict, run_eval
from gradeloop.spec import load_training_file
from gradeloop.tune import data

EVAL = {
    "name": "capitals",
    "data_source_config": {"type": "custom", "item_schema": {"type": "object", "required": ["country", "capital"]}},
    "testing_criteria": [{"type": "string_check", "name": "names the capital", "input": "{{ sample.output_text }}",
                          "operation": "ilike", "reference": "{{ item.capital }}"}],
    "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
        {"item": {"country": c, "capital": k}} for c, k in [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]]},
        "input_messages": {"type": "template", "template": [
            {"role": "developer", "content": "Answer with the capital."},
            {"role": "user", "content": "What is the capital of {{ item.country }}?"}]}},
}


def runs(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("- {match: France, response: Paris}\n- {match: Japan, response: Tokyo}\n- {response: no idea}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {match: France, response: Lyon}\n- {match: Japan, response: It is Tokyo}\n- {response: Lima}\n")
    return run_eval(eval_from_dict(EVAL), [f"scripted/{good}", f"scripted/{bad}"])


def test_sft_from_passing_samples(tmp_path):
    good_run, bad_run = runs(tmp_path)
    store = Store()
    rows = data.sft_rows(store, [good_run], passing_only=True)
    assert [r["messages"][-1] for r in rows] == [{"role": "assistant", "content": "Paris"},
                                                 {"role": "assistant", "content": "Tokyo"}]
    assert rows[0]["messages"][:2] == [{"role": "developer", "content": "Answer with the capital."},
                                       {"role": "user", "content": "What is the capital of France?"}]
    assert len(data.sft_rows(store, [good_run, bad_run])) == 6
    path = tmp_path / "sft.jsonl"
    data.write_jsonl(path, rows)
    assert len(load_training_file(path, "supervised")) == 2


def test_dpo_from_two_models(tmp_path):
    good_run, bad_run = runs(tmp_path)
    rows = data.dpo_rows(Store(), [good_run, bad_run])
    pairs = {r["input"]["messages"][-1]["content"]: (r["preferred_output"][0]["content"],
                                                     r["non_preferred_output"][0]["content"]) for r in rows}
    # Japan passes for both models: no pair; Peru: only the second model passes
    assert pairs == {"What is the capital of France?": ("Paris", "Lyon"),
                     "What is the capital of Peru?": ("Lima", "no idea")}
    path = tmp_path / "dpo.jsonl"
    data.write_jsonl(path, rows)
    assert len(load_training_file(path, "dpo")) == 2


def test_rft_from_eval_and_the_cli(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(EVAL))
    rows, grader = data.rft_from_eval(path)
    assert rows[0] == {"messages": [{"role": "developer", "content": "Answer with the capital."},
                                    {"role": "user", "content": "What is the capital of France?"}],
                       "country": "France", "capital": "Paris"}
    assert grader["type"] == "string_check"
    out = tmp_path / "rft.jsonl"
    result = run_cli("tune", "data", "rft", "--from-eval", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    grader_file = tmp_path / "rft.grader.json"
    assert len(load_training_file(out, "reinforcement", grader=json.loads(grader_file.read_text()))) == 3
    two = dict(EVAL, testing_criteria=EVAL["testing_criteria"] + [
        {"type": "string_check", "name": "2nd check", "input": "{{ sample.output_text }}", "operation": "ne",
         "reference": ""}])
    path.write_text(json.dumps(two))
    _, multi = data.rft_from_eval(path)
    assert multi["type"] == "multi" and multi["calculate_output"] == "(names_the_capital + g_2nd_check) / 2"


def test_data_cli_sft_dpo(tmp_path):
    good_run, bad_run = runs(tmp_path)
    out = tmp_path / "sft.jsonl"
    result = run_cli("tune", "data", "sft", "--from-run", good_run, "--passing-only", "--out", str(out))
    assert result.returncode == 0 and "wrote 2 rows" in result.stdout
    result = run_cli("tune", "data", "dpo", "--from-run", good_run, "--from-run", bad_run, "--out",
                     str(tmp_path / "dpo.jsonl"))
    assert result.returncode == 0 and "wrote 2 rows" in result.stdout
    assert run_cli("tune", "data", "sft", "--from-run", "evalrun_nope", "--out", str(out)).returncode == 2
