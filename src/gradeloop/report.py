"""Runs and output items in OpenAI's shapes, and per-run summaries, read from the store."""

from __future__ import annotations

import json
import math
from typing import Any

from .graders import criterion_id
from .models import is_empty_message
from .redact import scrub_json
from .spec import parse_criteria
from .stats import pass_at_k, pass_hat_k, rate
from .store import Store
from .templating import field_at

__all__ = ["run_object", "output_item_objects", "output_item_list", "run_list", "list_object", "openai_model_name",
           "run_summary", "percentile", "breakdown", "eval_metric", "effective_length_summary", "criterion_rates", "compare_runs", "export_rows", "export_run", "EXPORT_FORMATS",
           "consistency_summary", "agent_summary", "episode_records", "trajectory_steps"]


def openai_model_name(name: str | None) -> tuple[str | None, str | None]:
    """``"openai/gpt-4.1"`` → ``("gpt-4.1", "openai")``: the model as OpenAI's objects name it,
    and the provider (None for names without one, such as ``ft:<job>``)."""
    if not name or name.startswith("ft:") or "/" not in name:
        return name or None, None
    provider, _, model = name.partition("/")
    return model, provider


def list_object(data: list[dict[str, Any]], *, has_more: bool = False) -> dict[str, Any]:
    """OpenAI's list shape: ``{"object": "list", "data", "first_id", "last_id", "has_more"}``."""
    return {"object": "list", "data": data, "first_id": data[0].get("id") if data else None,
            "last_id": data[-1].get("id") if data else None, "has_more": has_more}


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _criteria(store: Store, run: dict[str, Any]) -> list[Any]:
    definition = store.get_eval(run["eval_id"])["definition"]
    return parse_criteria(definition["testing_criteria"])


def run_object(store: Store, run_id: str) -> dict[str, Any]:
    """The run as OpenAI's ``eval.run`` object, plus a ``gradeloop`` block of additions.

    A run whose runner died (kill -9, crash) is ``failed`` with the error code ``interrupted``
    (:meth:`Store.reap_interrupted`); ``gradeloop.interrupted`` says so and
    ``gradeloop.resume_command`` says how to finish it. ``gradeloop.empty_outputs`` counts the
    graded samples in which the model said nothing (each also counted as passed or failed;
    ``result_counts`` keeps OpenAI's shape)."""
    rid = store.resolve_run_id(run_id)
    store.reap_interrupted([rid])
    run = store.get_run(rid)
    criteria = _criteria(store, run)
    epochs = (run["config"] or {}).get("epochs") or 1
    total = len(store.run_items(rid)) * epochs
    counts = store.result_counts(rid)
    counts["total"] = max(total, counts["total"])
    by_index = {c["criterion"]: c for c in store.criteria_counts(rid)}
    usage = store.usage(rid)
    latencies = store.latencies(rid)
    outcomes = list(store.item_outcomes(rid).values())
    interval = rate(outcomes)
    data_source = dict(run["data_source"] or {})
    model, provider = openai_model_name(run["model"])
    if model and data_source.get("type") != "jsonl":
        data_source["model"] = model
    return {
        "object": "eval.run",
        "id": rid,
        "eval_id": run["eval_id"],
        "created_at": run["created_at"],
        "name": run["name"],
        "model": model,
        "status": run["status"],
        "metadata": run["metadata"] or {},
        "data_source": data_source,
        "error": run["error"],
        "report_url": None,
        "result_counts": counts,
        # one entry per model and purpose: a judge's tokens never merge into the sampled model's
        "per_model_usage": [
            {"model_name": openai_model_name(u["model"])[0], "invocation_count": u["invocations"],
             "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
             "total_tokens": u["prompt_tokens"] + u["completion_tokens"], "cached_tokens": u["cached_tokens"],
             "gradeloop": {"model": u["model"], "purpose": u["purpose"]}}
            for u in usage
        ],
        "per_testing_criteria_results": [
            {"testing_criteria": criterion_id(c), "passed": by_index.get(i, {}).get("passed", 0),
             "failed": by_index.get(i, {}).get("failed", 0)}
            for i, c in enumerate(criteria)
        ],
        "gradeloop": {
            "model": run["model"] or None,
            "provider": provider,
            "epochs": epochs,
            "dataset": (run["metadata"] or {}).get("gradeloop_dataset"),
            "started_at": run["started_at"],
            "finished_at": run["finished_at"],
            "cached_samples": sum(u["cached_samples"] for u in usage if u["purpose"] == "sample"),
            "usage_by_purpose": usage,
            "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
            "pass_rate": {"value": interval.value, "low": interval.low, "high": interval.high, "confidence": 0.95,
                          "items": interval.items},
            "pass_at_k": _pass_at_k(outcomes, epochs),
            "pass_hat_k": _pass_at_k(outcomes, epochs, pass_hat_k),
            "criteria": [
                {"name": c.name, "type": c.type, "id": criterion_id(c),
                 "grader_hash": by_index.get(i, {}).get("grader_hash"),
                 "passed": by_index.get(i, {}).get("passed", 0), "failed": by_index.get(i, {}).get("failed", 0),
                 "errored": by_index.get(i, {}).get("errored", 0),
                 "mean_score": by_index.get(i, {}).get("mean_score")}
                for i, c in enumerate(criteria)
            ],
            "calls": store.call_counts(rid),
            "empty_outputs": sum(is_empty_message(m) for m in store.outputs_without_text(rid)),
            "interrupted": _interrupted(run),
            "resume_command": f"gradeloop eval resume {rid}" if run["status"] in ("failed", "canceled") else None,
        },
    }


def _interrupted(run: dict[str, Any]) -> bool:
    return run["status"] == "failed" and (run["error"] or {}).get("code") == "interrupted"


def _pass_at_k(outcomes: list[list[int]], epochs: int, estimator: Any = pass_at_k) -> dict[str, float]:
    """Mean unbiased pass@k (or, with ``estimator=pass_hat_k``, pass^k: all k pass) over items
    that have all ``epochs`` samples, for k = 1, 2, 5, 10, … up to ``epochs`` (empty for one epoch)."""
    full = [o for o in outcomes if len(o) == epochs]
    if epochs < 2 or not full:
        return {}
    ks = sorted({k for k in (1, 2, 5, 10, 20, 50, 100) if k <= epochs} | {epochs})
    return {str(k): sum(estimator(epochs, sum(o), k) for o in full) / len(full) for k in ks}


def run_list(store: Store, *, limit: int = 50, status: str | None = None) -> dict[str, Any]:
    """OpenAI's list shape: ``{"object": "list", "data": [run, …], first_id, last_id, has_more}``."""
    store.reap_interrupted()
    runs = store.list_runs(limit=limit + 1, status=status)
    return list_object([run_object(store, r["id"]) for r in runs[:limit]], has_more=len(runs) > limit)


def _result_type(kind: str) -> str:
    return kind.replace("_", "-") + "-grader"


def output_item_objects(store: Store, run_id: str, *, status: str | None = None,
                        limit: int | None = None) -> list[dict[str, Any]]:
    """The run's output items as OpenAI's ``eval.run.output_item`` objects."""
    run = store.get_run(run_id)
    criteria = _criteria(store, run)
    ids = [criterion_id(c) for c in criteria]
    items = []
    for o in store.output_items(run["id"], status=status, limit=limit):
        results = []
        for s in o["scores"]:
            errors = (s["result"] or {}).get("errors") or {}
            results.append({
                "name": ids[s["criterion"]] if s["criterion"] < len(ids) else s["name"],
                "type": _result_type(s["type"]), "score": s["score"], "passed": s["passed"],
                "sample": None, "criterion": s["name"], "grader_hash": s["grader_hash"],
                **({"errors": errors} if errors else {}),
                **({"details": s["result"]["details"]} if (s["result"] or {}).get("details") else {}),
            })
        items.append({
            "object": "eval.run.output_item", "id": o["id"], "run_id": run["id"], "eval_id": run["eval_id"],
            "created_at": o["created_at"], "status": o["status"], "datasource_item_id": o["index"],
            "datasource_item": o["item"], "results": results, "sample": _sample_object(o["sample"]),
            "epoch": o["epoch"], "gradeloop": {"empty_output": _empty(o["sample"]), **_trajectory(o["sample"])},
        })
    return items


def _trajectory(sample: dict[str, Any] | None) -> dict[str, Any]:
    """``{"trajectory": …}`` for an agent episode's sample, else nothing."""
    trajectory = (sample or {}).get("trajectory")
    return {"trajectory": trajectory} if trajectory is not None else {}


def _empty(sample: dict[str, Any] | None) -> bool:
    """True for a model's sample that holds no text, no tool call and no refusal."""
    return bool(sample) and sample["status"] == "ok" and is_empty_message(sample["output"] or {})


def output_item_list(store: Store, run_id: str, *, status: str | None = None,
                     limit: int | None = None) -> dict[str, Any]:
    """The run's output items in OpenAI's list shape (``has_more`` when ``limit`` cut it)."""
    items = output_item_objects(store, run_id, status=status, limit=limit + 1 if limit else None)
    return list_object(items[:limit] if limit else items, has_more=bool(limit) and len(items) > limit)


def _sample_object(sample: dict[str, Any] | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    params = sample.get("params") or {}
    usage = {"prompt_tokens": sample["prompt_tokens"] or 0, "completion_tokens": sample["completion_tokens"] or 0,
             "total_tokens": (sample["prompt_tokens"] or 0) + (sample["completion_tokens"] or 0),
             "cached_tokens": sample["cached_tokens"] or 0}
    return {
        "input": sample["input"] or [],
        "output": [sample["output"]] if sample["output"] else [],
        "finish_reason": sample["finish_reason"],
        "model": openai_model_name(sample["model"])[0],
        "usage": usage,
        "error": sample["error"],
        "temperature": params.get("temperature"),
        "max_completion_tokens": params.get("max_completion_tokens"),
        "top_p": params.get("top_p"),
        "seed": params.get("seed"),
        "cached": sample["cached"],
        "latency_ms": sample["latency_ms"],
    }


def run_summary(store: Store, run_id: str) -> dict[str, Any]:
    """A compact summary: counts, pass rate overall and per criterion, tokens, latency p50/p95."""
    run = run_object(store, run_id)
    counts = run["result_counts"]
    graded = counts["passed"] + counts["failed"]
    gl = run["gradeloop"]
    sampled = [u for u in run["per_model_usage"] if u["gradeloop"]["purpose"] == "sample"]  # judges apart
    return {
        "run_id": run["id"], "model": gl["model"] or "(given samples)", "status": run["status"],
        "total": counts["total"], "passed": counts["passed"], "failed": counts["failed"],
        "errored": counts["errored"], "empty": gl["empty_outputs"],
        "pass_rate": counts["passed"] / graded if graded else None,
        "pass_rate_interval": [gl["pass_rate"]["low"], gl["pass_rate"]["high"]],
        "pass_at_k": gl["pass_at_k"], "pass_hat_k": gl["pass_hat_k"],
        "criteria": [{"name": c["name"], "pass_rate": c["passed"] / (c["passed"] + c["failed"])
                      if c["passed"] + c["failed"] else None} for c in gl["criteria"]],
        "prompt_tokens": sum(u["prompt_tokens"] for u in sampled),
        "completion_tokens": sum(u["completion_tokens"] for u in sampled),
        "cached_samples": gl["cached_samples"],
        "latency_p50_ms": gl["latency_ms"]["p50"], "latency_p95_ms": gl["latency_ms"]["p95"],
    }


def breakdown(store: Store, run_id: str, field: str) -> list[dict[str, Any]]:
    """Pass rates grouped by an item field (``category``, ``difficulty``, ``a.b``…), sorted by value:
    ``[{field, value, passed, failed, errored, total, pass_rate, mean_score, prompt_tokens,
    completion_tokens, criteria}]`` (tokens of the sampled model, not counting cached samples;
    ``criteria``: each criterion's passed, failed, errored, pass_rate and mean_score in that group,
    so a code-edit run shows applies / tests_pass / extraneous_edits / lint_delta per format or
    kind). The pass rate and the mean score (per output item the mean over criteria, then over
    output items) leave errored items out."""
    run_id = store.resolve_run_id(run_id)
    rows = []
    tokens = store.tokens_by_field(run_id, field)
    means = store.mean_scores_by_field(run_id, field)
    criteria = store.criteria_by_field(run_id, field)
    for value, c in store.counts_by_field(run_id, field).items():
        graded = c["pass"] + c["fail"]
        prompt, completion = tokens.get(value, (0, 0))
        rows.append({"field": field, "value": value, "passed": c["pass"], "failed": c["fail"],
                     "errored": c["error"], "total": graded + c["error"],
                     "pass_rate": c["pass"] / graded if graded else None, "mean_score": means.get(value),
                     "prompt_tokens": prompt, "completion_tokens": completion,
                     "criteria": [{**k, "pass_rate": k["passed"] / (k["passed"] + k["failed"])
                                   if k["passed"] + k["failed"] else None} for k in criteria.get(value, [])]})
    return sorted(rows, key=_value_order)


def _value_order(row: dict[str, Any]) -> tuple:
    """Numbers first in numeric order (4096 before 16384), then other values as text, None last."""
    value = row["value"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (value is None, not number, value if number else 0, "" if number else str(value))


def eval_metric(store: Store, run_id: str) -> str:
    """The score an eval reports, from its ``metadata.gradeloop_metric``: ``mean_score`` (MRCR,
    Graphwalks: a graded score, where passing means a perfect answer) or ``pass_rate`` (the default)."""
    run = store.get_run(store.resolve_run_id(run_id))
    metadata = store.get_eval(run["eval_id"])["definition"].get("metadata") or {}
    return "mean_score" if metadata.get("gradeloop_metric") == "mean_score" else "pass_rate"


def effective_length_summary(store: Store, run_id: str, *, field: str = "length_bin", ratio: float = 0.85,
                             absolute: float | None = None, metric: str | None = None) -> dict[str, Any] | None:
    """The run's effective length (see ``suites._effective``) from its score per ``field`` value
    (numeric lengths in tokens): the pass rate, or the mean score when the eval says it reports
    one (:func:`eval_metric`; ``metric`` overrides). ``metric`` in the result names the score used
    and each bin holds it under that name. None when no item carries a numeric ``field``."""
    from .suites._effective import effective_length

    metric = metric or eval_metric(store, run_id)
    rows = [r for r in breakdown(store, run_id, field) if isinstance(r["value"], (int, float))]
    if not rows:
        return None
    scores = {int(r["value"]): r[metric] for r in rows}
    return {"field": field, **effective_length(scores, ratio, absolute, metric)}


def criterion_rates(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Per criterion whose grader reports ``details.rates`` (the grounding grader does): each rate's
    mean over the samples that report it, ``[{"criterion", "name", "rates": {name: {"rate", "n"}}}]``."""
    sums: dict[int, tuple[str, dict[str, list[int]]]] = {}
    for criterion, name, rates in store.score_rates(store.resolve_run_id(run_id)):
        entry = sums.setdefault(criterion, (name, {}))[1]
        for key, value in rates.items():
            entry.setdefault(key, []).append(int(value))
    return [{"criterion": c, "name": name,
             "rates": {k: {"rate": sum(v) / len(v), "n": len(v)} for k, v in values.items()}}
            for c, (name, values) in sorted(sums.items())]


def consistency_summary(store: Store, run_id: str, by: list[str] | tuple[str, ...] = ()) -> dict[str, Any] | None:
    """pass@k beside pass^k (τ-bench's: all k of k tries pass) per item, overall and per value of
    each ``by`` item field, for a run with several epochs (see
    :func:`gradeloop.agents._metrics.consistency`); per-item rows carry the item ``index``.
    None for a run with one epoch or no item graded in every epoch."""
    from .agents._metrics import consistency

    rid = store.resolve_run_id(run_id)
    epochs = (store.get_run(rid)["config"] or {}).get("epochs") or 1
    if epochs < 2:
        return None
    items = {r["index"]: r["item"] for r in store.run_items(rid)}
    groups = {field: {i: field_at(item, field) for i, item in items.items()} for field in by}
    table = consistency(store.item_outcomes(rid), epochs, groups)
    if table is not None:
        table["per_item"] = [{"index": row.pop("key"), **row} for row in table["per_item"]]
    return table


def episode_records(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's graded and errored output items as episode records for
    :mod:`gradeloop.agents._metrics`: ``{"index", "epoch", "item", "passed", "trajectory"}``
    (``passed`` None for an errored item)."""
    return [{"index": o["index"], "epoch": o["epoch"], "item": o["item"],
             "passed": None if o["status"] == "error" else o["status"] == "pass",
             "trajectory": (o["sample"] or {}).get("trajectory")} for o in store.output_items(run_id)]


def agent_summary(store: Store, run_id: str, *, by: list[str] | tuple[str, ...] = (),
                  ambiguous_field: str = "ambiguous") -> dict[str, Any] | None:
    """The episode metrics of a run (:func:`gradeloop.agents._metrics.agent_metrics`: episode
    counts, success with and without injected faults, recovery and gave-up rates, clarification
    precision and recall against the item field ``ambiguous_field``), overall and, under
    ``by``, per value of each item field; None when no sample of the run is an agent episode."""
    from .agents._metrics import agent_metrics

    rid = store.resolve_run_id(run_id)
    if store.conn.execute("SELECT 1 FROM samples WHERE run_id = ? AND trajectory IS NOT NULL LIMIT 1",
                          (rid,)).fetchone() is None:
        return None  # not an agent run: no need to read every output item
    records = episode_records(store, rid)
    overall = agent_metrics(records, ambiguous_field=ambiguous_field)
    if overall is None:
        return None
    overall["by"] = {}
    for field in by:
        buckets: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            buckets.setdefault(json.dumps(field_at(r["item"], field), default=str, sort_keys=True), []).append(r)
        overall["by"][field] = [{"value": json.loads(v), **(agent_metrics(rows, ambiguous_field=ambiguous_field) or {})}
                                for v, rows in sorted(buckets.items())]
    return overall


TEXT_LIMIT = 400  # characters of a message, argument list or tool result shown per step


def _short(value: Any, limit: int = TEXT_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trajectory_steps(trajectory: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An episode as a list of readable steps, in order: ``{"kind": "message", "role", "turn",
    "text"}`` for system, user and assistant text; ``{"kind": "call", "turn", "name",
    "arguments"}`` per tool call; ``{"kind": "result", "turn", "name", "text", "error",
    "injected"}`` per tool result (``error`` the error type, or None); and a closing
    ``{"kind": "end", "text"}``. Texts are shortened to TEXT_LIMIT characters."""
    if not isinstance(trajectory, dict):
        return []
    calls = {c.get("id"): c for c in trajectory.get("tool_calls") or [] if isinstance(c, dict)}
    steps: list[dict[str, Any]] = []
    if trajectory.get("messages"):
        turn = 0
        for message in trajectory["messages"]:
            turn += message.get("role") == "assistant"
            steps += _message_steps(message, turn, calls)
    else:  # no conversation stored: the calls alone
        for call in calls.values():
            steps += [_call_step(call.get("turn"), call.get("name"), call.get("arguments")),
                      _result_step(call.get("turn"), call, call.get("result"))]
    steps.append({"kind": "end", "text": _end_text(trajectory)})
    return steps


def _call_step(turn: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"kind": "call", "turn": turn, "name": name, "arguments": _short(arguments if arguments is not None else {})}


def _result_step(turn: Any, call: dict[str, Any] | None, content: Any) -> dict[str, Any]:
    error = (call or {}).get("error") or None
    text = _short(error.get("message", "")) if error else _short(content if content is not None else "")
    return {"kind": "result", "turn": turn, "name": (call or {}).get("name"), "text": text,
            "error": error.get("type") if error else None, "injected": bool(error and error.get("injected"))}


def _message_steps(message: dict[str, Any], turn: int, calls: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        return [_result_step(turn, calls.get(message.get("tool_call_id")), message.get("content"))]
    steps = []
    content = message.get("content")
    if content:
        steps.append({"kind": "message", "role": role, "turn": turn if role == "assistant" else None,
                      "text": _short(content)})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        stored = calls.get(call.get("id")) or {}
        steps.append(_call_step(turn, function.get("name"), stored.get("arguments", function.get("arguments"))))
    return steps


def _end_text(trajectory: dict[str, Any]) -> str:
    faults, turns = trajectory.get("faults") or 0, trajectory.get("turns")
    parts = [f"stop: {trajectory.get('stop_reason')}", f"{turns} turn{'s' if turns != 1 else ''}",
             f"{faults} injected fault{'s' if faults != 1 else ''}",
             f"asked: {'yes' if trajectory.get('asked') else 'no'}"]
    if trajectory.get("final_state"):
        parts.append(f"final state: {_short(trajectory['final_state'])}")
    return "; ".join(parts)


def _outcomes(store: Store, run_id: str) -> tuple[dict[tuple[str, int], dict[str, Any]], int]:
    """Per item of a run, keyed by its content (and its occurrence, for repeated items):
    ``{"item", "all": [0/1 per epoch], "criteria": {name: [0/1 per epoch]}}``; and how many
    output items errored (left out)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[str, int] = {}
    keys: dict[int, tuple[str, int]] = {}
    errored = 0
    for o in store.output_items(run_id):
        if o["index"] not in keys:
            text = json.dumps(o["item"], sort_keys=True, default=str)
            keys[o["index"]] = (text, seen.get(text, 0))
            seen[text] = seen.get(text, 0) + 1
        entry = out.setdefault(keys[o["index"]], {"item": o["item"], "all": [], "criteria": {}})
        if o["status"] == "error":
            errored += 1
            continue
        entry["all"].append(int(o["status"] == "pass"))
        for s in o["scores"]:
            if s["passed"] is not None:
                entry["criteria"].setdefault(s["name"], []).append(int(s["passed"]))
    return out, errored


def compare_runs(store: Store, run_a: str, run_b: str, *, by: list[str] | None = None,
                 confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """B against A, item by item, on the items both runs answered (matched by content, so
    two runs of the same eval file compare even when they were started apart).

    Returns ``{"object": "gradeloop.comparison", "a", "b", "items", "overall", "criteria", "by", "holm"}``;
    each comparison holds both pass rates with intervals, the difference with its paired
    bootstrap interval, the p-value (McNemar exact for one sample per item, else a sign-flip
    test), and the smallest difference this many items can detect; the criterion and group rows
    also carry ``p_holm``, corrected (Holm) across those rows. Raises InputError when
    the runs share no item.
    """
    from ._checks import in_range
    from .errors import InputError
    from .stats import compare_paired

    in_range(confidence, 0.5, 0.999, "confidence")
    runs = [store.get_run(store.resolve_run_id(r)) for r in (run_a, run_b)]
    (oa, ea), (ob, eb) = (_outcomes(store, r["id"]) for r in runs)
    shared = [k for k in oa if k in ob]
    if not shared:
        raise InputError(f"runs {runs[0]['id']} and {runs[1]['id']} share no item: compare runs of the same eval",
                         field="run_id")

    def compare(keys: list[tuple[str, int]], criterion: str | None = None) -> dict[str, Any]:
        def pick(entry: dict[str, Any]) -> list[int]:
            return entry["all"] if criterion is None else entry["criteria"].get(criterion, [])
        result = compare_paired([pick(oa[k]) for k in keys], [pick(ob[k]) for k in keys],
                                confidence=confidence, seed=seed)
        return result.to_dict()

    names = [n for n in dict.fromkeys(c for k in shared for c in oa[k]["criteria"])
             if any(n in ob[k]["criteria"] for k in shared)]
    groups = []
    for field in by or []:
        values: dict[str, list[tuple[str, int]]] = {}
        for k in shared:
            values.setdefault(json.dumps(field_at(oa[k]["item"], field), default=str), []).append(k)
        for value, keys in sorted(values.items()):
            groups.append({"field": field, "value": json.loads(value), **compare(keys)})
    criteria = [{"name": n, **compare(shared, n)} for n in names]
    family = _holm_family(criteria if len(criteria) > 1 else [], groups)
    return {
        "object": "gradeloop.comparison",
        "a": {"run_id": runs[0]["id"], "model": runs[0]["model"] or None, "name": runs[0]["name"]},
        "b": {"run_id": runs[1]["id"], "model": runs[1]["model"] or None, "name": runs[1]["name"]},
        "items": {"paired": len(shared), "only_in_a": len(oa) - len(shared), "only_in_b": len(ob) - len(shared),
                  "errored_a": ea, "errored_b": eb},
        "overall": compare(shared),
        "criteria": criteria,
        "by": groups,
        "holm": {"family": family, "rows": "criteria and by groups" if family else None},
    }


def _holm_family(criteria: list[dict[str, Any]], groups: list[dict[str, Any]]) -> int:
    """Add ``p_holm`` (Holm–Bonferroni over the rows below the overall one: the criteria, when
    there are several, and the --by groups) to every row; returns the family's size."""
    from .stats import holm

    rows = [r for r in criteria + groups if r["p_value"] is not None]
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    for row in criteria + groups:
        row.setdefault("p_holm", None)
    return len(rows)


EXPORT_FORMATS = ("jsonl", "csv", "parquet")


def export_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """One flat row per output item, for a spreadsheet or a dataframe: run, model, item index,
    epoch, status, the item (JSON text), the input messages (JSON text), the output text,
    finish reason, tokens, latency, and ``<criterion>.score`` / ``<criterion>.passed`` per
    criterion."""
    run = store.get_run(store.resolve_run_id(run_id))
    names = [c.name for c in _criteria(store, run)]
    rows = []
    for o in store.output_items(run["id"]):
        sample = o["sample"] or {}
        output = sample.get("output") or {}
        given = o["given_sample"] or {}
        row: dict[str, Any] = {
            "run_id": run["id"], "model": run["model"] or None, "datasource_item_id": o["index"], "epoch": o["epoch"],
            "status": o["status"], "item": json.dumps(o["item"], ensure_ascii=False),
            "input": json.dumps(sample.get("input") or [], ensure_ascii=False),
            "output_text": output.get("content") if isinstance(output.get("content"), str) else given.get("output_text"),
            "finish_reason": sample.get("finish_reason"), "prompt_tokens": sample.get("prompt_tokens"),
            "completion_tokens": sample.get("completion_tokens"), "latency_ms": sample.get("latency_ms"),
            "error": json.dumps(sample["error"]) if sample.get("error") else None,
            "empty_output": _empty(o["sample"]),
        }
        by_name = {s["name"]: s for s in o["scores"]}
        for name in names:
            score = by_name.get(name)
            row[f"{name}.score"] = score["score"] if score else None
            row[f"{name}.passed"] = score["passed"] if score else None
        rows.append(row)
    return rows


def export_run(store: Store, run_id: str, path: str, fmt: str | None = None) -> int:
    """Write the run's output items to ``path`` (``-`` for standard output, not for parquet):
    ``jsonl`` (OpenAI's output item objects, one per line), ``csv`` or ``parquet`` (the flat
    rows of :func:`export_rows`). The format defaults to the file's suffix. Returns the number
    of rows written; the file appears whole or not at all."""
    import os
    import sys

    from .errors import InputError

    fmt = fmt or (os.path.splitext(path)[1].lstrip(".").lower() if path != "-" else "jsonl")
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format '{fmt}' (use one of: {', '.join(EXPORT_FORMATS)})", field="format")
    if fmt == "parquet" and path == "-":
        raise InputError("parquet cannot go to standard output; give a file", field="out")
    if fmt == "jsonl":
        rows: list[dict[str, Any]] = output_item_objects(store, run_id)
    else:
        rows = export_rows(store, run_id)
    rows = scrub_json(rows)  # an older store may hold what is scrubbed on the way in today
    if path == "-":
        _write_rows(sys.stdout, rows, fmt)
        return len(rows)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        if fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise InputError("parquet export needs pyarrow: pip install pyarrow", field="format") from None
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                _write_rows(handle, rows, fmt)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", file=path) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(rows)


def _write_rows(handle: Any, rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    import csv

    fields = list(rows[0]) if rows else ["run_id"]
    writer = csv.DictWriter(handle, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
