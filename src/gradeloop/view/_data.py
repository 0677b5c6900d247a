"""What each page of the viewer shows, as plain data: the JSON twins return exactly these dicts
and the HTML pages render them. Every function reads the store and never writes to it."""

from __future__ import annotations

import functools
import json
from typing import Any

from ..store import Store

PAGE_SIZE = 50
MAX_BY_FIELDS = 3
MAX_FIELD_VALUES = 30


def _pass_rate(store: Store, run_id: str, epochs: int, counts: dict[str, int]) -> dict[str, Any]:
    """The run's pass rate with its 95% interval, as :func:`gradeloop.stats.rate` gives it
    (items are the unit), from counts the database sums rather than every outcome."""
    from ..stats import rate, wilson_interval

    if epochs == 1:  # one outcome per item: Wilson over the graded items, as rate() does
        graded = counts["passed"] + counts["failed"]
        if not graded:
            return {"value": None, "low": None, "high": None, "items": 0}
        low, high = wilson_interval(counts["passed"], graded)
        return {"value": counts["passed"] / graded, "low": low, "high": high, "items": graded}
    r = rate([[1] * c + [0] * (n - c) for c, n in store.item_pass_counts(run_id)])
    return {"value": r.value, "low": r.low, "high": r.high, "items": r.items}


def run_row(store: Store, run: dict[str, Any], prices: Any = None) -> dict[str, Any]:
    """One run as the lists show it: status, model, pass rate with its 95% interval, progress,
    tokens, cost per 1,000 items and latency (from :func:`gradeloop.decide.run_cost`)."""
    from ..decide import run_cost

    rid = run["id"]
    epochs = (run["config"] or {}).get("epochs") or 1
    items = store.conn.execute("SELECT COUNT(*) FROM run_items WHERE run_id = ?", (rid,)).fetchone()[0]
    counts = store.result_counts(rid)
    cost = run_cost(store, rid, prices).to_dict()
    return {
        "id": rid, "name": run["name"], "eval_id": run["eval_id"], "model": run["model"] or None,
        "status": _status(run), "created_at": run["created_at"], "error": run["error"],
        "progress": {"done": counts["total"], "total": items * epochs},
        "counts": counts, "pass_rate": _pass_rate(store, rid, epochs, counts),
        "tokens": {"prompt": cost["prompt_tokens"], "completion": cost["completion_tokens"],
                   "cached": cost["cached_tokens"]},
        "cost": cost,
    }


FINISHED = ("completed", "failed", "canceled")


class SummaryCache:
    """Run-page summaries of finished runs, keyed by run, status, finish time and the fields
    asked for: a finished run changes only through a resume, which changes its status and
    finish time. Paging through a finished run's items then reads only the page."""

    def __init__(self, size: int = 512) -> None:
        self.size, self.entries = size, {}  # type: ignore[var-annotated]

    def get(self, run: dict[str, Any], fields: tuple[str, ...], compute: Any) -> dict[str, Any]:
        """The cached summary of ``run`` or ``compute()`` (cached when the run is finished)."""
        if run["status"] not in FINISHED:
            return compute()
        key = (run["id"], run["status"], run["finished_at"], fields)
        if key not in self.entries:
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = compute()
        return self.entries[key]


def _status(run: dict[str, Any]) -> str:
    """The run's status, ``interrupted`` for a queued or running run whose runner process is
    gone (the store says so only once a command reaps it; the viewer does not write)."""
    from ..store._runner import runner_alive

    live = run["status"] in ("queued", "in_progress")
    return "interrupted" if live and run["runner"] and runner_alive(run["runner"]) is False else run["status"]


def evals_data(store: Store, prices: Any = None, limit: int = 200,
               cache: SummaryCache | None = None) -> dict[str, Any]:
    """Every eval with its runs, newest first: ``{object: gradeloop.view.evals, evals: [...]}``;
    ``cache`` keeps finished runs' rows."""
    evals: dict[str, dict[str, Any]] = {}
    for run in store.list_runs(limit=limit):
        if run["eval_id"] not in evals:
            ev = store.get_eval(run["eval_id"])
            evals[run["eval_id"]] = {"id": ev["id"], "name": ev["name"], "runs": []}
        compute = functools.partial(run_row, store, run, prices)
        evals[run["eval_id"]]["runs"].append(cache.get(run, ("row",), compute) if cache else compute())
    return {"object": "gradeloop.view.evals", "evals": list(evals.values())}


def _by_fields(store: Store, run_id: str, by: list[str]) -> list[str]:
    """The fields to break the pass rate down by: those asked for, else the first item's
    top-level scalar fields with few distinct values among the first items (at most MAX_BY_FIELDS)."""
    if by:
        return by
    row = store.conn.execute("SELECT item FROM run_items WHERE run_id = ? ORDER BY idx LIMIT 1", (run_id,)).fetchone()
    item = json.loads(row[0]) if row else {}
    scalars = [k for k, v in (item if isinstance(item, dict) else {}).items() if isinstance(v, (str, bool, int))]
    counts = store.distinct_counts(run_id, scalars)
    return [k for k in scalars if counts[k] <= MAX_FIELD_VALUES][:MAX_BY_FIELDS]


def _field_rows(counts: dict[Any, dict[str, int]], field: str) -> list[dict[str, Any]]:
    """Per value of ``field``: passed, failed, errored, pass rate and its Wilson interval."""
    from ..stats import wilson_interval

    rows = []
    for value, c in sorted(counts.items(), key=lambda kv: (kv[0] is None, str(kv[0]))):
        graded = c["pass"] + c["fail"]
        low, high = wilson_interval(c["pass"], graded) if graded else (None, None)
        rows.append({"field": field, "value": value, "passed": c["pass"], "failed": c["fail"], "errored": c["error"],
                     "total": graded + c["error"], "pass_rate": c["pass"] / graded if graded else None,
                     "low": low, "high": high})
    return rows


def field_breakdown(store: Store, run_id: str, fields: list[str]) -> list[dict[str, Any]]:
    """Per field, its rows (:func:`_field_rows`), from one pass over the run's output items."""
    counts = store.counts_by_fields(run_id, fields)
    return [{"field": f, "rows": _field_rows(counts[f], f)} for f in fields]


def criteria_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Per criterion: :meth:`Store.criteria_counts` with the pass rate and its Wilson interval."""
    from ..stats import wilson_interval

    out = []
    for c in store.criteria_counts(run_id):
        graded = c["passed"] + c["failed"]
        low, high = wilson_interval(c["passed"], graded) if graded else (None, None)
        out.append({**c, "pass_rate": c["passed"] / graded if graded else None, "low": low, "high": high})
    return out


def parse_after(token: str | None) -> tuple[int, int]:
    """``"12"`` → (12, max epoch) i.e. after every epoch of item 12; ``"12.3"`` → (12, 3); none → start."""
    if not token:
        return (-1, -1)
    idx, _, epoch = token.partition(".")
    return (int(idx), int(epoch) if epoch else 2**62)


def _token(row: dict[str, Any], epochs: int) -> str:
    return str(row["index"]) if epochs == 1 else f"{row['index']}.{row['epoch']}"


def item_rows(store: Store, run_id: str, *, after: str | None = None, limit: int = PAGE_SIZE,
              status: str | None = None, field: str | None = None, value: str | None = None,
              search: str | None = None, epochs: int = 1) -> dict[str, Any]:
    """One page of a run's item table: ``{rows, next}``; ``next`` is the ``after`` token of the
    following page (None on the last)."""
    page = store.output_items_page(run_id, after=parse_after(after), limit=limit + 1, status=status,
                                   field=field, value=value, search=search)
    rows = [_item_row(o) for o in page[:limit]]
    return {"rows": rows, "next": _token(page[limit - 1], epochs) if len(page) > limit else None}


def output_text(sample: dict[str, Any] | None) -> str | None:
    """The text of a sample's assistant message (tool calls as JSON), or None."""
    message = (sample or {}).get("output") or {}
    content = message.get("content")
    if isinstance(content, str) and content:
        return content
    if message.get("tool_calls"):
        return json.dumps(message["tool_calls"], ensure_ascii=False)
    return content if isinstance(content, str) else None


def _item_row(o: dict[str, Any]) -> dict[str, Any]:
    sample = o["sample"] or {}
    return {"index": o["index"], "epoch": o["epoch"], "status": o["status"], "item": o["item"],
            "output": output_text(sample), "error": sample.get("error"),
            "latency_ms": sample.get("latency_ms"),
            "scores": [{"name": s["name"], "score": s["score"], "passed": s["passed"]} for s in o["scores"]]}


def _summary(store: Store, run: dict[str, Any], by: list[str], prices: Any) -> dict[str, Any]:
    rid = run["id"]
    return {"run": run_row(store, run, prices), "criteria": criteria_rows(store, rid),
            "by": field_breakdown(store, rid, _by_fields(store, rid, by))}


def run_data(store: Store, run_id: str, *, after: str | None = None, limit: int = PAGE_SIZE,
             status: str | None = None, field: str | None = None, value: str | None = None,
             search: str | None = None, by: list[str] | None = None, prices: Any = None,
             cache: SummaryCache | None = None) -> dict[str, Any]:
    """The run page: the run's row, per-criterion and per-field pass rates with intervals, and
    one keyset page of its items under the filters. ``cache`` keeps finished runs' summaries."""
    rid = store.resolve_run_id(run_id)
    run = store.get_run(rid)
    epochs = (run["config"] or {}).get("epochs") or 1
    compute = functools.partial(_summary, store, run, by or [], prices)
    summary = cache.get(run, tuple(by or []), compute) if cache else compute()
    return {
        "object": "gradeloop.view.run", **summary,
        "eval": {"id": run["eval_id"], "name": store.get_eval(run["eval_id"])["name"]}, "epochs": epochs,
        "filters": {"status": status, "field": field, "value": value, "q": search, "after": after, "limit": limit},
        "items": item_rows(store, rid, after=after, limit=limit, status=status, field=field, value=value,
                           search=search, epochs=epochs),
    }


def progress_data(store: Store, run_id: str, prices: Any = None) -> dict[str, Any]:
    """What the live progress poll needs: the run's row alone."""
    run = store.get_run(store.resolve_run_id(run_id))
    return {"object": "gradeloop.view.progress", "run": run_row(store, run, prices)}


def item_data(store: Store, run_id: str, index: int, epoch: int = 0) -> dict[str, Any] | None:
    """The item page: the item, the input messages, the output, every grader's score with its
    reasoning and error, and the raw model calls; None when the run has no such output item."""
    rid = store.resolve_run_id(run_id)
    o = store.output_item_at(rid, index, epoch)
    if o is None:
        return None
    run = store.get_run(rid)
    scores = [{"criterion": s["criterion"], "name": s["name"], "type": s["type"], "score": s["score"],
               "passed": s["passed"], "grader_hash": s["grader_hash"], "result": s["result"]} for s in o["scores"]]
    return {"object": "gradeloop.view.item", "run_id": rid, "model": run["model"] or None, "index": index,
            "epoch": epoch, "status": o["status"], "item": o["item"], "sample": o["sample"],
            "given_sample": o["given_sample"], "output": output_text(o["sample"]), "scores": scores,
            "calls": store.model_calls(rid, index, epoch), "edit": edit_view(o["item"], o["sample"], o["given_sample"])}


def edit_view(item: Any, sample: Any, given: Any = None) -> dict[str, Any] | None:
    """For a code-edit item (one with ``reference_diff``): the diff the sample's edit made
    (``gradeloop.edits.edit_diff``: format, applied, lenient, reason, diff) and the reference
    diff; None for other items."""
    if not isinstance(item, dict) or not isinstance(item.get("reference_diff"), str):
        return None
    answer = output_text(sample) or (given or {}).get("output_text") or ""
    from ..edits import edit_diff

    return {**edit_diff(item, answer), "reference_diff": item["reference_diff"]}


_NOT_CURVES = ("step", "total_steps", "epoch")


def jobs_data(store: Store, limit: int = 100) -> dict[str, Any]:
    """Fine-tuning jobs, newest first: ``{object: gradeloop.view.jobs, jobs: [...]}``."""
    keys = ("id", "status", "model", "method", "fine_tuned_model", "created_at", "finished_at", "trained_tokens")
    return {"object": "gradeloop.view.jobs", "jobs": [{k: j.get(k) for k in keys} for j in store.list_jobs(limit)]}


def _validation_point(store: Store, run_id: str, step: int) -> dict[str, Any]:
    counts = store.result_counts(run_id)
    graded = counts["passed"] + counts["failed"]
    return {"step": step, "run_id": run_id, "pass_rate": counts["passed"] / graded if graded else None}


def job_data(store: Store, job_id: str) -> dict[str, Any]:
    """A job with its curves (every numeric metric of its ``metrics`` events by step: reward or
    loss, and the validation ones; the pass rate of each validation eval run by step), its
    validation runs, checkpoints and last events."""
    job = store.get_job(job_id)
    curves: dict[str, dict[str, list[float]]] = {}
    validation = []
    for event in store.job_events(job["id"]):
        data = event["data"] or {}
        if data.get("eval_run_id") and "step" in data:
            validation.append(_validation_point(store, data["eval_run_id"], data["step"]))
        if event["type"] != "metrics" or "step" not in data:
            continue
        for key, value in data.items():
            if key not in _NOT_CURVES and isinstance(value, (int, float)) and not isinstance(value, bool):
                curve = curves.setdefault(key, {"step": [], "value": []})
                curve["step"].append(data["step"])
                curve["value"].append(value)
    events = [{k: e[k] for k in ("created_at", "level", "type", "message")}
              for e in store.job_events(job["id"], limit=50, newest_first=True) if e["type"] != "metrics"]
    points = [p for p in validation if p["pass_rate"] is not None]
    if points:
        curves["validation pass rate"] = {"step": [p["step"] for p in points],
                                          "value": [p["pass_rate"] for p in points]}
    return {"object": "gradeloop.view.job", "job": job, "curves": curves, "validation_runs": validation,
            "checkpoints": store.job_checkpoints(job["id"], include_removed=True), "events": events}
