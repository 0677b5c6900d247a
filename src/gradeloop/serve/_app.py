"""An OpenAI-compatible HTTP API over gradeloop models: ``/v1/models`` and ``/v1/chat/completions``.

Local and ``hf/`` models stream token by token from the continuous-batching engine; any other
provider (``scripted/…``, ``openai/…``) is served too, its answer sent as one piece. Requests
may offer ``tools`` (with ``tool_choice`` and ``parallel_tool_calls``); calls come back as
``tool_calls``, streamed in OpenAI's chunk form.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..errors import InputError, ProviderError
from ..models import GenerateRequest, Provider, get_provider
from ..models._engine import EngineOutput
from ..models._local import _EngineProvider, assistant_message
from ..models._structured import json_schema_of, with_json_instruction
from ..models._tools import check_tools, starts_call, tool_plan
from ..redact import scrub

__all__ = ["create_app", "RequestError", "parse_chat_request"]

MAX_N = 16
MAX_REQUEST_BYTES = 16 * 2**20  # --max-request-mb 16


class RequestError(Exception):
    """A request the API refuses: HTTP status and OpenAI's error object."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def body(self) -> dict[str, Any]:
        """``{"error": {message, type, param, code}}``."""
        return {"error": {"message": scrub(str(self)), "type": self.kind, "param": self.param, "code": self.code}}


def _number(body: dict, key: str, low: float, high: float, *, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RequestError(f"'{key}' must be {'an integer' if integer else 'a number'}", param=key)
    if not low <= value <= high:
        raise RequestError(f"'{key}' must be between {low:g} and {high:g}, got {value}", param=key)
    return value


def parse_chat_request(body: Any, served: list[str]) -> tuple[str, list[dict], dict[str, Any], int, bool, bool]:
    """Validate a chat-completions body. Returns ``(model, messages, params, n, stream,
    include_usage)``; raises RequestError (400, or 404 for an unknown model)."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required", param="model")
    if model not in served:
        raise RequestError(f"the model '{model}' does not exist; served: {', '.join(served)}", status=404,
                           param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise RequestError(f"messages[{i}] needs a role of system, developer, user, assistant or tool",
                               param=f"messages[{i}].role")
        if not isinstance(m.get("content"), (str, list)) and m.get("content") is not None:
            raise RequestError(f"messages[{i}].content must be a string or a list of parts",
                               param=f"messages[{i}].content")
    params: dict[str, Any] = {}
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = _number(body, key, low, high)
        if value is not None:
            params[key] = value
    if params.get("top_p") == 0:
        raise RequestError("'top_p' must be greater than 0", param="top_p")
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if tokens is not None:
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        params["max_completion_tokens"] = _number({key: tokens}, key, 1, 1 << 20, integer=True)
    seed = _number(body, "seed", -(1 << 63), (1 << 63) - 1, integer=True)
    if seed is not None:
        params["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise RequestError("'stop' must be a string or a list of up to 4 strings", param="stop")
        params["stop"] = stop
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            raise RequestError("'response_format.type' must be text, json_object or json_schema",
                               param="response_format")
        params["response_format"] = fmt
    params.update(_tool_params(body))
    n = _number(body, "n", 1, MAX_N, integer=True) or 1
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be a boolean", param="stream")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return model, messages, params, n, stream, include_usage


def _tool_params(body: dict) -> dict[str, Any]:
    """``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``logit_bias`` of a body, checked."""
    params = {k: body[k] for k in ("tools", "tool_choice", "parallel_tool_calls", "logit_bias")
              if body.get(k) is not None}
    try:
        check_tools(params)
    except InputError as exc:
        raise RequestError(exc.message, param=exc.field) from None
    if not isinstance(params.get("parallel_tool_calls", True), bool):
        raise RequestError("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    bias = params.get("logit_bias", {})
    if not isinstance(bias, dict) or not all(
            str(k).isdigit() and isinstance(v, (int, float)) and not isinstance(v, bool) and -100 <= v <= 100
            for k, v in bias.items()):
        raise RequestError("'logit_bias' must map token ids to numbers from -100 to 100", param="logit_bias")
    return params


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it is known to exceed ``limit`` bytes:
    from Content-Length before reading, else by counting the chunks as they arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> RequestError:
    return RequestError(f"the request body is larger than this server's limit of {limit / 2**20:g} MB "
                        "(gradeloop serve --max-request-mb)", status=413, code="request_too_large")


async def check_length(provider: Provider, request: GenerateRequest, key: str) -> None:
    """Refuse (400, as OpenAI does) a prompt plus ``max_tokens`` that the model's context cannot
    hold; only local engines know their context, other providers answer for themselves."""
    if not isinstance(provider, _EngineProvider):
        return
    engine = await provider.engine()
    prompt = len(engine.prompt_ids(request))
    asked = request.params.get("max_completion_tokens")
    if prompt + (asked or 1) > engine.context_length:
        param = key if asked and prompt < engine.context_length else "messages"
        raise RequestError(f"This model's maximum context length is {engine.context_length} tokens. However, you "
                           f"requested {prompt + (asked or 0)} tokens ({prompt} in the messages, {asked or 0} in "
                           "the completion). Please reduce the length of the messages or completion.",
                           param=param, code="context_length_exceeded")


def _check_tools(provider: Provider, params: dict) -> None:
    """A 400 (param ``tools``) for a tool whose parameters the provider cannot enforce."""
    if not params.get("tools"):
        return
    try:
        provider.check_params(params)
    except InputError as exc:
        raise RequestError(exc.message, param=exc.field or "tools") from None


def _native_json(provider: Provider, params: dict) -> bool:
    """Whether ``provider`` enforces the request's json ``response_format`` itself (local
    engines constrain every token); raises a 400 for a schema it cannot enforce."""
    if json_schema_of(params) is None or not provider.supports_response_format:
        return False
    try:
        provider.check_params(params)
    except InputError as exc:
        raise RequestError(exc.message, param="response_format") from None
    return True


def extract_json(text: str) -> str:
    """The outermost JSON object in ``text`` when the text itself is not JSON (best effort)."""
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, flags=re.DOTALL)
    candidates = [fenced.group(1)] if fenced else []
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            json.loads(candidate)
            return candidate
        except ValueError:
            continue
    return text


class _Server:
    def __init__(self, providers: dict[str, Provider], api_key: str | None) -> None:
        self.providers, self.api_key = providers, api_key
        self.created = int(time.time())

    def authorize(self, headers: Any) -> None:
        if not self.api_key:
            return
        given = headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise RequestError("invalid API key (send Authorization: Bearer <key>)", status=401,
                               kind="authentication_error", code="invalid_api_key")

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self.created,
                                            "owned_by": "gradeloop"} for name in self.providers]}

    def requests(self, messages: list[dict], params: dict, n: int, native_json: bool) -> list[GenerateRequest]:
        schema = json_schema_of(params)
        if schema is not None and not native_json:  # best effort: tell the model, pick the JSON out after
            messages = with_json_instruction(messages, schema)
            params = {k: v for k, v in params.items() if k != "response_format"}
        out = []
        for i in range(n):
            p = dict(params)
            if i and "seed" in p:
                p["seed"] = p["seed"] + i  # n samples from one seed: distinct yet reproducible
            out.append(GenerateRequest(messages=messages, params=p))
        return out

    async def complete(self, model: str, requests: list[GenerateRequest], extract: bool) -> dict[str, Any]:
        provider = self.providers[model]
        results = await asyncio.gather(*(_generate(provider, r) for r in requests))
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for i, (message, reason, usage) in enumerate(results):
            message = {"role": "assistant", **message}
            if extract and isinstance(message.get("content"), str):
                message["content"] = extract_json(message["content"])
            choices.append({"index": i, "message": message, "finish_reason": reason, "logprobs": None})
            prompt_tokens = usage.prompt_tokens
            completion_tokens += usage.completion_tokens
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": choices, "system_fingerprint": None,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    async def stream(self, model: str, requests: list[GenerateRequest], include_usage: bool) -> AsyncIterator[bytes]:
        provider = self.providers[model]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(choices: list[dict], usage: dict | None = None) -> bytes:
            body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": choices}
            if include_usage:
                body["usage"] = usage
            return f"data: {json.dumps(body)}\n\n".encode()

        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

        async def pump(index: int, request: GenerateRequest) -> None:
            try:
                async for piece in _pieces(provider, request):
                    await queue.put((index, piece))
            except Exception as exc:  # noqa: BLE001 - reported to the client in the stream
                await queue.put((index, exc))

        tasks = [asyncio.create_task(pump(i, r)) for i, r in enumerate(requests)]
        for i in range(len(requests)):
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                          "logprobs": None}])
        done, prompt_tokens, completion_tokens = 0, 0, 0
        try:
            while done < len(requests):
                index, piece = await queue.get()
                if isinstance(piece, Exception):
                    error = {"error": {"message": f"generation failed: {piece}", "type": "server_error",
                                       "param": None, "code": None}}
                    yield f"data: {json.dumps(error)}\n\n".encode()
                    break
                if isinstance(piece, str):
                    yield chunk([{"index": index, "delta": {"content": piece}, "finish_reason": None,
                                  "logprobs": None}])
                    continue
                done += 1
                message, reason, usage = piece
                prompt_tokens = usage.prompt_tokens
                completion_tokens += usage.completion_tokens
                for delta in _tool_call_deltas(message.get("tool_calls") or []):
                    yield chunk([{"index": index, "delta": delta, "finish_reason": None, "logprobs": None}])
                yield chunk([{"index": index, "delta": {}, "finish_reason": reason, "logprobs": None}])
            if include_usage:
                yield chunk([], {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens})
            yield b"data: [DONE]\n\n"
        finally:
            for task in tasks:
                task.cancel()


async def _generate(provider: Provider, request: GenerateRequest) -> tuple[dict[str, Any], str, Any]:
    """``(assistant message, finish reason, usage)``; a provider error becomes a RequestError."""
    try:
        result = await provider.generate(request)
    except ProviderError as exc:
        refused = exc.kind in ("context_length_exceeded", "invalid_response_format", "invalid_tools",
                               "invalid_request")
        raise RequestError(exc.message, status=400 if refused else 500,
                           kind="invalid_request_error" if refused else "server_error", code=exc.kind) from None
    message = {k: v for k, v in result.message.items() if k not in ("role", "content")}
    content = result.output_text if result.output_text or not message.get("tool_calls") else None
    return {"content": content, **message}, result.finish_reason, result.usage


def _tool_call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's streamed form of finished calls: per call, its id, type and name (arguments
    ""), then its arguments."""
    deltas = []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        deltas.append({"tool_calls": [{"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                                       "function": {"name": function.get("name"), "arguments": ""}}]})
        deltas.append({"tool_calls": [{"index": i, "function": {"arguments": function.get("arguments", "")}}]})
    return deltas


async def _pieces(provider: Provider, request: GenerateRequest) -> AsyncIterator[Any]:
    """Text pieces, then ``(message, finish reason, usage)``: token by token from an engine (a
    reply that starts a tool call is held back and comes as the message's calls), else in one piece."""
    if isinstance(provider, _EngineProvider):
        engine = await provider.engine()
        fmt, calls = engine.tool_format, tool_plan(request.params) is not None
        held, decided = "", not calls
        async for piece in engine.stream(request):
            if isinstance(piece, EngineOutput):
                message, reason = assistant_message(piece.text, piece.finish_reason, request.params, fmt)
                if not decided and piece.text and not message.get("tool_calls"):
                    yield piece.text  # a call cut at the token limit: its text is all there is
                yield message, reason, piece.usage
                return
            if decided:
                yield piece
                continue
            held += piece
            if starts_call(held, fmt) is False:
                decided = True
                yield held
        return
    message, reason, usage = await _generate(provider, request)
    if message.get("content"):
        yield message["content"]
    yield {**message, "content": None}, reason, usage


def create_app(models: list[str], *, api_key: str | None = None, base_url: str | None = None,
               preload: bool = True, max_request_bytes: int = MAX_REQUEST_BYTES) -> Any:
    """The Starlette app serving ``models`` (``provider/model`` names, used as the model ids);
    request bodies over ``max_request_bytes`` are answered 413."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route
    except ImportError:
        raise InputError("gradeloop serve needs starlette and uvicorn: pip install 'gradeloop[serve]'") from None
    if not models:
        raise InputError("serve at least one model: --model local/smollm2", field="--model")
    providers = {name: get_provider(name, base_url=base_url) for name in dict.fromkeys(models)}
    server = _Server(providers, api_key)

    def error(exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def list_models(request: Request) -> JSONResponse:
        try:
            server.authorize(request.headers)
        except RequestError as exc:
            return error(exc)
        return JSONResponse(server.models())

    async def chat(request: Request) -> Any:
        try:
            server.authorize(request.headers)
            try:
                body = json.loads(await read_body(request, max_request_bytes))
            except ValueError:
                raise RequestError("the request body is not valid JSON") from None
            model, messages, params, n, stream, include_usage = parse_chat_request(body, list(providers))
            _check_tools(providers[model], params)
            native_json = _native_json(providers[model], params)
            requests = server.requests(messages, params, n, native_json)
            key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
            await check_length(providers[model], requests[0], key)
            if stream:
                return StreamingResponse(server.stream(model, requests, include_usage), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})
            extract = json_schema_of(params) is not None and not native_json
            return JSONResponse(await server.complete(model, requests, extract))
        except RequestError as exc:
            return error(exc)

    async def not_found(request: Request) -> JSONResponse:
        return error(RequestError(f"no route {request.method} {request.url.path}", status=404, kind="not_found"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        for provider in providers.values():  # load weights before the first request
            await provider.check()
            if preload and isinstance(provider, _EngineProvider):
                await provider.engine()
        yield
        for provider in providers.values():
            await provider.aclose()

    routes = [Route("/v1/models", list_models, methods=["GET"]),
              Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE"])]
    return Starlette(routes=routes, lifespan=lifespan)
