"""Essay-like filler text made offline from a seed, and fitting a prompt to a token length.

The haystack of the needle tasks must read like prose (RULER uses essays) without a download:
sentences are drawn from short phrase lists about work, craft and learning. They hold no
digits, so a number planted in them stands out only to a model that reads the context.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..errors import InputError
from ._tokens import Tokenizer

__all__ = ["sentences", "parse_lengths", "fit", "TOLERANCE"]

TOLERANCE = 0.02  # a requested length is met within ±2%

_OPENERS = ("", "", "In practice, ", "Over time, ", "Oddly enough, ", "As a rule, ", "For most people, ",
            "In the long run, ", "Looking back, ", "At first, ", "Sooner or later, ", "Of course, ")
_SUBJECTS = ("the founder", "a good teacher", "an investor", "the best programmer", "a small team",
             "an ambitious student", "the typical essay", "a careful reader", "every new company", "the old guard",
             "a curious child", "the craftsman", "a patient gardener", "a committee", "the outsider",
             "a startup in a hurry", "the library", "a novice painter", "the editor", "a village baker")
_VERBS = ("tends to underestimate", "learns to notice", "rarely questions", "slowly discovers", "keeps returning to",
          "quietly depends on", "often confuses", "eventually respects", "tries to avoid", "can hardly ignore",
          "is shaped by", "pays close attention to", "forgets about", "argues over", "makes room for")
_OBJECTS = ("the value of early users", "how much work a prototype takes", "the habits that compound",
            "questions nobody else asks", "the gap between plans and results", "the taste of the audience",
            "small problems that grow", "the cost of waiting", "ideas that seem like toys", "the shape of the market",
            "the weather in the hills", "the rhythm of the seasons", "the patience that good work needs",
            "the advice of strangers", "what the work is really for", "the noise of the city")
_TAILS = ("", "", "", " without meaning to", " more than expected", " in surprising ways", " for years",
          " when nobody is watching", " as the work goes on", " before it is too late")


def sentences(rng: random.Random, count: int) -> list[str]:
    """``count`` filler sentences drawn with ``rng`` (the same rng state gives the same list)."""
    out = []
    for _ in range(count):
        opener, subject = rng.choice(_OPENERS), rng.choice(_SUBJECTS)
        text = f"{opener}{subject} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)}."
        out.append(text[0].upper() + text[1:])
    return out


def parse_lengths(values: list[str]) -> list[int]:
    """``["4k,16k", "1m", "3000"]`` → token counts (k = 1024, m = 1024²), sorted, no repeats.
    Raises InputError (field ``tokens``) for anything else or a length under 256."""
    out = set()
    for raw in (v.strip().lower() for value in values for v in value.split(",") if v.strip()):
        scale = {"k": 1024, "m": 1024 * 1024}.get(raw[-1:], 1)
        digits = raw[:-1] if scale > 1 else raw
        if not digits.isdigit() or int(digits) * scale < 256:
            raise InputError(f"bad length '{raw}' (say 4k, 16k, 1m or a token count of 256 or more)", field="tokens")
        out.add(int(digits) * scale)
    if not out:
        raise InputError("give at least one length, e.g. --tokens 4k,16k", field="tokens")
    return sorted(out)


def fit(render: Callable[[int], str], target: int, tok: Tokenizer, guess: int) -> tuple[str, int, int]:
    """The text ``render(n)`` whose token count is nearest ``target`` (within TOLERANCE when the
    pieces ``n`` counts allow), found by rescaling ``n`` from ``guess``; returns (text, tokens, n)."""
    n, best, tried = max(1, guess), None, set()
    for _ in range(12):
        text = render(n)
        count = tok.count(text)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (text, count, n)
        if abs(count - target) <= target * TOLERANCE / 2 or n in tried:
            break
        tried.add(n)
        step = round(n * target / count) - n
        n = max(1, n + (step if step else (1 if count < target else -1)))
    assert best is not None
    return best
