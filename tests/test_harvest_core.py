"""The harvest core: records in one shape from both APIs, ingest with redaction, exact
duplicates as counts, idempotent origins, near-duplicate folding, clusters, dataset versions."""

from __future__ import annotations

import pytest

from gradeloop.errors import NotFoundError
from gradeloop.harvest import Redactor, from_chat, from_responses, ingest
from gradeloop.store import Store


def _chat(question: str, answer: str = "ok", system: str = "You are the checkout bot.") -> tuple[dict, dict]:
    request = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": system},
                                                     {"role": "user", "content": question}], "temperature": 0}
    response = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_760_000_000, "model": "gpt-4.1-mini-2025",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
    return request, response


def test_a_chat_exchange_becomes_a_record():
    record = from_chat(*_chat("Where is my order?"), status=200, tags=["checkout"])
    assert record.messages[1] == {"role": "user", "content": "Where is my order?"}
    assert record.output == {"role": "assistant", "content": "ok"}
    assert (record.model, record.prompt_tokens, record.completion_tokens) == ("gpt-4.1-mini-2025", 12, 3)
    assert record.params == {"temperature": 0} and record.created_at == 1_760_000_000


def test_a_responses_exchange_reads_into_the_same_shape():
    request = {"model": "gpt-4.1", "instructions": "Be brief.",
               "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
                         {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                         {"type": "function_call_output", "call_id": "c1", "output": "18C"}],
               "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}
    response = {"id": "resp_1", "object": "response", "created_at": 1_760_000_001, "model": "gpt-4.1",
                "output": [{"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": "It is 18C."}]}],
                "usage": {"input_tokens": 30, "output_tokens": 5}}
    record = from_responses(request, response)
    assert [m["role"] for m in record.messages] == ["system", "user", "assistant", "tool"]
    assert record.messages[1]["content"] == "Weather in Paris?"
    assert record.messages[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
    assert record.output == {"role": "assistant", "content": "It is 18C."}
    assert (record.api, record.prompt_tokens, record.completion_tokens) == ("responses", 30, 5)


def test_a_request_without_messages_is_refused():
    with pytest.raises(ValueError, match="messages"):
        from_chat({"model": "x"}, None)
    with pytest.raises(ValueError, match="input"):
        from_responses({"model": "x"}, None)


def test_ingest_counts_duplicates_and_takes_each_origin_once(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    entries = [("f.jsonl:1", from_chat(*_chat("Where is my order?"))),
               ("f.jsonl:2", from_chat(*_chat("Where is my order?", answer="different answer"))),
               ("f.jsonl:3", from_chat(*_chat("Can I pay by card?")))]
    report = ingest(store, entries, source="import:chat", redactor=None)
    assert (report.added, report.duplicates, report.seen) == (2, 1, 0)
    again = ingest(store, entries, source="import:chat", redactor=None)
    assert (again.added, again.duplicates, again.seen) == (0, 0, 3)
    records = store.harvest_records()
    assert [r["occurrences"] for r in records] == [2, 1]
    assert store.harvest_sources()[0]["occurrences"] == 3


def test_redaction_is_on_every_text_with_placeholders_consistent_within_a_conversation(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    request, response = _chat("Mail ann@example.com and bob@example.org, then ann@example.com again",
                              answer="Sent to ann@example.com.")
    report = ingest(store, [("x", from_chat(request, response))], source="proxy", redactor=Redactor())
    record = store.harvest_record(report.record_ids[0])
    assert record["messages"][1]["content"] == "Mail <EMAIL_1> and <EMAIL_2>, then <EMAIL_1> again"
    assert record["output"]["content"] == "Sent to <EMAIL_1>."
    assert "example.com" not in str(record["request"]) + str(record["response"])
    assert record["redacted"] is True


def test_custom_patterns_and_keys_are_redacted():
    redactor = Redactor(patterns=[r"ORD-\d{6}"])
    text = redactor.redact_text("order ORD-123456 with key sk-proj-abcdefghijklmnop1234 and Bearer abcdefghijklmnopqrstu")
    assert text == "order <CUSTOM_1> with key <API_KEY_1> and Bearer <BEARER_TOKEN_1>"


def test_near_duplicates_fold_into_the_kept_record(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    report = ingest(store, [("a", from_chat(*_chat("Where is my order 1?"))),
                            ("b", from_chat(*_chat("Where is my order 2?")))], source="proxy", redactor=None)
    kept, other = report.record_ids
    assert store.harvest_mark_near_dups([(other, kept)]) == 1
    assert [r["id"] for r in store.harvest_records()] == [kept]
    assert store.harvest_records()[0]["occurrences"] == 2
    assert len(store.harvest_records(include_near_dups=True)) == 2


def test_clusters_keep_their_ids_and_count_errors_and_feedback(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    ok = from_chat(*_chat("Where is my order?"))
    failed = from_chat(_chat("Refund please")[0], None, status=500, error={"message": "upstream down"})
    report = ingest(store, [("a", ok), ("b", failed)], source="proxy", redactor=None)
    store.harvest_set_feedback(report.record_ids[0], -1)
    ids = store.harvest_assign_clusters({"checkout": "You are the checkout bot."},
                                        {rid: "checkout" for rid in report.record_ids})
    assert store.harvest_assign_clusters({"checkout": "You are the <*> bot."}, {}) == ids
    (cluster,) = store.harvest_clusters()
    assert (cluster["records"], cluster["errors"], cluster["negative_feedback"]) == (2, 1, 1)
    assert cluster["template"] == "You are the <*> bot." and cluster["models"] == ["gpt-4.1-mini", "gpt-4.1-mini-2025"]
    with pytest.raises(NotFoundError):
        store.harvest_set_feedback("hrec_missing", 1)


def test_dataset_versions_are_content_addressed(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    first = store.add_dataset(name="checkout", content_hash="ab" * 32, path="evals/x", provenance={"cluster": 1})
    assert store.add_dataset(name="other", content_hash="ab" * 32, path=None, provenance={}) == first
    assert store.get_dataset(first)["provenance"] == {"cluster": 1}


def test_harvest_list_through_the_cli(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from gradeloop.cli import app

    monkeypatch.setenv("GRADELOOP_HOME", str(tmp_path))
    runner = CliRunner()
    assert "nothing harvested yet" in runner.invoke(app, ["harvest", "list"]).output
    store = Store()
    ingest(store, [("a", from_chat(*_chat("Where is my order?"), tags=["checkout"]))], source="proxy", redactor=None)
    result = runner.invoke(app, ["harvest", "list", "--json"])
    listing = json.loads(result.output)
    assert listing["object"] == "list" and listing["data"][0]["source"] == "proxy"
    assert listing["data"][0]["tag"] == "checkout" and listing["data"][0]["records"] == 1
    assert "checkout" in runner.invoke(app, ["harvest", "list"]).output
