"""The engine: items × models × epochs, bounded concurrency, retries, cache, resume.

A unit of work is one (item, epoch) of one run. It is sampled (or its given sample is
used), the sample is stored with the calls behind it in one transaction, then it is
graded and its scores and output item are stored in another. Resuming a run skips
every unit that has an output item and only grades units that have a sample.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._checks import at_least, check_base_url, positive
from ..errors import InputError, ProviderError, TemplateError
from ..graders import GradeResult, grade
from ..models import GenerateRequest, Provider, check_message, message_text, public_url, split_model_name
from ..redact import MASK, url_was_redacted
from ..spec import (AgentSpec, CompletionsDataSource, EvalSpec, GraderModel, Row, grader_hash, load_eval, parse_agent,
                    parse_criteria, parse_data_source)
from ..store import SampleRecord, ScoreRecord, Store, runner_alive
from ..templating import sample_namespace
from ._agent import EpisodeRunner
from ._messages import build_messages
from ._progress import Reporter, progress_reporter
from ._pool import ModelPool, PoolGradingContext, resolve_model_name
from ._retry import RetryPolicy

__all__ = ["RunOptions", "run_eval", "run_eval_async", "resume_run", "resume_run_async"]


@dataclass
class RunOptions:
    """How to run: epochs, concurrency per model (the ceiling, when ``adaptive_concurrency``
    lowers it on 429s and 503s), endpoint, cache, retries, row limit."""

    epochs: int | None = None
    concurrency: int | None = None
    adaptive_concurrency: bool = True
    base_url: str | None = None
    use_cache: bool = True
    timeout: float = 120.0
    limit: int | None = None
    name: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    truncate: str | None = None  # local/hf models: how items longer than the context window are cut
    tool_fault_rate: float | None = None  # agent episodes: share of tool calls that fail (overrides agent.tool_faults)

    def __post_init__(self) -> None:
        """Refuse out-of-range values (InputError naming the option) before anything runs."""
        for name in ("epochs", "concurrency", "limit"):
            at_least(getattr(self, name), 1, name)
        if self.tool_fault_rate is not None and not 0 <= self.tool_fault_rate <= 1:
            raise InputError(f"tool fault rate {self.tool_fault_rate:g} is not between 0 and 1",
                             field="tool_fault_rate")
        if self.truncate not in (None, "middle", "left", "right"):
            raise InputError(f"unknown truncation '{self.truncate}' (use middle, left or right)", field="truncate")
        positive(self.timeout, "timeout", "seconds")
        check_base_url(self.base_url)

    def to_config(self) -> dict[str, Any]:
        """What the store keeps so that a resume runs the same way."""
        # credentials in a URL (user:password@host, ?api-key=…) are secrets: never stored
        return {"epochs": self.epochs, "concurrency": self.concurrency,
                "adaptive_concurrency": self.adaptive_concurrency, "base_url": public_url(self.base_url),
                "base_url_redacted": url_was_redacted(self.base_url),
                "use_cache": self.use_cache, "timeout": self.timeout, "limit": self.limit,
                "retry": asdict(self.retry), "truncate": self.truncate, "tool_fault_rate": self.tool_fault_rate}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RunOptions":
        """Rebuild options stored by :meth:`to_config`."""
        return cls(epochs=config.get("epochs"), concurrency=config.get("concurrency"),
                   adaptive_concurrency=config.get("adaptive_concurrency", True),
                   base_url=config.get("base_url"), use_cache=config.get("use_cache", True),
                   timeout=config.get("timeout", 120.0), limit=config.get("limit"),
                   retry=RetryPolicy(**config.get("retry", {})), truncate=config.get("truncate"),
                   tool_fault_rate=config.get("tool_fault_rate"))


class _Execution:
    """One run being executed (fresh or resumed)."""

    def __init__(self, store: Store, run_id: str, criteria: list[GraderModel],
                 source: CompletionsDataSource | None, rows: list[Row], epochs: int, provider: Provider | None,
                 pool: ModelPool, options: RunOptions, reporter: Reporter, label: str,
                 agent: AgentSpec | None = None) -> None:
        self.store, self.run_id, self.criteria = store, run_id, criteria
        self.source, self.rows, self.epochs = source, rows, epochs
        self.provider, self.pool, self.options = provider, pool, options
        self.reporter, self.label = reporter, label
        self.hashes = [grader_hash(c) for c in criteria]
        self.params = source.sampling_params.to_request() if source is not None else {}
        self._built: dict[int, list[dict[str, Any]]] = {}  # row -> its messages, while epochs still need them
        self._uses: Counter[int] = Counter()
        self.episodes = EpisodeRunner(agent, self.params, store, pool, run_id, provider, options.use_cache,
                                      options.tool_fault_rate) if agent is not None and provider is not None else None

    async def execute(self) -> None:
        finished = self.store.finished_units(self.run_id)
        ungraded = self.store.samples_without_grades(self.run_id)
        units = [(row, e) for row in self.rows for e in range(self.epochs) if (row.index, e) not in finished]
        self._uses = Counter(row.index for row, e in units if (row.index, e) not in ungraded)
        self.reporter.start(self.run_id, self.label, len(self.rows) * self.epochs, len(finished))
        self.store.set_run_status(self.run_id, "in_progress")
        try:
            if self.episodes is not None:
                await self.episodes.start()
            pending = iter(units)

            async def worker() -> None:
                for row, epoch in pending:  # workers share one iterator: each unit runs once
                    stored = ungraded.get((row.index, epoch))
                    await self._unit(row, epoch, stored)

            limit = self.options.concurrency or (self.provider.default_concurrency if self.provider else 64)
            if self.provider is not None:
                self.pool.limiter(self.provider.name, limit)  # the workers' calls wait on it
            await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(units))))))
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.store.set_run_status(self.run_id, "canceled",
                                      {"code": "canceled", "message": "interrupted; resume with gradeloop eval resume"})
            raise
        except BaseException as exc:
            self.store.set_run_status(self.run_id, "failed", {"code": type(exc).__name__, "message": str(exc)})
            raise
        finally:
            if self.episodes is not None:
                await self.episodes.aclose()
            self.reporter.finish(self.run_id)
        self.store.set_run_status(self.run_id, "completed")

    async def _unit(self, row: Row, epoch: int, stored: dict | None) -> None:
        if stored is not None and not _usable(stored):
            stored = None  # stored by an older gradeloop from a reply that makes no sample: sample again
        if stored is not None:
            sample, ok = _namespace_from_stored(stored), stored["status"] != "error"
        else:
            sample, ok = await self._sample(row, epoch)
        if not ok:
            self.store.record_grades(self.run_id, row.index, epoch, [], "error")
            self.reporter.advance(self.run_id, "error")
            return
        context = PoolGradingContext(self.pool, self.run_id, row.index, epoch)
        scores, statuses = [], []
        for i, criterion in enumerate(self.criteria):
            result = await grade(criterion, sample, row.item, context)
            scores.append(_score_record(i, criterion, self.hashes[i], result))
            statuses.append(result.passed)
        status = "error" if None in statuses else ("pass" if all(statuses) else "fail")
        self.store.record_grades(self.run_id, row.index, epoch, scores, status)
        self.reporter.advance(self.run_id, status)

    async def _sample(self, row: Row, epoch: int) -> tuple[dict[str, Any], bool]:
        """Produce and store the unit's sample; returns ``(sample namespace, ok)``."""
        if row.sample is not None or self.source is None or self.source.input_messages is None:
            given = dict(row.sample or {})
            record = SampleRecord(status="provided", model=None, input=None,
                                  output={"role": "assistant", "content": given.get("output_text", "")},
                                  choices=given.get("choices"), finish_reason=None, prompt_tokens=None,
                                  completion_tokens=None, cached_tokens=None, latency_ms=None, cached=False,
                                  cache_key=None, params=None, error=None)
            self.store.record_sample(self.run_id, row.index, epoch, record, [])
            return _given_namespace(given), True
        try:
            messages = await self._messages(row)
        except TemplateError as exc:
            self._store_error(row, epoch, None, {"code": "invalid_variable_error", "message": exc.message}, [])
            return {}, False
        if self.episodes is not None:
            return await self.episodes.sample(row, epoch, messages)
        request = GenerateRequest(messages=messages, params=self.params)
        result, error, calls, key, cached = await self.pool.call(self.provider.name, request, purpose="sample",
                                                                 epoch=epoch)
        if result is None:
            self._store_error(row, epoch, messages, error.to_dict(), calls, key)
            return {}, False
        record = SampleRecord(
            status="ok", model=self.provider.name, input=messages, output=result.message,
            choices=result.extra_choices(), finish_reason=result.finish_reason,
            prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens,
            cached_tokens=result.usage.cached_tokens, latency_ms=result.latency_ms, cached=cached,
            cache_key=key, params=self.params, error=None)
        self.store.record_sample(self.run_id, row.index, epoch, record, calls,
                                 cache_response=None if cached or not self.options.use_cache else result.to_cache())
        return sample_namespace(result.output_text, tool_calls=result.tool_calls, choices=result.extra_choices(),
                                finish_reason=result.finish_reason), True

    async def _messages(self, row: Row) -> list[dict[str, Any]]:
        """The row's messages, built (and cut to the context window under ``truncate``) once and
        shared by its epochs: a long template is not rendered again per epoch."""
        self._uses[row.index] -= 1
        messages = self._built.get(row.index)
        if messages is None:
            messages = build_messages(self.source.input_messages, row.item)
            if self.options.truncate and hasattr(self.provider, "fit_messages"):
                room = min(int(self.params.get("max_completion_tokens") or 256), 1024)
                messages = await self.provider.fit_messages(messages, self.options.truncate, room)
        if self._uses[row.index] > 0:
            self._built[row.index] = messages
        else:
            self._built.pop(row.index, None)
        return messages

    def _store_error(self, row: Row, epoch: int, messages: list | None, error: dict, calls: list,
                     key: str | None = None) -> None:
        record = SampleRecord(status="error", model=self.provider.name if self.provider else None,
                              input=messages, output=None, choices=None, finish_reason=None, prompt_tokens=None,
                              completion_tokens=None, cached_tokens=None, latency_ms=None, cached=False,
                              cache_key=key, params=self.params, error=error)
        self.store.record_sample(self.run_id, row.index, epoch, record, calls)


def _score_record(i: int, criterion: GraderModel, digest: str, result: GradeResult) -> ScoreRecord:
    payload = {"errors": {k: v for k, v in result.errors.items() if v}, "details": result.details,
               "sub_rewards": result.sub_rewards, "token_usage": result.token_usage,
               "execution_time": result.execution_time}
    return ScoreRecord(criterion=i, name=criterion.name, type=criterion.type, grader_hash=digest,
                       score=result.score, passed=result.passed, result=payload)


def _given_namespace(given: dict[str, Any]) -> dict[str, Any]:
    sample = sample_namespace(given.get("output_text", ""), tool_calls=given.get("output_tools"),
                              choices=given.get("choices"))
    for key in ("output_json", "output_audio"):
        if key in given:
            sample[key] = given[key]
    return sample


def _usable(stored: dict[str, Any]) -> bool:
    """False for an ok sample whose output (or a choice's) is not a message a sample is made of."""
    if stored["status"] != "ok":
        return True
    try:
        check_message(stored.get("output"))
        for choice in stored.get("choices") or []:
            check_message(choice.get("message"))
    except (ProviderError, AttributeError):
        return False
    return True


def _namespace_from_stored(stored: dict[str, Any]) -> dict[str, Any]:
    output = stored.get("output") or {}
    if stored["status"] == "provided":
        return _given_namespace({"output_text": message_text(output), "choices": stored.get("choices")})
    return sample_namespace(message_text(output), tool_calls=output.get("tool_calls"),
                            choices=stored.get("choices"), finish_reason=stored.get("finish_reason"),
                            trajectory=stored.get("trajectory"))


# -- entry points ---------------------------------------------------------------------


def _pool(options: RunOptions, store: Store) -> ModelPool:
    return ModelPool(base_url=options.base_url, timeout=options.timeout, retry=options.retry, store=store,
                     use_cache=options.use_cache, adaptive=options.adaptive_concurrency)


async def _close(pool: ModelPool, reporter: Reporter) -> None:
    reporter.close()
    for name, limit in pool.pushed_back().items():
        print(f"gradeloop: {name}: {limit.summary()}", file=sys.stderr)
    await pool.aclose()


def _models_for(spec: EvalSpec, models: list[str]) -> list[str | None]:
    source = spec.data_source
    if source is None:
        raise InputError("the eval has no data_source: add one (jsonl or completions) to the file",
                         file=spec.source_file, field="data_source")
    if isinstance(source, CompletionsDataSource) and source.input_messages is None and spec.needs_model:
        raise InputError("a completions data source needs input_messages (template or item_reference)",
                         file=spec.source_file, field="data_source.input_messages")
    if not spec.needs_model:
        if models:
            raise InputError("every row of this eval carries its sample, so no model is called; drop --model",
                             file=spec.source_file, field="data_source")
        return [None]
    for name in models:
        split_model_name(name)  # a model named on the command line must say its provider
    if not models and source.model:
        models = [resolve_model_name(source.model)]
    if not models:
        raise InputError("this eval samples a model: pass --model provider/model (e.g. local/smollm2) "
                         "or set data_source.model", file=spec.source_file, field="data_source.model")
    return list(dict.fromkeys(models))


def _check_params(spec: EvalSpec, provider: Provider) -> None:
    """Refuse sampling params ``provider`` cannot honour (InputError at their line in the eval
    file); warn about those it ignores."""
    source = spec.data_source if isinstance(spec.data_source, CompletionsDataSource) else None
    if source is None or not spec.needs_model:
        return
    params = source.sampling_params.to_request()
    written = ((spec.raw.get("data_source") or {}).get("sampling_params") or {})
    loc = ("data_source", "sampling_params", "response_format" if "response_format" in written else "text")
    try:
        provider.check_params(params)
    except InputError as exc:
        if exc.field in ("tools", "tool_choice"):
            loc = ("data_source", "sampling_params", exc.field)
        raise spec.error(f"{provider.name}: {exc.message}", loc) from None
    if params.get("tools") and not provider.supports_tools:
        print(f"gradeloop: warning: {provider.name} cannot call tools; the eval's tools are ignored", file=sys.stderr)
    if params.get("response_format") and not provider.supports_response_format:
        print(f"gradeloop: warning: {provider.name} ignores response_format", file=sys.stderr)


async def check_lengths(rows: list[Row], source: CompletionsDataSource | None, provider: Provider,
                        truncate: str | None) -> None:
    """Refuse, before the run, an item longer than a local model's context window (InputError
    at the item's file and line, with both token counts) unless ``truncate`` says how to cut it.
    Providers that do not know their window (remote ones) are not checked."""
    window = getattr(provider, "context_window", None)
    if window is None or truncate or source is None or source.input_messages is None:
        return
    limit = await window()
    for row in rows:
        if row.sample is not None:
            continue
        try:
            messages = build_messages(source.input_messages, row.item)
        except TemplateError:
            continue  # stored as this item's error when it runs
        tokens = await provider.prompt_length(messages, source.sampling_params.to_request())
        if tokens + 1 > limit:
            raise InputError(f"item is {tokens} tokens; {provider.name}'s context window is {limit} tokens "
                             "(with room for one answer token): shorten it or pass --truncate middle|left|right",
                             file=row.file, line=row.line, field="messages")


def _run_metadata(spec: EvalSpec) -> dict[str, str] | None:
    """The run's metadata: the dataset version the eval names (``metadata.gradeloop_dataset``,
    written by ``harvest build``), so every run says which version it ran on."""
    dataset = spec.metadata.get("gradeloop_dataset")
    return {"gradeloop_dataset": str(dataset)} if dataset else None


async def run_eval_async(spec: EvalSpec | str | Path, models: list[str] | None = None, *,
                         store: Store | None = None, options: RunOptions | None = None,
                         reporter: Reporter | None = None) -> list[str]:
    """Run an eval on each model (one run per model, concurrently); returns the run ids.

    Raises InputError before anything is stored when the eval, a model name or an endpoint
    is unusable.
    """
    spec = load_eval(spec) if isinstance(spec, (str, Path)) else spec
    options = options or RunOptions()
    store = store or Store()
    reporter = reporter or Reporter()
    if options.tool_fault_rate is not None and spec.agent is None:
        raise InputError(f"{spec.source_file or 'the eval'} has no agent: block, so no tool is run and none can "
                         "fail (see docs/agents.md)", field="tool_fault_rate")
    names = _models_for(spec, list(models or []))
    pool = _pool(options, store)
    chosen = [pool.provider(n) if n else None for n in names]
    for p in chosen:
        if p is not None:
            await p.check()
            _check_params(spec, p)
    if spec.agent is not None and spec.agent.user is not None:
        await pool.provider(spec.agent.user.model).check()
    rows = spec.rows[: options.limit] if options.limit else spec.rows
    epochs = options.epochs or spec.epochs
    source = spec.data_source if isinstance(spec.data_source, CompletionsDataSource) else None
    for p in chosen:
        if p is not None:
            await check_lengths(rows, source, p, options.truncate)
    eval_id = store.add_eval(spec.definition(), spec.source_file)
    executions = []
    for provider in chosen:
        run_options = RunOptions(**{**options.__dict__, "epochs": epochs})
        run_id = store.create_run(
            eval_id=eval_id, model=provider.name if provider else "", name=options.name or spec.name,
            data_source=spec.data_source_dict(), config=run_options.to_config(),
            rows=((r.index, r.item, r.sample, r.file, r.line) for r in rows), metadata=_run_metadata(spec))
        label = f"{spec.name} · {provider.name if provider else 'given samples'}"
        source = spec.data_source if isinstance(spec.data_source, CompletionsDataSource) else None
        executions.append(_Execution(store, run_id, spec.testing_criteria, source, rows, epochs,
                                     provider, pool, run_options, reporter, label, spec.agent))
    try:
        await asyncio.gather(*(ex.execute() for ex in executions))
    finally:
        await _close(pool, reporter)
    return [ex.run_id for ex in executions]


async def resume_run_async(run_id: str, *, store: Store | None = None, reporter: Reporter | None = None,
                           options: RunOptions | None = None, base_url: str | None = None,
                           retry_errors: bool = False) -> str:
    """Finish an interrupted run: units with output items are skipped, stored samples are
    only graded, the rest are sampled. ``base_url`` overrides the stored one (give it when
    the original carried credentials, which are never stored). ``retry_errors`` first drops
    the errored units (:meth:`Store.drop_errored`) so that they run again. Raises InputError
    while another process still runs it. Returns the run id."""
    store = store or Store()
    reporter = reporter or Reporter()
    run = _resumable(store, run_id)
    options = options or RunOptions.from_config(run["config"])
    options.base_url = base_url or _resume_url(run, options.base_url)
    if retry_errors:
        store.drop_errored(run["id"])
    definition = store.get_eval(run["eval_id"])["definition"]
    criteria = parse_criteria(definition["testing_criteria"])
    source = parse_data_source(run["data_source"]) if run["data_source"] else None
    rows = [Row(index=r["index"], item=r["item"], sample=r["sample"], file=r["file"], line=r["line"])
            for r in store.run_items(run["id"])]
    pool = _pool(options, store)
    provider = pool.provider(run["model"]) if run["model"] else None
    if provider is not None:
        await provider.check()
    epochs = options.epochs or 1
    label = f"{definition.get('name') or run['name']} · {run['model'] or 'given samples'}"
    execution = _Execution(store, run["id"], criteria, source if isinstance(source, CompletionsDataSource) else None,
                           rows, epochs, provider, pool, options, reporter, label, parse_agent(definition.get("agent")))
    try:
        await execution.execute()
    finally:
        await _close(pool, reporter)
    return run["id"]


def _resumable(store: Store, run_id: str) -> dict[str, Any]:
    """The run, unless another live process is running it (InputError)."""
    run_id = store.resolve_run_id(run_id)
    store.reap_interrupted([run_id])
    run = store.get_run(run_id)
    runner = run.get("runner") or {}
    if run["status"] in ("queued", "in_progress") and runner.get("pid") != os.getpid() \
            and runner_alive(runner):
        raise InputError(f"run {run['id']} is still running (pid {runner['pid']}); wait for it, or stop it "
                         "(Ctrl-C, or kill) and resume then", field="run_id")
    return run


def _resume_url(run: dict[str, Any], url: str | None) -> str | None:
    """The base URL a resume without ``--base-url`` uses: ``url`` (from the stored config, or
    the caller's options), unless it is the stored form with the credentials taken out; then
    OPENAI_BASE_URL when it is the same URL, else an InputError that asks for it."""
    if url_was_redacted(url) or not ((run["config"] or {}).get("base_url_redacted") or MASK in (url or "")):
        return url
    env = os.environ.get("OPENAI_BASE_URL")
    if env and public_url(env) == url:
        return env
    raise InputError(f"run {run['id']} was made against {url}: its credentials are never stored, so give the "
                     f"URL again: gradeloop eval resume {run['id']} --base-url URL", field="base_url")


def run_eval(spec: EvalSpec | str | Path, models: list[str] | None = None, *, store: Store | None = None,
             options: RunOptions | None = None, progress: bool = False) -> list[str]:
    """Synchronous :func:`run_eval_async`; ``progress=True`` shows a rich progress bar."""
    return asyncio.run(run_eval_async(spec, models, store=store, options=options,
                                      reporter=progress_reporter() if progress else None))


def resume_run(run_id: str, *, store: Store | None = None, progress: bool = False,
               base_url: str | None = None, retry_errors: bool = False) -> str:
    """Synchronous :func:`resume_run_async`."""
    return asyncio.run(resume_run_async(run_id, store=store, base_url=base_url, retry_errors=retry_errors,
                                        reporter=progress_reporter() if progress else None))

