"""Model graders: ``score_model`` (a judge returns a number) and ``label_model`` (a judge picks a label).

The judge is any provider (a bare name such as ``gpt-4.1`` means the OpenAI-compatible one).
Its prompt is the grader's ``input`` messages, templates rendered, with an instruction to
answer in OpenAI's grader format ``{"result": …, "steps": [{"description", "conclusion"}]}``;
the request also carries that JSON schema as ``response_format`` (providers that cannot
enforce it ignore it), and the answer is parsed robustly. Calls go through the grading
context: for a run, the runner's providers, concurrency, retries and cache.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import ProviderError
from ..models import GenerateRequest
from ..spec import LabelModelGrader, ScoreModelGrader
from ..templating import render_message
from ._base import GradeResult, GradingContext, register_grader

_STEPS = {"type": "array", "items": {"type": "object", "properties": {
    "description": {"type": "string"}, "conclusion": {"type": "string"}},
    "required": ["description", "conclusion"], "additionalProperties": False}}


def _score_format(low: float, high: float) -> tuple[str, dict[str, Any]]:
    instruction = (
        "Grade as instructed. Reply with only a JSON object of the form "
        '{"steps": [{"description": "...", "conclusion": "..."}], "result": <number>} '
        f"where result is a number from {low:g} to {high:g}."
    )
    schema = {"type": "object", "properties": {"steps": _STEPS, "result": {"type": "number"}},
              "required": ["steps", "result"], "additionalProperties": False}
    return instruction, schema


def _label_format(labels: list[str]) -> tuple[str, dict[str, Any]]:
    instruction = (
        "Classify as instructed. Reply with only a JSON object of the form "
        '{"steps": [{"description": "...", "conclusion": "..."}], "result": "<label>"} '
        f"where result is exactly one of: {', '.join(json.dumps(label) for label in labels)}."
    )
    schema = {"type": "object", "properties": {"steps": _STEPS, "result": {"type": "string", "enum": labels}},
              "required": ["steps", "result"], "additionalProperties": False}
    return instruction, schema


def judge_request(grader: ScoreModelGrader | LabelModelGrader, sample: dict, item: dict, instruction: str,
                  schema: dict[str, Any]) -> GenerateRequest:
    """The judge's request: rendered messages, the format instruction, params, response_format."""
    ctx = {"item": item, "sample": sample}
    messages = [render_message(m.model_dump(exclude_none=True), ctx) for m in grader.input]
    first = messages[0] if messages else None
    if first is not None and first["role"] in ("system", "developer") and isinstance(first["content"], str):
        messages[0] = {**first, "content": f"{first['content']}\n\n{instruction}"}
    else:
        messages.insert(0, {"role": "system", "content": instruction})
    params = grader.sampling_params.to_request() if grader.sampling_params else {}
    params["response_format"] = {"type": "json_schema",
                                 "json_schema": {"name": f"{grader.type}_result", "strict": True, "schema": schema}}
    return GenerateRequest(messages=messages, params=params)


async def _judge(grader: ScoreModelGrader | LabelModelGrader, sample: dict, item: dict, context: GradingContext,
                 instruction: str, schema: dict[str, Any]) -> GradeResult | tuple[Any, GradeResult]:
    """Ask the judge. Returns a finished GradeResult when the call failed or the judge refused,
    else ``(parsed result value, a GradeResult template)`` carrying details and token usage."""
    request = judge_request(grader, sample, item, instruction, schema)
    resolve = getattr(context, "model_name", None)
    name = resolve(grader.model) if resolve else grader.model
    try:
        result = await context.generate(grader.model, request)
    except ProviderError as exc:
        return GradeResult(score=0.0, errors={"model_grader_server_error": True,
                                              "model_grader_server_error_details": exc.message},
                           details={"sampled_model_name": name})
    usage = {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens,
             "total_tokens": result.usage.total_tokens}
    template = GradeResult(score=0.0, token_usage=usage, details={
        "sampled_model_name": name, "token_usage_per_model": {name: dict(usage)}, "judge_output": result.output_text})
    if result.message.get("refusal"):
        template.errors["model_grader_refusal_error"] = True
        return template
    value, steps = parse_judge_output(result.output_text)
    template.details["steps"] = steps
    return value, template


def parse_judge_output(text: str) -> tuple[Any, list[dict[str, Any]]]:
    """``(result, steps)`` from a judge's answer: a JSON object (also inside a code fence or
    surrounded by prose), or a bare value. ``result`` is None when nothing usable is found."""
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, flags=re.DOTALL)
    candidates = [stripped] + ([fenced.group(1)] if fenced else [])
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start:end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and "result" in data:
            steps = data.get("steps") if isinstance(data.get("steps"), list) else []
            return data["result"], steps
        if isinstance(data, (int, float, str)) and not isinstance(data, bool):
            return data, []
    match = re.search(r'"?result"?\s*[:=]\s*"?([^",}\n]+)"?', stripped)
    if match:
        return match.group(1).strip(), []
    return (stripped or None), []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:/\s*\d+)?\s*", value)
        if not match:
            return None
        number = float(match.group(1))
    else:
        return None
    return number if math.isfinite(number) else None


@register_grader("score_model")
async def grade_score_model(grader: ScoreModelGrader, sample: dict, item: dict,
                            context: GradingContext) -> GradeResult:
    """The judge's ``result`` clipped to ``range``; 0 with ``model_grader_parse_error`` when it is not a number."""
    low, high = grader.range
    outcome = await _judge(grader, sample, item, context, *_score_format(low, high))
    if isinstance(outcome, GradeResult):
        return outcome
    value, result = outcome
    number = _number(value)
    if number is None:
        result.errors["model_grader_parse_error"] = True
    else:
        result.score = min(max(number, low), high)
    return result


def match_label(value: Any, text: str, labels: list[str]) -> str | None:
    """The label a judge chose: its ``result`` (case-insensitive), else the one label its text names."""
    if isinstance(value, str):
        wanted = value.strip().strip(".\"'").casefold()
        for label in labels:
            if label.casefold() == wanted:
                return label
    found = [label for label in labels
             if re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, flags=re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


@register_grader("label_model")
async def grade_label_model(grader: LabelModelGrader, sample: dict, item: dict,
                            context: GradingContext) -> GradeResult:
    """1 when the judge's label is in ``passing_labels``, else 0; the label is in ``details``."""
    outcome = await _judge(grader, sample, item, context, *_label_format(grader.labels))
    if isinstance(outcome, GradeResult):
        return outcome
    value, result = outcome
    label = match_label(value, result.details["judge_output"], grader.labels)
    if label is None:
        result.errors["model_grader_parse_error"] = True
        return result
    result.details["label"] = label
    result.passed = label in grader.passing_labels
    result.score = 1.0 if result.passed else 0.0
    return result
