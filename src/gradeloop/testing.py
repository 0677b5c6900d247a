"""A fake OpenAI-compatible server on 127.0.0.1, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length, chunked event streams) to serve
``POST /v1/chat/completions`` and ``POST /v1/responses`` (plain, or streamed as server-sent
events when the body says ``"stream": true``) and ``GET /v1/models``, answers deterministically, records
every request, and can inject faults: 500s, 429s with ``Retry-After``, hangs longer than a
client's timeout, malformed bodies, dropped connections, and a body trickled one byte at a
time (``trickle``: each byte within any per-read timeout, the whole far past it); and, as
careless servers and proxies do, a 401 that repeats the credential it was sent (``401_echo``) and
a 500 that echoes the request path and headers (``500_echo``). ``capacity`` makes it behave like a
rate-limited endpoint: a request that arrives while ``capacity`` others are being answered gets a
429; with ``hold_until_refused=n`` the requests it accepts are answered only once n have been
refused, so counts, not timing, decide how long it stays full. ``api_key`` makes it answer 401
to requests that do not send ``Authorization: Bearer <api_key>``; ``created`` fixes the
timestamps of its answers.

A responder returns the reply's text, or a dict: the assistant message as sent (so a test can
send hostile ones: ``{"content": 42}``, ``{"content": None}``), or, when it has ``choices``,
the whole response body.

    with FakeOpenAI(faults=Faults(rate=0.2)) as server:
        run_eval(spec, ["openai/fake"], options=RunOptions(base_url=server.url))

For agent episodes, :func:`scripted_turns` plays a script of replies per conversation (tool
calls made with :func:`tool_call`, several in one reply included), one entry per turn.

``python -m gradeloop.testing --port 8123 --latency-ms 50`` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeOpenAI", "Faults", "echo_responder", "scripted_turns", "tool_call"]

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]  # text, or a whole assistant message


@dataclass
class Faults:
    """Which faults to inject and how often. ``rate`` is the share of requests that fail;
    the kind is drawn uniformly from ``kinds`` (``401_echo`` and ``500_echo`` may be added)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("500", "429", "timeout", "malformed", "drop")
    retry_after: float = 0.05
    hang_seconds: float = 5.0
    trickle_seconds: float = 0.3  # between two bytes of a trickled body
    seed: int = 0


def echo_responder(body: dict[str, Any]) -> str:
    """Reply with the text of the last user message."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A tool call in Chat Completions form (``arguments`` as JSON text, as OpenAI sends them;
    a string is sent as it is, so a test can send arguments that do not parse)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id or f"call_{name}", "type": "function", "function": {"name": name, "arguments": text}}


def scripted_turns(scripts: dict[str, list["str | dict[str, Any]"]], default: "str | dict[str, Any]" = "") -> Responder:
    """A responder that plays a script per conversation: the conversation is named by the text of
    its first user message, and its turn is the number of assistant messages it holds so far.
    An entry is the reply's text or an assistant message (``{"content": None, "tool_calls":
    [tool_call(...), ...]}`` for tool calls, parallel ones included); past the end of its script
    a conversation gets the script's last entry, and an unknown conversation gets ``default``."""

    def respond(body: dict[str, Any]) -> "str | dict[str, Any]":
        messages = body.get("messages", [])
        first = next((m for m in messages if m.get("role") == "user"), None)
        script = scripts.get(_text(first) if first else "")
        if not script:
            return default
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        reply = script[min(turn, len(script) - 1)]
        return {"role": "assistant", **reply} if isinstance(reply, dict) else reply

    return respond


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


@dataclass
class _Record:
    body: dict[str, Any] | None
    fault: str | None
    at: float
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI:
    """The server. ``url`` is the base URL to give a client (``http://127.0.0.1:PORT/v1``).
    ``fault_for(body)``, when given, names the fault for a request (or None: no fault, unless
    ``faults`` draws one)."""

    def __init__(self, *, port: int = 0, latency: float = 0.0, faults: Faults | None = None,
                 responder: Responder = echo_responder, record: bool = True, capacity: int | None = None,
                 fault_for: Callable[[dict[str, Any]], str | None] | None = None,
                 api_key: str | None = None, created: int | None = None,
                 hold_until_refused: int | None = None, latency_spread: float = 0.0) -> None:
        self.port = port
        self.api_key = api_key
        self.created = created
        self.latency = latency
        if not 0 <= latency_spread <= 1:
            raise ValueError(f"the latency spread must be from 0 to 1, not {latency_spread:g}")
        # each answer waits a time drawn uniformly from latency * (1 ± latency_spread)
        self.latency_spread = latency_spread
        self.capacity = capacity
        self.in_flight = 0
        self.peak_in_flight = 0
        self.over_capacity = 0  # 429s sent because of ``capacity``
        self.hold_until_refused = hold_until_refused
        self._full = asyncio.Event()  # set once hold_until_refused requests were refused
        self.faults = faults or Faults()
        self.responder = responder
        self.fault_for = fault_for
        self.record = record
        self.requests: list[_Record] = []
        self._rng = random.Random(self.faults.seed)
        self._waits = random.Random(self.faults.seed)  # its own draws: a spread leaves the faults as they were
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> "FakeOpenAI":
        """Serve from a background thread; returns self once listening."""
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is None:
            return
        async def shutdown() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        async def main() -> None:
            await self._listen()
            print(self.url, flush=True)
            await self._server.serve_forever()
        asyncio.run(main())

    # -- requests ---------------------------------------------------------------------

    def chat_bodies(self) -> list[dict[str, Any]]:
        """Bodies of every chat request received (faulty ones included)."""
        with self._lock:
            return [r.body for r in self.requests if r.body is not None]

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self.faults.rate and self._rng.random() < self.faults.rate:
                return self._rng.choice(self.faults.kinds)
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(method, path, headers, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, headers: dict[str, str], raw: bytes,
                       writer: asyncio.StreamWriter) -> bool:
        route = urlsplit(path).path.rstrip("/")  # a base URL may carry a query (?api-key=…)
        if method == "GET" and route.endswith("/models"):
            return await _send(writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        api = "responses" if route.endswith("/responses") else "chat"
        if method != "POST" or not (api == "responses" or route.endswith("/chat/completions")):
            return await _send(writer, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return await _send(writer, 401, {"error": {"message": "invalid API key", "type": "invalid_request_error",
                                                       "code": "invalid_api_key"}})
        try:
            body = json.loads(raw)
        except ValueError:
            return await _send(writer, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        fault = (self.fault_for(body) if self.fault_for else None) or self._draw_fault()
        if self.capacity is not None and self.in_flight >= self.capacity:
            fault = "over_capacity"
        if self.record:
            safe_headers = {k: v for k, v in headers.items() if k in ("content-type", "user-agent")}
            with self._lock:
                self.requests.append(_Record(body=body, fault=fault, at=time.time(), headers=safe_headers))
        if fault in ("401_echo", "500_echo"):
            return await _send(writer, *_echo(fault, path, headers))
        if fault == "over_capacity":
            self.over_capacity += 1
            if self.hold_until_refused is not None and self.over_capacity >= self.hold_until_refused:
                self._full.set()
            return await _send(writer, 429, {"error": {"message": "too many requests in flight", "type": "rate_limit"}},
                               extra={"Retry-After": f"{self.faults.retry_after:g}"})
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.hold_until_refused is not None:
                await self._full.wait()
            return await self._answer(fault, body, writer, api)
        finally:
            self.in_flight -= 1

    def wait_seconds(self) -> float:
        """How long the next answer waits: ``latency``, or with ``latency_spread`` a time drawn
        uniformly from ``latency * (1 ± latency_spread)`` (the same draws for the same seed)."""
        if not self.latency_spread:
            return self.latency
        return self.latency * (1 + self.latency_spread * (2 * self._waits.random() - 1))

    async def _answer(self, fault: str | None, body: dict[str, Any], writer: asyncio.StreamWriter,
                      api: str = "chat") -> bool:
        if self.latency:
            await asyncio.sleep(self.wait_seconds())
        if fault == "500":
            return await _send(writer, 500, {"error": {"message": "injected server error", "type": "server_error"}})
        if fault == "429":
            return await _send(writer, 429, {"error": {"message": "injected rate limit", "type": "rate_limit"}},
                               extra={"Retry-After": f"{self.faults.retry_after:g}"})
        if fault == "timeout":
            await asyncio.sleep(self.faults.hang_seconds)
            return False
        if fault == "drop":
            writer.transport.abort()
            return False
        if fault == "malformed":
            return await _send_raw(writer, 200, b'{"id": "chatcmpl-broken", "choices": [')
        created = self.created if self.created is not None else int(time.time())
        if api == "responses":
            reply = self.responder({**body, "messages": _input_messages(body)})
            if body.get("stream"):
                return await _send_events(writer, _response_events(body, reply, created))
            return await _send(writer, 200, _response(body, reply, created))
        reply = self.responder(body)
        payload = reply if isinstance(reply, dict) and "choices" in reply else _completion(body, reply, created)
        if body.get("stream"):
            return await _send_events(writer, _chunks(body, payload))
        if fault == "trickle":
            return await _trickle(writer, json.dumps(payload).encode(), self.faults.trickle_seconds)
        return await _send(writer, 200, payload)


def _completion(body: dict[str, Any], reply: "str | dict[str, Any]", created: int | None = None) -> dict[str, Any]:
    """A chat.completion answering ``body`` with ``reply`` (text, or the message as given)."""
    if isinstance(reply, dict):
        message, finish = reply, "tool_calls" if reply.get("tool_calls") else "stop"
        text = reply.get("content") if isinstance(reply.get("content"), str) else ""
    else:
        text, message, finish = reply, None, "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = text.split(" ")
        if limit and len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion_tokens = len(text.split())
    return {
        "id": "chatcmpl-fake", "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message if message is not None else {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _pieces(text: str) -> list[str]:
    """``text`` in the pieces a stream sends: each word with the space before it."""
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]] if text else []


def _chunks(body: dict[str, Any], payload: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """A chat.completion as the chat.completion.chunk events that stream it: the role, the text
    word by word, each tool call's name then its arguments in two halves, the finish reason, the
    usage when ``stream_options.include_usage`` asks for it, and ``[DONE]``."""
    head = {"id": payload["id"], "object": "chat.completion.chunk", "created": payload["created"],
            "model": payload["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        return None, {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    choice = payload["choices"][0]
    message = choice["message"]
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in _pieces(message.get("content") or "")]
    for i, call in enumerate(message.get("tool_calls") or []):
        name, args = call["function"]["name"], call["function"]["arguments"]
        events.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        for part in (args[:len(args) // 2], args[len(args) // 2:]):
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    events.append(chunk({}, choice["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((None, {**head, "choices": [], "usage": payload["usage"]}))
    return events + [(None, "[DONE]")]


def _input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Responses request's input as chat messages, enough for a responder to read."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return [{"role": item.get("role"), "content": item.get("content")}
            for item in raw or [] if isinstance(item, dict) and item.get("role")]


def _response(body: dict[str, Any], reply: "str | dict[str, Any]", created: int, *,
              status: str = "completed") -> dict[str, Any]:
    """A Responses API ``response`` object answering ``body`` with ``reply``'s text."""
    text = reply if isinstance(reply, str) else str(reply.get("content") or "")
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in _input_messages(body))
    done = status == "completed"
    content = [{"type": "output_text", "text": text, "annotations": []}] if done else []
    return {"id": "resp_fake", "object": "response", "created_at": created, "status": status,
            "model": body.get("model", "fake"), "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "tools": [], "tool_choice": "auto",
            "parallel_tool_calls": True, "metadata": {}, "temperature": body.get("temperature"), "top_p": None,
            "output": [{"type": "message", "id": "msg_fake", "status": status, "role": "assistant",
                        "content": content}] if done else [],
            "usage": {"input_tokens": prompt_tokens, "output_tokens": len(text.split()),
                      "total_tokens": prompt_tokens + len(text.split()),
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}} if done else None}


def _response_events(body: dict[str, Any], reply: "str | dict[str, Any]", created: int) -> list[tuple[str, Any]]:
    """A response as the events that stream it: created, the text deltas word by word, completed."""
    final = _response(body, reply, created)
    text = final["output"][0]["content"][0]["text"]
    item = {"type": "message", "id": "msg_fake", "status": "in_progress", "role": "assistant", "content": []}
    empty_part = {"type": "output_text", "text": "", "annotations": []}
    at = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(body, reply, created, status="in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {**at, "part": empty_part})]
    events += [("response.output_text.delta", {**at, "delta": p, "logprobs": []}) for p in _pieces(text)]
    events += [("response.output_text.done", {**at, "text": text, "logprobs": []}),
               ("response.content_part.done", {**at, "part": final["output"][0]["content"][0]}),
               ("response.output_item.done", {"output_index": 0, "item": final["output"][0]}),
               ("response.completed", {"response": final})]
    return [(kind, {"type": kind, "sequence_number": i, **data}) for i, (kind, data) in enumerate(events)]


async def _send_events(writer: asyncio.StreamWriter, events: list[tuple[str | None, Any]]) -> bool:
    """A 200 ``text/event-stream``, each server-sent event written (and flushed) as its own HTTP chunk."""
    head = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Cache-Control: no-cache",
            "Transfer-Encoding: chunked", "Connection: keep-alive"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    for kind, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        event = (f"event: {kind}\n" if kind else "") + f"data: {text}\n\n"
        raw = event.encode()
        writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _trickle(writer: asyncio.StreamWriter, data: bytes, interval: float) -> bool:
    """Send a 200 with ``data`` one byte every ``interval`` seconds (a stalling proxy or server)."""
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(data)}",
            "Connection: keep-alive"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    for i in range(len(data)):
        await writer.drain()
        if writer.is_closing():
            return False
        await asyncio.sleep(interval)
        writer.write(data[i:i + 1])
    await writer.drain()
    return True


def _echo(fault: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """A careless server's error: the 401 repeats the credential sent (a bearer token, the
    ``user:password`` of Basic auth, or an ``api-key`` header or query value); the 500 echoes the
    request path and every header."""
    if fault == "500_echo":
        return 500, {"error": {"message": f"upstream failed for POST {path} with headers {json.dumps(headers)}",
                               "type": "server_error"}}
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        credential = base64.b64decode(credential).decode("utf-8", "replace")
    query = dict(parse_qsl(urlsplit(path).query))
    key = query.get("api-key") or headers.get("api-key") or credential
    return 401, {"error": {"message": f"Incorrect API key provided: {key}. You can find your API key at "
                                      "https://platform.openai.com/account/api-keys.",
                           "type": "invalid_request_error", "code": "invalid_api_key"}}


async def _send(writer: asyncio.StreamWriter, status: int, payload: dict, extra: dict | None = None) -> bool:
    return await _send_raw(writer, status, json.dumps(payload).encode(), extra)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}


async def _send_raw(writer: asyncio.StreamWriter, status: int, data: bytes, extra: dict | None = None) -> bool:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Content-Type: application/json",
            f"Content-Length: {len(data)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await writer.drain()
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m gradeloop.testing``: run a fake server in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-spread", type=float, default=0.0,
                        help="each answer waits a time drawn uniformly from the latency times 1 ± this (0 to 1)")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        server = FakeOpenAI(port=args.port, latency=args.latency_ms / 1000, faults=Faults(rate=args.fault_rate),
                            record=False, latency_spread=args.latency_spread)
    except ValueError as exc:  # a bound the server itself keeps
        parser.error(str(exc))
    server.serve_forever()


if __name__ == "__main__":
    main()
