"""The recording proxy: the real openai client through the proxy to a fake upstream on 127.0.0.1
sees what it sees going direct (plain, streamed chunk by chunk, errors), and the traffic is
recorded (streams reassembled, usage, time to first token, tags) with no header stored."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial

import httpx
import openai
import pytest

from gradeloop.harvest import ProxyServer
from gradeloop.harvest._proxy import Exchange, Recorder, _store_batch, _Writer, reassemble_chat, sampled
from gradeloop.store import Store
from gradeloop.testing import FakeOpenAI, Faults

KEY = "sk-proxytest-QWERTY0123456789zyxw"  # a recognisable fake key: it must never be stored
CREATED = 1_760_000_000


def _client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def _ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are the checkout bot."}, {"role": "user", "content": text}]


@pytest.fixture
def upstream():
    with FakeOpenAI(api_key=KEY, created=CREATED) as server:
        yield server


@pytest.fixture
def db(tmp_path):
    return tmp_path / "proxy.db"


def _records(db) -> list[dict]:
    store = Store(db)
    try:
        return store.harvest_records()
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_chat_completions_pass_through_unchanged_and_are_recorded(upstream, db):
    with ProxyServer(upstream.url, tags=["checkout"], open_store=partial(Store, db)) as proxy:
        direct, through = _client(upstream.url), _client(proxy.url)
        plain = dict(model="gpt-4.1-mini", messages=_ask("where is my order"))
        went_direct = direct.chat.completions.create(**plain).model_dump()
        assert through.chat.completions.create(**plain).model_dump() == went_direct
        streamed = dict(model="gpt-4.1-mini", messages=_ask("can I pay by card"), stream=True,
                        stream_options={"include_usage": True})
        went_direct = [c.model_dump() for c in direct.chat.completions.create(**streamed)]
        went_through = [c.model_dump() for c in through.chat.completions.create(
            **streamed, extra_headers={"X-Gradeloop-Tag": "beta, eu"})]
        assert went_through == went_direct and len(went_through) == 8  # role, 5 words, finish, usage
        proxy.flush()
    # each request reached the upstream once per route: the proxy retries nothing
    assert len(upstream.chat_bodies()) == 4
    by_question = {r["messages"][1]["content"]: r for r in _records(db)}
    plain_record, stream_record = by_question["where is my order"], by_question["can I pay by card"]
    assert plain_record["output"] == {"role": "assistant", "content": "where is my order"}
    assert (plain_record["status"], plain_record["model"], plain_record["tags"]) == (200, "gpt-4.1-mini", ["checkout"])
    assert plain_record["prompt_tokens"] == 9 and plain_record["latency_ms"] > 0
    assert stream_record["output"] == {"role": "assistant", "content": "can I pay by card"}
    assert stream_record["response"]["object"] == "chat.completion"
    assert (stream_record["prompt_tokens"], stream_record["completion_tokens"]) == (10, 5)
    assert stream_record["ttft_ms"] is not None and stream_record["latency_ms"] >= stream_record["ttft_ms"]
    assert stream_record["tags"] == ["beta", "checkout", "eu"]
    assert stream_record["params"]["stream"] is True and stream_record["source"] == "proxy"


def test_streamed_tool_calls_are_reassembled(db):
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order": "A-17"}'}}
    with FakeOpenAI(responder=lambda body: {"role": "assistant", "content": None, "tool_calls": [call]}) as up:
        with ProxyServer(up.url, open_store=partial(Store, db)) as proxy:
            chunks = list(_client(proxy.url, "x").chat.completions.create(
                model="m", messages=_ask("track A-17"), stream=True))
            proxy.flush()
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.tool_calls) == 3  # name, then two halves
    [record] = _records(db)
    assert record["output"] == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert record["response"]["choices"][0]["finish_reason"] == "tool_calls"


def test_reassembly_merges_choices_and_refusals():
    chunks = [{"id": "c", "created": 1, "model": "m", "choices": [{"index": 1, "delta": {"role": "assistant",
                                                                                         "refusal": "I can"}}]},
              {"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}},
                                      {"index": 1, "delta": {"refusal": " not."}}]},
              {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    done = reassemble_chat(chunks)
    assert [c["message"] for c in done["choices"]] == [{"role": "assistant", "content": "Hi"},
                                                        {"role": "assistant", "content": None, "refusal": "I can not."}]
    assert done["choices"][0]["finish_reason"] == "stop" and reassemble_chat([]) is None


def test_responses_pass_through_unchanged_and_are_recorded(upstream, db):
    with ProxyServer(upstream.url, open_store=partial(Store, db)) as proxy:
        direct, through = _client(upstream.url), _client(proxy.url)
        plain = dict(model="gpt-4.1", instructions="Be brief.", input="weather in paris")
        assert through.responses.create(**plain).model_dump() == direct.responses.create(**plain).model_dump()
        streamed = dict(model="gpt-4.1", input=[{"role": "user", "content": "weather in rome today"}], stream=True)
        went_direct = [e.model_dump() for e in direct.responses.create(**streamed)]
        went_through = [e.model_dump() for e in through.responses.create(**streamed)]
        assert went_through == went_direct and went_through[-1]["type"] == "response.completed"
        proxy.flush()
    by_question = {r["messages"][-1]["content"]: r for r in _records(db)}
    plain_record, stream_record = by_question["weather in paris"], by_question["weather in rome today"]
    assert plain_record["api"] == "responses" and plain_record["messages"][0] == {"role": "system",
                                                                                  "content": "Be brief."}
    assert plain_record["output"] == {"role": "assistant", "content": "weather in paris"}
    assert stream_record["output"] == {"role": "assistant", "content": "weather in rome today"}
    assert (stream_record["prompt_tokens"], stream_record["completion_tokens"]) == (4, 4)
    assert stream_record["response"]["status"] == "completed" and stream_record["ttft_ms"] is not None


def test_models_are_relayed(upstream, db):
    with ProxyServer(upstream.url, open_store=partial(Store, db)) as proxy:
        assert [m.id for m in _client(proxy.url).models.list()] == ["fake"]
        proxy.flush()
    assert _records(db) == []


class _GatedStream:
    """An upstream that sends the first event of a stream, then sends the rest only once the
    test has seen that event arrive: a proxy that buffers the stream never delivers it."""

    def __init__(self, *, cut: bool = False) -> None:
        self.cut = cut  # drop the connection instead of sending the rest
        self.gate = threading.Event()
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> "_GatedStream":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", self.port),
                                         self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0])
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        for i, word in enumerate(["first", " second"]):
            if i:
                await self._loop.run_in_executor(None, self.gate.wait, 20)
                if self.cut:
                    writer.transport.abort()
                    return
            event = f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'content': word}}]})}\n\n".encode()
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
        tail = b"data: [DONE]\n\n"
        writer.write(f"{len(tail):x}\r\n".encode() + tail + b"\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()


def test_a_stream_is_relayed_as_it_arrives_not_after_it_ends(db):
    with _GatedStream() as gated, ProxyServer(f"http://127.0.0.1:{gated.port}/v1",
                                              open_store=partial(Store, db)) as proxy:
        seen = []
        for chunk in _client(proxy.url, "x").chat.completions.create(model="m", messages=_ask("hi"), stream=True):
            seen.append(chunk.choices[0].delta.content)
            gated.gate.set()  # only now does the upstream send the rest
        proxy.flush()
    assert seen == ["first", " second"]
    assert _records(db)[0]["output"] == {"role": "assistant", "content": "first second"}


def test_the_authorization_header_goes_upstream_and_no_header_is_stored(upstream, db):
    # no redaction: what keeps the key out of the store is that headers are never recorded
    with ProxyServer(upstream.url, open_store=partial(Store, db), redact=False) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key=KEY, max_retries=0,
                               default_headers={"X-Custom-Secret": "hdr-value-MNBVCXZ"})
        client.chat.completions.create(model="m", messages=_ask("one"))
        list(client.chat.completions.create(model="m", messages=_ask("two"), stream=True))
        client.responses.create(model="m", input="three")
        with pytest.raises(openai.AuthenticationError):  # the fake checks the key the proxy forwarded
            _client(proxy.url, key="sk-wrong-key-000000000000000000").chat.completions.create(
                model="m", messages=_ask("four"))
        proxy.flush()
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        stored = b"".join(p.read_bytes() for p in files)
        assert any(p.name.endswith("-wal") for p in files) and b"two" in stored
        for secret in (KEY, "sk-wrong-key-000000000000000000", "hdr-value-MNBVCXZ"):
            assert secret.encode() not in stored
    assert len(_records(db)) == 4
    stored = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert KEY.encode() not in stored and b"hdr-value-MNBVCXZ" not in stored


@pytest.mark.parametrize("kind, status, error_class", [("500", 500, openai.InternalServerError),
                                                      ("429", 429, openai.RateLimitError)])
def test_upstream_errors_reach_the_caller_unchanged(db, kind, status, error_class):
    with FakeOpenAI(faults=Faults(rate=1.0, kinds=(kind,), retry_after=7)) as up:
        with ProxyServer(up.url, open_store=partial(Store, db)) as proxy:
            body = {"model": "m", "messages": _ask("hello")}
            direct = httpx.post(f"{up.url}/chat/completions", json=body)
            through = httpx.post(f"{proxy.url}/chat/completions", json=body)
            assert (through.status_code, through.content) == (direct.status_code, direct.content)
            assert through.status_code == status
            assert through.headers.get("retry-after") == direct.headers.get("retry-after")
            with pytest.raises(error_class) as caught:
                _client(proxy.url).chat.completions.create(**body)
            assert caught.value.status_code == status and caught.value.body == direct.json()["error"]
            proxy.flush()
    if kind == "429":
        assert through.headers["retry-after"] == "7"
    [record] = _records(db)  # two identical conversations through the proxy: one row, two occurrences
    assert record["status"] == status and record["occurrences"] == 2
    assert record["error"] == direct.json()["error"] and record["output"] is None


def test_an_upstream_that_is_down_gives_a_502_in_openais_shape(db):
    with ProxyServer(f"http://127.0.0.1:{_free_port()}/v1", open_store=partial(Store, db)) as proxy:
        with pytest.raises(openai.APIStatusError) as caught:
            _client(proxy.url).chat.completions.create(model="m", messages=_ask("anyone there"))
        proxy.flush()
    assert caught.value.status_code == 502 and caught.value.response.headers["x-gradeloop-record"].startswith("req_")
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "upstream_unreachable"
    [record] = _records(db)
    assert record["status"] == 502 and "could not be reached" in record["error"]["message"]


class _BrokenStore(Store):
    def harvest_add(self, *args, **kwargs):
        raise sqlite3.OperationalError(f"disk I/O error near {KEY}")


class _FlakyStore(Store):
    """Fails the write of any record whose messages say "poison"; stores the others."""

    def harvest_add(self, row, **kwargs):
        if "poison" in json.dumps(row["messages"]):
            raise sqlite3.OperationalError("disk I/O error")
        return super().harvest_add(row, **kwargs)


def _exchange(text: str) -> Exchange:
    body = json.dumps({"model": "m", "messages": _ask(text)}).encode()
    answer = json.dumps({"id": "c", "object": "chat.completion", "created": CREATED, "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}).encode()
    exchange = Exchange(f"req_{text}", "chat.completions", body, [], time.time(), time.perf_counter(), status=200)
    exchange.chunks.append((time.perf_counter(), answer))
    return exchange


def test_queued_records_share_a_commit_and_a_failing_one_costs_only_itself(db):
    """The writer stores what is queued together in one transaction; when that fails, it
    stores them one by one, so only the record that fails is lost (and counted)."""
    writer, outbox = _Writer(partial(_FlakyStore, db), None), queue.Queue()
    _store_batch(writer, [_exchange("one"), _exchange("two")], outbox)
    assert writer.counts["recorded"] == 2 and outbox.empty()
    _store_batch(writer, [_exchange("three"), _exchange("poison"), _exchange("four")], outbox)
    writer.close()
    assert writer.counts == {"recorded": 4, "duplicates": 0, "failed": 1, "skipped": 0}
    assert writer.handled == 5  # what the proxy's queued count goes down by
    assert [r["output"]["content"] for r in _records(db)] == ["one", "two", "three", "four"]
    kind, _, ok, message = outbox.get_nowait()
    assert (kind, ok) == ("failed", False) and "disk I/O error" in message


def test_exchanges_submitted_on_the_event_loop_are_stored_before_a_flush_right_after_them(db):
    """The request path hands exchanges to the writer in batches, a few milliseconds later; a
    flush in between first hands over what is pending, so it still waits for them."""
    recorder = Recorder(partial(Store, db)).start()
    try:
        async def relay() -> dict[str, int]:
            for text in ("one", "two", "three"):
                recorder.submit(_exchange(text))
            await asyncio.to_thread(recorder.flush)  # before the hand-off timer fires
            return recorder.counts

        counts = asyncio.run(relay())
    finally:
        recorder.close()
    assert counts["recorded"] == 3 and counts["queued"] == 0 and counts["dropped"] == 0
    assert [r["output"]["content"] for r in _records(db)] == ["one", "two", "three"]


def test_exchanges_beyond_the_queue_bound_are_dropped_and_counted(db):
    recorder = Recorder(partial(Store, db), max_queue=2).start()
    try:
        for text in ("one", "two", "three"):  # the writer is still starting: none of them is stored yet
            recorder.submit(_exchange(text))
        assert recorder.counts["queued"] == 2 and recorder.counts["dropped"] == 1
        recorder.flush()
        assert recorder.counts["recorded"] == 2 and recorder.counts["queued"] == 0
    finally:
        recorder.close()
    assert len(_records(db)) == 2


@pytest.mark.parametrize("broken", ["path", "write"])
def test_a_store_that_cannot_be_written_never_fails_the_caller(tmp_path, upstream, caplog, broken):
    (tmp_path / "not-a-dir").write_text("a file where the store's folder should be")
    open_store = (partial(Store, tmp_path / "not-a-dir" / "db") if broken == "path"
                  else partial(_BrokenStore, tmp_path / "db"))
    with ProxyServer(upstream.url, open_store=open_store) as proxy:
        client = _client(proxy.url)
        for question in ("one", "two"):
            reply = client.chat.completions.create(model="m", messages=_ask(question))
            assert reply.choices[0].message.content == question
        assert [c.choices[0].delta.content for c in client.chat.completions.create(
            model="m", messages=_ask("three"), stream=True)][1] == "three"
        proxy.flush()
        status = httpx.get(f"{proxy.url}/gradeloop/status").json()
        assert status["failed"] == 3 and status["recorded"] == 0
    failures = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(failures) == 1 and KEY not in caplog.text  # logged once, scrubbed


def test_feedback_names_the_record_the_proxy_returned(upstream, db):
    with ProxyServer(upstream.url, open_store=partial(Store, db)) as proxy:
        client = _client(proxy.url)
        first = client.chat.completions.with_raw_response.create(model="m", messages=_ask("good answer please"))
        second = client.chat.completions.with_raw_response.create(model="m", messages=_ask("bad answer please"))
        ids = [r.headers["x-gradeloop-record"] for r in (first, second)]
        # sent at once, before anything was flushed: the feedback waits behind the write
        down = httpx.post(f"{proxy.url}/gradeloop/feedback", json={"record_id": ids[1], "thumbs": "down"})
        score = httpx.post(f"{proxy.url}/gradeloop/feedback", json={"record_id": ids[0], "score": 0.5})
        assert down.status_code == 200 and down.json()["feedback"] == -1.0 and score.json()["feedback"] == 0.5
        unknown = httpx.post(f"{proxy.url}/gradeloop/feedback", json={"record_id": "req_unknown", "thumbs": "up"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "record_not_found"
        for bad in ({"record_id": ids[0], "score": 3}, {"record_id": ids[0], "thumbs": "meh"}, {"score": 1}):
            refused = httpx.post(f"{proxy.url}/gradeloop/feedback", json=bad)
            assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
        proxy.flush()
    feedback = {r["messages"][1]["content"]: r["feedback"] for r in _records(db)}
    assert feedback == {"good answer please": 0.5, "bad answer please": -1.0}
    assert down.json()["record_id"].startswith("hrec_")


def test_sample_rate_zero_records_nothing(upstream, db):
    with ProxyServer(upstream.url, sample_rate=0.0, open_store=partial(Store, db)) as proxy:
        reply = _client(proxy.url).chat.completions.with_raw_response.create(model="m", messages=_ask("hello"))
        assert reply.parse().choices[0].message.content == "hello"
        assert "x-gradeloop-record" not in reply.headers
        proxy.flush()
        assert httpx.get(f"{proxy.url}/gradeloop/status").json()["recorded"] == 0
    assert _records(db) == []


def test_sampling_is_a_function_of_the_request_id():
    ids = [f"req_{i:032x}" for i in range(4000)]
    share = sum(sampled(i, 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [sampled(i, 0.25) for i in ids[:50]] == [sampled(i, 0.25) for i in ids[:50]]
    assert all(sampled(i, 1.0) for i in ids[:50]) and not any(sampled(i, 0.0) for i in ids[:50])


def test_redaction_runs_before_the_record_is_stored(upstream, db):
    with ProxyServer(upstream.url, open_store=partial(Store, db), redact_patterns=[r"ORDER-\d+"]) as proxy:
        _client(proxy.url).chat.completions.create(model="m", messages=_ask("mail ann@example.com about ORDER-991"))
        proxy.flush()
    [record] = _records(db)
    assert record["messages"][1]["content"] == "mail <EMAIL_1> about <CUSTOM_1>"
    assert record["output"]["content"] == "mail <EMAIL_1> about <CUSTOM_1>" and record["redacted"]


def test_cli_refuses_bad_flags_with_one_line():
    from conftest import run_cli

    bad_url = run_cli("proxy", "--upstream", "api.openai.com/v1")
    assert bad_url.returncode == 2 and bad_url.stderr.strip().splitlines() == [
        "error: --upstream: 'api.openai.com/v1' is not an http(s) URL"]
    bad_regex = run_cli("proxy", "--upstream", "http://127.0.0.1:9/v1", "--redact-pattern", "(")
    assert bad_regex.returncode == 2 and "--redact-pattern" in bad_regex.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("proxy", "--upstream", "http://127.0.0.1:9/v1", "--port", str(port))
    assert busy.returncode == 2 and busy.stderr.strip().splitlines() == [
        f"error: --port: {port} is already in use on 127.0.0.1 (a free port)"]


def test_cli_proxy_records_into_the_store_and_flushes_on_shutdown(upstream, tmp_path):
    import os

    port = _free_port()
    home = tmp_path / "home"
    env = {**os.environ, "GRADELOOP_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "gradeloop", "proxy", "--upstream", upstream.url, "--port",
                             str(port), "--tag", "cli", "--no-redact"], env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        while True:  # until it listens; a proxy that never starts exits (pytest-timeout catches a hang)
            try:
                reply = _client(f"http://127.0.0.1:{port}/v1").chat.completions.create(
                    model="m", messages=_ask("reach me at ann@example.com"), extra_headers={"X-Gradeloop-Tag": "web"})
                break
            except openai.APIConnectionError:
                assert proc.poll() is None, "the proxy exited before it listened"
                time.sleep(0.2)
        assert reply.choices[0].message.content == "reach me at ann@example.com"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the writer process gets it too
        stderr = proc.communicate(timeout=60)[1]
    assert "WARNING: --no-redact" in stderr and "stored exactly as sent" in stderr, stderr
    assert len(_records(home / "gradeloop.db")) == 1, stderr
    [record] = _records(home / "gradeloop.db")
    assert record["tags"] == ["cli", "web"] and not record["redacted"]
    assert record["messages"][1]["content"] == "reach me at ann@example.com"


def test_a_caller_that_leaves_mid_stream_stops_the_upstream_and_is_recorded(db):
    with _GatedStream() as gated, ProxyServer(f"http://127.0.0.1:{gated.port}/v1",
                                              open_store=partial(Store, db)) as proxy:
        with httpx.stream("POST", f"{proxy.url}/chat/completions", timeout=30,
                          json={"model": "m", "messages": _ask("leaving early"), "stream": True}) as response:
            first = next(response.iter_raw())
            assert b"first" in first
        # the caller left before the upstream sent the rest: the proxy stops relaying and records
        while httpx.get(f"{proxy.url}/gradeloop/status").json()["recorded"] == 0:  # the writer's own count
            time.sleep(0.05)
    [record] = _records(db)
    assert record["output"] == {"role": "assistant", "content": "first"}
    assert "disconnected" in record["error"]["message"]


def test_an_upstream_url_with_a_query_keeps_it_and_never_shows_its_key(upstream, db):
    secret = "azure-key-POIUYTREWQ123"
    with ProxyServer(f"{upstream.url}?api-version=2024-10-21&api-key={secret}",
                     open_store=partial(Store, db)) as proxy:
        reply = _client(proxy.url).chat.completions.create(model="m", messages=_ask("via azure"))
        assert reply.choices[0].message.content == "via azure"
        status = httpx.get(f"{proxy.url}/gradeloop/status").text
        assert "api-version=2024-10-21" in status and secret not in status


def test_an_upstream_that_breaks_mid_stream_cuts_the_callers_stream_too(db):
    with _GatedStream(cut=True) as gated, ProxyServer(f"http://127.0.0.1:{gated.port}/v1",
                                                      open_store=partial(Store, db)) as proxy:
        seen = []
        with pytest.raises(openai.APIConnectionError):  # as going direct: the stream is cut, not ended
            for chunk in _client(proxy.url, "x").chat.completions.create(model="m", messages=_ask("cut"), stream=True):
                seen.append(chunk.choices[0].delta.content)
                gated.gate.set()
        proxy.flush()
    assert seen == ["first"]
    [record] = _records(db)
    assert record["output"] == {"role": "assistant", "content": "first"}
    assert "upstream stream broke" in record["error"]["message"]
