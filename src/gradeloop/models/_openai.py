"""``openai/<model>``: the official ``openai`` SDK's async client, against OpenAI or any
OpenAI-compatible server (``--base-url`` / ``OPENAI_BASE_URL``: vLLM, SGLang, llama.cpp …).

The SDK's own retries are off (the runner retries with backoff) and responses are read raw,
so the exact body is what gets stored.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._checks import check_base_url
from ..errors import InputError, ProviderError
from ..redact import public_url, register_secret, register_url
from ._base import GenerateRequest, GenerateResult, Provider, Usage, register_provider

OPENAI_URL = "https://api.openai.com/v1"
_PASSTHROUGH = ("temperature", "top_p", "seed", "max_completion_tokens", "response_format", "tools",
                "stop", "reasoning_effort", "tool_choice", "parallel_tool_calls")


@register_provider
class OpenAIProvider(Provider):
    """Chat Completions through ``openai.AsyncOpenAI``."""

    provider = "openai"
    default_concurrency = 32
    supports_tools = True
    supports_response_format = True

    def __init__(self, model: str, *, base_url: str | None = None, timeout: float = 120.0,
                 api_key_env: str = "OPENAI_API_KEY", **options: Any) -> None:
        base = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        check_base_url(base)
        super().__init__(model, base_url=public_url(base), **options)
        self._is_openai = urlsplit(base).hostname == "api.openai.com"
        api_key = os.environ.get(api_key_env)
        register_url(base)  # never stored or printed as sent: user, password, query values
        register_secret(api_key)
        if not api_key:
            if self._is_openai:
                raise InputError(f"{api_key_env} is not set; export it, or point --base-url / "
                                 "OPENAI_BASE_URL at an OpenAI-compatible server", field="model")
            api_key = "not-needed"
        # the SDK appends paths to the base URL as text, so its query (?api-key=…) goes separately
        self._url, self._query = base.split("?")[0], dict(parse_qsl(urlsplit(base).query, keep_blank_values=True))
        self._timeout = timeout
        self._api_key = api_key
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self._url, default_query=self._query,
                                              max_retries=0, timeout=self._timeout)
            self._response_cls = _http_response_class(openai)
        return self._client

    def body(self, request: GenerateRequest) -> dict[str, Any]:
        """The Chat Completions request body for ``request``."""
        messages = request.messages
        if not self._is_openai:
            # most open servers' chat templates know 'system' but not 'developer'
            messages = [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        for key in _PASSTHROUGH:
            if request.params.get(key) is not None:
                body[key] = request.params[key]
        if not self._is_openai and "max_completion_tokens" in body:
            body["max_tokens"] = body["max_completion_tokens"]  # older servers only read this one
        return body

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        import openai

        body = self.body(request)
        client = self._get_client()
        start = time.perf_counter()
        try:
            # the SDK's own client and request path, minus building a pydantic object from the
            # reply: the raw bytes are what gets stored, and parsing them once is enough. The
            # SDK's timeout limits each read; this one limits the whole attempt, so a server that
            # trickles a byte at a time cannot hold a call past it.
            async with asyncio.timeout(self._timeout):
                raw = await client.post("/chat/completions", body=body, cast_to=self._response_cls)
                content = raw.content
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except (openai.APITimeoutError, TimeoutError):
            raise ProviderError(f"request timed out after {self._timeout:g}s (connect to last byte)",
                                retryable=True, kind="timeout") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise ProviderError(f"connection failed: {type(cause).__name__}: {cause}", retryable=True,
                                kind="connection_error") from None
        latency = (time.perf_counter() - start) * 1000
        return _parse(content, body, latency, self.model)

    async def check(self) -> None:
        """Open a TCP connection to the server; raise InputError if that is impossible."""
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=10)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise InputError(
                f"cannot reach {public_url(self._url)} ({reason}); check --base-url / OPENAI_BASE_URL",
                field="base_url") from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _http_response_class(openai: Any) -> type:
    """The Response class of the HTTP library this openai SDK sends with (httpx or httpx2)."""
    import importlib

    for base in openai.DefaultAsyncHttpxClient.__mro__:
        module = importlib.import_module(base.__module__.split(".")[0])
        if hasattr(module, "Response") and hasattr(module, "AsyncClient"):
            return module.Response
    raise RuntimeError("cannot find the openai SDK's HTTP library")


def _status_error(exc: Any) -> ProviderError:
    status = exc.status_code
    retryable = status in (408, 409, 429) or status >= 500
    message = f"HTTP {status}"
    try:
        detail = exc.response.json().get("error", {})
        if isinstance(detail, dict) and detail.get("message"):
            message += f": {detail['message']}"
    except Exception:  # noqa: BLE001 - an unreadable error body is still an HTTP error
        pass
    return ProviderError(message, retryable=retryable, status_code=status,
                         retry_after=retry_after_seconds(exc.response.headers),
                         kind="rate_limited" if status == 429 else "http_error")


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _parse(content: bytes, body: dict, latency: float, model: str) -> GenerateResult:
    """The result in ``content``; ProviderError (``malformed_response``, retryable) for a body
    that has no choice with a message object. The runner validates the rest
    (:meth:`GenerateResult.validate`), keeping the body of a response it refuses."""
    try:
        data = json.loads(content)
        choice = data["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError(f"message is {type(message).__name__}, not an object")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError(f"malformed response body ({type(exc).__name__}: {exc}): {content[:200]!r}",
                            retryable=True, kind="malformed_response") from None
    message = {k: v for k, v in message.items() if v is not None}
    message.setdefault("content", None)
    return GenerateResult(
        message=message,
        finish_reason=choice.get("finish_reason") or "stop",
        usage=Usage(prompt_tokens=_count(usage.get("prompt_tokens")),
                    completion_tokens=_count(usage.get("completion_tokens")),
                    cached_tokens=_count(details.get("cached_tokens"))),
        model=data.get("model") if isinstance(data.get("model"), str) else model,
        latency_ms=latency,
        choices=data.get("choices"),
        request=body,
        response=data,
    )


def _count(value: object) -> int:
    """A token count as sent, or 0 when the server sent none or nonsense (usage is not the sample)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**53:
        return 0
    return int(value)
