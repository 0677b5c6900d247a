"""Statistics for comparing runs: intervals, paired tests, pass@k, sample sizes, eval compare."""

import json
import math

import pytest

from conftest import run_cli
from gradeloop import Store, eval_from_dict, run_eval
from gradeloop.report import compare_runs
from gradeloop.stats import (compare_paired, detectable_difference, items_needed, mcnemar_exact, paired_bootstrap,
                             pass_at_k, rate, sign_flip_test, wilson_interval)


def test_wilson_interval_matches_published_values():
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_counts_the_discordant_items():
    a = [1, 0] + [0] * 9 + [1] * 5
    b = [0, 0] + [1] * 9 + [1] * 5
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (1, 9)
    assert p == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact([1, 0, 1], [0, 1, 1])[2] == 1.0


def test_paired_bootstrap_and_sign_flip():
    assert paired_bootstrap([1, 0, 1], [1, 0, 1]) == (0.0, 0.0)
    assert paired_bootstrap([0] * 5, [1] * 5) == (1.0, 1.0)
    low, high = paired_bootstrap([0] * 50 + [1] * 50, [1] * 50 + [1] * 50)
    assert 0.35 < low < 0.5 < high < 0.65
    assert sign_flip_test([0.5] * 5) == pytest.approx(2 / 32)  # exact: only all-plus and all-minus reach it
    assert sign_flip_test([0, 0]) == 1.0
    assert sign_flip_test([1.0] * 40) < 0.001  # Monte Carlo beyond 16 differences


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(10, 0, 3) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - math.comb(4, 2) / math.comb(5, 2))
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_sample_size_and_detectable_difference_agree():
    mde = detectable_difference(400, 0.2)
    assert mde == pytest.approx((1.959964 + 0.841621) * math.sqrt(0.2 / 400), rel=1e-4)
    assert items_needed(mde, 0.2) in (400, 401)
    assert detectable_difference(0, 0.2) is None and detectable_difference(10, 0) is None


def test_rate_uses_items_as_the_unit_with_several_samples():
    one = rate([[1], [0], [1], [1]])
    assert one.value == 0.75 and one.items == 4 and one.samples == 4
    several = rate([[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    assert several.value == pytest.approx(5 / 9) and several.samples == 9 and several.low < several.value


def test_compare_paired_picks_the_test_by_the_design():
    single = compare_paired([[0]] * 20, [[1]] * 10 + [[0]] * 10)
    assert single.test == "mcnemar-exact" and single.difference == 0.5 and single.only_b == 10
    assert single.p_value == pytest.approx(2 / 2 ** 10)
    epochs = compare_paired([[0, 0, 1]] * 12, [[1, 1, 1]] * 12)
    assert epochs.test == "sign-flip" and epochs.difference == pytest.approx(2 / 3)
    assert epochs.p_value == pytest.approx(2 / 2 ** 12)
    left_out = compare_paired([[1], [], [0]], [[1], [1], []])
    assert left_out.paired_items == 1


def graded_eval(correct: range, extra: int = 0, prefix: str = "question") -> dict:
    rows = []
    for i in range(40 + extra):
        item = {"q": f"{prefix} {i}", "answer": str(i), "group": "low" if i < 20 else "high"}
        rows.append({"item": item, "sample": {"output_text": str(i) if i in correct else "wrong"}})
    return {
        "name": "compare me",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [
            {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "operation": "eq",
             "reference": "{{ item.answer }}"},
            {"type": "string_check", "name": "not empty", "input": "{{ sample.output_text }}", "operation": "ne",
             "reference": ""},
        ],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}},
    }


def test_two_runs_of_the_same_items_are_compared_item_by_item():
    [a] = run_eval(eval_from_dict(graded_eval(range(0, 10))))
    [b] = run_eval(eval_from_dict(graded_eval(range(0, 30), extra=1)))
    cmp = compare_runs(Store(), a, b, by=["group"])
    assert cmp["items"] == {"paired": 40, "only_in_a": 0, "only_in_b": 1, "errored_a": 0, "errored_b": 0}
    overall = cmp["overall"]
    assert overall["a"]["value"] == 0.25 and overall["b"]["value"] == 0.75 and overall["difference"] == 0.5
    assert (overall["only_a"], overall["only_b"]) == (0, 20) and overall["p_value"] == pytest.approx(2 / 2 ** 20)
    assert overall["low"] > 0.3 and overall["high"] <= 0.7
    by_name = {c["name"]: c for c in cmp["criteria"]}
    assert by_name["not empty"]["difference"] == 0 and by_name["not empty"]["p_value"] == 1.0
    groups = {g["value"]: g for g in cmp["by"]}
    assert groups["low"]["difference"] == 0.5 and groups["high"]["difference"] == 0.5


def test_eval_compare_cli_table_json_and_a_wrong_pair():
    [a] = run_eval(eval_from_dict(graded_eval(range(0, 10))))
    [b] = run_eval(eval_from_dict(graded_eval(range(0, 30))))
    table = run_cli("eval", "compare", a, b, "--by", "group", env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "+50.0" in table.stdout and "McNemar" in table.stdout and "group = low" in table.stdout
    as_json = json.loads(run_cli("eval", "compare", a[:20], b[:20], "--json").stdout)
    assert as_json["object"] == "gradeloop.comparison" and as_json["overall"]["only_b"] == 20
    [c] = run_eval(eval_from_dict(graded_eval(range(0), prefix="another question")))
    wrong = run_cli("eval", "compare", a, c)
    assert wrong.returncode == 2 and "share no item" in wrong.stderr


def test_runs_with_epochs_report_pass_at_k_and_an_item_level_interval():
    import threading

    from gradeloop import RunOptions, run_object
    from gradeloop.testing import FakeOpenAI

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def first_try_only(body):  # every item passes in exactly one of its three samples
        text = body["messages"][-1]["content"]
        with lock:
            seen[text] = seen.get(text, 0) + 1
            return "yes" if seen[text] == 1 else "no"

    definition = {
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "yes", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "yes"}],
        "data_source": {"type": "completions",
                        "source": {"type": "file_content", "content": [{"item": {"q": f"q{i}"}} for i in range(10)]},
                        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    }
    with FakeOpenAI(responder=first_try_only) as server:
        [run_id] = run_eval(eval_from_dict(definition), ["openai/fake"], options=RunOptions(base_url=server.url, epochs=3))
    extra = run_object(Store(), run_id)["gradeloop"]
    assert extra["pass_at_k"] == {"1": pytest.approx(1 / 3), "2": pytest.approx(2 / 3), "3": pytest.approx(1.0)}
    assert extra["pass_rate"]["items"] == 10 and extra["pass_rate"]["value"] == pytest.approx(1 / 3)
    shown = run_cli("eval", "show", run_id, env={"COLUMNS": "200"})
    assert "pass@1 33.3%, pass@2 66.7%, pass@3 100.0%" in shown.stdout


def test_a_regression_gate_and_the_paired_line_after_a_run_of_two_models(tmp_path):
    import yaml

    from gradeloop.testing import FakeOpenAI

    [a] = run_eval(eval_from_dict(graded_eval(range(0, 30))))
    [b] = run_eval(eval_from_dict(graded_eval(range(0, 10))))
    worse = run_cli("eval", "compare", a, b, "--fail-on-regression")
    assert worse.returncode == 1 and "regression: B is 50.0 points worse" in worse.stderr
    assert run_cli("eval", "compare", b, a, "--fail-on-regression").returncode == 0

    def by_model(body):  # "good" answers every question, "bad" none
        return body["messages"][-1]["content"].split()[-1] if body["model"] == "good" else "no idea"

    definition = graded_eval(range(0))
    definition["data_source"] = {
        "type": "completions",
        "source": {"type": "file_content",
                   "content": [{"item": r["item"]} for r in definition["data_source"]["source"]["content"]]},
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.answer }}"}]}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(definition))
    with FakeOpenAI(responder=by_model) as server:
        result = run_cli("eval", "run", str(path), "-m", "openai/bad", "-m", "openai/good", "--base-url", server.url,
                         "--no-progress", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "openai/good vs openai/bad: +100.0 points [+100.0, +100.0] on 40 paired items, p <0.0001" in result.stdout
