"""The provider interface: one async ``generate`` per provider, names ``provider/model``.

Built-in providers and plugins register the same way: :func:`register_provider` as a
decorator, or an entry point in the ``gradeloop.providers`` group that names a Provider
subclass.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from ..errors import InputError, ProviderError

__all__ = [
    "check_message",
    "is_empty_message",
    "message_text",
    "GenerateRequest",
    "GenerateResult",
    "Usage",
    "Provider",
    "register_provider",
    "register_name_resolver",
    "resolves_by_prefix",
    "get_provider",
    "provider_names",
    "split_model_name",
]


@dataclass
class GenerateRequest:
    """One chat request: messages in Chat Completions form and sampling params.

    ``params`` may hold ``temperature``, ``top_p``, ``seed``, ``max_completion_tokens``,
    ``response_format``, ``tools`` (with ``tool_choice`` and ``parallel_tool_calls``), ``stop``,
    ``logit_bias`` and ``reasoning_effort``.
    """

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    """Token counts of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """prompt + completion."""
        return self.prompt_tokens + self.completion_tokens

    def to_openai(self) -> dict[str, int]:
        """OpenAI's usage object."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "cached_tokens": self.cached_tokens}


@dataclass
class GenerateResult:
    """A model's answer: the assistant message, why it stopped, usage and the raw exchange.

    ``request`` and ``response`` are the bodies sent and received (never headers), kept
    so that every model call can be stored as it happened.
    """

    message: dict[str, Any]
    finish_reason: str
    usage: Usage
    model: str
    latency_ms: float = 0.0
    choices: list[dict[str, Any]] | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None

    @property
    def output_text(self) -> str:
        """The assistant message's text ('' when it only called tools)."""
        return message_text(self.message)

    def validate(self) -> "GenerateResult":
        """Check that this result makes a sample (see :func:`check_message`; also every choice,
        the finish reason and the token counts); returns it, its messages normalised.
        Raises ProviderError (``malformed_response``, retryable) otherwise."""
        self.message = check_message(self.message)
        if self.choices is not None:
            if not isinstance(self.choices, list) or not all(isinstance(c, dict) for c in self.choices):
                raise _malformed(f"choices is {_describe(self.choices)}, not a list of objects")
            self.choices = [{**c, "message": check_message(c.get("message"))} for c in self.choices]
        if not isinstance(self.finish_reason, str):
            raise _malformed(f"finish_reason is {_describe(self.finish_reason)}, not a string")
        counts = (self.usage.prompt_tokens, self.usage.completion_tokens, self.usage.cached_tokens)
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise _malformed(f"token counts {counts} are not numbers")
        if not isinstance(self.model, str):
            raise _malformed(f"model is {_describe(self.model)}, not a string")
        return self

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The assistant message's tool calls, in Chat Completions form."""
        return list(self.message.get("tool_calls") or [])

    def extra_choices(self) -> list[dict[str, Any]] | None:
        """``choices`` when they hold more than ``message`` and ``finish_reason`` (n > 1), else None."""
        return self.choices if self.choices and len(self.choices) > 1 else None

    def to_cache(self) -> dict[str, Any]:
        """What the response cache keeps (no raw request; a single choice is rebuilt from message)."""
        return {"message": self.message, "finish_reason": self.finish_reason, "usage": asdict(self.usage),
                "model": self.model, "latency_ms": self.latency_ms, "choices": self.extra_choices()}

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "GenerateResult":
        """Rebuild a result stored by :meth:`to_cache`, validated: raises ProviderError
        (``malformed_response``) for an entry that does not make a sample (e.g. one written
        by an older gradeloop that cached whatever came back)."""
        try:
            result = cls(message=data["message"], finish_reason=data["finish_reason"], usage=Usage(**data["usage"]),
                         model=data["model"], latency_ms=data.get("latency_ms", 0.0), choices=data.get("choices"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise _malformed(f"cache entry lacks a field ({type(exc).__name__}: {exc})") from None
        return result.validate()


def _malformed(what: str) -> ProviderError:
    return ProviderError(f"malformed response: {what}", retryable=True, kind="malformed_response")


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def message_text(message: dict[str, Any]) -> str:
    """The text of an assistant message: its content, or its text parts joined ('' for none)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def is_empty_message(message: dict[str, Any]) -> bool:
    """True when an assistant message holds no text, no tool call and no refusal: the model said nothing."""
    parts = message.get("content") if isinstance(message.get("content"), list) else []
    refused = message.get("refusal") or any(isinstance(p, dict) and p.get("refusal") for p in parts)
    return not message_text(message) and not message.get("tool_calls") and not refused


def check_message(message: Any) -> dict[str, Any]:
    """``message`` if it is an assistant message a sample can be made of, else ProviderError
    (``malformed_response``, retryable): an object whose ``content`` is null, a string or a list
    of parts with string texts, whose ``refusal`` is null or a string, and whose ``tool_calls``
    is a list of calls with a function name. Arguments sent as a JSON object become its text,
    as OpenAI sends them; the rest is returned as it came."""
    if not isinstance(message, dict):
        raise _malformed(f"message is {_describe(message)}, not an object")
    content = message.get("content")
    if content is not None and not isinstance(content, str) and not (
            isinstance(content, list) and all(_is_text_part(p) for p in content)):
        raise _malformed(f"content is {_describe(content)}, not a string or a list of text parts")
    if message.get("refusal") is not None and not isinstance(message["refusal"], str):
        raise _malformed(f"refusal is {_describe(message['refusal'])}, not a string")
    calls = message.get("tool_calls")
    if calls is None:
        return message
    if not isinstance(calls, list):
        raise _malformed(f"tool_calls is {_describe(calls)}, not a list")
    return {**message, "tool_calls": [_check_tool_call(c) for c in calls]}


def _is_text_part(part: Any) -> bool:
    return isinstance(part, dict) and all(isinstance(part.get(k, ""), str) for k in ("text", "refusal"))


def _check_tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise _malformed(f"a tool call is {_describe(call)}, not an object")
    if call.get("type", "function") != "function":
        return call
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _malformed(f"tool call {_describe(call)} has no function name")
    arguments = function.get("arguments")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments, ensure_ascii=False)
    elif arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        raise _malformed(f"tool call arguments are {_describe(arguments)}, not a JSON text")
    return {**call, "function": {**function, "arguments": arguments}}


class Provider(abc.ABC):
    """A source of model outputs. Subclasses set ``provider`` and implement :meth:`generate`.

    Capabilities are class attributes: ``default_concurrency`` (how many requests the
    runner keeps in flight), ``supports_tools`` and ``supports_response_format``.
    """

    provider: ClassVar[str] = ""
    default_concurrency: ClassVar[int] = 16
    supports_tools: ClassVar[bool] = False
    supports_response_format: ClassVar[bool] = False

    def __init__(self, model: str, *, base_url: str | None = None, **options: Any) -> None:
        self.model = model
        self.base_url = base_url
        self.options = options

    @property
    def name(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"

    @abc.abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer one request. Raise :class:`~gradeloop.errors.ProviderError` on failure
        (``retryable=True`` for 429s, 5xx, timeouts and dropped connections). The runner
        checks the result with :meth:`GenerateResult.validate` before it becomes a sample."""

    def identity(self) -> dict[str, Any]:
        """What identifies this model's outputs in the response cache."""
        return {"provider": self.provider, "base_url": self.base_url, "model": self.model}

    async def check(self) -> None:
        """Fail fast (InputError) when the provider cannot work at all, e.g. an unreachable server."""

    def check_params(self, params: dict[str, Any]) -> None:
        """Fail fast (InputError, field relative to the sampling params) when this model
        cannot honour a run's sampling ``params``, e.g. a JSON schema it cannot enforce."""

    async def aclose(self) -> None:
        """Release clients, threads and models."""


_PROVIDERS: dict[str, type[Provider]] = {}
_RESOLVERS: dict[str, Any] = {}
_BUILTINS_LOADED = False


def register_name_resolver(prefix: str, build: Any) -> None:
    """Let names that start with ``prefix`` (``ft:``) build their provider: ``build(name, **options)``."""
    _RESOLVERS[prefix] = build


def register_provider(cls: type[Provider]) -> type[Provider]:
    """Register a Provider subclass under ``cls.provider``; returns it (a decorator)."""
    if not cls.provider:
        raise TypeError(f"{cls.__name__} must set the class attribute 'provider'")
    _PROVIDERS[cls.provider] = cls
    return cls


def resolves_by_prefix(name: str) -> bool:
    """True when ``name`` starts with a registered prefix such as ``ft:``."""
    return any(name.startswith(prefix) for prefix in _RESOLVERS)


def _load_plugins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from . import _local, _openai, _scripted  # noqa: F401  (built-ins register on import)

    for ep in entry_points(group="gradeloop.providers"):
        if ep.name not in _PROVIDERS:
            cls = ep.load()
            _PROVIDERS.setdefault(getattr(cls, "provider", ep.name) or ep.name, cls)


def provider_names() -> list[str]:
    """Registered provider prefixes, sorted."""
    _load_plugins()
    return sorted(_PROVIDERS)


def split_model_name(name: str) -> tuple[str, str]:
    """``"openai/gpt-4.1-mini"`` → ``("openai", "gpt-4.1-mini")``; raises InputError if malformed."""
    for prefix in _RESOLVERS:
        if name.startswith(prefix) and len(name) > len(prefix):
            return prefix.rstrip(":/"), name[len(prefix):]
    provider, sep, model = name.partition("/")
    if not sep or not provider or not model:
        raise InputError(
            f"model '{name}' must be written provider/model, e.g. openai/gpt-4.1-mini, local/smollm2, "
            f"hf/path/to/checkpoint, scripted/responses.yaml, or ft:<job>", field="model")
    return provider, model


def get_provider(name: str, *, base_url: str | None = None, **options: Any) -> Provider:
    """Build the provider for ``name`` (``provider/model``)."""
    _load_plugins()
    for prefix, build in _RESOLVERS.items():
        if name.startswith(prefix):
            return build(name, base_url=base_url, **options)
    provider, model = split_model_name(name)
    cls = _PROVIDERS.get(provider)
    if cls is None:
        raise InputError(f"unknown provider '{provider}' in '{name}' (known: {', '.join(provider_names())})",
                         field="model")
    return cls(model, base_url=base_url, **options)


def request_fingerprint(identity: dict[str, Any], request: GenerateRequest, epoch: int) -> str:
    """The content address of a request: provider identity, messages, params and epoch."""
    payload = {"identity": identity, "messages": request.messages, "params": request.params, "epoch": epoch}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
