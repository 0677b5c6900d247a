"""The ``agent:`` block of an eval file (a gradeloop addition): how a sample becomes an episode.

The function tools the model sees stay where OpenAI puts them
(``data_source.sampling_params.tools``); this block says how each call is answered (a python
function run in the sandbox, a canned result, an MCP server over stdio), when the episode
stops, which tool calls fail on purpose (``tool_faults``) and who plays the user.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, TemplateError
from ..templating import render, render_value
from ._load import Document, validate_model

__all__ = ["AgentSpec", "ToolsSpec", "McpServerSpec", "ToolFaultsSpec", "UserSpec", "FAULT_KINDS",
           "load_agent", "parse_agent"]

FAULT_KINDS = ("server_error", "timeout", "rate_limit", "malformed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class McpServerSpec(_Strict):
    """An MCP server started over stdio: its command line, extra environment and working folder
    (the eval file's folder unless given)."""

    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class ToolsSpec(_Strict):
    """How tool calls are answered: python source (a path or inline code), canned results
    (an object, or a template that resolves to one per item) and MCP servers."""

    python: str | None = None
    canned: dict[str, Any] | str | None = None
    mcp: list[McpServerSpec] = Field(default_factory=list)


class ToolFaultsSpec(_Strict):
    """Tool calls that fail on purpose: the share of calls (``rate``), the seed and the kinds drawn."""

    rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    kinds: list[Literal["server_error", "timeout", "rate_limit", "malformed"]] = Field(
        default_factory=lambda: list(FAULT_KINDS), min_length=1)


class UserSpec(_Strict):
    """A simulated user (τ-bench style): a model that plays the user from ``instructions``."""

    model: str
    instructions: str = ""
    max_turns: int = Field(default=10, ge=1)


class AgentSpec(_Strict):
    """The ``agent:`` block, its python source read in (``tools.python`` holds the code)."""

    max_turns: int = Field(default=10, ge=1)
    state: dict[str, Any] | str | None = None
    final_tools: list[str] = Field(default_factory=list)
    tools: ToolsSpec = Field(default_factory=ToolsSpec)
    tool_faults: ToolFaultsSpec | None = None
    user: UserSpec | None = None

    def initial_state(self, item: dict[str, Any]) -> dict[str, Any]:
        """The episode's initial state for ``item`` (a fresh object); raises TemplateError when
        the template does not resolve to a JSON object."""
        value = self.state if not isinstance(self.state, str) else render_value(self.state, {"item": item})
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise TemplateError(f"agent.state resolves to {type(value).__name__}, not an object")
        return copy.deepcopy(value)

    def canned_for(self, item: dict[str, Any]) -> dict[str, Any]:
        """The canned results for ``item``: ``{tool name: result or [entries]}``."""
        canned = self.tools.canned
        value = render_value(canned, {"item": item}) if isinstance(canned, str) else canned
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise TemplateError(f"agent.tools.canned resolves to {type(value).__name__}, not an object")
        return value


def python_tool_names(source: str) -> list[str]:
    """The public top-level functions ``source`` defines (without running it)."""
    tree = ast.parse(source)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not n.name.startswith("_")]


def _is_inline(text: str) -> bool:
    return "\n" in text or not text.strip().endswith(".py")


def _read_python(text: str, doc: Document, base_dir: Path, allow_outside: bool) -> str:
    loc = ("agent", "tools", "python")
    if _is_inline(text):
        source = text
    else:
        path = Path(text) if Path(text).is_absolute() else base_dir / text
        if not allow_outside and not path.resolve().is_relative_to(base_dir.resolve()):
            raise doc.error(f"'{text}' resolves outside the eval file's folder {base_dir.resolve()}; pass "
                            "--allow-outside-paths for a file you trust", loc)
        if not path.is_file():
            raise doc.error(f"tools file not found: {path}", loc)
        source = path.read_text(encoding="utf-8")
    try:
        python_tool_names(source)
    except SyntaxError as exc:
        raise doc.error(f"the tools source does not compile: {exc.msg} (line {exc.lineno})", loc) from None
    return source


def load_agent(doc: Document, base_dir: Path, tools: list[dict[str, Any]], rows: list[Any],
               allow_outside: bool = False) -> AgentSpec | None:
    """The eval's ``agent:`` block, validated, its python source read and its MCP servers' folder
    fixed; None when there is none. Raises InputError (file, line, field) for a block that cannot
    run: a declared tool with no implementation, an item whose state or canned results do not
    resolve to objects."""
    data = doc.data.get("agent")
    if data is None:
        return None
    if not isinstance(data, dict):
        raise doc.error("agent must be a mapping (max_turns, state, tools, …)", ("agent",))
    agent = validate_model(AgentSpec, data, doc, ("agent",))
    if agent.tools.python is not None:
        agent.tools.python = _read_python(agent.tools.python, doc, base_dir, allow_outside)
    for server in agent.tools.mcp:
        server.cwd = str((base_dir / server.cwd) if server.cwd else base_dir.resolve())
    _check_rows(agent, rows)
    _check_implemented(agent, tools, rows, doc)
    return agent


def _check_rows(agent: AgentSpec, rows: list[Any]) -> None:
    for row in rows:
        try:
            agent.initial_state(row.item)
            agent.canned_for(row.item)
            if agent.user is not None:
                render(agent.user.instructions, {"item": row.item})
        except TemplateError as exc:
            raise InputError(exc.message, file=row.file, line=row.line, field="item") from None


def _check_implemented(agent: AgentSpec, tools: list[dict[str, Any]], rows: list[Any], doc: Document) -> None:
    if agent.tools.mcp:
        return  # the servers list their tools when the run starts
    known = set(python_tool_names(agent.tools.python)) if agent.tools.python else set()
    for row in rows:
        known |= set(agent.canned_for(row.item))
    if agent.user is not None:
        known.add("ask_user")
    for i, tool in enumerate(tools):
        name = (tool.get("function") or {}).get("name") if isinstance(tool, dict) else None
        if name and name not in known:
            raise doc.error(f"tool '{name}' has no implementation: define it in agent.tools.python, give it "
                            "canned results in agent.tools.canned, or serve it from agent.tools.mcp",
                            ("agent", "tools"))


def parse_agent(data: dict[str, Any] | None) -> AgentSpec | None:
    """An agent block as stored with a run (already resolved by :func:`load_agent`)."""
    if data is None:
        return None
    return validate_model(AgentSpec, data, Document(data={"agent": data}, file="<store>"), ("agent",))
