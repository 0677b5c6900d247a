"""Rich tables for cost, recommend, cusp and health (display only; data from gradeloop.decide)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ._display import _ms, _pct, short_id


def _usd(value: float | None) -> str:
    if value is None:
        return "no price"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def _interval(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    return f"{fmt.format(100 * value)} [{fmt.format(100 * low)}, {fmt.format(100 * high)}]"


def cost_table(costs: list[dict[str, Any]]) -> Table:
    """Per run: cost per 1,000 items (sampled model, judges apart), p50/p95 latency, tokens per sample."""
    table = Table(title="Cost and latency (cost per 1,000 items answered once)", title_justify="left")
    for col in ("model", "run", "cost / 1k items", "judges / 1k items", "p50", "p95", "tokens in/out per item"):
        table.add_column(col, justify="left" if col in ("model", "run") else "right")
    for c in costs:
        n = c["samples"] or 1
        judges = "–" if not c["judge_prompt_tokens"] and not c["judge_completion_tokens"] else _usd(
            c["judge_cost_per_1k_items"])
        table.add_row(c["model"] or "(given samples)", short_id(c["run_id"]), _usd(c["cost_per_1k_items"]), judges,
                      _ms(c["latency_p50_ms"]), _ms(c["latency_p95_ms"]),
                      f"{c['prompt_tokens'] / n:.0f}/{c['completion_tokens'] / n:.0f}")
    return table


def recommendation_table(rec: dict[str, Any]) -> Table:
    """``eval recommend``: every candidate against the baseline, with its verdict and why."""
    base = rec["baseline"]
    table = Table(title=f"Candidates against {base['model']} ({_usd(base['cost_per_1k_items'])} per 1k items, "
                        f"p95 {_ms(base['latency_p95_ms'])}); margin {100 * rec['margin']:.1f} points",
                  title_justify="left")
    for col in ("model", "run", "pass rate", "vs baseline (points)", "cost / 1k items", "p95", "verdict", "reason"):
        table.add_column(col, justify="left" if col in ("model", "run", "verdict", "reason") else "right")
    for c in rec["candidates"]:
        r, d = c["pass_rate"], c["difference"]
        table.add_row(c["model"] or "–", short_id(c["run_id"]), _interval(r["value"], r["low"], r["high"]),
                      _interval(d["value"], d["low"], d["high"], signed=True), _usd(c["cost_per_1k_items"]),
                      _ms(c["latency_p95_ms"]), c["verdict"], c["reason"])
    return table


def cusp_table(report: dict[str, Any]) -> Table:
    """``eval cusp``: pass@1, pass@k and pass^k per group, RFT targets marked."""
    k, by = report["k"], report["by"]
    table = Table(title=f"{report['model']}: pass@k and pass^k with k = {k}", title_justify="left")
    for col in (by or "group", "items", "pass@1", f"pass@{k}", f"pass^{k}", "RFT target"):
        table.add_column(col, justify="left" if col in (by or "group", "RFT target") else "right")
    for g in report["groups"]:
        name = "all items" if by is None else ("(none)" if g["value"] is None else str(g["value"]))
        table.add_row(name, str(g["items"]), _pct(g["pass_at_1"]), _pct(g["pass_at_k"]), _pct(g["pass_hat_k"]),
                      "yes" if g["rft_target"] else "")
    return table


def health_lines(report: dict[str, Any], limit: int = 5) -> list[str]:
    """``eval health``: counts, a few examples of each problem, the timeline and the warning."""
    lines = [f"{report['eval_name']}: {len(report['runs'])} runs, {len(report['models'])} models, "
             f"{report['items']} items"]
    for key, label in (("saturated", "saturated (every model passes)"),
                       ("broken", "no model passes (broken or mislabeled?)"),
                       ("flaky", "flaky (verdict differs at temperature 0)"),
                       ("judge_disagreements", "judge graders disagree")):
        rows = report[key]
        lines.append(f"{label}: {len(rows)}")
        for row in rows[:limit]:
            lines.append(f"  {_brief(row['item'])}" + (f"  {row['judges']}" if "judges" in row else ""))
    for t in report["timeline"]:
        lines.append(f"{t['month']}: {t['runs']} runs, {t['models']} models, saturated "
                     f"{_pct(t['saturated_share'])} of {t['items_compared']} items")
    lines += report["notes"]
    if report["warning"]:
        lines.append(f"warning: {report['warning']}")
    return lines


def _brief(item: Any, width: int = 80) -> str:
    import json

    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"
