"""MCP servers over stdio, through the maintained ``mcp`` SDK (``pip install 'gradeloop[agents]'``).

One process per server per run, started when the run starts and stopped when it ends; its tools
are offered to the model as OpenAI function tools. A server keeps its own state across
episodes: the per-episode state of python tools does not reach it.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import AsyncExitStack
from typing import Any

from ..errors import InputError
from ..spec import McpServerSpec

__all__ = ["McpServers"]


def _sdk() -> Any:
    try:
        import mcp
        from mcp.client.stdio import stdio_client
    except ImportError:
        raise InputError("agent.tools.mcp needs the mcp SDK: pip install 'gradeloop[agents]'",
                         field="agent.tools.mcp") from None
    return mcp, stdio_client


class McpServers:
    """The MCP servers of one run: :meth:`start` them, :meth:`call` their tools, :meth:`aclose` them
    (in the task that started them: the SDK's transports live in that task)."""

    def __init__(self, specs: list[McpServerSpec]) -> None:
        self.specs = specs
        self._stack = AsyncExitStack()
        self._owner: dict[str, Any] = {}  # tool name -> session
        self.tools: list[dict[str, Any]] = []  # OpenAI function tools, in the servers' order

    async def start(self) -> None:
        """Start every server, initialize its session and list its tools; InputError when one
        cannot start."""
        mcp, stdio_client = _sdk()
        # a server's stderr (its log, tracebacks of failing tools) goes to a file, not the terminal
        errlog = self._stack.enter_context(tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace"))
        for i, spec in enumerate(self.specs):
            params = mcp.StdioServerParameters(command=spec.command[0], args=spec.command[1:], env=spec.env or None,
                                               cwd=spec.cwd)
            try:
                read, write = await self._stack.enter_async_context(stdio_client(params, errlog=errlog))
                session = await self._stack.enter_async_context(mcp.ClientSession(read, write))
                await session.initialize()
                listed = await session.list_tools()
            except Exception as exc:  # noqa: BLE001 - any failure to start is the eval's problem
                errlog.seek(0)
                tail = errlog.read()[-500:].strip()
                await self.aclose()
                raise InputError(f"MCP server {' '.join(spec.command)} did not start: {type(exc).__name__}: {exc}"
                                 + (f"; it wrote: {tail}" if tail else ""), field=f"agent.tools.mcp[{i}]") from None
            for tool in listed.tools:
                if tool.name not in self._owner:
                    self._owner[tool.name] = session
                    self.tools.append(_function_tool(tool))

    def serves(self, name: str) -> bool:
        """True when a server lists tool ``name``."""
        return name in self._owner

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[Any, str | None]:
        """Call tool ``name``; returns ``(result, error message or None)``. The result is the
        tool's structured content when it has some, else its text content joined."""
        result = await self._owner[name].call_tool(name, arguments)
        structured = getattr(result, "structuredContent", None) or getattr(result, "structured_content", None)
        texts = [getattr(part, "text", None) for part in result.content]
        text = "\n".join(t for t in texts if isinstance(t, str))
        if getattr(result, "isError", None) or getattr(result, "is_error", None):
            return None, text or "the MCP tool reported an error"
        if structured is not None and _json(text) == structured:
            return structured, None
        return text, None  # what the server wrote (mcp 2 also wraps a plain return as {"result": …})

    async def aclose(self) -> None:
        """Stop every server."""
        await self._stack.aclose()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _function_tool(tool: Any) -> dict[str, Any]:
    schema = getattr(tool, "inputSchema", None) or getattr(tool, "input_schema", None) or {"type": "object"}
    function = {"name": tool.name, "parameters": schema}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}
