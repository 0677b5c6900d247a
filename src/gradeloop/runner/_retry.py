"""Retries with exponential backoff and jitter, honouring Retry-After, with bounded totals."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass

from .._checks import at_least, in_range
from ..errors import ProviderError
from ..models import GenerateRequest, GenerateResult, Provider
from ..store import CallRecord
from ._limit import CONGESTION_STATUS, AdaptiveLimit


@dataclass
class RetryPolicy:
    """How hard to try: at most ``max_attempts`` calls and ``max_total_wait`` seconds of waiting.

    The n-th wait is ``base_delay * 2**(n-1)`` capped at ``max_delay``, with equal jitter
    (half fixed, half random); a server's Retry-After replaces it (capped at ``max_delay``).
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 120.0

    def __post_init__(self) -> None:
        """Refuse a policy that could never call (InputError naming the field)."""
        at_least(self.max_attempts, 1, "max_attempts")
        for name in ("base_delay", "max_delay", "max_total_wait"):
            in_range(getattr(self, name), 0, math.inf, name)

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_delay) * random.uniform(1.0, 1.1)
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


async def call_with_retries(
    provider: Provider, request: GenerateRequest, policy: RetryPolicy, purpose: str,
    limiter: AdaptiveLimit | None = None,
) -> tuple[GenerateResult | None, ProviderError | None, list[CallRecord]]:
    """Call ``provider`` until it answers or the policy gives up.

    Each attempt holds a slot of ``limiter`` (when given) and tells it how it went; the
    waits between attempts hold none. Returns ``(result, last_error, calls)``: exactly one
    of result and error is set, and ``calls`` records every attempt (request and response
    bodies, no headers).
    """
    calls: list[CallRecord] = []
    waited = 0.0
    for attempt in range(1, policy.max_attempts + 1):
        epoch = await limiter.acquire() if limiter is not None else 0
        started = time.time()
        t0 = time.perf_counter()
        error: ProviderError | None = None
        answered = False
        result = None
        try:
            result = await provider.generate(request)
            result.validate()  # a reply that makes no sample is a failed attempt, retried, never cached
            answered = True
        except ProviderError as exc:
            error = exc
        finally:
            if limiter is not None:  # also when cancelled: the slot is never lost
                limiter.release(epoch, ok=answered,
                                congested=error is not None and error.status_code in CONGESTION_STATUS)
        if error is None:
            calls.append(CallRecord(purpose=purpose, provider=provider.provider, model=provider.model,
                                    base_url=provider.base_url, attempt=attempt, status="ok",
                                    request=result.request, response=result.response, error=None,
                                    prompt_tokens=result.usage.prompt_tokens,
                                    completion_tokens=result.usage.completion_tokens,
                                    latency_ms=result.latency_ms, created_at=started))
            return result, None, calls
        latency = (time.perf_counter() - t0) * 1000
        calls.append(CallRecord(purpose=purpose, provider=provider.provider, model=provider.model,
                                base_url=provider.base_url, attempt=attempt, status="error",
                                request=result.request if result else None,
                                response=result.response if result else None, error=error.to_dict(),
                                prompt_tokens=None, completion_tokens=None, latency_ms=latency, created_at=started))
        if not error.retryable or attempt == policy.max_attempts:
            return None, error, calls
        pause = policy.delay(attempt, error)
        if waited + pause > policy.max_total_wait:
            return None, error, calls
        waited += pause
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")
