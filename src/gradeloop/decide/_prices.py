"""Model prices (USD per million tokens, or per machine hour) and what a run cost."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..report import percentile
from ..store import Store

# Published list prices (standard tier, no batch discount), USD per million tokens. Each entry
# names the stored page it was checked against and that page's date.
DEFAULT_PRICES_YAML = """
# https://hex.pm/packages/openai_responses/0.4.1/files/lib/responses/pricing.ex
# (copied from platform.openai.com/docs/pricing, updated 2025-06-03)
gpt-4.1: {input: 2.00, cached_input: 0.50, output: 8.00}
gpt-4.1-mini: {input: 0.40, cached_input: 0.10, output: 1.60}
gpt-4.1-nano: {input: 0.10, cached_input: 0.025, output: 0.40}
gpt-4o: {input: 2.50, cached_input: 1.25, output: 10.00}
# https://docs.rs/crate/openai-models/0.1.1/source/src/lib.rs (from openai.com/api/pricing, 2024-12)
gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}
# https://www.calcis.dev/models/o3 (verified 2026-04-06; after the 2025-06 price cut)
o3: {input: 2.00, cached_input: 0.50, output: 8.00}
# https://www.helicone.ai/model/o4-mini (OpenAI provider row, page of 2026)
o4-mini: {input: 1.10, cached_input: 0.275, output: 4.40}
# models on your own machine: free unless you give a machine price, e.g. local: {per_hour: 0.5}
local: {per_hour: 0}
hf: {per_hour: 0}
ft: {per_hour: 0}
"""

_FIELDS = ("input", "cached_input", "output", "per_hour")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Price:
    """USD per million input, cached input and output tokens; or USD per hour of the run's wall
    time (``per_hour``, for a machine of your own). ``cached_input`` defaults to ``input``."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    per_hour: float | None = None

    def tokens_cost(self, prompt: int, cached: int, completion: int) -> float:
        """USD for these tokens (``cached`` is the part of ``prompt`` served from the prompt cache)."""
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((prompt - cached) * self.input + cached * cached_rate + completion * self.output) / 1e6


@dataclass
class PriceTable:
    """Prices by model name, matched leniently by :meth:`lookup`."""

    prices: dict[str, Price]
    sources: list[str] = field(default_factory=list)

    def lookup(self, model: str | None) -> tuple[str, Price] | None:
        """``(key, price)`` for a model name, trying the name itself, then without its provider
        (``openai/gpt-4.1`` → ``gpt-4.1``), then without a dated snapshot suffix
        (``gpt-4.1-2025-04-14`` → ``gpt-4.1``), then its provider (``local``, ``hf``, ``ft``);
        None when nothing matches."""
        if not model:
            return None
        provider, _, bare = model.partition("/") if "/" in model else (model.split(":")[0], "", model)
        for key in (model, bare, _SNAPSHOT.sub("", bare), provider):
            if key in self.prices:
                return key, self.prices[key]
        return None


def _parse(data: Any, file: str, lines: dict[tuple, int] | None = None) -> dict[str, Price]:
    lines = lines or {}
    if not isinstance(data, dict):
        raise InputError("a price table is a mapping: {MODEL: {input: …, cached_input: …, output: …}}", file=file)
    out = {}
    for model, entry in data.items():
        where = {"file": file, "line": lines.get((model,)), "field": str(model)}
        if not isinstance(entry, dict) or not entry:
            raise InputError("give input, cached_input and output (USD per million tokens) or per_hour", **where)
        for key, value in entry.items():
            at = {**where, "line": lines.get((model, key), where["line"]), "field": f"{model}.{key}"}
            if key not in _FIELDS:
                raise InputError(f"unknown price '{key}' (use {', '.join(_FIELDS)})", **at)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"a price is a number of USD, 0 or more; got {value!r}", **at)
        out[str(model)] = Price(**{k: float(v) for k, v in entry.items()})
    return out


def _read(path: str | Path) -> dict[str, Price]:
    from ..spec._load import read_document

    doc = read_document(path)
    return _parse(doc.data, doc.file, doc.lines)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The built-in prices, overridden model by model by the file in ``GRADELOOP_PRICES`` and
    then by ``path``. Raises InputError (file, line, field) for a bad table."""
    prices = _parse(yaml.safe_load(DEFAULT_PRICES_YAML), "built-in prices")
    sources = ["built-in"]
    for extra in (os.environ.get("GRADELOOP_PRICES"), path):
        if extra:
            prices.update(_read(extra))
            sources.append(str(extra))
    return PriceTable(prices, sources)


@dataclass
class RunCost:
    """What a run's sampled model and its judges cost, its latency and its tokens.

    ``cost_per_1k_items`` is the mean cost of one sample × 1,000: what answering 1,000 items
    once costs (samples answered from gradeloop's response cache count at their tokens' price,
    since a fresh run pays for them). None where the model has no price."""

    run_id: str
    model: str | None
    price_key: str | None
    samples: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: float | None
    cost_per_1k_items: float | None
    judge_prompt_tokens: int
    judge_completion_tokens: int
    judge_cost_usd: float | None
    judge_cost_per_1k_items: float | None
    unpriced: list[str]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    wall_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """The plain-data (JSON) form."""
        return asdict(self)


def _sample_tokens(store: Store, run_id: str) -> tuple[int, int, int, int]:
    """``(samples, prompt, cached, completion)`` over every ok sample of the run, cached ones included."""
    row = store.conn.execute(
        "SELECT COUNT(*), SUM(COALESCE(prompt_tokens, 0)), SUM(COALESCE(cached_tokens, 0)),"
        " SUM(COALESCE(completion_tokens, 0)) FROM samples WHERE run_id = ? AND status = 'ok'", (run_id,)).fetchone()
    return row[0] or 0, row[1] or 0, row[2] or 0, row[3] or 0


def run_cost(store: Store, run_id: str, prices: PriceTable | None = None) -> RunCost:
    """Cost, latency and tokens of a run (its own token counts; judge calls apart)."""
    prices = prices or load_prices()
    rid = store.resolve_run_id(run_id)
    run = store.get_run(rid)
    wall = run["finished_at"] - run["started_at"] if run["started_at"] and run["finished_at"] else None
    samples, prompt, cached, completion = _sample_tokens(store, rid)
    found = prices.lookup(run["model"])
    unpriced = [] if found or not run["model"] else [run["model"]]
    cost = _cost(found[1], prompt, cached, completion, wall) if found else None
    judges = [u for u in store.usage(rid) if u["purpose"] == "grader"]
    judge_cost: float | None = 0.0
    for u in judges:
        hit = prices.lookup(u["model"])
        if hit is None:
            unpriced.append(u["model"])
            judge_cost = None
        elif judge_cost is not None:
            judge_cost += _cost(hit[1], u["prompt_tokens"], u["cached_tokens"], u["completion_tokens"], None) or 0.0
    latencies = store.latencies(rid)
    return RunCost(
        rid, run["model"] or None, found[0] if found else None, samples, prompt, cached, completion, cost,
        _per_1k(cost, samples), sum(u["prompt_tokens"] for u in judges), sum(u["completion_tokens"] for u in judges),
        judge_cost, _per_1k(judge_cost, samples), unpriced, percentile(latencies, 50), percentile(latencies, 95), wall)


def _cost(price: Price, prompt: int, cached: int, completion: int, wall_s: float | None) -> float | None:
    if price.per_hour is not None:
        if price.per_hour == 0:
            return 0.0
        return None if wall_s is None else price.per_hour * wall_s / 3600
    return price.tokens_cost(prompt, cached, completion)


def _per_1k(cost: float | None, samples: int) -> float | None:
    return None if cost is None or not samples else 1000 * cost / samples
