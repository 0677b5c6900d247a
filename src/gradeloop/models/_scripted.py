"""``scripted/<path>``: deterministic answers from a rules file, for tests and demos.

The file (YAML, JSON or JSONL) is a list of rules, tried in order against the last user
message::

    - match: "refund|charge"      # a regular expression (searched, case-insensitive)
      response: billing
    - contains: "password"        # or a plain substring
      response: account
    - response: other             # no condition: the default

A rule may also give ``tool_calls`` (Chat Completions form) and ``finish_reason``.
``scripted/echo`` needs no file: it answers with the last user message.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._base import GenerateRequest, GenerateResult, Provider, Usage, register_provider


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


@register_provider
class ScriptedProvider(Provider):
    """Answers by rule; no network, no randomness."""

    provider = "scripted"
    default_concurrency = 64
    supports_tools = True

    def __init__(self, model: str, *, base_url: str | None = None, **options: Any) -> None:
        super().__init__(model, base_url=None, **options)
        self._rules = [] if model == "echo" else _load_rules(Path(model))
        self._digest = "echo" if model == "echo" else hashlib.sha256(Path(model).read_bytes()).hexdigest()

    def identity(self) -> dict[str, Any]:
        # the rules' content, not just the path: edited rules must not hit stale cache entries
        return {"provider": self.provider, "model": self.model, "rules": self._digest}

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        users = [m for m in request.messages if m.get("role") == "user"]
        prompt = _text(users[-1]) if users else ""
        message: dict[str, Any]
        finish = "stop"
        if self.model == "echo":
            message = {"role": "assistant", "content": prompt}
        else:
            rule = next((r for r in self._rules if _matches(r, prompt)), None)
            if rule is None:
                message = {"role": "assistant", "content": ""}
            else:
                message = {"role": "assistant", "content": rule.get("response")}
                if rule.get("tool_calls"):
                    message["tool_calls"] = rule["tool_calls"]
                finish = rule.get("finish_reason") or ("tool_calls" if rule.get("tool_calls") else "stop")
        limit = request.params.get("max_completion_tokens")
        text = message.get("content") or ""
        words = text.split()
        if limit and len(words) > limit:
            message["content"] = " ".join(words[:limit])
            finish = "length"
        prompt_tokens = sum(len(_text(m).split()) for m in request.messages)
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=len((message.get("content") or "").split()))
        return GenerateResult(message=message, finish_reason=finish, usage=usage, model=self.name,
                              request={"messages": request.messages, **request.params},
                              response={"message": message, "finish_reason": finish})


def _matches(rule: dict[str, Any], prompt: str) -> bool:
    if "match" in rule:
        return re.search(rule["match"], prompt, flags=re.IGNORECASE) is not None
    if "contains" in rule:
        return str(rule["contains"]) in prompt
    return True


def _load_rules(path: Path) -> list[dict[str, Any]]:
    from ..spec import read_document, read_jsonl

    if not path.exists():
        raise InputError("scripted responses file not found", file=str(path), field="model")
    if path.suffix.lower() == ".jsonl":
        entries = list(read_jsonl(path))
        rules = [value for _, value in entries]
        lines = [line for line, _ in entries]
    else:
        doc = read_document(path)
        rules = doc.data if isinstance(doc.data, list) else []
        lines = [doc.line((i,)) for i in range(len(rules))]
        if not isinstance(doc.data, list):
            raise InputError("a scripted responses file is a list of rules", file=str(path))
    for rule, line in zip(rules, lines):
        if not isinstance(rule, dict) or ("response" not in rule and "tool_calls" not in rule):
            raise InputError("each rule needs 'response' (or 'tool_calls')", file=str(path), line=line)
        if "match" in rule:
            try:
                re.compile(rule["match"])
            except re.error as exc:
                raise InputError(f"invalid regular expression: {exc}", file=str(path), line=line,
                                 field="match") from None
    return rules
