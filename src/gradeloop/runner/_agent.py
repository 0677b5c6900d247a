"""The runner's side of agent episodes: one :class:`EpisodeRunner` per run starts the tools,
drives :func:`gradeloop.agents.run_episode` through the model pool, stores each turn (with the
model calls and cache entries behind it) as it happens, and stores the finished episode as the
sample. A killed episode starts over at its beginning on resume; its model calls, already
cached turn by turn, are not requested again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..agents import Episode, EpisodeFailed, FaultPlan, ToolBox, run_episode
from ..errors import TemplateError
from ..models import GenerateRequest, GenerateResult, Provider, message_text
from ..spec import AgentSpec
from ..store import CallRecord, SampleRecord, Store
from ..templating import sample_namespace
from ._pool import ModelPool

__all__ = ["EpisodeRunner", "fault_plan"]


def fault_plan(agent: AgentSpec, rate: float | None) -> FaultPlan | None:
    """The run's tool faults: the agent block's, its rate replaced by ``rate`` (``--tool-fault-rate``) when given."""
    spec = agent.tool_faults
    rate = rate if rate is not None else (spec.rate if spec else 0.0)
    if not rate:
        return None
    return FaultPlan(rate=rate, seed=spec.seed if spec else 0, kinds=tuple(spec.kinds) if spec else FaultPlan.kinds)


@dataclass
class _Pending:
    """Model calls and cache entries made since the last stored turn."""

    calls: list[CallRecord] = field(default_factory=list)
    cache: list[tuple[str, dict]] = field(default_factory=list)
    all_cached: bool = True

    def take(self) -> tuple[list[CallRecord], list[tuple[str, dict]]]:
        calls, cache = self.calls, self.cache
        self.calls, self.cache = [], []
        return calls, cache


class EpisodeRunner:
    """Agent episodes of one run on ``provider``."""

    def __init__(self, agent: AgentSpec, params: dict[str, Any], store: Store, pool: ModelPool, run_id: str,
                 provider: Provider, use_cache: bool, fault_rate: float | None) -> None:
        self.agent, self.store, self.pool, self.run_id = agent, store, pool, run_id
        self.provider, self.use_cache = provider, use_cache
        self.toolbox = ToolBox(agent, list(params.get("tools") or []))
        self.faults = fault_plan(agent, fault_rate)
        self.params = params

    async def start(self) -> None:
        """Start the tools (MCP servers) and fix the tools the model is offered."""
        await self.toolbox.start()
        offered = self.toolbox.offered()
        if offered:
            self.params = {**self.params, "tools": offered}

    async def aclose(self) -> None:
        """Stop the tools."""
        await self.toolbox.aclose()

    async def sample(self, row: Any, epoch: int, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """Run and store the episode of ``row`` (epoch ``epoch``); returns ``(sample namespace, ok)``."""
        self.store.clear_turns(self.run_id, row.index, epoch)  # a cut-off episode starts over
        pending = _Pending()
        episode = Episode(messages=messages, item=row.item, index=row.index, epoch=epoch, agent=self.agent,
                          toolbox=self.toolbox, faults=self.faults)

        async def agent_call(conversation: list[dict[str, Any]], turn: int) -> GenerateResult:
            return await self._call(self.provider.name, conversation, self.params, "sample", epoch, pending)

        async def user_call(conversation: list[dict[str, Any]], turn: int) -> GenerateResult:
            return await self._call(self.agent.user.model, conversation, {}, "user", epoch, pending)

        def on_turn(turn: int, body: dict[str, Any]) -> None:
            calls, cache = pending.take()
            self.store.record_turn(self.run_id, row.index, epoch, turn, body, calls, cache)

        try:
            result = await run_episode(episode, agent_call, call_user=user_call, on_turn=on_turn)
        except EpisodeFailed as exc:
            self._store(row, epoch, messages, pending, None, exc.trajectory, exc.error)
            return {}, False
        except TemplateError as exc:  # the item's state, canned results or user instructions
            self._store(row, epoch, messages, pending, None, None, {"code": "invalid_variable_error",
                                                                    "message": exc.message})
            return {}, False
        trajectory = result.trajectory
        self._store(row, epoch, messages, pending, result, trajectory, None)
        message = result.message
        return sample_namespace(message_text(message), tool_calls=message.get("tool_calls"),
                                finish_reason=result.finish_reason, trajectory=trajectory), True

    async def _call(self, name: str, conversation: list[dict[str, Any]], params: dict[str, Any], purpose: str,
                    epoch: int, pending: _Pending) -> GenerateResult:
        # the cache key is the whole conversation so far (with the params and epoch): a turn is
        # reused only where everything before it is the same
        request = GenerateRequest(messages=conversation, params=params)
        result, error, calls, key, cached = await self.pool.call(name, request, purpose=purpose, epoch=epoch)
        pending.calls += calls
        pending.all_cached &= cached
        if result is None:
            raise EpisodeFailed(error.to_dict(), {})
        if not cached and self.use_cache:
            pending.cache.append((key, result.to_cache()))
        return result

    def _store(self, row: Any, epoch: int, messages: list[dict[str, Any]], pending: _Pending,
               result: Any, trajectory: dict[str, Any] | None, error: dict[str, Any] | None) -> None:
        usage = result.usage if result is not None else None
        record = SampleRecord(
            status="ok" if error is None else "error", model=self.provider.name, input=messages,
            output=result.message if result is not None else None, choices=None,
            finish_reason=result.finish_reason if result is not None else None,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            latency_ms=result.latency_ms if result is not None else None, cached=pending.all_cached and error is None,
            cache_key=None, params=self.params, error=error, trajectory=trajectory)
        calls, cache = pending.take()
        self.store.record_sample(self.run_id, row.index, epoch, record, calls)
        for key, response in cache:  # a failed episode's calls since its last turn
            self.store.cache_put(key, response)
