"""Rich tables for runs and output items (display only; the data comes from gradeloop.report)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.table import Table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


def short_id(run_id: str) -> str:
    """The first 12 hex digits of a run id: enough for every command that takes one."""
    return run_id.removeprefix("evalrun_")[:12]


def summary_table(summaries: list[dict[str, Any]]) -> Table:
    """One row per run: counts, pass rate, tokens, latency."""
    table = Table(title="Results", title_justify="left")
    for col in ("model", "run", "pass", "fail", "error", "pass rate", "tokens in/out", "cached", "p50", "p95"):
        table.add_column(col, justify="left" if col in ("model", "run") else "right")
    for s in summaries:
        table.add_row(
            s["model"], short_id(s["run_id"]), str(s["passed"]), str(s["failed"]), str(s["errored"]),
            _pct(s["pass_rate"]), f"{s['prompt_tokens']}/{s['completion_tokens']}", str(s["cached_samples"]),
            _ms(s["latency_p50_ms"]), _ms(s["latency_p95_ms"]))
    return table


def criteria_table(summaries: list[dict[str, Any]]) -> Table:
    """Pass rate per criterion (rows) and model (columns)."""
    table = Table(title="Pass rate per criterion", title_justify="left")
    table.add_column("criterion")
    for s in summaries:
        table.add_column(s["model"], justify="right")
    names = [c["name"] for c in summaries[0]["criteria"]] if summaries else []
    for i, name in enumerate(names):
        table.add_row(name, *[_pct(s["criteria"][i]["pass_rate"]) for s in summaries])
    return table


def runs_table(runs: list[dict[str, Any]]) -> Table:
    """``eval list``: id, name, model, status, counts, created."""
    table = Table()
    for col in ("run", "name", "model", "status", "pass/fail/err", "created"):
        table.add_column(col)
    for r in runs:
        c = r["result_counts"]
        created = dt.datetime.fromtimestamp(r["created_at"]).strftime("%m-%d %H:%M")
        table.add_row(short_id(r["id"]), r["name"] or "", r["model"] or "(given samples)", r["status"],
                      f"{c['passed']}/{c['failed']}/{c['errored']} of {c['total']}", created)
    return table


def items_table(items: list[dict[str, Any]], width: int = 60) -> Table:
    """``eval items``: index, status, scores, and the output text, shortened."""
    table = Table()
    for col in ("item", "epoch", "status", "scores", "output"):
        table.add_column(col)
    for it in items:
        sample = it["sample"] or {}
        output = sample.get("output") or []
        text = (output[0].get("content") or "") if output else ""
        if sample.get("error"):
            text = f"[error] {sample['error'].get('message', '')}"
        text = " ".join(str(text).split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        scores = ", ".join(f"{r['criterion']}={r['score']:g}" for r in it["results"] if r["score"] is not None)
        table.add_row(str(it["datasource_item_id"]), str(it["epoch"]), it["status"], scores, text)
    return table


def breakdown_table(field: str, rows: list[dict[str, Any]]) -> Table:
    """Pass rate per value of an item field."""
    table = Table(title=f"By {field}", title_justify="left")
    for col in (field, "pass", "fail", "error", "pass rate"):
        table.add_column(col, justify="left" if col == field else "right")
    for r in rows:
        value = "(none)" if r["value"] is None else str(r["value"])
        table.add_row(value, str(r["passed"]), str(r["failed"]), str(r["errored"]), _pct(r["pass_rate"]))
    return table
