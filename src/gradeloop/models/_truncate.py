"""Fitting a long prompt into a model's context window by cutting one message, token-accurately.

The longest message that is not a system or developer message loses tokens: from its middle
(``middle``: the start and the end are kept, where instructions and questions usually sit), its
start (``left``) or its end (``right``). Counts come from the model's own tokenizer and its chat
template; text cut at a token boundary can re-tokenize a token or two differently, so the cut is
repeated until the whole prompt fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InputError

__all__ = ["TRUNCATE_MODES", "truncate_messages"]

TRUNCATE_MODES = ("middle", "left", "right")


def _cut(ids: list[int], keep: int, how: str) -> list[int]:
    if keep <= 0:
        return []
    if how == "left":
        return ids[len(ids) - keep:]
    if how == "right":
        return ids[:keep]
    head = keep // 2
    return ids[:head] + ids[len(ids) - (keep - head):]


def _longest(messages: list[dict[str, Any]]) -> int:
    candidates = [i for i, m in enumerate(messages)
                  if m.get("role") not in ("system", "developer") and isinstance(m.get("content"), str)]
    if not candidates:
        raise InputError("the prompt is too long and has no user or assistant text message to truncate",
                         field="truncate")
    return max(candidates, key=lambda i: len(messages[i]["content"]))


def truncate_messages(messages: list[dict[str, Any]], limit: int, how: str,
                      count: Callable[[list[dict[str, Any]]], int], encode: Callable[[str], list[int]],
                      decode: Callable[[Sequence[int]], str]) -> tuple[list[dict[str, Any]], int]:
    """``messages`` with the longest non-system message cut (``how``: middle, left, right) so that
    ``count(messages) <= limit``; returns (messages, their token count). Messages already short
    enough come back as they are. Raises InputError when even an empty message is too long."""
    if how not in TRUNCATE_MODES:
        raise InputError(f"unknown truncation '{how}' (known: {', '.join(TRUNCATE_MODES)})", field="truncate")
    total = count(messages)
    if total <= limit:
        return messages, total
    index = _longest(messages)
    ids = encode(messages[index]["content"])
    keep = len(ids) - (total - limit)
    for _ in range(8):
        out = list(messages)
        out[index] = {**messages[index], "content": decode(_cut(ids, keep, how))}
        total = count(out)
        if total <= limit:
            return out, total
        if keep <= 0:
            break
        keep -= total - limit
    raise InputError(f"the prompt does not fit in {limit} tokens even without its longest message", field="truncate")
