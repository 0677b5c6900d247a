"""OpenAI's published spellings and shapes read unchanged: the run token cap spelled
``max_completions_tokens``, paths into a tool call's JSON arguments, graders without a
``name``, and clear refusals of what only OpenAI's platform can do (hosted tools, stored logs)."""

from __future__ import annotations

import asyncio
import json

import pytest

from gradeloop.errors import InputError
from gradeloop.graders import grade
from gradeloop.spec import Document, eval_from_dict, load_grader
from gradeloop.templating import render, resolve, sample_namespace

CRITERION = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "reference": "a",
             "operation": "eq"}


def body(kind: str, sampling_params: dict | None = None, source: dict | None = None) -> dict:
    return {
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [CRITERION],
        "data_source": {"type": kind, "model": "scripted/echo",
                        "input_messages": {"type": "template", "template": [{"role": "user", "content": "hi"}]},
                        "source": source or {"type": "file_content", "content": [{"item": {}}]},
                        "sampling_params": sampling_params or {}},
    }


def refused(data: dict) -> InputError:
    with pytest.raises(InputError) as info:
        eval_from_dict(data, name="eval.json")
    return info.value


# -- 14: max_completions_tokens in run sampling_params ---------------------------------------


@pytest.mark.parametrize("kind", ["completions", "responses"])
def test_max_completions_tokens_is_the_token_cap_of_a_run(kind):
    spec = eval_from_dict(body(kind, {"max_completions_tokens": 7, "temperature": 0}))
    assert spec.data_source.sampling_params.to_request() == {"max_completion_tokens": 7, "temperature": 0}


@pytest.mark.parametrize("kind", ["completions", "responses"])
def test_both_spellings_with_different_values_are_one_clear_error(kind):
    err = refused(body(kind, {"max_completions_tokens": 7, "max_completion_tokens": 8}))
    assert err.field == "data_source.sampling_params" and err.file == "eval.json"
    assert "max_completion_tokens and max_completions_tokens" in err.message and "give one" in err.message
    same = eval_from_dict(body(kind, {"max_completions_tokens": 7, "max_completion_tokens": 7}))
    assert same.data_source.sampling_params.max_completion_tokens == 7


def test_a_model_graders_token_cap_follows_the_same_rule():
    base = {"type": "score_model", "name": "j", "model": "scripted/echo", "input": [{"role": "user", "content": "x"}]}
    for spelling in ("max_completions_tokens", "max_completion_tokens"):
        grader = load_grader({**base, "sampling_params": {spelling: 9}}, Document(data={}, file="g.json"))
        assert grader.sampling_params.to_request() == {"max_completion_tokens": 9}
    bad = {**base, "sampling_params": {"max_completions_tokens": 9, "max_completion_tokens": 3}}
    with pytest.raises(InputError, match="give one"):
        load_grader(bad, Document(data=bad, file="g.json"))


# -- 15: paths into a tool call's JSON arguments --------------------------------------------


def tool_sample(arguments: str) -> dict:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_stock_price", "arguments": arguments}}
    return sample_namespace(None, tool_calls=[call])


def test_a_path_reads_into_the_arguments_json_and_the_string_stays_whole():
    arguments = json.dumps({"symbols": ["AAPL", "MSFT"], "period": {"days": 5}})
    ctx = {"sample": tool_sample(arguments)}
    assert resolve("sample.output_tools[0].function.arguments.symbols", ctx) == ["AAPL", "MSFT"]
    assert render("{{ sample.output_tools[0].function.arguments.period.days }}", ctx) == "5"
    assert render("{{sample.output_tools[0].function.arguments.symbols[1]}}", ctx) == "MSFT"
    assert render("{{ sample.output_tools[0].function.arguments }}", ctx) == arguments


def test_a_string_check_grades_a_tool_argument():
    grader = load_grader({"type": "string_check", "name": "symbol", "operation": "eq", "reference": "{{ item.symbol }}",
                          "input": "{{ sample.output_tools[0].function.arguments.symbols[0] }}"},
                         Document(data={}, file="g.json"))
    good = asyncio.run(grade(grader, tool_sample('{"symbols": ["AAPL"]}'), {"symbol": "AAPL"}))
    bad = asyncio.run(grade(grader, tool_sample('{"symbols": ["MSFT"]}'), {"symbol": "AAPL"}))
    assert (good.score, bad.score) == (1.0, 0.0) and not good.errors and not bad.errors


def test_unparseable_arguments_with_a_path_are_an_invalid_variable_error():
    grader = load_grader({"type": "string_check", "name": "symbol", "operation": "eq", "reference": "AAPL",
                          "input": "{{ sample.output_tools[0].function.arguments.symbols }}"},
                         Document(data={}, file="g.json"))
    result = asyncio.run(grade(grader, tool_sample("symbols=AAPL"), {}))
    assert result.score == 0.0 and result.errors == {"invalid_variable_error": True}
    assert "not JSON" in result.details["error"]
    missing = asyncio.run(grade(grader, tool_sample('{"period": 5}'), {}))
    assert missing.errors == {"invalid_variable_error": True} and "no field 'symbols'" in missing.details["error"]


# -- 16: graders without a name -----------------------------------------------------------


def test_the_rft_guides_multi_grader_without_a_name_loads():
    data = {"type": "multi", "calculate_output": "0.5 * compliant + 0.5 * explanation",
            "graders": {"compliant": {"type": "string_check", "input": "{{ sample.output_json.compliant }}",
                                      "reference": "{{ item.compliant }}", "operation": "eq"},
                        "explanation": {"type": "text_similarity", "input": "{{ sample.output_json.explanation }}",
                                        "reference": "{{ item.explanation }}", "evaluation_metric": "cosine"}}}
    grader = load_grader(data, Document(data=data, file="grader.json"))
    assert grader.name == "multi"
    assert {k: g.name for k, g in grader.sub_graders().items()} == {"compliant": "compliant",
                                                                    "explanation": "explanation"}


def test_an_unnamed_criterion_is_named_after_its_type():
    unnamed = {k: v for k, v in CRITERION.items() if k != "name"}
    spec = eval_from_dict({**body("completions"), "testing_criteria": [unnamed]})
    assert spec.testing_criteria[0].name == "string_check"
    err = refused({**body("completions"), "testing_criteria": [unnamed, unnamed]})
    assert err.field == "testing_criteria[1].name" and "named after its type" in err.message


# -- 17: what only OpenAI's platform can do, refused at load time ----------------------------


@pytest.mark.parametrize("kind", ["completions", "responses"])
@pytest.mark.parametrize("tool", ["web_search_preview", "file_search", "mcp", "code_interpreter", "image_generation",
                                  "computer_use_preview"])
def test_hosted_tools_are_refused_naming_the_field_and_what_works(kind, tool):
    function = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    if kind == "completions":
        function = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    err = refused(body(kind, {"tools": [function, {"type": tool}]}))
    assert err.file == "eval.json" and err.field == "data_source.sampling_params.tools[1].type"
    assert repr(tool) in err.message and "only function tools work" in err.message


@pytest.mark.parametrize("kind,source", [
    ("completions", {"type": "stored_completions", "model": "gpt-4o", "limit": 10}),
    ("responses", {"type": "responses", "model": "gpt-4.1", "created_after": 1700000000}),
])
def test_stored_log_sources_say_what_to_use_instead(kind, source):
    err = refused(body(kind, source=source))
    assert err.field == "data_source.source.type"
    assert f"source type '{source['type']}'" in err.message and "OpenAI's logs" in err.message
    assert "export them to JSONL" in err.message and "{type: file, path: rows.jsonl}" in err.message


# -- 18: OpenAI's list objects, model names and usage ---------------------------------------

LIST_KEYS = {"object", "data", "first_id", "last_id", "has_more"}


def check_list(listing: dict, ids: list[str], has_more: bool = False) -> None:
    assert set(listing) == LIST_KEYS and listing["object"] == "list" and listing["has_more"] is has_more
    assert [o["id"] for o in listing["data"]] == ids
    assert (listing["first_id"], listing["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))


def test_tune_list_events_and_checkpoints_print_openais_list_object(tmp_path):
    from conftest import run_cli
    from gradeloop import Store

    store = Store()
    job = store.create_job(model="hf/some/dir", method="supervised", training_file="t.jsonl", validation_file=None,
                           hyperparameters={}, grader=None, options={}, seed=1, suffix=None, metadata=None,
                           output_dir_for=lambda job_id: str(tmp_path / job_id))
    store.update_job(job["id"], status="succeeded")
    for n in range(3):
        store.add_job_event(job["id"], f"event {n}")
    store.add_checkpoint(job["id"], 2, f"ft:{job['id']}:ckpt-step-2", str(tmp_path / "c2"), {"train_loss": 1.0})
    jobs = json.loads(run_cli("tune", "list", "--json").stdout)
    check_list(jobs, [job["id"]])
    assert jobs["data"][0]["model"] == "some/dir"
    assert (jobs["data"][0]["gradeloop"]["model"], jobs["data"][0]["gradeloop"]["provider"]) == ("hf/some/dir", "hf")
    events = json.loads(run_cli("tune", "events", job["id"], "--limit", "2", "--json").stdout)
    newest = [e["id"] for e in store.job_events(job["id"], newest_first=True)][:2]
    check_list(events, newest, has_more=True)
    ckpts = json.loads(run_cli("tune", "checkpoints", job["id"], "--json").stdout)
    check_list(ckpts, [c["id"] for c in store.job_checkpoints(job["id"])])


def test_run_objects_name_the_model_as_openai_does_and_keep_judge_usage_apart(fake_server):
    from gradeloop import RunOptions, Store, output_item_objects, run_eval, run_list, run_object

    judge = {"type": "score_model", "name": "judge", "model": "fake", "pass_threshold": 0.5,
             "input": [{"role": "user", "content": "Score 1 for: {{ sample.output_text }}"}]}
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [judge],
        "data_source": {"type": "completions", "model": "gpt-4.1",
                        "source": {"type": "file_content", "content": [{"item": {"q": f"q{i}"}} for i in range(3)]},
                        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    })
    [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=fake_server.url))
    store = Store()
    run = run_object(store, run_id)
    assert run["model"] == "fake" and run["data_source"]["model"] == "fake"
    assert (run["gradeloop"]["model"], run["gradeloop"]["provider"]) == ("openai/fake", "openai")
    # the judge is the same model: two entries, told apart by purpose, never one merged count
    usage = sorted(run["per_model_usage"], key=lambda u: u["gradeloop"]["purpose"])
    assert [(u["model_name"], u["gradeloop"]["purpose"], u["invocation_count"]) for u in usage] == [
        ("fake", "grader", 3), ("fake", "sample", 3)]
    assert all(u["prompt_tokens"] > 0 for u in usage)
    assert output_item_objects(store, run_id)[0]["sample"]["model"] == "fake"
    check_list(run_list(store), [run_id])


def test_a_hosted_tool_in_an_eval_file_names_its_line(tmp_path):
    from gradeloop.spec import load_eval

    data = body("responses", {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]})
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(InputError) as info:
        load_eval(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"file_search"' in text)
    assert (info.value.file, info.value.line) == (str(path), line)
    assert info.value.field == "data_source.sampling_params.tools[0].type"
