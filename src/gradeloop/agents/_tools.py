"""Answering tool calls: python functions in the sandbox (with the episode's state), canned
results, MCP servers; in that order of precedence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..spec import AgentSpec
from ._mcp import McpServers

__all__ = ["ToolBox", "ToolOutcome", "tool_content"]


@dataclass
class ToolOutcome:
    """What one call produced: the result (None when it failed), the state after it and the error."""

    result: Any
    state: dict[str, Any]
    error: dict[str, Any] | None = None


@dataclass
class ToolBox:
    """The tools of one eval: ``start`` before the first episode (it starts the MCP servers),
    ``aclose`` after the last."""

    agent: AgentSpec
    declared: list[dict[str, Any]] = field(default_factory=list)  # the function tools the eval declares

    def __post_init__(self) -> None:
        from ..graders._python import ToolSource
        from ..spec._agent import python_tool_names

        source = self.agent.tools.python
        self._python = ToolSource(source) if source else None
        self._python_names = set(python_tool_names(source)) if source else set()
        self._mcp = McpServers(self.agent.tools.mcp) if self.agent.tools.mcp else None

    async def start(self) -> None:
        """Start the MCP servers (InputError when one cannot start)."""
        if self._mcp is not None:
            await self._mcp.start()

    def offered(self) -> list[dict[str, Any]]:
        """The function tools the model sees: the declared ones, then the MCP servers' tools not
        already declared under the same name."""
        names = {(t.get("function") or {}).get("name") for t in self.declared}
        extra = [t for t in (self._mcp.tools if self._mcp else []) if t["function"]["name"] not in names]
        return self.declared + extra

    async def call(self, name: str, arguments: dict[str, Any], state: dict[str, Any],
                   canned: dict[str, Any]) -> ToolOutcome:
        """Answer one call of ``name`` on ``state`` (python tools may change it; the returned
        outcome carries the state after the call)."""
        if name in self._python_names:
            return await self._call_python(name, arguments, state)
        if name in canned:
            return _canned(canned[name], arguments, state)
        if self._mcp is not None and self._mcp.serves(name):
            try:
                result, error = await self._mcp.call(name, arguments)
            except Exception as exc:  # noqa: BLE001 - a server that broke is this call's error, not the run's
                result, error = None, f"the MCP server failed: {type(exc).__name__}: {exc}"
            return ToolOutcome(result, state, _error("tool_error", error) if error else None)
        return ToolOutcome(None, state, _error("unknown_tool", f"no tool named {name!r}"))

    async def _call_python(self, name: str, arguments: dict[str, Any], state: dict[str, Any]) -> ToolOutcome:
        from ..graders._python import get_pool

        answer = await get_pool().call_tool(self._python, name, arguments, state)
        if answer.get("status") == "returned" and isinstance(answer.get("state"), dict):
            return ToolOutcome(answer.get("result"), answer["state"])
        return ToolOutcome(None, state, _error("tool_error", _last_line(str(answer.get("details")))))

    async def aclose(self) -> None:
        """Stop the MCP servers."""
        if self._mcp is not None:
            await self._mcp.aclose()


def _canned(entry: Any, arguments: dict[str, Any], state: dict[str, Any]) -> ToolOutcome:
    """A canned result: the entry itself, or from a list of ``{arguments?, result}`` the first
    whose arguments equal the call's (an entry without ``arguments`` is the default)."""
    if not isinstance(entry, list):
        return ToolOutcome(entry, state)
    for case in entry:
        if isinstance(case, dict) and case.get("arguments", arguments) == arguments:
            return ToolOutcome(case.get("result"), state)
    return ToolOutcome(None, state, _error("tool_error", f"no canned result for arguments {json.dumps(arguments)}"))


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "injected": False}


def _last_line(details: str) -> str:
    """The exception line of a traceback (what a tool's caller would see)."""
    lines = [line for line in details.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "the tool failed"


def tool_content(result: Any, error: dict[str, Any] | None) -> str:
    """The ``content`` of the tool message: a string result as it is, anything else as JSON; an
    error as ``{"error": {"type", "message"}}``."""
    if error is not None:
        return json.dumps({"error": {"type": error["type"], "message": error["message"]}}, ensure_ascii=False)
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
