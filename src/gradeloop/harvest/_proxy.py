"""The recording proxy: an OpenAI-compatible pass-through that records real traffic.

An app points its OpenAI base URL at the proxy; each request goes upstream unchanged (the
caller's own ``Authorization`` header included) and the answer comes back unchanged: upstream
bytes as they are, streams relayed chunk by chunk as they arrive, errors with their status,
body and ``Retry-After``. Chat Completions and Responses calls are recorded: the request body,
the answer (streams reassembled), latency, time to the first token, usage, status, model and
tags. Headers are never stored. The upstream pool is one aiohttp session and the relay path is
a plain ASGI handler: both keep the proxy's own CPU per call low (under half a millisecond).

Nothing of the recording happens on the request path beyond noting the bytes and times: one
writer process turns them into records and stores them through :func:`ingest` (redaction
first), so a slow or broken store, or redaction's CPU time, never delays or fails a caller.
Each recorded request gets an id (the ``X-Gradeloop-Record`` response header) that
``POST /v1/gradeloop/feedback`` names.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import concurrent.futures
import hashlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._server import ThreadedServer
from ..errors import NotFoundError
from ..store import Store
from ._ingest import ingest, origin_key
from ._record import Record, from_chat, from_responses
from ._redact import Redactor, make_redactor

__all__ = ["ProxyServer", "Recorder", "create_proxy_app", "reassemble_chat", "run_proxy", "sampled"]

log = logging.getLogger("gradeloop.proxy")

SOURCE = "proxy"
RECORD_HEADER = "x-gradeloop-record"
TAG_HEADER = "x-gradeloop-tag"
# hop-by-hop headers, and the ones the proxy sets itself, are never relayed as they came
_DROP_REQUEST = {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer",
                 b"upgrade", b"proxy-connection", b"proxy-authorization", b"accept-encoding"}
_DROP_RESPONSE = {b"content-length", b"connection", b"keep-alive", b"transfer-encoding", b"content-encoding",
                  b"trailer", b"upgrade"}
_RECORDED = {"chat/completions": "chat.completions", "responses": "responses"}
WRITER_NICENESS = 10  # how far below the relaying process the writer process runs
COUNTS_EVERY = 0.25  # seconds: the writer tells the proxy its counts at most this often
WRITE_BATCH = 256  # records queued together are stored in one transaction, this many at most
HAND_OFF_EVERY = 0.01  # seconds: the request path hands the exchanges of this long to the writer at once
BATCH_WAIT = 0.05  # seconds the writer waits for more records to store with the one it has


def sampled(request_id: str, rate: float) -> bool:
    """Whether ``request_id`` is recorded at ``rate``: the first 8 bytes of the id's SHA-256,
    read as a fraction of 2**64, fall below the rate (so the choice is a pure function of the
    id, and random ids give the asked share)."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(request_id.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass
class Exchange:
    """What the request path notes about one call: raw bytes and ``perf_counter`` times."""

    request_id: str
    api: str  # "chat.completions" or "responses"
    body: bytes
    tags: list[str]
    created_at: float
    started: float
    status: int = 0
    stream: bool = False
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival time, bytes)
    ended: float | None = None
    error: str | None = None  # what went wrong on the proxy's side (upstream down, client gone)


# -- from noted bytes to a record (the writer process) ---------------------------------------


def sse_events(chunks: Iterable[tuple[float, bytes]]) -> list[tuple[float, str | None, str]]:
    """Server-sent events in timed chunks → ``(arrival of the chunk that completed it, event
    name, data)``; an event may span chunks and a chunk hold several events."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    buffer, events = "", []
    for at, data in chunks:
        buffer = (buffer + decoder.decode(data)).replace("\r\n", "\n")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            name, lines = None, []
            for line in block.split("\n"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "data":
                    lines.append(value)
            if lines:
                events.append((at, name, "\n".join(lines)))
    return events


def reassemble_chat(chunks: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``chat.completion.chunk`` objects → the ``chat.completion`` they stream: texts joined,
    tool-call deltas merged by index, finish reasons and usage kept (None without chunks)."""
    if not chunks:
        return None
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for delta_choice in chunk.get("choices") or []:
            slot = choices.setdefault(delta_choice.get("index", 0), {"role": "assistant", "content": [],
                                                                      "refusal": [], "calls": {}, "finish": None})
            _merge_delta(slot, delta_choice.get("delta") or {})
            slot["finish"] = delta_choice.get("finish_reason") or slot["finish"]
    head = chunks[0]
    completion = {"id": head.get("id"), "object": "chat.completion", "created": head.get("created"),
                  "model": head.get("model"),
                  "choices": [{"index": i, "message": _message(slot), "finish_reason": slot["finish"]}
                              for i, slot in sorted(choices.items())]}
    if head.get("system_fingerprint"):
        completion["system_fingerprint"] = head["system_fingerprint"]
    if usage:
        completion["usage"] = usage
    return completion


def _merge_delta(slot: dict[str, Any], delta: dict[str, Any]) -> None:
    slot["role"] = delta.get("role") or slot["role"]
    for key in ("content", "refusal"):
        if isinstance(delta.get(key), str):
            slot[key].append(delta[key])
    for part in delta.get("tool_calls") or []:
        call = slot["calls"].setdefault(part.get("index", 0), {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
        call["id"] = part.get("id") or call["id"]
        call["type"] = part.get("type") or call["type"]
        function = part.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""


def _message(slot: dict[str, Any]) -> dict[str, Any]:
    content = "".join(slot["content"]) or (None if slot["calls"] or not slot["content"] else "")
    message: dict[str, Any] = {"role": slot["role"], "content": content}
    if slot["refusal"]:
        message["refusal"] = "".join(slot["refusal"])
    if slot["calls"]:
        message["tool_calls"] = [call for _, call in sorted(slot["calls"].items())]
    return message


def _generates(api: str, payload: dict[str, Any]) -> bool:
    """Whether a streamed event carries generated output (what time to first token times)."""
    if api == "responses":
        return str(payload.get("type", "")).endswith(".delta")
    return any((c.get("delta") or {}).get(k) for c in payload.get("choices") or []
               for k in ("content", "refusal", "tool_calls"))


def _streamed(ex: Exchange) -> tuple[dict[str, Any] | None, float | None, dict[str, Any] | None]:
    """A stream's reassembled answer, the time its first token arrived, and an error event."""
    payloads: list[dict[str, Any]] = []
    first, error = None, None
    for at, _, data in sse_events(ex.chunks):
        try:
            payload = json.loads(data)
        except ValueError:
            continue  # [DONE], or a line that is not JSON
        if not isinstance(payload, dict):
            continue
        payloads.append(payload)
        if first is None and _generates(ex.api, payload):
            first = at
        if payload.get("type") == "error" or (ex.api == "chat.completions" and payload.get("error")):
            error = payload.get("error") or payload
    if first is None and ex.chunks:
        first = ex.chunks[0][0]
    ttft = None if first is None else (first - ex.started) * 1000
    if ex.api == "chat.completions":
        return reassemble_chat([p for p in payloads if "choices" in p or "usage" in p]), ttft, error
    finals = [p["response"] for p in payloads if isinstance(p.get("response"), dict)]
    return (finals[-1] if finals else None), ttft, error


def exchange_record(ex: Exchange) -> Record:
    """The record of a noted exchange (raises ValueError when the request is not one to record)."""
    request = json.loads(ex.body)
    if not isinstance(request, dict):
        raise ValueError("the request body is not a JSON object")
    response, ttft, error = None, None, None
    body = b"".join(data for _, data in ex.chunks)
    if ex.status >= 400 and body:
        error = _error_of(body)
    elif ex.stream:
        response, ttft, error = _streamed(ex)
    elif ex.status and not ex.error:
        try:
            response = json.loads(body)
        except ValueError:
            error = {"message": "the upstream answer is not JSON", "type": "proxy_error"}
    if error is None and ex.error:
        error = {"message": ex.error, "type": "proxy_error"}
    latency = None if ex.ended is None else (ex.ended - ex.started) * 1000
    known = {"status": ex.status or None, "error": error, "latency_ms": latency, "ttft_ms": ttft,
             "tags": ex.tags, "created_at": ex.created_at,
             "metadata": {"proxy": {"request_id": ex.request_id, "stream": ex.stream}}}
    build = from_responses if ex.api == "responses" else from_chat
    return build(request, response if isinstance(response, dict) else None, **known)


def _error_of(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return {"message": body.decode("utf-8", "replace")[:2000], "type": "upstream_error"}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {"message": json.dumps(payload)[:2000], "type": "upstream_error"}


class _Writer:
    """The writer's side (in its own process): owns the store, turns exchanges into records and
    ingests them, sets feedback, and counts what happened."""

    def __init__(self, open_store: Callable[[], Store], redactor: Redactor | None) -> None:
        self.open_store, self.redactor = open_store, redactor
        self.counts = {"recorded": 0, "duplicates": 0, "failed": 0, "skipped": 0}
        self.handled = 0  # exchanges taken off the queue and done with (stored, skipped or failed)
        self.store: Store | None = None

    def _open(self) -> Store:
        if self.store is None:
            self.store = self.open_store()
        return self.store

    def record(self, exchange: Exchange) -> None:
        """Store one exchange (raises what the store raises)."""
        try:
            record = exchange_record(exchange)
        except ValueError:
            self.counts["skipped"] += 1  # not JSON, or no messages/input: nothing to learn from
            return
        report = ingest(self._open(), [(exchange.request_id, record)], source=SOURCE, redactor=self.redactor)
        self.counts["recorded"] += report.added
        self.counts["duplicates"] += report.duplicates

    def record_all(self, exchanges: Sequence[Exchange]) -> None:
        """Store exchanges in one transaction (one commit writes the pages they share once:
        about a third of the CPU per record). Raises what the store raises, with nothing of
        the batch kept and the counts as they were."""
        counts = dict(self.counts)
        try:
            with self._open().transaction():
                for exchange in exchanges:
                    self.record(exchange)
        except BaseException:
            self.counts = counts
            raise

    def feedback(self, record: str, value: float) -> str:
        """Set feedback on the record of request ``record`` (or a stored ``hrec_`` id); returns its id."""
        store = self._open()
        record_id = record if record.startswith("hrec_") else store.harvest_origin_record(origin_key(SOURCE, record))
        if record_id is None:
            raise NotFoundError(f"no recorded request with id '{record}'")
        store.harvest_set_feedback(record_id, value)
        return record_id

    def failed(self, exc: Exception) -> str:
        """Count a failed write, drop the store (the next write opens it again); returns what
        went wrong, scrubbed of secrets."""
        self.counts["failed"] += 1
        self.close()
        from ..redact import scrub

        return scrub(f"{type(exc).__name__}: {exc}")[:300]

    def close(self) -> None:
        """Close the store, if open."""
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            self.store = None


def _store_batch(writer: _Writer, batch: list[Exchange], outbox: Any) -> None:
    """Store a batch in one transaction; when that fails, each record on its own, so that one
    bad record or a store that fails only now and then costs only the records it fails on."""
    try:
        if len(batch) > 1:
            try:
                writer.record_all(batch)
                return
            except Exception:  # noqa: BLE001 - retried one by one below, where failures are counted
                writer.close()
        for exchange in batch:
            try:
                writer.record(exchange)
            except Exception as exc:  # noqa: BLE001 - a failing store must never reach a caller
                outbox.put(("failed", None, False, writer.failed(exc)))
    finally:
        writer.handled += len(batch)


def _answer(writer: _Writer, kind: str, item: Any, outbox: Any, tell: Callable[[], None]) -> None:
    """Apply feedback, or answer a flush (everything before it is stored by now)."""
    try:
        if kind == "feedback":
            token, record, value = item
            outbox.put(("reply", token, True, writer.feedback(record, value)))
        elif kind == "flush":
            tell()
            outbox.put(("reply", item, True, None))
    except NotFoundError as exc:
        outbox.put(("reply", item[0], False, ("not_found", str(exc))))
    except Exception as exc:  # noqa: BLE001 - a failing store must never reach a caller
        message = writer.failed(exc)
        outbox.put(("failed", None, False, message))
        if kind == "feedback":
            outbox.put(("reply", item[0], False, ("failed", message)))


def _writer_main(inbox: Any, outbox: Any, open_store: Callable[[], Store], redact: bool,
                 patterns: Sequence[str], region: str | None) -> None:
    """The writer process: apply queued items in order; report counts every ``COUNTS_EVERY``
    seconds while they change, and before replying to a flush. It stops when
    told, or when the proxy is gone (its end of the queue closes)."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the proxy stops the writer itself,
    # once the queue is written. Both arrive blocked (see Recorder.start): ignore, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    # recording can wait, callers cannot: when the cores are busy relaying, the writer takes
    # only what is left over and catches up when the burst is over (its queue holds the rest).
    # Niceness, not SCHED_IDLE: an idle-class writer would never run while a local model keeps
    # the cores busy, and would drop every exchange once its queue is full.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    writer = _Writer(open_store, make_redactor(redact, patterns, region))
    # the counts go to the proxy at most every COUNTS_EVERY seconds, and before a flush's reply:
    # a message per record would wake a thread in the proxy, and take its lock, once per call
    told_at, told = 0.0, None  # when the counts were last sent, and what they were

    def counts() -> dict[str, int]:
        return {**writer.counts, "handled": writer.handled}

    def tell() -> None:
        nonlocal told_at, told
        told_at, told = time.monotonic(), counts()
        outbox.put(("counts", None, True, told))

    held = None  # an item taken while gathering a batch, to apply next
    while True:
        try:
            kind, item = held or inbox.get(timeout=COUNTS_EVERY if counts() != told else None)
        except queue.Empty:
            tell()
            continue
        except (EOFError, OSError):
            break
        held = None
        if kind == "stop":
            break
        if kind == "records":
            # the records that come within BATCH_WAIT go into the same transaction: one commit
            # for many records under load, a short wait when a call comes alone
            batch, until = list(item), time.monotonic() + BATCH_WAIT
            while len(batch) < WRITE_BATCH and held is None:
                try:
                    queued = inbox.get(timeout=max(0.0, until - time.monotonic()))
                except (queue.Empty, EOFError, OSError):
                    break
                if queued[0] == "records":
                    batch.extend(queued[1])
                else:
                    held = queued  # feedback, flush, stop: applied after the records before it
            _store_batch(writer, batch, outbox)
        else:
            _answer(writer, kind, item, outbox, tell)
        if time.monotonic() - told_at >= COUNTS_EVERY:
            tell()
    writer.close()
    outbox.put(("stopped", None, True, counts()))


class Recorder:
    """The request path's handle on the writer: one process that owns the store, so neither a
    slow or broken store nor redaction's CPU ever delays a caller (it has its own interpreter
    lock). Exchanges and feedback are applied in the order queued, so feedback on a record not
    yet written waits behind its write. A write that fails is logged once (scrubbed of secrets)
    and counted. ``open_store`` is called in the writer process, so it must pickle (a class, a
    module-level function, a ``functools.partial``)."""

    def __init__(self, open_store: Callable[[], Store] = Store, *, redact: bool = True,
                 redact_patterns: Sequence[str] = (), redact_region: str | None = None,
                 max_queue: int = 10_000) -> None:
        import multiprocessing

        # spawn, not fork: the proxy runs threads (the server's, the test's), and a forked child
        # of a threaded process can inherit a lock held by a thread that no longer exists
        context = multiprocessing.get_context("spawn")
        self._inbox, self._outbox = context.Queue(), context.Queue()
        self.max_queue = max_queue  # exchanges handed over and not yet stored, at most (more are dropped)
        self._process = context.Process(target=_writer_main, name="gradeloop-proxy-writer", daemon=True,
                                        args=(self._inbox, self._outbox, open_store, redact, list(redact_patterns),
                                              redact_region))
        self._counts = {"recorded": 0, "duplicates": 0, "failed": 0, "skipped": 0}
        self.dropped = 0
        self._submitted = self._handled = 0  # exchanges taken for recording; those the writer is done with
        # exchanges are handed to the writer in batches: one message (one wake-up of the queue's
        # feeder thread, one pickle, one write to the pipe) per HAND_OFF_EVERY, not one per call
        self._pending: list[Exchange] = []
        self._hand = threading.Lock()  # keeps the pending batch, and what is queued after it, in order
        self._gone = False  # the writer process has stopped (the reply thread finds out)
        self._waiting: dict[str, concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self._relaying = 0  # calls between opened() and closed(): their exchanges are still to come
        self._idle = threading.Condition(self._lock)
        self._warned = False
        self._reader = threading.Thread(target=self._read, name="gradeloop-proxy-replies", daemon=True)

    @property
    def counts(self) -> dict[str, int]:
        """recorded, duplicates (folded into a stored conversation), failed, skipped (not a
        request to record), dropped (``max_queue`` exchanges were waiting, or the writer was
        gone), queued (handed to the writer and not yet done with)."""
        return {**self._counts, "dropped": self.dropped, "queued": max(0, self._submitted - self._handled)}

    def start(self) -> "Recorder":
        """Start the writer process; returns self."""
        import signal

        # the child inherits this thread's signal mask: blocked, a Ctrl-C that lands while it is
        # still importing cannot kill it before it ignores Ctrl-C itself
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self._reader.start()
        return self

    def opened(self) -> None:
        """A call whose exchange will be submitted is being relayed (see :meth:`flush`)."""
        with self._lock:
            self._relaying += 1

    def closed(self) -> None:
        """That call is over: its exchange was submitted, or never will be."""
        with self._lock:
            self._relaying -= 1
            if not self._relaying:
                self._idle.notify_all()

    def submit(self, exchange: Exchange) -> None:
        """Queue an exchange for recording (dropped and counted when ``max_queue`` exchanges are
        waiting to be stored, or the writer is gone). Called on the event loop, it is handed to
        the writer with the others of the next ``HAND_OFF_EVERY`` seconds."""
        with self._hand:
            if self._gone or self._submitted - self._handled >= self.max_queue:
                self.dropped += 1
                return
            self._pending.append(exchange)
            self._submitted += 1
            first = len(self._pending) == 1
        if first:
            try:
                asyncio.get_running_loop().call_later(HAND_OFF_EVERY, self._hand_off)
            except RuntimeError:  # not on an event loop: nothing would call it later
                self._hand_off()

    def _hand_off(self) -> None:
        with self._hand:
            self._put_pending()

    def _put_pending(self) -> None:
        """Put the pending exchanges on the queue (the caller holds ``_hand``)."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._inbox.put_nowait(("records", batch))
        except (ValueError, OSError):  # the queue is closed: the writer is gone
            self.dropped += len(batch)
            self._submitted -= len(batch)

    def _ask(self, kind: str, *item: Any) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()
        token = uuid.uuid4().hex
        with self._lock:
            self._waiting[token] = done
        try:
            if not self._process.is_alive():
                raise OSError("the writer process is not running")
            with self._hand:  # after the exchanges submitted before it
                self._put_pending()
                self._inbox.put_nowait((kind, (token, *item)) if item else (kind, token))
        except (ValueError, OSError) as exc:
            with self._lock:
                self._waiting.pop(token, None)
            done.set_exception(RuntimeError(f"the writer is not taking work: {exc}"))
        return done

    def feedback(self, record: str, value: float) -> concurrent.futures.Future:
        """Queue feedback for ``record`` (a request id from ``X-Gradeloop-Record`` or a stored
        record id); the future resolves to the stored record's id, or raises NotFoundError."""
        return self._ask("feedback", record, value)

    def flush(self, timeout: float = 60) -> None:
        """Wait until every exchange so far is written (or has failed): first for the calls still
        being relayed (a caller may read a stream's last event before the proxy has seen the
        stream end), then for the writer to store what is queued; ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._idle.wait_for(lambda: not self._relaying, timeout)
        self._ask("flush").result(max(0.1, deadline - time.monotonic()))

    def close(self, timeout: float = 30) -> None:
        """Write what is queued, stop the writer and close the store."""
        if self._process.is_alive():
            with self._hand, contextlib.suppress(ValueError, OSError):
                self._put_pending()
                self._inbox.put(("stop", None))
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
        self._reader.join(5)
        if self._counts["failed"] or self.dropped:
            log.warning("%d exchanges could not be stored and %d were dropped", self._counts["failed"], self.dropped)

    def _read(self) -> None:
        while True:
            try:
                kind, token, ok, value = self._outbox.get(timeout=1)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                self._gone = True
                self._fail_waiting("the writer process stopped")
                return
            if kind in ("counts", "stopped"):
                self._handled = value.pop("handled")
                self._counts.update(value)
                if kind == "stopped":
                    self._gone = True
                    self._fail_waiting("the writer process stopped")
                    return
            elif kind == "failed" and not self._warned:
                self._warned = True
                log.warning("the store could not be written (%s); the proxy keeps relaying and counts what it "
                            "could not store", value)
            elif kind == "reply":
                self._resolve(token, ok, value)

    def _resolve(self, token: str, ok: bool, value: Any) -> None:
        with self._lock:
            done = self._waiting.pop(token, None)
        if done is None:
            return
        if ok:
            done.set_result(value)
        elif value[0] == "not_found":
            done.set_exception(NotFoundError(value[1]))
        else:
            done.set_exception(RuntimeError(value[1]))

    def _fail_waiting(self, why: str) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for done in waiting.values():
            done.set_exception(RuntimeError(why))


# -- the HTTP app -----------------------------------------------------------------------------


def _error(message: str, status: int, *, kind: str, code: str | None = None, param: str | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def _tags(fixed: Sequence[str], header: str | None) -> list[str]:
    if not header:
        return list(fixed)
    extra = [t.strip() for t in header.split(",")]
    return list(dict.fromkeys([*fixed, *(t for t in extra if t)]))


def _upstream_headers(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], str | None]:
    """The caller's headers to send upstream (ASGI gives names in lower case), and its tag header."""
    kept, tag = [], None
    for name, value in raw:
        if name.startswith(b"x-gradeloop-"):
            tag = value.decode("latin-1") if name == TAG_HEADER.encode() else tag
        elif name not in _DROP_REQUEST:
            kept.append((name.decode("latin-1"), value.decode("latin-1")))
    return kept + [("accept-encoding", "identity")], tag


def _relayed(raw: Iterable[tuple[bytes, bytes]], record: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in raw if k.lower() not in _DROP_RESPONSE]
    return headers + ([(RECORD_HEADER.encode(), record.encode())] if record else [])


class _Stream:
    """An ASGI response that relays an upstream event stream chunk by chunk as it arrives,
    stops reading upstream when the caller goes away, and hands the exchange to ``done``."""

    def __init__(self, upstream: Any, exchange: Exchange | None, headers: list[tuple[bytes, bytes]],
                 done: Callable[[Exchange], None]) -> None:
        self.upstream, self.exchange, self.headers, self.done = upstream, exchange, headers, done
        self.cut = False  # the caller went away
        self.pump: asyncio.Task | None = None  # the task relaying
        self.watcher: asyncio.Task | None = None  # the task watching for the caller leaving, once started

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.pump = asyncio.current_task()
        try:
            await self._pump(send, receive)
        except asyncio.CancelledError:
            if not self.cut:
                raise
            self.pump.uncancel()  # the caller went away: the stream ends here, as a cut stream
        finally:
            if self.watcher is not None:
                self.watcher.cancel()
            # a stream read to its end gives its connection back to the pool; a cut one closes it
            self.upstream.release() if self.upstream.content.is_eof() else self.upstream.close()
            if self.exchange is not None:
                self.exchange.ended = time.perf_counter()
                self.done(self.exchange)

    def _watch_caller(self, receive: Any) -> None:
        """From the first wait on the upstream on, watch for the caller leaving (a stream whose
        bytes are all here already is relayed without a watcher). The watcher is a bare asyncio
        task (uvicorn serves on asyncio): a task group's cancel scopes cost this path, which every
        streamed call takes, about a sixth of its CPU."""
        if self.watcher is None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.cut = True
        if self.exchange is not None:
            self.exchange.error = "the caller disconnected before the stream ended"
        self.pump.cancel()

    async def _pump(self, send: Any, receive: Any) -> None:
        await send({"type": "http.response.start", "status": self.upstream.status, "headers": self.headers})
        chunks = self.exchange.chunks if self.exchange is not None else None
        content = self.upstream.content
        try:
            while True:
                data = content.read_nowait()  # what has arrived already, without waiting
                if not data:
                    if content.at_eof():
                        break
                    self._watch_caller(receive)
                    data = await content.readany()
                    if not data:
                        break
                if chunks is not None:
                    chunks.append((time.perf_counter(), data))
                # the upstream's last bytes and the end of the stream go out in one write
                last = content.at_eof()
                await send({"type": "http.response.body", "body": data, "more_body": not last})
                if last:
                    return
        except OSError:  # the caller's connection is gone (an ASGI server may say so from send)
            if self.exchange is not None:
                self.exchange.error = "the caller disconnected before the stream ended"
            return
        except Exception as exc:
            if self.exchange is not None:
                self.exchange.error = f"the upstream stream broke: {type(exc).__name__}"
            raise  # the caller sees a cut stream, as it would going direct
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Proxy:
    """The proxy's handlers, over one upstream connection pool and one :class:`Recorder`."""

    def __init__(self, upstream: str, *, tags: Sequence[str], sample_rate: float, recorder: Recorder,
                 timeout: float) -> None:
        from urllib.parse import urlsplit

        from ..redact import public_url

        parts = urlsplit(upstream)
        # a query on the upstream URL (Azure's ?api-version=…) goes on every request, before the caller's
        self.base, self.query = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", parts.query
        self.shown = public_url(upstream)  # what messages may name: no key that the URL carries
        self.tags, self.sample_rate = list(dict.fromkeys(tags)), sample_rate
        self.recorder, self.timeout = recorder, timeout
        self.client: Any = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> Any:
        """Open the pool and start the writer; at shutdown close them (the writer writes what is queued)."""
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, enable_cleanup_closed=True)
        self.client = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30,
                                                                          sock_read=self.timeout),
                                            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                               "Content-Type"))
        self.recorder.start()
        try:
            yield
        finally:
            await self.client.close()
            await asyncio.to_thread(self.recorder.close)

    def _exchange(self, method: str, path: str, body: bytes, tag: str | None) -> Exchange | None:
        """A new exchange to note, when the request is one to record and is sampled."""
        api = _RECORDED.get(path.rstrip("/")) if method == "POST" else None
        request_id = f"req_{os.urandom(16).hex()}"  # as random as a uuid4, at a third of its cost
        if not api or self.sample_rate <= 0 or not sampled(request_id, self.sample_rate):
            return None
        return Exchange(request_id, api, body, _tags(self.tags, tag), time.time(), time.perf_counter())

    async def relay(self, scope: Any, receive: Any, send: Any) -> None:
        """Send the request under ``/v1/`` upstream as it came; relay the answer as it comes back.
        A plain ASGI handler (no framework on the path every call takes: at 64 concurrent calls
        the framework's layers cost a quarter of the proxy's CPU)."""
        body = await _request_body(receive)
        if body is None:
            return  # the caller went away before its request was read
        path = scope["path"][len("/v1/"):]
        headers, tag = _upstream_headers(scope["headers"])
        ex = self._exchange(scope["method"], path, body, tag)
        if ex is None:
            return await self._relay(scope, receive, send, path, headers, body, None)
        self.recorder.opened()
        try:
            await self._relay(scope, receive, send, path, headers, body, ex)
        finally:
            self.recorder.closed()

    async def _relay(self, scope: Any, receive: Any, send: Any, path: str, headers: list[tuple[str, str]],
                     body: bytes, ex: Exchange | None) -> None:
        import aiohttp

        query = "&".join(q for q in (self.query, scope["query_string"].decode("latin-1")) if q)
        url = f"{self.base}/{path}" + (f"?{query}" if query else "")
        try:
            answer = await self.client.request(scope["method"], url, data=body or None, headers=headers,
                                               allow_redirects=False)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return await self._unreachable(ex, exc)(scope, receive, send)
        relayed = _relayed(answer.raw_headers, ex.request_id if ex is not None else None)
        streamed = answer.headers.get("content-type", "").startswith("text/event-stream")
        if ex is not None:
            ex.status, ex.stream = answer.status, streamed
        if streamed:
            return await _Stream(answer, ex, relayed, self.recorder.submit)(scope, receive, send)
        await self._plain(answer, ex, relayed, scope, receive, send)

    async def _plain(self, answer: Any, ex: Exchange | None, relayed: list[tuple[bytes, bytes]],
                     scope: Any, receive: Any, send: Any) -> None:
        """A whole answer, relayed as the upstream's bytes (never decoded and encoded again)."""
        import aiohttp

        try:
            data = await answer.read()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return await self._unreachable(ex, exc)(scope, receive, send)
        finally:
            answer.release()
        if ex is not None:
            ex.ended = time.perf_counter()
            ex.chunks.append((ex.ended, data))
            self.recorder.submit(ex)
        headers = [*relayed, (b"content-length", str(len(data)).encode())]
        with contextlib.suppress(OSError):  # the caller is gone: nothing to tell it
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": data, "more_body": False})

    def _unreachable(self, ex: Exchange | None, exc: Exception) -> Any:
        message = f"the upstream {self.shown} could not be reached: {type(exc).__name__}"
        response = _error(message, 502, kind="upstream_error", code="upstream_unreachable")
        if ex is not None:
            ex.status, ex.error, ex.ended = 502, message, time.perf_counter()
            self.recorder.submit(ex)
            response.headers[RECORD_HEADER] = ex.request_id
        return response

    async def feedback(self, request: Any) -> Any:
        """``POST /v1/gradeloop/feedback``: set a recorded answer's feedback."""
        from starlette.responses import JSONResponse

        try:
            record, value = _feedback_body(await request.body())
        except ValueError as exc:
            return _error(exc.args[0], 400, kind="invalid_request_error", param=exc.args[1])
        try:
            record_id = await asyncio.wait_for(asyncio.wrap_future(self.recorder.feedback(record, value)), 60)
        except NotFoundError as exc:
            return _error(str(exc), 404, kind="invalid_request_error", code="record_not_found", param="record_id")
        except Exception:  # noqa: BLE001 - the store failed; say so without its details
            return _error("the feedback could not be stored", 503, kind="server_error")
        return JSONResponse({"object": "harvest.feedback", "record_id": record_id, "request_id": record,
                             "feedback": value})

    async def status(self, request: Any) -> Any:
        """``GET /v1/gradeloop/status``: what the writer did so far."""
        from starlette.responses import JSONResponse

        return JSONResponse({"object": "gradeloop.proxy.status", "upstream": self.shown, **self.recorder.counts})


def create_proxy_app(upstream: str, *, tags: Sequence[str] = (), sample_rate: float = 1.0,
                     redact: bool = True, redact_patterns: Sequence[str] = (), redact_region: str | None = None,
                     open_store: Callable[[], Store] = Store, timeout: float = 600.0) -> Any:
    """The proxy as a Starlette app relaying ``/v1/...`` to ``upstream`` (a base URL ending in
    ``/v1`` or the like), recording into the store ``open_store()`` opens, redacted unless
    ``redact`` is False (``redact_patterns`` add regular expressions, ``redact_region`` is the
    phone numbers' country, as :func:`make_redactor` takes them). ``app.state.recorder`` is its
    :class:`Recorder`. Returns the app; a bad pattern or region raises InputError here."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    make_redactor(redact, redact_patterns, redact_region)  # refuse bad patterns before the writer starts
    recorder = Recorder(open_store, redact=redact, redact_patterns=redact_patterns, redact_region=redact_region)
    proxy = _Proxy(upstream, tags=tags, sample_rate=sample_rate, recorder=recorder, timeout=timeout)
    routes = Starlette(routes=[Route("/v1/gradeloop/feedback", proxy.feedback, methods=["POST"]),
                               Route("/v1/gradeloop/status", proxy.status, methods=["GET"])],
                       lifespan=proxy.lifespan)
    return _ProxyApp(proxy, routes, recorder)


_RELAYED_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


class _ProxyApp:
    """The proxy's ASGI app: requests under ``/v1/`` go straight to the relay; the proxy's own
    routes (``/v1/gradeloop/…``), the lifespan and everything else to the Starlette app.
    ``state.recorder`` is the :class:`Recorder`."""

    def __init__(self, proxy: _Proxy, routes: Any, recorder: Recorder) -> None:
        self.proxy, self.routes = proxy, routes
        self.state = routes.state
        self.state.recorder = recorder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and path.startswith("/v1/") and not path.startswith("/v1/gradeloop/")
                and scope["method"] in _RELAYED_METHODS):
            return await self.proxy.relay(scope, receive, send)
        await self.routes(scope, receive, send)


async def _request_body(receive: Any) -> bytes | None:
    """The request's whole body (None when the caller disconnected first)."""
    parts, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts)


def _feedback_body(raw: bytes) -> tuple[str, float]:
    """``{"record_id", "score": -1..1}`` or ``{"record_id", "thumbs": "up"|"down"}`` → (id, value);
    raises ValueError(message, param)."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("the request body is not JSON", None) from None
    if not isinstance(body, dict) or not isinstance(body.get("record_id"), str) or not body["record_id"]:
        raise ValueError("'record_id' is required: the X-Gradeloop-Record header of the recorded answer", "record_id")
    if "thumbs" in body:
        if body["thumbs"] not in ("up", "down"):
            raise ValueError("'thumbs' must be 'up' or 'down'", "thumbs")
        return body["record_id"], 1.0 if body["thumbs"] == "up" else -1.0
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not -1 <= score <= 1:
        raise ValueError("give 'score' (a number from -1 to 1) or 'thumbs' ('up' or 'down')", "score")
    return body["record_id"], float(score)


# the upstream's Date and Server headers are relayed, so uvicorn adds none of its own
_SERVER_OPTIONS = {"lifespan": "on", "server_header": False, "date_header": False, "access_log": False,
                   "proxy_headers": False}


def _server_gc() -> None:
    """Garbage collection for a process that only serves (``run_proxy``'s own): what is loaded
    by now lives as long as the process, so full collections stop walking it (``gc.freeze``),
    and the youngest generation is collected every 50,000 allocations, not 700 (a relayed call
    allocates hundreds of objects). At 64 concurrent streams this is about a tenth of the
    proxy's CPU."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_proxy(upstream: str, *, host: str = "127.0.0.1", port: int = 8787, log_level: str = "warning",
              **options: Any) -> None:
    """Serve the proxy in the foreground until interrupted; ``options`` go to :func:`create_proxy_app`."""
    import uvicorn

    app = create_proxy_app(upstream, **options)
    _server_gc()
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **_SERVER_OPTIONS)).run()


class ProxyServer(ThreadedServer):
    """The proxy in a background thread (tests, benchmarks, notebooks), on a free port unless
    ``port`` says. ``url`` is the base URL for clients; ``flush()`` waits for the writer."""

    def __init__(self, upstream: str, *, port: int = 0, **options: Any) -> None:
        self.app = create_proxy_app(upstream, **options)
        super().__init__(self.app, port=port, name="gradeloop-proxy", **_SERVER_OPTIONS)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def recorder(self) -> Recorder:
        """The writer behind this proxy (its ``counts`` say what was stored)."""
        return self.app.state.recorder

    def flush(self) -> None:
        """Wait until every exchange so far is stored (or counted as failed)."""
        self.recorder.flush()
