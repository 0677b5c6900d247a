"""Graders as rewards: one grader object, the same code path as eval grading.

:func:`as_reward` turns a grader into a TRL-compatible reward function
``f(prompts, completions, **dataset_columns) -> list[float]``; the dataset columns of each
row become the grader's ``item`` and the completion its ``sample``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .graders import GradeResult, grade_many
from .runner import RetryPolicy, grading_session
from .spec import Document, GraderModel, grader_hash, load_grader, read_document
from .store import Store
from .templating import sample_namespace

__all__ = ["as_reward", "load_grader_file", "grade_pairs", "completion_text"]

# keyword arguments TRL passes that are not dataset columns
_TRAINER_KWARGS = {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments"}
_LOG = logging.getLogger(__name__)


def load_grader_file(path: str | Path) -> GraderModel:
    """Load one grader from YAML/JSON: the grader object, or ``{"grader": {...}}`` as OpenAI's
    grader endpoints take it. Raises InputError (file, line, field)."""
    doc = read_document(path)
    if isinstance(doc.data, dict) and "grader" in doc.data and "type" not in doc.data:
        return load_grader(doc.data["grader"], doc, ("grader",))
    return load_grader(doc.data, doc)


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = [m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
        return "".join(p if isinstance(p, str) else "" for p in parts)
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    return str(completion)


async def grade_pairs(grader: GraderModel, pairs: list[tuple[dict, dict]], *, store: Store | None = None,
                      base_url: str | None = None, retry: RetryPolicy | None = None) -> list[GradeResult]:
    """Grade ``(sample, item)`` pairs outside a run; judge calls go through a model pool
    (concurrency, retries, and the response cache when a store is given)."""
    async with grading_session(store=store, base_url=base_url, retry=retry) as context:
        return await grade_many(grader, pairs, context)


def as_reward(grader: GraderModel | dict | str | Path, *, store: Store | None = None,
              base_url: str | None = None) -> Callable[..., list[float]]:
    """A reward function for TRL: ``f(prompts, completions, **columns) -> list[float]``.

    ``grader`` is a grader object, its dict, or a grader file. The function's ``__name__``
    is the grader's name (TRL logs rewards under it), ``grader_hash`` its hash, and
    ``last_results`` the GradeResults of the latest call. When TRL passes ``log_metric``,
    each sub-reward of a multi grader is logged as ``<name>/<key>``.

    A reward is the grader's score exactly as evals record it, also outside [0, 1] (a python
    grader may return any finite float): it is never clamped, so the reward trained on is the
    metric re-evaluated. Such results carry ``details["score_out_of_range"]`` (as in evals) and
    the first batch that has any logs a warning.
    """
    if isinstance(grader, (str, Path)):
        grader = load_grader_file(grader)
    elif isinstance(grader, dict):
        grader = load_grader(grader, Document(data=grader, file="<grader>"))

    def reward(prompts: list[Any] | None = None, completions: list[Any] | None = None,
               **kwargs: Any) -> list[float]:
        completions = list(completions or [])
        columns = {k: v for k, v in kwargs.items() if k not in _TRAINER_KWARGS and isinstance(v, (list, tuple))}
        pairs = []
        for i, completion in enumerate(completions):
            item = {k: v[i] for k, v in columns.items() if i < len(v)}
            pairs.append((sample_namespace(completion_text(completion)), item))
        results = _run(grade_pairs(grader, pairs, store=store, base_url=base_url))
        reward.last_results = results  # type: ignore[attr-defined]
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and results and results[0].sub_rewards:
            for key in results[0].sub_rewards:
                values = [r.sub_rewards.get(key, 0.0) for r in results]
                log_metric(f"{grader.name}/{key}", sum(values) / len(values))
        _note_out_of_range(reward, grader.name, results)
        return [float(r.score) for r in results]

    reward.__name__ = grader.name.replace(" ", "_")
    reward.grader = grader  # type: ignore[attr-defined]
    reward.grader_hash = grader_hash(grader)  # type: ignore[attr-defined]
    reward.last_results = []  # type: ignore[attr-defined]
    return reward


def _note_out_of_range(reward: Any, name: str, results: list[GradeResult]) -> None:
    """Log, once per reward function, that rewards lie outside [0, 1] (grading flagged each)."""
    outside = [r for r in results if r.details.get("score_out_of_range")]
    if outside and not getattr(reward, "warned_out_of_range", False):
        reward.warned_out_of_range = True
        _LOG.warning("grader %r gave %d of %d rewards outside [0, 1] (e.g. %g); they are used as returned",
                     name, len(outside), len(results), outside[0].score)


def _run(coro: Any) -> Any:
    """Run ``coro`` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
