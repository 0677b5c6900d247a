"""One agent episode: model → tool calls (all of a turn's, in order) → tool results → model …
until the model answers without a tool call, ``max_turns`` model calls were made, a final tool
was called, or the simulated user ends it.

The loop knows nothing of the store or the runner: the runner passes a model-call callback
(which retries, caches and stores the call) and an ``on_turn`` hook (which stores each turn as
it happens), and stores the returned trajectory with the sample.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..models import GenerateResult, Usage, message_text
from ..spec import AgentSpec
from ._faults import FaultPlan, fault_content
from ._tools import ToolBox, tool_content
from ._user import SimulatedUser

__all__ = ["Episode", "EpisodeResult", "EpisodeFailed", "ModelCall", "run_episode", "ASK_USER"]

ASK_USER = "ask_user"
ModelCall = Callable[[list[dict[str, Any]], int], Awaitable[GenerateResult]]
TurnHook = Callable[[int, dict[str, Any]], Any]


class EpisodeFailed(Exception):
    """A model call of the episode failed for good; ``error`` is the call's error (OpenAI's shape)
    and ``trajectory`` the episode up to that call."""

    def __init__(self, error: dict[str, Any], trajectory: dict[str, Any]) -> None:
        super().__init__(error.get("message", "a model call failed"))
        self.error, self.trajectory = error, trajectory


@dataclass
class Episode:
    """What one episode starts from: its input messages, item, place in the run and tools."""

    messages: list[dict[str, Any]]
    item: dict[str, Any]
    index: int
    epoch: int
    agent: AgentSpec
    toolbox: ToolBox
    faults: FaultPlan | None = None


@dataclass
class EpisodeResult:
    """A finished episode: the trajectory (see docs/agents.md), the final assistant message and
    its finish reason, and the usage and latency summed over the agent's model calls."""

    trajectory: dict[str, Any]
    message: dict[str, Any]
    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0


async def run_episode(episode: Episode, call_model: ModelCall, *, call_user: ModelCall | None = None,
                      on_turn: TurnHook | None = None) -> EpisodeResult:
    """Run ``episode``: ``call_model(messages, turn)`` answers the agent's turns (raising
    :class:`EpisodeFailed`-worthy errors as ProviderError or returning a result), ``call_user``
    the simulated user's when the agent block has one; ``on_turn(turn, body)`` sees each turn
    as it finishes. Returns the :class:`EpisodeResult`; raises EpisodeFailed when a model call fails."""
    return await _Loop(episode, call_model, call_user, on_turn).run()


class _Loop:
    def __init__(self, episode: Episode, call_model: ModelCall, call_user: ModelCall | None,
                 on_turn: TurnHook | None) -> None:
        self.episode, self.agent, self.call_model, self.on_turn = episode, episode.agent, call_model, on_turn
        self.state = self.agent.initial_state(episode.item)
        self.canned = self.agent.canned_for(episode.item)
        self.messages = [dict(m) for m in episode.messages]
        self.calls: list[dict[str, Any]] = []
        self.turns = self.faults = 0
        self.asked: bool | None = None
        self.stop = "answer"
        self.last: GenerateResult | None = None
        self.result = EpisodeResult(trajectory={}, message={"role": "assistant", "content": ""}, finish_reason="stop")
        spec = self.agent.user
        self.user = SimulatedUser(_instructions(spec.instructions, episode.item), spec.max_turns, call_user) \
            if spec is not None and call_user is not None else None

    async def run(self) -> EpisodeResult:
        if self.user is not None and not any(m.get("role") == "user" for m in self.messages):
            if await self._user_turn(0):
                return self._finish()
        while self.turns < self.agent.max_turns:
            message = await self._model_turn()
            calls = message.get("tool_calls") or []
            if self.asked is None:
                self.asked = _asks(message, calls)
            ended = await self._after_tools(message, calls) if calls else await self._after_text(message)
            if ended:
                return self._finish()
        self.stop = "max_turns"
        return self._finish()

    async def _after_text(self, message: dict[str, Any]) -> bool:
        """The agent answered without a tool call: the episode ends, unless the simulated user
        replies (True when it ended)."""
        if self.user is None or self.user.exhausted:
            self.stop = "answer" if self.user is None else "max_turns"
            self._emit({"message": message})
            return True
        return await self._user_turn(self.turns, message)

    async def _after_tools(self, message: dict[str, Any], calls: list[dict[str, Any]]) -> bool:
        """Answer the turn's tool calls in order; True when a final tool was called successfully."""
        records = [await self._tool_call(call) for call in calls]
        self._emit({"message": message, "tool_calls": records, "tool_messages": self.messages[-len(records):]})
        if any(r["name"] in self.agent.final_tools and r["error"] is None for r in records):
            self.stop = "final_tool"
            return True
        return False

    async def _model_turn(self) -> dict[str, Any]:
        try:
            result = await self.call_model(list(self.messages), self.turns + 1)
        except EpisodeFailed as exc:
            raise EpisodeFailed(exc.error, self._trajectory()) from None
        self.turns += 1
        self.last = result
        usage = self.result.usage
        usage.prompt_tokens += result.usage.prompt_tokens
        usage.completion_tokens += result.usage.completion_tokens
        usage.cached_tokens += result.usage.cached_tokens
        self.result.latency_ms += result.latency_ms
        message = {"role": "assistant", "content": result.message.get("content"),
                   **{k: v for k, v in result.message.items() if k not in ("role", "content")}}
        self.messages.append(message)
        return message

    async def _user_turn(self, turn: int, message: dict[str, Any] | None = None) -> bool:
        """The simulated user's next message; True when it ended the episode."""
        try:
            text, stop = await self.user.reply(self.messages)
        except EpisodeFailed as exc:
            raise EpisodeFailed(exc.error, self._trajectory()) from None
        self.messages.append({"role": "user", "content": text})
        body = {"message": message, "user": text} if message is not None else {"user": text}
        self._emit(body, turn)
        if stop:
            self.stop = stop
        return stop is not None

    async def _tool_call(self, call: dict[str, Any]) -> dict[str, Any]:
        """Answer one tool call (a fault, the simulated user, or the tool box); appends the tool
        message and returns the trajectory's record of the call."""
        function = call.get("function") or {}
        name, raw = function.get("name", ""), function.get("arguments") or "{}"
        arguments, error, result = _parse_arguments(raw), None, None
        kind = self._fault(name, len(self.calls))
        if kind is not None:
            content, error = fault_content(kind)
            self.faults += 1
        elif not isinstance(arguments, dict):
            error = {"type": "bad_arguments", "message": f"arguments are not a JSON object: {str(raw)[:200]}",
                     "injected": False}
            content = tool_content(None, error)
        else:
            result, error = await self._answer(name, arguments)
            content = tool_content(result, error)
        self.messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": content})
        record = {"turn": self.turns, "id": call.get("id", ""), "name": name,
                  "arguments": arguments if isinstance(arguments, dict) else raw, "result": result, "error": error}
        self.calls.append(record)
        return record

    def _fault(self, name: str, number: int) -> str | None:
        """The fault injected into call ``number`` of this episode, if any (never into a question
        the simulated user answers: a person is not a flaky server)."""
        if self.episode.faults is None or (name == ASK_USER and self.user is not None):
            return None
        return self.episode.faults.draw(self.episode.index, self.episode.epoch, number)

    async def _answer(self, name: str, arguments: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        if name == ASK_USER and self.user is not None:
            question = arguments.get("question") if isinstance(arguments.get("question"), str) \
                else json.dumps(arguments, ensure_ascii=False)
            try:
                text, _ = await self.user.reply(self.messages, question)
            except EpisodeFailed as exc:
                raise EpisodeFailed(exc.error, self._trajectory()) from None
            return text, None
        outcome = await self.episode.toolbox.call(name, arguments, self.state, self.canned)
        self.state = outcome.state
        return outcome.result, outcome.error

    def _emit(self, body: dict[str, Any], turn: int | None = None) -> None:
        if self.on_turn is not None:
            self.on_turn(self.turns if turn is None else turn, body)

    def _trajectory(self) -> dict[str, Any]:
        return {"messages": self.messages, "tool_calls": self.calls, "final_state": self.state,
                "stop_reason": self.stop, "turns": self.turns, "faults": self.faults, "asked": bool(self.asked)}

    def _finish(self) -> EpisodeResult:
        self.result.trajectory = self._trajectory()
        assistant = [m for m in self.messages if m.get("role") == "assistant"]
        if assistant:
            self.result.message = assistant[-1]
        if self.last is not None:
            self.result.finish_reason = self.last.finish_reason
        return self.result


def _instructions(template: str, item: dict[str, Any]) -> str:
    from ..templating import render

    return render(template, {"item": item})


def _parse_arguments(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def _asks(message: dict[str, Any], calls: list[dict[str, Any]]) -> bool:
    """The agent's first move asks the user: it calls ask_user, or answers in text with a question."""
    if calls:
        return any((c.get("function") or {}).get("name") == ASK_USER for c in calls)
    return "?" in message_text(message)
