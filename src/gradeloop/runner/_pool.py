"""Providers by name with per-model (adaptive) concurrency, retries and the response cache,
shared by sampling and by model graders; and a grading context that routes judge calls
through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._checks import check_base_url
from ..errors import ProviderError
from ..graders import GradingContext
from ..models import GenerateRequest, GenerateResult, Provider, get_provider, request_fingerprint, resolves_by_prefix
from ..store import CallRecord, Store
from ._limit import AdaptiveLimit
from ._retry import RetryPolicy, call_with_retries

__all__ = ["ModelPool", "PoolGradingContext", "grading_session", "resolve_model_name"]


def resolve_model_name(name: str) -> str:
    """A bare model name (``gpt-4.1``, as OpenAI's files write it) means ``openai/gpt-4.1``;
    ``provider/model`` and prefixed names (``ft:<job>``) stay as they are."""
    return name if "/" in name or resolves_by_prefix(name) else f"openai/{name}"


class ModelPool:
    """The providers of one runner invocation. ``call`` bounds concurrency per model (halved
    when the endpoint answers 429 or 503, grown back as it answers, unless ``adaptive`` is
    False), reads and fills the response cache, retries, and returns every attempt for the
    caller to store."""

    def __init__(self, *, base_url: str | None = None, timeout: float = 120.0, retry: RetryPolicy | None = None,
                 store: Store | None = None, use_cache: bool = True, adaptive: bool = True) -> None:
        check_base_url(base_url)
        self.base_url, self.timeout = base_url, timeout
        self.retry = retry or RetryPolicy()
        self.store, self.use_cache, self.adaptive = store, use_cache, adaptive
        self._providers: dict[str, Provider] = {}
        self._limits: dict[str, AdaptiveLimit] = {}

    def provider(self, name: str) -> Provider:
        """The provider for ``name`` (bare names mean ``openai/…``), built once."""
        name = resolve_model_name(name)
        if name not in self._providers:
            self._providers[name] = get_provider(name, base_url=self.base_url, timeout=self.timeout)
        return self._providers[name]

    def limiter(self, name: str, ceiling: int | None = None) -> AdaptiveLimit:
        """The concurrency limit of model ``name``: made on first use with ``ceiling`` (or
        the provider's default concurrency)."""
        provider = self.provider(name)
        if provider.name not in self._limits:
            self._limits[provider.name] = AdaptiveLimit(ceiling or provider.default_concurrency,
                                                        adaptive=self.adaptive)
        return self._limits[provider.name]

    def pushed_back(self) -> dict[str, AdaptiveLimit]:
        """The limits of the models whose endpoint asked to slow down, by model name."""
        return {name: limit for name, limit in self._limits.items() if limit.congested}

    async def call(self, name: str, request: GenerateRequest, *, purpose: str,
                   epoch: int = 0) -> tuple[GenerateResult | None, Exception | None, list[CallRecord], str, bool]:
        """Answer ``request`` with model ``name``.

        Returns ``(result, error, calls, cache_key, cached)``.
        """
        provider = self.provider(name)
        key = request_fingerprint(provider.identity(), request, epoch)
        if self.use_cache and self.store is not None:
            cached = self.store.cache_get(key)
            if cached is not None:
                try:
                    return GenerateResult.from_cache(cached), None, [], key, True
                except ProviderError:  # poisoned by an older gradeloop: a miss, replaced by the answer
                    self.store.cache_delete(key)
        result, error, calls = await call_with_retries(provider, request, self.retry, purpose, self.limiter(name))
        return result, error, calls, key, False

    async def aclose(self) -> None:
        """Close every provider."""
        for provider in self._providers.values():
            await provider.aclose()


class PoolGradingContext(GradingContext):
    """Judge calls of model graders: through the pool (concurrency, retries, cache); the
    calls are stored against ``run_id`` / item / epoch when a store is given."""

    def __init__(self, pool: ModelPool, run_id: str | None = None, index: int | None = None,
                 epoch: int | None = None) -> None:
        self.pool, self.run_id, self.index, self.epoch = pool, run_id, index, epoch

    async def generate(self, model: str, request: GenerateRequest) -> GenerateResult:
        result, error, calls, key, cached = await self.pool.call(model, request, purpose="grader")
        store = self.pool.store
        if store is not None:
            store.record_calls(self.run_id, self.index, self.epoch, calls)
            if result is not None and not cached and self.pool.use_cache:
                store.cache_put(key, result.to_cache())
        if result is None:
            raise error  # a model grader turns this into model_grader_server_error
        return result

    def model_name(self, model: str) -> str:
        """The full ``provider/model`` name a judge call to ``model`` uses."""
        return resolve_model_name(model)


@asynccontextmanager
async def grading_session(*, store: Store | None = None, base_url: str | None = None, timeout: float = 120.0,
                          retry: RetryPolicy | None = None, use_cache: bool = True) -> AsyncIterator[PoolGradingContext]:
    """A grading context for grading outside a run (``grade run``, ``grade file``, rewards)."""
    pool = ModelPool(base_url=base_url, timeout=timeout, retry=retry, store=store, use_cache=use_cache)
    try:
        yield PoolGradingContext(pool)
    finally:
        await pool.aclose()

