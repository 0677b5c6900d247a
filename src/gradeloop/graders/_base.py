"""The grading interface: one async function per grader type, looked up by ``type``.

A grader implementation receives the typed grader object, the ``sample`` namespace, the
``item`` and a :class:`GradingContext` (how to call a model, for model graders). It never
touches the store: the caller records what it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TemplateError
from ..spec import GraderModel, grader_hash

__all__ = [
    "GradeResult",
    "GradingContext",
    "register_grader",
    "grade",
    "implemented_types",
    "ERROR_FLAGS",
    "grade_many",
]

# OpenAI's run-grader error flags, all present (False) in every result
ERROR_FLAGS = (
    "formula_parse_error", "sample_parse_error", "truncated_observation_error", "unresponsive_reward_error",
    "invalid_variable_error", "other_error", "python_grader_server_error", "python_grader_runtime_error",
    "model_grader_server_error", "model_grader_refusal_error", "model_grader_parse_error",
)
# companions of some flags: a string saying more, or None
ERROR_DETAILS = ("python_grader_server_error_type", "python_grader_runtime_error_details",
                 "model_grader_server_error_details")
# errors that are the grading machinery's fault, not the sample's: the item counts as errored
INFRASTRUCTURE_ERRORS = ("python_grader_server_error", "model_grader_server_error", "unresponsive_reward_error",
                         "other_error")


@dataclass
class GradeResult:
    """A grader's verdict on one sample.

    ``score`` is the reward; ``passed`` is None when the grader could not decide because
    of an infrastructure error. ``errors`` holds OpenAI's error flags that are set, and
    ``details`` any type-specific metadata (sub-rewards, a judge's steps, …).
    """

    score: float
    passed: bool | None = None
    errors: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    sub_rewards: dict[str, float] = field(default_factory=dict)
    token_usage: dict[str, int] = field(default_factory=dict)
    execution_time: float = 0.0

    @property
    def infrastructure_error(self) -> bool:
        """True when the grader failed for reasons the sample did not cause."""
        return any(self.errors.get(flag) for flag in INFRASTRUCTURE_ERRORS)

    def to_run_response(self, grader: GraderModel) -> dict[str, Any]:
        """OpenAI's run-grader response: ``reward``, ``sub_rewards``, ``metadata{…, errors}``."""
        usage = self.token_usage or {}
        return {
            "reward": self.score,
            "sub_rewards": dict(self.sub_rewards),
            "model_grader_token_usage_per_model": dict(self.details.get("token_usage_per_model", {})),
            "metadata": {
                "name": grader.name,
                "type": grader.type,
                "execution_time": self.execution_time,
                "scores": dict(self.details.get("scores", {})),
                "token_usage": usage.get("total_tokens") if usage else None,
                "sampled_model_name": self.details.get("sampled_model_name"),
                "errors": self.error_flags(),
            },
        }

    def error_flags(self) -> dict[str, Any]:
        """Every OpenAI error flag, False unless set, plus any ``*_details`` strings."""
        flags: dict[str, Any] = {flag: False for flag in ERROR_FLAGS}
        flags.update({key: None for key in ERROR_DETAILS})
        flags.update(self.errors)
        return flags


class GradingContext:
    """What a grader may use besides sample and item. The runner gives one that routes model
    calls through its providers (concurrency, retries, cache); the default has none."""

    async def generate(self, model: str, request: Any) -> Any:
        """Call ``model`` with a GenerateRequest; returns a GenerateResult."""
        raise NotImplementedError("this grading context cannot call models")


GradeFn = Callable[[GraderModel, dict, dict, GradingContext], Awaitable[GradeResult]]
BatchFn = Callable[[GraderModel, list[tuple[dict, dict]], GradingContext], Awaitable[list[GradeResult]]]
_IMPLS: dict[str, GradeFn] = {}
_BATCH: dict[str, BatchFn] = {}


def register_grader(kind: str, *, batch: BatchFn | None = None) -> Callable[[GradeFn], GradeFn]:
    """Register the grading function for grader type ``kind`` (a decorator).

    ``batch``, when given, grades many ``(sample, item)`` pairs in one call (an embedding
    batch, a pool of warm workers); :func:`grade_many` uses it.
    """
    def wrap(fn: GradeFn) -> GradeFn:
        _IMPLS[kind] = fn
        if batch is not None:
            _BATCH[kind] = batch
        return fn
    return wrap


def implemented_types() -> list[str]:
    """Grader types that can be graded, sorted."""
    return sorted(_IMPLS)


def passes(grader: GraderModel, score: float) -> bool:
    """Whether ``score`` passes: ``score >= pass_threshold`` when the grader has one, else ``score >= 1``."""
    threshold = grader.pass_threshold_value()
    return score >= (1.0 if threshold is None else threshold)


def _finish(grader: GraderModel, result: GradeResult) -> GradeResult:
    if not 0.0 <= result.score <= 1.0:  # kept as returned (a python grader's or a formula's), and said so
        result.details["score_out_of_range"] = True
    if result.passed is None and not result.infrastructure_error:
        result.passed = passes(grader, result.score) and not any(result.errors.values())
    return result


async def grade_many(grader: GraderModel, pairs: list[tuple[dict[str, Any], dict[str, Any]]],
                     context: GradingContext | None = None) -> list[GradeResult]:
    """Grade many ``(sample, item)`` pairs with one grader; results in the same order."""
    batch = _BATCH.get(grader.type)
    if batch is None:
        return list(await asyncio.gather(*(grade(grader, s, i, context) for s, i in pairs)))
    start = time.perf_counter()
    results = await batch(grader, pairs, context or GradingContext())
    share = (time.perf_counter() - start) / max(1, len(pairs))
    for result in results:
        result.execution_time = result.execution_time or share
        _finish(grader, result)
    return results


async def grade(grader: GraderModel, sample: dict[str, Any], item: dict[str, Any],
                context: GradingContext | None = None) -> GradeResult:
    """Grade one sample with one grader; returns a GradeResult (never raises for bad samples).

    A template that names a variable the sample or item lacks gives score 0 with
    ``invalid_variable_error``.
    """
    impl = _IMPLS.get(grader.type)
    if impl is None:
        raise KeyError(f"no grading function registered for grader type '{grader.type}'")
    start = time.perf_counter()
    try:
        result = await impl(grader, sample, item, context or GradingContext())
    except TemplateError as exc:
        result = GradeResult(score=0.0, errors={"invalid_variable_error": True}, details={"error": exc.message})
    result.execution_time = time.perf_counter() - start
    return _finish(grader, result)


def criterion_id(grader: GraderModel) -> str:
    """The id OpenAI-shaped results use for a testing criterion: ``name-<hash prefix>``."""
    return f"{grader.name}-{grader_hash(grader)[:8]}"
