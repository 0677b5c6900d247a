"""Adaptive concurrency per model: additive increase, multiplicative decrease (AIMD).

An endpoint that answers 429 (or 503) is told so by having fewer requests in flight: the
limit halves, once per wave of congestion (the answers to requests sent before the last
decrease do not count again), and grows back by one after each ``limit`` successes in a row,
up to the ceiling the user set (``--concurrency``, or the provider's default). A retried
request gives its slot back while it waits out its backoff.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["AdaptiveLimit", "CONGESTION_STATUS"]

CONGESTION_STATUS = (429, 503)


class AdaptiveLimit:
    """How many requests may be in flight to one model; ``adaptive=False`` keeps it at
    ``ceiling``."""

    def __init__(self, ceiling: int, *, adaptive: bool = True) -> None:
        self.ceiling = max(1, ceiling)
        self.adaptive = adaptive
        self.limit = self.ceiling
        self.lowest = self.ceiling
        self.in_flight = 0
        self.congested = 0  # responses that said "slow down"
        self.decreases = 0
        self._successes = 0
        self._epoch = 0  # bumped by every decrease
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to hand back to :meth:`release`."""
        while self.in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done():
                    self._wake()  # the slot this waiter was woken for goes to the next one
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1
        return self._epoch

    def release(self, epoch: int, *, ok: bool, congested: bool = False) -> None:
        """Give the slot back, saying how the request went."""
        self.in_flight -= 1
        if congested:
            self.congested += 1
            if self.adaptive and epoch == self._epoch and self.limit > 1:
                self.limit = max(1, self.limit // 2)
                self.lowest = min(self.lowest, self.limit)
                self.decreases += 1
                self._epoch += 1
                self._successes = 0
        elif ok and self.limit < self.ceiling:
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def summary(self) -> str:
        """One line for the user, when the endpoint pushed back."""
        if not self.adaptive:
            return f"{self.congested} responses asked to slow down (concurrency fixed at {self.ceiling})"
        return (f"{self.congested} responses asked to slow down; concurrency went down to {self.lowest} "
                f"and ended at {self.limit} (ceiling {self.ceiling})")
