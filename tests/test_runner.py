"""The runner against a real OpenAI-compatible fake server on 127.0.0.1."""

import asyncio
import sqlite3
from collections import Counter

import pytest

from gradeloop import InputError, RetryPolicy, RunOptions, Store, eval_from_dict, output_item_objects, run_eval, run_object
from gradeloop.errors import ProviderError
from gradeloop.runner import _retry
from gradeloop.testing import FakeOpenAI, Faults

FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1, max_total_wait=30)


def echo_eval(n: int, *, epochs: int = 1, extra_criteria: list | None = None, params: dict | None = None):
    """Items whose expected answer is the prompt itself (pass) for i % 3 != 0, else 'nope' (fail)."""
    rows = [{"item": {"q": f"item {i}", "expect": f"item {i}" if i % 3 else "nope"}} for i in range(n)]
    return eval_from_dict({
        "name": "echo",
        "epochs": epochs,
        "data_source_config": {"type": "custom", "item_schema": {
            "type": "object", "properties": {"q": {"type": "string"}, "expect": {"type": "string"}},
            "required": ["q", "expect"]}, "include_sample_schema": True},
        "testing_criteria": [{"type": "string_check", "name": "echo", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "{{ item.expect }}"}] + (extra_criteria or []),
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": rows},
                        "input_messages": {"type": "template", "template": [
                            {"role": "developer", "content": "Repeat the user."},
                            {"role": "user", "content": "{{ item.q }}"}]},
                        "sampling_params": {"temperature": 0, **(params or {})}},
    })


def item_of(body: dict) -> str:
    return body["messages"][-1]["content"]


def test_faults_every_item_ends_exactly_once():
    spec = echo_eval(150, epochs=2)
    with FakeOpenAI(faults=Faults(rate=0.2, hang_seconds=3, seed=1)) as server:
        options = RunOptions(base_url=server.url, timeout=0.5, concurrency=16, retry=FAST_RETRY)
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
        faults = Counter(r.fault for r in server.requests)
    store = Store()
    items = output_item_objects(store, run_id)
    keys = [(o["datasource_item_id"], o["epoch"]) for o in items]
    assert len(keys) == len(set(keys)) == 300  # every (item, epoch) exactly once
    assert {"500", "429", "timeout", "malformed", "drop"} <= set(faults)  # every fault kind was exercised
    for o in items:
        expected = "pass" if o["datasource_item_id"] % 3 else "fail"
        assert o["status"] in (expected, "error")
    run = run_object(store, run_id)
    counts = run["result_counts"]
    assert counts["total"] == 300 and counts["passed"] + counts["failed"] + counts["errored"] == 300
    assert counts["errored"] == sum(o["status"] == "error" for o in items)
    assert run["status"] == "completed"
    assert run["gradeloop"]["calls"]["failed_attempts"] == sum(n for k, n in faults.items() if k)


def test_item_that_keeps_failing_is_errored_and_run_goes_on():
    spec = echo_eval(40)
    with FakeOpenAI(faults=Faults(rate=0.6, kinds=("500",), seed=3)) as server:
        options = RunOptions(base_url=server.url, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
    store = Store()
    run = run_object(store, run_id)
    assert run["status"] == "completed"
    assert 0 < run["result_counts"]["errored"] < 40
    errored = output_item_objects(store, run_id, status="error")
    assert errored and all(o["sample"]["error"]["status_code"] == 500 for o in errored)
    assert all(o["results"] == [] for o in errored)


def test_non_retryable_error_is_not_retried():
    spec = echo_eval(3)

    class Refuse(FakeOpenAI):
        async def _respond(self, method, path, headers, raw, writer):
            if path.endswith("/chat/completions"):
                self.requests.append(None)
                from gradeloop.testing import _send
                return await _send(writer, 400, {"error": {"message": "bad model"}})
            return await super()._respond(method, path, headers, raw, writer)

    with Refuse() as server:
        [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url, retry=FAST_RETRY))
        assert len(server.requests) == 3
    items = output_item_objects(Store(), run_id)
    assert {o["status"] for o in items} == {"error"}
    assert "bad model" in items[0]["sample"]["error"]["message"]


def test_retry_after_is_honoured(monkeypatch):
    waits = []
    real_sleep = asyncio.sleep

    async def record(delay, *a, **k):
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(_retry.asyncio, "sleep", record)
    spec = echo_eval(1)
    with FakeOpenAI(faults=Faults(rate=1.0, kinds=("429",), retry_after=7)) as server:
        options = RunOptions(base_url=server.url, retry=RetryPolicy(max_attempts=3, max_delay=30))
        [run_id] = run_eval(spec, ["openai/fake"], options=options)
        assert len(server.requests) == 3
    assert len(waits) == 2 and all(7 <= w <= 7.7 for w in waits)
    assert output_item_objects(Store(), run_id)[0]["sample"]["error"]["code"] == "rate_limited"


def test_backoff_grows_and_is_bounded():
    policy = RetryPolicy(base_delay=1, max_delay=8, max_total_wait=10)
    err = ProviderError("x", retryable=True)
    for attempt, (lo, hi) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8)], start=1):
        assert lo <= policy.delay(attempt, err) <= hi
    assert policy.delay(1, ProviderError("x", retryable=True, retry_after=100)) <= 8 * 1.1


def test_second_run_makes_no_requests_and_no_cache_does():
    spec = echo_eval(30, epochs=2)
    with FakeOpenAI() as server:
        run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url))
        assert len(server.requests) == 60  # epochs are separate samples, even at temperature 0
        [second] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url))
        assert len(server.requests) == 60
        run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url, use_cache=False))
        assert len(server.requests) == 120
        # another model name or other sampling params are other cache entries
        run_eval(echo_eval(30, params={"seed": 1}), ["openai/fake"], options=RunOptions(base_url=server.url))
        assert len(server.requests) == 150
    run = run_object(Store(), second)
    assert run["gradeloop"]["cached_samples"] == 60
    assert run["per_model_usage"][0]["invocation_count"] == 0
    assert run["result_counts"]["passed"] == 40


def test_request_body_and_stored_call(fake_server):
    spec = echo_eval(1, params={"max_completion_tokens": 5, "seed": 3, "top_p": 0.5})
    [run_id] = run_eval(spec, ["openai/fake"], options=RunOptions(base_url=fake_server.url))
    body = fake_server.chat_bodies()[0]
    assert body["model"] == "fake" and body["seed"] == 3 and body["top_p"] == 0.5
    assert body["max_completion_tokens"] == 5 and body["max_tokens"] == 5  # open servers read max_tokens
    assert body["messages"][0] == {"role": "system", "content": "Repeat the user."}  # developer → system off OpenAI
    store = Store()
    call = store.conn.execute("SELECT request, response, status, attempt FROM model_calls").fetchone()
    assert '"seed":3' in call["request"] and "chatcmpl-fake" in call["response"] and call["status"] == "ok"
    sample = output_item_objects(store, run_id)[0]["sample"]
    assert sample["usage"]["total_tokens"] > 0 and sample["latency_ms"] > 0 and sample["seed"] == 3


def test_unreachable_endpoint_fails_fast_and_stores_nothing():
    spec = echo_eval(2)
    with pytest.raises(InputError) as info:
        run_eval(spec, ["openai/fake"], options=RunOptions(base_url="http://127.0.0.1:9/v1"))
    assert info.value.exit_code == 2 and "cannot reach http://127.0.0.1:9/v1" in str(info.value)
    assert Store().list_runs() == []


def test_openai_without_key_is_bad_input():
    with pytest.raises(InputError, match="OPENAI_API_KEY is not set"):
        run_eval(echo_eval(1), ["openai/gpt-4.1-mini"])


def test_secrets_never_reach_the_store(fake_server, monkeypatch, tmp_path):
    secret = "sk-test-" + "S3CRET" * 8
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    base = fake_server.url.replace("http://", "http://user:pa55word@")
    run_eval(echo_eval(3), ["openai/fake"], options=RunOptions(base_url=base))
    store = Store()
    store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    dump = "\n".join(store.conn.iterdump())
    assert secret not in dump and "pa55word" not in dump and "Authorization" not in dump
    assert fake_server.url in dump  # the base URL is kept, without credentials
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert secret.encode() not in raw and b"pa55word" not in raw


def test_several_models_give_one_run_each(fake_server, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {match: 'item 1$', response: item 1}\n- {response: nope}\n")
    spec = echo_eval(6)
    run_ids = run_eval(spec, ["openai/fake", f"scripted/{rules}"], options=RunOptions(base_url=fake_server.url))
    store = Store()
    runs = {run_object(store, r)["gradeloop"]["model"]: run_object(store, r) for r in run_ids}
    assert set(runs) == {"openai/fake", f"scripted/{rules}"}
    assert runs["openai/fake"]["result_counts"]["passed"] == 4
    assert runs[f"scripted/{rules}"]["result_counts"]["passed"] == 3  # item 1, and items 0 and 3 that expect "nope"
    assert len({r["eval_id"] for r in runs.values()}) == 1


def test_given_samples_call_no_model(fake_server):
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "c", "input": "{{ sample.output_text }}",
                              "operation": "ilike", "reference": "{{ item.want }}"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": [
            {"item": {"want": "Paris"}, "sample": {"output_text": "it is paris"}},
            {"item": {"want": "Rome"}, "sample": {"output_text": "Milan"}}]}},
    })
    [run_id] = run_eval(spec)
    run = run_object(Store(), run_id)
    assert run["result_counts"] == {"total": 2, "errored": 0, "failed": 1, "passed": 1}
    assert run["model"] is None and run["per_model_usage"] == []
    with pytest.raises(InputError, match="drop --model"):
        run_eval(spec, ["openai/fake"])


def test_sample_template_error_is_a_failed_criterion_with_flag(fake_server):
    extra = [{"type": "string_check", "name": "json", "input": "{{ sample.output_json.answer }}",
              "operation": "eq", "reference": "x"}]
    [run_id] = run_eval(echo_eval(2, extra_criteria=extra), ["openai/fake"],
                        options=RunOptions(base_url=fake_server.url))
    item = output_item_objects(Store(), run_id)[1]
    assert item["status"] == "fail"
    result = item["results"][1]
    assert result["score"] == 0 and result["passed"] is False
    assert result["errors"] == {"invalid_variable_error": True}


def test_output_item_and_run_shapes(fake_server):
    [run_id] = run_eval(echo_eval(3), ["openai/fake"], options=RunOptions(base_url=fake_server.url))
    store = Store()
    run = run_object(store, run_id)
    for key in ("id", "object", "eval_id", "created_at", "name", "model", "status", "data_source", "error",
                "result_counts", "per_model_usage", "per_testing_criteria_results", "metadata"):
        assert key in run
    assert run["object"] == "eval.run" and run["id"].startswith("evalrun_")
    assert run["data_source"]["type"] == "completions" and run["data_source"]["model"] == "fake"
    assert run["per_testing_criteria_results"][0]["testing_criteria"].startswith("echo-")
    assert run["per_testing_criteria_results"][0]["passed"] == 2
    usage = run["per_model_usage"][0]
    assert usage["model_name"] == "fake" and usage["invocation_count"] == 3
    assert usage["gradeloop"] == {"model": "openai/fake", "purpose": "sample"}
    assert run["model"] == "fake" and (run["gradeloop"]["model"], run["gradeloop"]["provider"]) == ("openai/fake", "openai")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    item = output_item_objects(store, run_id, status="fail")[0]
    assert item["object"] == "eval.run.output_item" and item["datasource_item_id"] == 0
    assert item["datasource_item"] == {"q": "item 0", "expect": "nope"}
    assert item["results"][0]["type"] == "string-check-grader" and item["results"][0]["passed"] is False
    assert item["sample"]["output"] == [{"role": "assistant", "content": "item 0"}]
    assert item["sample"]["input"][-1] == {"role": "user", "content": "item 0"}
    assert item["sample"]["finish_reason"] == "stop" and item["sample"]["model"] == "fake"


def test_store_is_wal_with_named_migrations():
    store = Store()
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == len(store.migrations()) >= 1
    assert store.migrations()[0] == "0001_initial"
    reopened = Store(store.path)  # opening again migrates nothing
    assert reopened.migrations() == store.migrations()
    with sqlite3.connect(store.path) as raw:
        raw.execute("PRAGMA user_version = 999")
    with pytest.raises(Exception, match="newer than this gradeloop"):
        Store(store.path)


def test_a_transaction_inside_another_undoes_only_its_own_writes(tmp_path):
    store = Store(tmp_path / "t.db")
    store.conn.execute("CREATE TABLE t (x INTEGER)")
    with store.transaction():
        store.conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ZeroDivisionError), store.transaction():
            store.conn.execute("INSERT INTO t VALUES (2)")
            1 / 0  # noqa: B018
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES (3)")
        assert store.conn.in_transaction  # nothing committed before the outermost one ends
    assert [r[0] for r in store.conn.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.conn.execute("INSERT INTO t VALUES (4)")
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES (5)")
        1 / 0  # noqa: B018
    assert [r[0] for r in store.conn.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    assert not store.conn.in_transaction


def test_an_older_store_is_upgraded_in_place(tmp_path):
    from gradeloop.store import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # a store written by the first release: migration 1 only
        raw.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        for statement in MIGRATIONS[0][1].split(";"):
            if statement.strip():
                raw.execute(statement)
        raw.execute("INSERT INTO schema_migrations VALUES ('0001_initial', 0)")
        raw.execute("INSERT INTO evals VALUES ('eval_1', 'old', '{}', 'h', NULL, 0)")
        raw.execute("PRAGMA user_version = 1")
    store = Store(path)
    assert store.migrations() == [name for name, _ in MIGRATIONS] and store.schema_version() == len(MIGRATIONS)
    assert store.get_eval("eval_1")["name"] == "old"  # nothing lost
    assert store.list_jobs() == []  # the new tables exist
