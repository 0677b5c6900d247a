"""The CLI as a user runs it: real subprocesses, exit codes, JSON shapes, one-line errors."""

import json

from conftest import EXAMPLES, run_cli
from gradeloop.testing import FakeOpenAI

SAMPLES = str(EXAMPLES / "graded-samples.yaml")


def test_help_and_version():
    result = run_cli("--help")
    assert result.returncode == 0 and "eval" in result.stdout
    assert run_cli("eval", "--help").returncode == 0
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("gradeloop ")


def test_run_list_show_items_json_shapes():
    ran = run_cli("eval", "run", SAMPLES, "--json", "--no-progress")
    assert ran.returncode == 0, ran.stderr
    ran_list = json.loads(ran.stdout)
    [run] = ran_list["data"]
    assert ran_list == {"object": "list", "data": [run], "first_id": run["id"], "last_id": run["id"], "has_more": False}
    assert run["object"] == "eval.run" and run["result_counts"] == {"total": 6, "errored": 0, "failed": 3, "passed": 3}

    listing = json.loads(run_cli("eval", "list", "--json").stdout)
    assert listing["object"] == "list" and listing["data"][0]["id"] == run["id"] == listing["first_id"]
    assert isinstance(listing["data"][0]["created_at"], int)

    shown = json.loads(run_cli("eval", "show", run["id"][:14], "--json").stdout)
    assert shown["id"] == run["id"] and shown["per_testing_criteria_results"][0]["failed"] == 3

    fail_list = json.loads(run_cli("eval", "items", run["id"], "--status", "fail", "--json").stdout)
    fails = fail_list["data"]
    assert fail_list["object"] == "list" and fail_list["has_more"] is False
    assert (fail_list["first_id"], fail_list["last_id"]) == (fails[0]["id"], fails[-1]["id"])
    assert len(fails) == 3 and {o["status"] for o in fails} == {"fail"}
    assert {"datasource_item_id", "datasource_item", "results", "sample", "status"} <= set(fails[0])
    first_two = json.loads(run_cli("eval", "items", run["id"], "--limit", "2", "--json").stdout)
    assert len(first_two["data"]) == 2 and first_two["has_more"] is True


def test_human_output():
    ran = run_cli("eval", "run", SAMPLES, "--no-progress")
    assert ran.returncode == 0
    assert "Results" in ran.stdout and "50.0%" in ran.stdout and "eval items" in ran.stdout
    listed = run_cli("eval", "list")
    assert "completed" in listed.stdout and "3/3/0 of 6" in listed.stdout
    run_id = listed.stdout.split("\n")[3].split("│")[1].strip()
    assert run_cli("eval", "show", run_id).returncode == 0
    items = run_cli("eval", "items", run_id, "--status", "fail")
    assert items.returncode == 0 and "fail" in items.stdout


def test_empty_store_messages():
    assert "no runs yet" in run_cli("eval", "list").stdout


def test_gate_exit_code_1():
    result = run_cli("eval", "run", SAMPLES, "--min-pass-rate", "0.9", "--no-progress")
    assert result.returncode == 1 and "gate failed" in result.stderr
    assert run_cli("eval", "run", SAMPLES, "--min-pass-rate", "0.5", "--no-progress").returncode == 0


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "graded-samples.yaml").read_text().replace("operation: eq", "operation: equals"))
    result = run_cli("eval", "run", str(bad), "--no-progress")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"{bad}:" in lines[0] and "testing_criteria[0].operation" in lines[0] and "'equals'" in lines[0]
    assert run_cli("eval", "list", "--json").stdout.count("evalrun_") == 0  # nothing was stored


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"item": {"ticket_text": "a", "correct_label": "billing"}}\n{"item": \n')
    text = (EXAMPLES / "ticket-triage.yaml").read_text().replace("path: ticket-triage.jsonl", "path: rows.jsonl")
    (tmp_path / "e.yaml").write_text(text)
    result = run_cli("eval", "run", str(tmp_path / "e.yaml"), "-m", "local/smollm2")
    assert result.returncode == 2 and f"{tmp_path / 'rows.jsonl'}:2:" in result.stderr


def test_unknown_run_and_unknown_model():
    result = run_cli("eval", "show", "evalrun_doesnotexist")
    assert result.returncode == 2 and "no run with id" in result.stderr
    result = run_cli("eval", "run", str(EXAMPLES / "ticket-triage.yaml"), "-m", "smollm2")
    assert result.returncode == 2 and "provider/model" in result.stderr
    result = run_cli("eval", "run", str(EXAMPLES / "ticket-triage.yaml"))
    assert result.returncode == 2 and "--model" in result.stderr


def test_unreachable_endpoint_exit_2():
    result = run_cli("eval", "run", str(EXAMPLES / "ticket-triage.yaml"), "-m", "openai/x",
                     "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "cannot reach http://127.0.0.1:9/v1" in result.stderr


def test_validate():
    result = run_cli("eval", "validate", str(EXAMPLES / "ticket-triage.yaml"))
    assert result.returncode == 0 and "48 rows" in result.stdout


def test_secret_never_printed(tmp_path):
    secret = "sk-test-" + "Z" * 40
    with FakeOpenAI() as server:
        result = run_cli("eval", "run", str(EXAMPLES / "ticket-triage.yaml"), "-m", "openai/fake", "--base-url",
                         server.url, "--limit", "3", "--json", env={"OPENAI_API_KEY": secret})
        assert result.returncode == 0, result.stderr
        run_id = json.loads(result.stdout)["data"][0]["id"]
        items = run_cli("eval", "items", run_id, "--json")
    for text in (result.stdout, result.stderr, items.stdout):
        assert secret not in text


def test_breakdown_by_item_field(tmp_path):
    rows = [{"item": {"kind": k, "d": {"level": lvl}}, "sample": {"output_text": out}}
            for k, lvl, out in [("a", 1, "yes"), ("a", 2, "no"), ("b", 1, "yes"), ("c", 2, "yes")]]
    (tmp_path / "e.json").write_text(json.dumps({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "yes", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "yes"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}}}))
    ran = run_cli("eval", "run", str(tmp_path / "e.json"), "--by", "kind", "--json", "--no-progress")
    [run] = json.loads(ran.stdout)["data"]
    by_kind = {r["value"]: (r["passed"], r["failed"]) for r in run["gradeloop"]["breakdown"]["kind"]}
    assert by_kind == {"a": (1, 1), "b": (1, 0), "c": (1, 0)}
    shown = json.loads(run_cli("eval", "show", run["id"], "--by", "d.level", "--by", "missing", "--json").stdout)
    nested = {r["value"]: r["pass_rate"] for r in shown["gradeloop"]["breakdown"]["d.level"]}
    assert nested == {1: 1.0, 2: 0.5}
    assert shown["gradeloop"]["breakdown"]["missing"][0]["value"] is None
    human = run_cli("eval", "show", run["id"], "--by", "kind")
    assert "By kind" in human.stdout and "50.0%" in human.stdout


def test_key_value_options_take_several_words():
    from gradeloop.cli import join_key_values

    argv = ["tune", "create", "--hyperparameters", "n_epochs=1", "eval_interval=10", "--json", "--option", "lora=false"]
    assert join_key_values(argv) == ["tune", "create", "--hyperparameters", "n_epochs=1 eval_interval=10", "--json",
                                     "--option", "lora=false"]


def test_breakdown_orders_numbers_as_numbers(tmp_path):
    rows = [{"item": {"length_bin": n}, "sample": {"output_text": "yes"}} for n in (16384, 8192, 131072, 8192)]
    (tmp_path / "e.json").write_text(json.dumps({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "yes", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "yes"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}}}))
    ran = run_cli("eval", "run", str(tmp_path / "e.json"), "--by", "length_bin", "--json", "--no-progress")
    [run] = json.loads(ran.stdout)["data"]
    assert [r["value"] for r in run["gradeloop"]["breakdown"]["length_bin"]] == [8192, 16384, 131072]
