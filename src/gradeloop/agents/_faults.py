"""Tool faults: a seeded share of tool calls answered with an error instead of the tool's result.

A draw depends only on (seed, item, epoch, call number in the episode), never on timing or
order across episodes, so a run and its resume inject the same faults on the same calls.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from ..spec import FAULT_KINDS

__all__ = ["FaultPlan", "fault_content"]

_MESSAGES = {
    "server_error": (500, "Internal Server Error: the service failed while handling the request"),
    "timeout": (504, "Gateway Timeout: the service did not answer in time"),
    "rate_limit": (429, "Too Many Requests: rate limit exceeded, retry later"),
}


@dataclass(frozen=True)
class FaultPlan:
    """Which tool calls fail: ``rate`` of them, seeded by ``seed``, of a kind drawn from ``kinds``."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS

    def draw(self, index: int, epoch: int, call: int) -> str | None:
        """The fault of call number ``call`` (from 0) of item ``index``'s episode ``epoch``, or None."""
        if self.rate <= 0:
            return None
        rng = random.Random(f"gradeloop-tool-fault:{self.seed}:{index}:{epoch}:{call}")
        hit = rng.random() < self.rate
        kind = rng.choice(self.kinds)
        return kind if hit else None


def fault_content(kind: str) -> tuple[str, dict[str, Any]]:
    """What the model receives for an injected fault of ``kind`` (the tool message's content), and
    the trajectory's error record."""
    if kind == "malformed":
        body = '{"result": {"status": "ok", "data": [{"id": 1, "val'  # cut off mid-object, as a broken proxy does
        return body, {"type": "malformed", "message": "the tool's output was cut off (not valid JSON)",
                      "injected": True}
    status, message = _MESSAGES[kind]
    content = json.dumps({"error": {"type": kind, "status": status, "message": message}})
    return content, {"type": kind, "message": f"HTTP {status}: {message}", "injected": True}
