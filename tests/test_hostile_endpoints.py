"""Hostile or broken endpoints never crash or hang a run (issue 11, points 7 to 10).

Every case runs against a real HTTP server on 127.0.0.1 (gradeloop.testing.FakeOpenAI).
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from conftest import ROOT, run_cli
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
    assert kept == 7  # the body of a reply that parsed as JSON but made no sample is kept for the record
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


def test_any_providers_result_is_validated():
    """Not only openai/: a provider (local, hf, a plugin) whose result makes no sample is retried."""
    from gradeloop import GenerateResult as Result, Provider, register_provider
    from gradeloop.models import Usage

    @register_provider
    class Flaky(Provider):
        provider = "flaky-test"
        calls = 0

        async def generate(self, request):
            Flaky.calls += 1
            content = {"a": 1} if Flaky.calls == 1 else request.messages[-1]["content"]
            return Result(message={"role": "assistant", "content": content}, finish_reason="stop", usage=Usage(1, 1),
                          model=self.name)

    [run_id] = run_eval(echo_eval(1), ["flaky-test/x"], options=RunOptions(retry=FAST))
    store = Store()
    assert run_object(store, run_id)["result_counts"]["passed"] == 1
    assert run_object(store, run_id)["gradeloop"]["calls"] == {"calls": 2, "failed_attempts": 1}
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


# -- point 9: a reply with no content and no tool call is flagged and counted --------------------


def test_empty_output_is_flagged_and_counted(tmp_path):
    spec = echo_eval(4)
    silent = {"item 1", "item 3"}

    def answer(body):
        if body["messages"][-1]["content"] in silent:
            return {"role": "assistant", "content": None}
        return echo_responder(body)

    with FakeOpenAI(responder=answer) as server:
        [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url, retry=FAST))
    store = Store()
    run = run_object(store, run_id)
    assert run["result_counts"] == {"total": 4, "errored": 0, "failed": 2, "passed": 2}  # still graded as usual
    assert run["gradeloop"]["empty_outputs"] == 2
    items = output_item_objects(store, run_id)
    assert [o["gradeloop"]["empty_output"] for o in items] == [False, True, False, True]
    assert [o["status"] for o in items] == ["pass", "fail", "pass", "fail"]

    shown = run_cli("eval", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = [c.strip() for c in next(line for line in lines if "error" in line and "empty" in line).split("┃")]
    row = [c.strip() for c in next(line for line in lines if "openai/fake" in line).split("│")]
    assert row[header.index("empty")] == "2"
    as_json = json.loads(run_cli("eval", "show", run_id, "--json").stdout)
    assert as_json["gradeloop"]["empty_outputs"] == 2
    listed = run_cli("eval", "items", run_id, "--status", "fail")
    assert listed.stdout.count("(empty output)") == 2


# -- point 10: a dead runner is noticed; resume finishes the run, --retry-errors its errors -------


def write_eval_file(tmp_path, n: int):
    rows = "\n".join(json.dumps({"item": {"q": f"item {i}"}}) for i in range(n))
    (tmp_path / "rows.jsonl").write_text(rows + "\n")
    path = tmp_path / "eval.yaml"
    path.write_text(
        "name: killed\n"
        "data_source_config: {type: custom, item_schema: {type: object, required: [q]}}\n"
        "testing_criteria:\n"
        "  - {type: string_check, name: echo, input: '{{ sample.output_text }}', operation: eq,"
        " reference: '{{ item.q }}'}\n"
        "data_source:\n"
        "  type: completions\n"
        "  source: {type: file, path: rows.jsonl}\n"
        "  input_messages: {type: template, template: [{role: user, content: '{{ item.q }}'}]}\n")
    return path


def output_item_count(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM output_items").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_runner_shows_interrupted_and_resumes(tmp_path):
    n = 60
    eval_file = write_eval_file(tmp_path, n)
    db = tmp_path / "gradeloop-home" / "gradeloop.db"
    with FakeOpenAI(latency=0.3) as server:  # slow: the run lasts ~9 s, the kill lands early in it
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradeloop", "eval", "run", str(eval_file), "--model", "openai/fake",
             "--base-url", server.url, "--concurrency", "2", "--no-progress"],
            cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while output_item_count(db) < 4 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            store = Store(db)
            [run] = store.list_runs()
            assert run_object(store, run["id"])["status"] == "in_progress"  # a live runner is not interrupted
            refused = run_cli("eval", "resume", run["id"], "--no-progress")
            assert refused.returncode == 2 and "still running" in refused.stderr
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert output_item_count(db) < n, "the kill must land in the middle of the run"

        shown = run_cli("eval", "show", run["id"])
        assert shown.returncode == 0, shown.stderr
        assert "status: interrupted" in shown.stdout
        assert f"gradeloop eval resume {run['id']}" in " ".join(shown.stdout.split())
        listed = run_cli("eval", "list")
        assert "interrupted" in listed.stdout and f"gradeloop eval resume {run['id'][8:20]}" in listed.stdout
        obj = json.loads(run_cli("eval", "show", run["id"], "--json").stdout)
        assert obj["status"] == "failed" and obj["error"]["code"] == "interrupted"
        assert obj["gradeloop"]["interrupted"] and obj["gradeloop"]["resume_command"].endswith(run["id"])

        server.latency = 0
        resumed = run_cli("eval", "resume", run["id"], "--json", "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
    obj = run_object(store, run["id"])
    assert obj["status"] == "completed" and not obj["gradeloop"]["interrupted"]
    assert obj["result_counts"] == {"total": n, "errored": 0, "failed": 0, "passed": n}


def test_resume_retry_errors_runs_errored_items_again(tmp_path):
    spec = echo_eval(12)
    with FakeOpenAI(faults=Faults(rate=0.5, kinds=("500",), seed=4)) as server:
        [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url, retry=RetryPolicy(
            max_attempts=1)))
        store = Store()
        before = {o["datasource_item_id"]: o for o in output_item_objects(store, run_id)}
        errored = {i for i, o in before.items() if o["status"] == "error"}
        assert 0 < len(errored) < 12
        server.faults = Faults()  # healthy now
        plain = run_cli("eval", "resume", run_id, "--no-progress")
        assert plain.returncode == 0 and run_object(store, run_id)["result_counts"]["errored"] == len(errored)
        resumed = run_cli("eval", "resume", run_id, "--retry-errors", "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        asked = [r.body["messages"][-1]["content"] for r in server.requests[-len(errored):]]
    assert sorted(asked) == sorted(f"item {i}" for i in errored)  # only the errored items ran again
    run = run_object(store, run_id)
    assert run["status"] == "completed"
    assert run["result_counts"] == {"total": 12, "errored": 0, "failed": 0, "passed": 12}
    after = {o["datasource_item_id"]: o for o in output_item_objects(store, run_id)}
    assert all(after[i]["id"] == before[i]["id"] for i in before if i not in errored)  # the rest is kept
    assert run["gradeloop"]["calls"]["failed_attempts"] == len(errored)  # the 500s stay on record


def test_runner_liveness_tells_a_reused_pid_and_another_host():
    from gradeloop.store import runner_alive, runner_identity

    me = runner_identity()
    assert runner_alive(me) is True
    if me["start"] is not None:  # Linux: a pid now used by another process is not the runner
        assert runner_alive({**me, "start": str(int(me["start"]) + 1)}) is False
    assert runner_alive({**me, "host": me["host"] + "-elsewhere"}) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert runner_alive({**me, "pid": child.pid, "start": None}) is False
