"""Hostile or broken endpoints never crash or hang a run (issue 11, points 7 and 8).

Every case runs against a real HTTP server on 127.0.0.1 (gradeloop.testing.FakeOpenAI).
"""

import json
import sqlite3
import threading

from gradeloop import (RetryPolicy, RunOptions, Store, eval_from_dict, output_item_objects, resume_run, run_eval,
                       run_object)
from gradeloop.models import GenerateResult
from gradeloop.testing import FakeOpenAI, Faults, echo_responder

FAST = RetryPolicy(max_attempts=8, base_delay=0.001, max_delay=0.01, max_total_wait=10)


def echo_eval(n: int, *, judge: bool = False):
    """n items whose expected answer is the prompt itself (the fake echoes it: every item passes)."""
    rows = [{"item": {"q": f"item {i}"}} for i in range(n)]
    criteria = [{"type": "string_check", "name": "echo", "input": "{{ sample.output_text }}", "operation": "eq",
                 "reference": "{{ item.q }}"}]
    if judge:
        criteria.append({"type": "score_model", "name": "judge", "model": "openai/fake", "range": [0, 1],
                         "pass_threshold": 0.5,
                         "input": [{"role": "user", "content": "{{ sample.output_text }}"}]})
    return eval_from_dict({
        "name": "hostile",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object", "required": ["q"]}},
        "testing_criteria": criteria,
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": rows},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    })


class Hostile:
    """A responder that sends each of ``replies`` once (in order, across all requests), then echoes."""

    def __init__(self, replies: list, answer=echo_responder) -> None:
        self.replies, self.answer, self.lock = list(replies), answer, threading.Lock()

    def __call__(self, body: dict):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        return self.answer(body)


def bad_body(message) -> dict:
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


HOSTILE_REPLIES = [
    {"role": "assistant", "content": 42},
    {"role": "assistant", "content": {"a": 1}},
    {"role": "assistant", "content": [1, 2]},
    {"role": "assistant", "content": [{"type": "text", "text": 7}]},
    {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": 3}]},
    {"role": "assistant", "content": None, "tool_calls": {"name": "x"}},
    {"role": "assistant", "content": "hi", "refusal": 5},
    bad_body("not an object"),
    {"choices": []},
    {"choices": "none", "usage": []},
    {"object": "chat.completion", "choices": None},
]


def cache_rows(db) -> list[dict]:
    with sqlite3.connect(db) as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT response FROM response_cache")]


def assert_cache_clean(db) -> None:
    rows = cache_rows(db)
    assert rows
    for row in rows:
        GenerateResult.from_cache(row)  # raises on an entry that makes no sample
        assert isinstance(row["message"]["content"], str)


# -- point 7: a 200 that makes no sample is a retried malformed_response, never cached -----------


def test_replies_that_make_no_sample_are_retried_and_never_cached():
    spec = echo_eval(3)
    with FakeOpenAI(responder=Hostile(HOSTILE_REPLIES)) as server:
        options = RunOptions(base_url=server.url, concurrency=1, retry=RetryPolicy(max_attempts=20, base_delay=0.001,
                                                                                    max_delay=0.01))
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
    store = Store()
    run = run_object(store, run_id)
    assert run["status"] == "completed"
    assert run["result_counts"]["passed"] == 3, output_item_objects(store, run_id)
    with sqlite3.connect(store.path) as conn:
        errors = [json.loads(r[0]) for r in conn.execute("SELECT error FROM model_calls WHERE status = 'error'")]
        kept = conn.execute("SELECT COUNT(*) FROM model_calls WHERE status = 'error' AND response IS NOT NULL")
        kept = kept.fetchone()[0]
    assert len(errors) == len(HOSTILE_REPLIES)  # every bad attempt stored as an errored attempt
    assert {e["code"] for e in errors} == {"malformed_response"}
    assert any("content is int 42" in e["message"] for e in errors)
    assert kept >= 7  # the body of a reply that parsed as JSON but made no sample is kept for the record
    assert_cache_clean(store.path)


def test_item_whose_replies_never_make_a_sample_is_errored_and_run_goes_on():
    spec = echo_eval(2)
    bad = {"role": "assistant", "content": {"a": 1}}
    def answer(body):
        return bad if body["messages"][-1]["content"] == "item 0" else echo_responder(body)

    with FakeOpenAI(responder=answer) as server:
        [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url, retry=RetryPolicy(
            max_attempts=3, base_delay=0.001)))
    store = Store()
    counts = run_object(store, run_id)["result_counts"]
    assert (counts["passed"], counts["errored"]) == (1, 1)
    [errored] = output_item_objects(store, run_id, status="error")
    assert errored["sample"]["error"]["code"] == "malformed_response"
    assert_cache_clean(store.path)


def test_judge_replies_that_make_no_sample_are_retried_and_never_cached():
    spec = echo_eval(2, judge=True)
    hostile = [{"role": "assistant", "content": 3.5}, {"role": "assistant", "content": [7]}]

    def answer(body):
        if body.get("response_format"):  # the judge's request
            return hostile.pop(0) if hostile else '{"result": 1}'
        return echo_responder(body)

    with FakeOpenAI(responder=answer) as server:
        options = RunOptions(base_url=server.url, concurrency=1, retry=FAST)
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
    store = Store()
    run = run_object(store, run_id)
    assert run["result_counts"]["passed"] == 2, output_item_objects(store, run_id)
    with sqlite3.connect(store.path) as conn:
        errors = [json.loads(r[0])["code"] for r in conn.execute(
            "SELECT error FROM model_calls WHERE purpose = 'grader' AND status = 'error'")]
    assert errors == ["malformed_response", "malformed_response"]
    assert_cache_clean(store.path)


def poison_cache(db) -> int:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT key, response FROM response_cache").fetchall()
        for key, text in rows:
            entry = json.loads(text)
            entry["message"]["content"] = 42
            conn.execute("UPDATE response_cache SET response = ? WHERE key = ?", (json.dumps(entry), key))
    return len(rows)


def test_poisoned_cache_entry_is_a_miss_and_is_replaced():
    spec = echo_eval(3)
    with FakeOpenAI() as server:
        options = RunOptions(base_url=server.url, retry=FAST)
        run_eval(spec, ["openai/fake"], options=options)
        store = Store()
        assert poison_cache(store.path) == 3
        seen = len(server.requests)
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
        assert len(server.requests) == seen + 3  # poisoned entries are misses
    run = run_object(store, run_id)
    assert run["status"] == "completed" and run["result_counts"]["passed"] == 3
    assert run["gradeloop"]["cached_samples"] == 0
    assert_cache_clean(store.path)


def test_resume_over_a_poisoned_sample_and_cache_entry():
    """What an older gradeloop left: the sample stored with content 42, cached, and no output item."""
    spec = echo_eval(3)
    with FakeOpenAI() as server:
        options = RunOptions(base_url=server.url, retry=FAST)
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
        store = Store()
        poison_cache(store.path)
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE samples SET output = ? WHERE run_id = ?",
                         (json.dumps({"role": "assistant", "content": 42}), run_id))
            conn.execute("DELETE FROM output_items WHERE run_id = ?", (run_id,))
            conn.execute("UPDATE runs SET status = 'in_progress' WHERE id = ?", (run_id,))
        resume_run(run_id, base_url=server.url)
    run = run_object(store, run_id)
    assert run["status"] == "completed" and run["result_counts"]["passed"] == 3
    items = output_item_objects(store, run_id)
    assert [o["sample"]["output"][0]["content"] for o in items] == ["item 0", "item 1", "item 2"]
    assert_cache_clean(store.path)


# -- point 8: --timeout is a deadline for the whole attempt ------------------------------------


def test_timeout_is_a_deadline_for_the_whole_attempt():
    """A server that sends one byte every 0.2 s never trips a per-read limit of 1 s; the
    deadline ends each attempt, the item errors after the retry policy and the run finishes."""
    spec = echo_eval(1)
    with FakeOpenAI(faults=Faults(rate=1.0, kinds=("trickle",), trickle_seconds=0.2)) as server:
        options = RunOptions(base_url=server.url, timeout=1, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
        assert len(server.requests) == 2
    store = Store()
    run = run_object(store, run_id)
    assert run["status"] == "completed" and run["result_counts"]["errored"] == 1
    [item] = output_item_objects(store, run_id)
    assert item["sample"]["error"]["code"] == "timeout"
    assert "timed out after 1s" in item["sample"]["error"]["message"]
    with sqlite3.connect(store.path) as conn:
        codes = [json.loads(r[0])["code"] for r in conn.execute("SELECT error FROM model_calls")]
    assert codes == ["timeout", "timeout"]
