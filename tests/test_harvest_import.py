"""Importers (issue 12, point 2): each format on a fixture file (tests/data/harvest, shapes
noted in its README), format detection, idempotent re-imports, skipped rows with file:line,
redaction by default, and the ``gradeloop harvest import`` command."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from gradeloop.errors import InputError
from gradeloop.harvest import Redactor, detect_format, import_file
from gradeloop.harvest._importers import parse_maps
from gradeloop.store import Store

DATA = ROOT / "tests" / "data" / "harvest"


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "db.sqlite")


def _records(store, source=None):
    return store.harvest_records(source=source)


def _by_user(records, text):
    return next(r for r in records if any(text in str(m.get("content")) for m in r["messages"]))


# -- OpenAI request/response logs, Batch API, stored completions, Responses exports ----------------------------------

def test_chat_log_lines_of_both_apis_become_records(store):
    result = import_file(store, DATA / "chat_logs.jsonl", redactor=Redactor())
    report = result.report
    assert (result.format, result.source) == ("chat", "import:chat")
    assert (report.added, report.duplicates, report.seen) == (4, 1, 0)
    assert [w for w, _ in report.skipped] == [f"{DATA / 'chat_logs.jsonl'}:6", f"{DATA / 'chat_logs.jsonl'}:7"]
    assert "ends before its value does" in report.skipped[0][1] and "'input'" in report.skipped[1][1]
    records = _records(store)
    first = _by_user(records, "order 1042")
    assert first["messages"][1]["content"] == "Where is my order 1042? Mail me at <EMAIL_1>"
    assert first["output"]["content"] == "Order 1042 ships tomorrow; I will mail <EMAIL_1>."
    assert (first["model"], first["latency_ms"], first["tags"], first["prompt_tokens"]) == (
        "gpt-4.1-mini-2025-04-14", 812.5, ["prod"], 31)
    assert _by_user(records, "pay by card")["occurrences"] == 2
    responses = _by_user(records, "return window")
    assert responses["api"] == "responses" and responses["messages"][0] == {"role": "system",
                                                                            "content": "Answer in one sentence."}
    failed = _by_user(records, "Cancel order 77")
    assert (failed["status"], failed["output"], failed["error"]["code"]) == (429, None, "rate_limit_exceeded")


def test_batch_output_is_joined_with_its_input_by_custom_id(store):
    result = import_file(store, DATA / "batch_output.jsonl", batch_input=DATA / "batch_input.jsonl", redactor=Redactor())
    assert (result.format, result.report.added) == ("batch", 3)
    assert result.report.skipped == [(f"{DATA / 'batch_output.jsonl'}:4",
                                      "no request body for custom_id 'req-9' (not in the --batch-input file)")]
    records = _records(store)
    shipping = _by_user(records, "parcel")
    assert shipping["output"]["content"] == "shipping" and shipping["status"] == 200
    assert shipping["params"] == {"max_tokens": 5} and shipping["metadata"]["custom_id"] == "req-1"
    expired = _by_user(records, "Hello?")
    assert expired["output"] is None and expired["error"]["code"] == "batch_expired"


def test_batch_files_alone_say_what_is_missing(store):
    with pytest.raises(InputError, match=r"batch_output.jsonl: .*custom_id 'req-1' \(give the input file with --batch-input\)"):
        import_file(store, DATA / "batch_output.jsonl", redactor=Redactor())
    with pytest.raises(InputError, match="input line has no response: import the output file with --batch-input"):
        import_file(store, DATA / "batch_input.jsonl", redactor=Redactor())
    assert _records(store) == []


def test_stored_chat_completions_with_their_input_messages(store):
    result = import_file(store, DATA / "stored_completions.jsonl", redactor=Redactor())
    assert (result.format, result.report.added) == ("stored", 2)
    assert "without its input messages" in result.report.skipped[0][1]
    refund = _by_user(_records(store), "You are the refunds assistant")
    assert [m["role"] for m in refund["messages"]] == ["developer", "user"]
    assert refund["messages"][1]["content"] == [{"type": "text", "text": "Where is my refund?"}]  # from content_parts
    assert "id" not in refund["messages"][0]
    assert refund["output"]["content"] == "Your refund of $20 was issued today."
    assert (refund["metadata"], refund["model"], refund["completion_tokens"]) == (
        {"app": "support", "user_tier": "gold"}, "gpt-4.1-2025-04-14", 9)


def test_responses_objects_with_their_input_items(store):
    result = import_file(store, DATA / "responses_export.jsonl", redactor=Redactor())
    assert (result.format, result.report.added, result.report.skipped) == ("responses", 2, [])
    records = _records(store)
    flight = _by_user(records, "flight")
    assert flight["messages"] == [{"role": "system", "content": "You are a travel agent. Reply in French."},
                                  {"role": "user", "content": "When does the flight leave?"}]
    assert flight["output"]["content"] == "Le vol part a 9h." and flight["params"]["temperature"] == 0.2
    hotel = _by_user(records, "hotel")
    assert hotel["output"] is None and hotel["error"]["code"] == "server_error"


# -- fine-tuning files ----------------------------------------------------------------------------------------------

def test_sft_rows_take_the_last_assistant_message_as_output(store):
    result = import_file(store, DATA / "sft.jsonl", redactor=Redactor())
    assert (result.format, result.report.added) == ("sft", 2)
    assert result.report.skipped == [(f"{DATA / 'sft.jsonl'}:3", "messages[1].weight: weight must be 0 or 1, got 2")]
    records = _records(store, "import:sft")
    assert records[0]["messages"][-1] == {"role": "user", "content": "Capital of Portugal?"}
    assert records[0]["output"] == {"role": "assistant", "content": "Lisbon."}
    assert records[1]["output"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert records[1]["params"]["tools"][0]["function"]["name"] == "get_weather"


def test_dpo_rows_keep_the_preferred_output_and_the_rejected_one_in_metadata(store):
    import_file(store, DATA / "dpo.jsonl", redactor=Redactor())
    (record,) = _records(store, "import:dpo")
    assert record["output"]["content"].startswith("You can return any item within 30 days")
    assert record["feedback"] == 1.0
    assert record["metadata"]["non_preferred_output"] == {"role": "assistant", "content": "Refunds exist."}


def test_rft_rows_keep_their_grader_fields_as_metadata(store):
    result = import_file(store, DATA / "rft.jsonl", redactor=Redactor())
    assert (result.format, result.report.added) == ("rft", 2)
    assert result.report.skipped == [(f"{DATA / 'rft.jsonl'}:3", "messages: must be a non-empty list of messages")]
    spell = _by_user(_records(store), "backwards")
    assert spell["output"] is None
    assert spell["metadata"] == {"reference_answer": "pool", "difficulty": "easy"}


# -- llm's logs.db --------------------------------------------------------------------------------------------------

# The tables as llm's docs/logging.md ("SQL schema", generated from llm/migrations.py; simonw/llm 0.32) lists them,
# transcribed column by column for the tables the importer reads; FTS tables, triggers and the tool tables are left
# out. responses/conversations are llm <= 0.31's log (m010 ... m022), messages/parts/threads/turns 0.32's (m023, m027).
LLM_SCHEMA = """
CREATE TABLE "conversations" ("id" TEXT PRIMARY KEY, "name" TEXT, "model" TEXT);
CREATE TABLE "schemas" ("id" TEXT PRIMARY KEY, "content" TEXT);
CREATE TABLE "responses" ("id" TEXT PRIMARY KEY, "model" TEXT, "prompt" TEXT, "system" TEXT, "prompt_json" TEXT,
  "options_json" TEXT, "response" TEXT, "response_json" TEXT, "conversation_id" TEXT REFERENCES "conversations"("id"),
  "duration_ms" INTEGER, "datetime_utc" TEXT, "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT,
  "schema_id" TEXT REFERENCES "schemas"("id"), "resolved_model" TEXT, "reasoning" TEXT);
CREATE TABLE "fragments" ("id" INTEGER PRIMARY KEY, "hash" TEXT, "content" TEXT, "datetime_utc" TEXT, "source" TEXT);
CREATE TABLE "prompt_fragments" ("response_id" TEXT REFERENCES "responses"("id"),
  "fragment_id" INTEGER REFERENCES "fragments"("id"), "order" INTEGER, PRIMARY KEY ("response_id", "fragment_id", "order"));
CREATE TABLE "system_fragments" ("response_id" TEXT REFERENCES "responses"("id"),
  "fragment_id" INTEGER REFERENCES "fragments"("id"), "order" INTEGER, PRIMARY KEY ("response_id", "fragment_id", "order"));
CREATE TABLE "messages" ("hash" TEXT PRIMARY KEY, "parent_hash" TEXT REFERENCES "messages"("hash"), "role" TEXT,
  "provider_metadata" TEXT);
CREATE TABLE "parts" ("id" INTEGER PRIMARY KEY, "message_hash" TEXT REFERENCES "messages"("hash"), "position" INTEGER,
  "type" TEXT, "tool_name" TEXT, "text" TEXT, "payload" TEXT);
CREATE TABLE "part_fragments" ("part_id" INTEGER REFERENCES "parts"("id"), "fragment_id" INTEGER
  REFERENCES "fragments"("id"), "order" INTEGER, PRIMARY KEY ("part_id", "fragment_id", "order"));
CREATE TABLE "threads" ("id" TEXT PRIMARY KEY, "name" TEXT, "tip_message_hash" TEXT REFERENCES "messages"("hash"),
  "forked_from" TEXT REFERENCES "threads"("id"), "datetime_utc" TEXT);
CREATE TABLE "turns" ("id" TEXT PRIMARY KEY, "thread_id" TEXT REFERENCES "threads"("id"),
  "parent_message_hash" TEXT REFERENCES "messages"("hash"), "tip_message_hash" TEXT REFERENCES "messages"("hash"),
  "model" TEXT, "resolved_model" TEXT, "options_json" TEXT, "schema_id" TEXT REFERENCES "schemas"("id"),
  "input_tokens" INTEGER, "output_tokens" INTEGER, "token_details" TEXT, "duration_ms" INTEGER, "datetime_utc" TEXT,
  "response_json" TEXT);
"""


def _logs_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(LLM_SCHEMA)
    db.execute("INSERT INTO conversations VALUES ('01conv', 'haiku chat', 'gpt-4o-mini')")
    rows = [  # id, model, prompt, system, options_json, response, conversation_id, duration_ms, datetime_utc, in, out
        ("01r1", "gpt-4o-mini", "Write a haiku about SQLite", "You are a poet.", '{"temperature": 0.7}',
         "Rows in quiet pages", "01conv", 1200, "2025-06-01T10:00:00.000000", 20, 12),
        ("01r2", "gpt-4o-mini", "Now one about Postgres", None, "{}", "Vacuum hums at night", "01conv", 900,
         "2025-06-01T10:01:00.000000", 40, 10),
        ("01r3", "claude-3.5-sonnet", "Summarise this", None, None, "It is a README.", "01conv2", 3000,
         "2025-06-02T09:00:00.000000", 300, 8),
    ]
    db.execute("INSERT INTO conversations VALUES ('01conv2', 'readme', 'claude-3.5-sonnet')")
    for r in rows:
        db.execute("INSERT INTO responses (id, model, prompt, system, options_json, response, conversation_id,"
                   " duration_ms, datetime_utc, input_tokens, output_tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?)", r)
    db.execute("UPDATE responses SET resolved_model = 'claude-3-5-sonnet-20241022' WHERE id = '01r3'")
    db.execute("INSERT INTO fragments (id, hash, content, source) VALUES (1, 'h1', '# gradeloop\nEvals.', 'README.md')")
    db.execute("INSERT INTO prompt_fragments VALUES ('01r3', 1, 0)")
    db.commit()
    db.close()
    return path


def test_llm_logs_db_responses_with_their_conversations(store, tmp_path):
    path = _logs_db(tmp_path / "logs.db")
    assert detect_format(path) == "llm"
    result = import_file(store, path, redactor=Redactor())
    assert (result.format, result.report.added, result.report.skipped) == ("llm", 3, [])
    first, second, third = _records(store, "import:llm")
    assert first["messages"] == [{"role": "system", "content": "You are a poet."},
                                 {"role": "user", "content": "Write a haiku about SQLite"}]
    assert first["params"] == {"temperature": 0.7} and first["latency_ms"] == 1200
    assert (first["prompt_tokens"], first["completion_tokens"]) == (20, 12)
    assert second["messages"] == [{"role": "user", "content": "Write a haiku about SQLite"},
                                  {"role": "assistant", "content": "Rows in quiet pages"},
                                  {"role": "user", "content": "Now one about Postgres"}]
    assert second["output"] == {"role": "assistant", "content": "Vacuum hums at night"}
    assert second["metadata"]["conversation_name"] == "haiku chat"
    assert third["messages"] == [{"role": "user", "content": "# gradeloop\nEvals.\nSummarise this"}]
    assert third["model"] == "claude-3-5-sonnet-20241022"
    assert third["created_at"] == pytest.approx(1748854800.0)
    again = import_file(store, path, redactor=Redactor())
    assert (again.report.added, again.report.seen) == (0, 3)


def _message(db, hash_, parent, role, *parts):
    db.execute("INSERT INTO messages VALUES (?, ?, ?, NULL)", (hash_, parent, role))
    for position, (kind, text, payload) in enumerate(parts):
        db.execute("INSERT INTO parts (message_hash, position, type, tool_name, text, payload) VALUES (?,?,?,?,?,?)",
                   (hash_, position, kind, (payload or {}).get("name"), text, json.dumps(payload) if payload else None))


def _turns_db(path: Path) -> Path:
    """An llm 0.32 logs.db: one thread of three turns (a fragment-borrowing prompt, a tool call and its result)
    and a legacy response that is also turn 1 (llm's dual-write era)."""
    db = sqlite3.connect(_logs_db(path))
    db.execute("INSERT INTO fragments (id, hash, content, source) VALUES (2, 'h2', 'def f(): pass', 'f.py')")
    _message(db, "b2:s", None, "system", ("text", "You review code.", None))
    _message(db, "b2:u1", "b2:s", "user", ("text", None, {"text_ref": [{"fragment": 2}, {"literal": "\nAny bugs?"}]}))
    _message(db, "b2:a1", "b2:u1", "assistant", ("reasoning", "thinking", None),
             ("tool_call", None, {"name": "run_tests", "arguments": {"path": "f.py"}, "tool_call_id": "t1"}))
    _message(db, "b2:r1", "b2:a1", "tool", ("tool_result", None, {"name": "run_tests", "output": "1 passed",
                                                                   "tool_call_id": "t1"}))
    _message(db, "b2:a2", "b2:r1", "assistant", ("text", "No bugs: the test passes.", None))
    _message(db, "b2:u3", "b2:a2", "user", ("attachment", None, {"attachment": {"id": "img"}}))
    db.execute("INSERT INTO threads VALUES ('01thr', 'code review', 'b2:a2', NULL, '2026-08-10T08:00:00')")
    turns = [("01t1", None, "b2:a1", 2000, "2026-08-10T08:00:00"), ("01t2", "b2:a1", "b2:a2", 500, "2026-08-10T08:00:05"),
             ("01t3", "b2:a2", "b2:u3", 10, "2026-08-10T08:00:09")]
    for turn_id, parent, tip, duration, when in turns:
        db.execute("INSERT INTO turns (id, thread_id, parent_message_hash, tip_message_hash, model, resolved_model,"
                   " options_json, input_tokens, output_tokens, duration_ms, datetime_utc)"
                   " VALUES (?, '01thr', ?, ?, 'gpt-5-mini', 'gpt-5-mini-2025-08-07', '{}', 50, 7, ?, ?)",
                   (turn_id, parent, tip, duration, when))
    db.execute("INSERT INTO responses (id, model, prompt, response, datetime_utc) VALUES"
               " ('01t1', 'gpt-5-mini', 'Any bugs?', '', '2026-08-10T08:00:00')")
    db.commit()
    db.close()
    return path


def test_llm_logs_db_turns_of_the_message_store(store, tmp_path):
    path = _turns_db(tmp_path / "logs.db")
    result = import_file(store, path, redactor=Redactor())
    assert (result.report.added, result.report.duplicates) == (5, 0)  # 2 turns + the 3 legacy responses
    assert result.report.skipped == [(f"{path}:turns/01t3", "the turn has no assistant reply")]
    records = _records(store, "import:llm")
    first, second = records[0], records[1]
    assert first["messages"] == [{"role": "system", "content": "You review code."},
                                 {"role": "user", "content": "def f(): pass\nAny bugs?"}]
    assert first["output"] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "run_tests", "arguments": '{"path": "f.py"}'}}]}
    assert (first["model"], first["latency_ms"], first["prompt_tokens"]) == ("gpt-5-mini-2025-08-07", 2000, 50)
    assert first["metadata"] == {"llm_turn_id": "01t1", "thread_id": "01thr", "thread_name": "code review"}
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "1 passed"}
    assert second["output"] == {"role": "assistant", "content": "No bugs: the test passes."}
    assert not any(r["metadata"].get("llm_response_id") == "01t1" for r in records)  # the dual-write row, once


def test_an_sqlite_file_that_is_not_llm_logs_is_refused(tmp_path):
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(InputError, match="other.db: an SQLite file without llm's 'turns' or 'responses' table"):
        detect_format(path)


# -- OpenTelemetry GenAI spans --------------------------------------------------------------------------------------

def test_otel_genai_spans_in_both_attribute_styles(store):
    result = import_file(store, DATA / "otel_spans.json", redactor=Redactor())
    assert (result.format, result.report.added) == ("otel", 4)
    assert result.report.skipped == [(f"{DATA / 'otel_spans.json'}:1#cc01b2c3d4e5f604",
                                      "span 'POST /checkout': not a GenAI span (no gen_ai.* messages)")]
    records = _records(store, "import:otel")
    new = _by_user(records, "charged twice")
    assert [m["role"] for m in new["messages"]] == ["system", "user", "assistant", "tool"]
    assert new["messages"][1]["content"] == "Why was I charged twice? Reach me at <EMAIL_1>"
    assert new["messages"][2]["tool_calls"][0]["function"] == {"name": "lookup_invoice",
                                                               "arguments": '{"customer": "bo"}'}
    assert new["messages"][3] == {"role": "tool", "tool_call_id": "call_7", "content": "two invoices: #11, #12"}
    assert new["output"]["content"] == "Invoice #12 is a duplicate; I have refunded it."
    assert (new["model"], new["prompt_tokens"], new["completion_tokens"]) == ("gpt-4.1-mini-2025-04-14", 52, 17)
    assert new["latency_ms"] == pytest.approx(950.0) and new["created_at"] == 1760004000.0
    assert new["params"] == {"temperature": 0.3}
    failed = _by_user(records, "Cancel my subscription")
    assert failed["output"] is None and "timed out" in failed["error"]["message"]
    old = _by_user(records, "weather in Rome")
    assert old["output"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    assert (old["prompt_tokens"], old["completion_tokens"]) == (11, 9)
    phoenix = _by_user(records, "Good morning")
    assert phoenix["output"]["content"] == "Guten Morgen" and phoenix["model"] == "gpt-4o-mini"


def test_otel_as_jsonl_one_export_per_line(store, tmp_path):
    doc = json.loads((DATA / "otel_spans.json").read_text())
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps(doc) + "\n" + json.dumps(doc) + "\n")
    assert detect_format(path) == "otel"
    result = import_file(store, path, redactor=Redactor())
    # the same spans on line 2 are other origins (another export) but the same conversations
    assert (result.report.added, result.report.duplicates, len(result.report.skipped)) == (4, 4, 2)


def test_otel_flattened_tool_calls_and_list_content():
    from gradeloop.harvest._importers._otel import span_record

    def attr(key, value):
        return {"key": key, "value": {"stringValue": value}}

    span = {"spanId": "01", "name": "llm", "attributes": [
        attr("llm.input_messages.0.message.role", "user"),
        attr("llm.input_messages.0.message.content", "Weather in Oslo?"),
        attr("llm.output_messages.0.message.role", "assistant"),
        attr("llm.output_messages.0.message.tool_calls.0.tool_call.id", "c9"),
        attr("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "get_weather"),
        attr("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", '{"city": "Oslo"}')]}
    record = span_record(span)
    assert record.output["tool_calls"] == [{"id": "c9", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    parts = '[{"type": "text", "text": "Describe this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]'
    record = span_record({"attributes": [attr("gen_ai.prompt.0.role", "user"), attr("gen_ai.prompt.0.content", parts)]})
    assert record.messages[0]["content"][0] == {"type": "text", "text": "Describe this"}


# -- any JSONL through --map ----------------------------------------------------------------------------------------

def test_a_custom_log_through_field_maps(store):
    maps = parse_maps(["messages=conversation.turns", "user=question", "system=sys_prompt", "output=answer.text",
                       "model=meta.model", "created_at=ts", "latency_ms=meta.latency", "feedback=thumbs"])
    result = import_file(store, DATA / "custom_log.jsonl", maps=maps, redactor=Redactor())
    assert (result.format, result.source, result.report.added) == ("map", "import:map", 2)
    assert result.report.skipped == [(f"{DATA / 'custom_log.jsonl'}:3",
                                      "no input: the mapped messages/user are missing or empty")]
    first, second = _records(store, "import:map")
    assert first["messages"] == [{"role": "system", "content": "You answer HR questions."},
                                 {"role": "user", "content": "How many vacation days do I get?"}]
    assert (first["output"]["content"], first["model"], first["latency_ms"], first["feedback"]) == (
        "25 days a year.", "acme-7b", 420.0, 1.0)
    assert first["created_at"] == 1760011200.0
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["feedback"] == -1.0


def test_map_paths_with_list_indexes(store, tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps({"events": [{"text": "Hi, is the shop open?"}, {"text": "Yes, until 8."}]}) + "\n")
    import_file(store, path, maps=parse_maps(["user=events[0].text", "output=events[1].text"]), redactor=None)
    (record,) = _records(store)
    assert record["messages"] == [{"role": "user", "content": "Hi, is the shop open?"}]
    assert record["output"] == {"role": "assistant", "content": "Yes, until 8."}


def test_bad_maps_are_refused_with_the_field_named():
    with pytest.raises(InputError, match="--map: unknown field 'answer'"):
        parse_maps(["answer=x"])
    with pytest.raises(InputError, match="--map: 'user': write FIELD=PATH"):
        parse_maps(["user"])
    with pytest.raises(InputError, match="map 'messages' or 'user'"):
        parse_maps(["output=answer"])


# -- detection ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("chat_logs.jsonl", "chat"), ("batch_output.jsonl", "batch"), ("batch_input.jsonl", "batch"),
    ("stored_completions.jsonl", "stored"), ("responses_export.jsonl", "responses"), ("sft.jsonl", "sft"),
    ("dpo.jsonl", "dpo"), ("rft.jsonl", "rft"), ("otel_spans.json", "otel")])
def test_each_fixture_is_detected(name, expected):
    assert detect_format(DATA / name) == expected


def test_an_ambiguous_file_names_the_candidates(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text((DATA / "rft.jsonl").read_text().splitlines()[0] + "\n" + (DATA / "sft.jsonl").read_text())
    with pytest.raises(InputError) as info:
        detect_format(path)
    assert str(info.value) == f"{path}: ambiguous: its lines read as rft (line 1), sft (line 2); " \
                              "pass --format with one of them"
    result = import_file(Store(tmp_path / "db.sqlite"), path, format="sft", redactor=None)
    assert result.report.added == 2 and "no assistant message" in result.report.skipped[0][1]


def test_an_unknown_file_says_what_was_expected(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"title": "groceries", "items": ["milk"]}\n')
    with pytest.raises(InputError, match=r"notes.jsonl: not a format gradeloop can import: expected chat \(.*"
                                         r"otel \(.*\); for another JSONL log pass --map FIELD=PATH"):
        detect_format(path)
    with pytest.raises(InputError, match="file not found"):
        detect_format(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty.jsonl: the file is empty"):
        detect_format(tmp_path / "empty.jsonl")


# -- idempotency, skipped rows, redaction ---------------------------------------------------------------------------

def test_reimport_adds_nothing_and_an_appended_line_is_all_that_is_added(store, tmp_path):
    path = tmp_path / "chat_logs.jsonl"
    shutil.copy(DATA / "chat_logs.jsonl", path)
    import_file(store, path, redactor=Redactor())
    again = import_file(store, path, redactor=Redactor())
    assert (again.report.added, again.report.duplicates, again.report.seen) == (0, 0, 5)
    with open(path, "a") as handle:
        handle.write(json.dumps({"request": {"model": "m", "messages": [{"role": "user", "content": "New question"}]},
                                 "response": None}) + "\n")
    third = import_file(store, path, redactor=Redactor())
    assert (third.report.added, third.report.seen) == (1, 5)
    assert len(_records(store)) == 5


def test_a_file_where_every_row_fails_is_an_error(store, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"request": {"model": "m"}}\nnot json\n')
    with pytest.raises(InputError, match=r"broken.jsonl: no row could be imported as chat: all 2 skipped; the first, "
                                         r".*broken.jsonl:1: request: the request has no 'input'"):
        import_file(store, path, redactor=Redactor())


def test_redaction_is_on_by_default_and_takes_extra_patterns(store, tmp_path):
    import_file(store, DATA / "chat_logs.jsonl", redactor=Redactor([r"\border \d+"]))
    stored = json.dumps(_records(store))
    assert "ann.lee@example.com" not in stored and "<EMAIL_1>" in stored
    assert "order 1042" not in stored and "<CUSTOM_1>" in stored
    raw = Store(tmp_path / "raw.sqlite")
    import_file(raw, DATA / "chat_logs.jsonl", redactor=None)
    assert "ann.lee@example.com" in json.dumps(_records(raw))


# -- the command ----------------------------------------------------------------------------------------------------

def test_cli_import_prints_counts_and_skipped_rows():
    proc = run_cli("harvest", "import", str(DATA / "chat_logs.jsonl"), "--tag", "checkout")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"{DATA / 'chat_logs.jsonl'} (chat): took 5 (1 duplicate of stored ones), "
                        "0 already imported, 2 skipped")
    assert lines[1].startswith(f"  skipped {DATA / 'chat_logs.jsonl'}:6: invalid JSON")
    assert lines[2] == f"  skipped {DATA / 'chat_logs.jsonl'}:7: request: the request has no 'input' " \
                       "(a string or a list of items)"
    listed = json.loads(run_cli("harvest", "list", "--json").stdout)["data"]
    assert {(r["source"], r["tag"]) for r in listed} >= {("import:chat", "checkout"), ("import:chat", "prod")}


def test_cli_lists_the_first_ten_skipped_rows_and_counts_the_rest(tmp_path):
    path = tmp_path / "log.jsonl"
    good = {"request": {"messages": [{"role": "user", "content": "hi"}]}, "response": None}
    path.write_text(json.dumps(good) + "\n" + "{broken\n" * 12)
    lines = run_cli("harvest", "import", str(path)).stdout.splitlines()
    assert lines[0].endswith("took 1 (0 duplicates of stored ones), 0 already imported, 12 skipped")
    assert [line.split(":")[1] for line in lines[1:11]] == [str(n) for n in range(2, 12)]
    assert lines[11] == "  … and 2 more skipped (--json lists them)" and len(lines) == 12


def test_cli_import_json_and_no_redact_warning():
    args = ("harvest", "import", str(DATA / "custom_log.jsonl"), "--map", "user=question", "--map",
            "output=answer.text", "--json")
    out = json.loads(run_cli(*args).stdout)
    assert {k: out[k] for k in ("object", "format", "source", "redacted", "took", "added", "duplicates",
                                "already_imported", "skipped")} == {
        "object": "harvest.import", "format": "map", "source": "import:map", "redacted": True, "took": 2,
        "added": 2, "duplicates": 0, "already_imported": 0, "skipped": 1}
    assert out["skipped_rows"] == [{"where": f"{DATA / 'custom_log.jsonl'}:3",
                                    "reason": "no input: the mapped messages/user are missing or empty"}]
    assert len(out["record_ids"]) == 2
    again = json.loads(run_cli(*args).stdout)
    assert (again["took"], again["already_imported"]) == (0, 2)
    proc = run_cli("harvest", "import", str(DATA / "dpo.jsonl"), "--no-redact")
    assert proc.returncode == 0 and "--no-redact: texts are stored exactly as they are" in proc.stderr


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"title": "groceries"}\n')
    proc = run_cli("harvest", "import", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {path}: not a format gradeloop can import: expected chat")
    proc = run_cli("harvest", "import", str(DATA / "sft.jsonl"), "--format", "csv")
    assert proc.returncode == 2 and "--format: unknown format 'csv'" in proc.stderr
    proc = run_cli("harvest", "import", str(DATA / "sft.jsonl"), "--redact-pattern", "(")
    assert proc.returncode == 2 and "--redact-pattern: '(' is not a valid regular expression" in proc.stderr
