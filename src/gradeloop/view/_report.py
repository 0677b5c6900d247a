"""``gradeloop eval report``: one self-contained HTML file (plotly.js inlined) that opens from
disk offline: pass rates with intervals per model, criterion and ``--by`` field, the forest
plot of paired differences against the first run, cost against quality with the Pareto front,
latency, score histograms, and the flipped items side by side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..store import Store
from . import _compare, _data, _render
from ._html import error_bars, esc, money, ms, page, pct, plot, rate_cell, short_name, table

EDIT_EXAMPLES = 10  # code-edit items per run whose diffs the report shows


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For ``(cost, quality)`` points: True for those no other point beats (cheaper or as cheap
    and at least as good, better in one)."""
    def beaten(i: int) -> bool:
        c, q = points[i]
        return any((c2 <= c and q2 >= q) and (c2 < c or q2 > q) for j, (c2, q2) in enumerate(points) if j != i)
    return [not beaten(i) for i in range(len(points))]


def _label(row: dict[str, Any]) -> str:
    return short_name(row["model"]) or row["name"] or row["id"][:16]


def _grouped_bars(div_id: str, title: str, runs: list[dict[str, Any]], per_run: list[list[dict[str, Any]]],
                  key: str) -> str:
    traces = []
    for run, rows in zip(runs, per_run):
        rates = [r["pass_rate"] for r in rows]
        traces.append({"type": "bar", "name": _label(run), "x": [str(r[key]) for r in rows], "y": rates,
                       "error_y": error_bars(rates, [r["low"] for r in rows], [r["high"] for r in rows])})
    layout = {"title": {"text": title}, "barmode": "group", "yaxis": {"range": [0, 1], "tickformat": ".0%"}}
    return plot(div_id, traces, layout)


def _cost_quality(runs: list[dict[str, Any]]) -> str:
    priced = [r for r in runs if r["cost"]["cost_per_1k_items"] is not None and r["pass_rate"]["value"] is not None]
    front = pareto_front([(r["cost"]["cost_per_1k_items"], r["pass_rate"]["value"]) for r in priced])
    traces = []
    for on, name, symbol in ((True, "Pareto front", "star"), (False, "dominated", "circle")):
        chosen = [r for r, f in zip(priced, front) if f == on]
        rates = [r["pass_rate"] for r in chosen]
        traces.append({"type": "scatter", "mode": "markers+text", "name": name, "text": [_label(r) for r in chosen],
                       "textposition": "top center", "marker": {"size": 12, "symbol": symbol},
                       "x": [r["cost"]["cost_per_1k_items"] for r in chosen], "y": [p["value"] for p in rates],
                       "error_y": error_bars([p["value"] for p in rates], [p["low"] for p in rates],
                                             [p["high"] for p in rates])})
    return plot("plot-pareto", traces, {"title": {"text": "quality vs cost per 1,000 items"},
                                        "xaxis": {"title": {"text": "USD per 1,000 items"}},
                                        "yaxis": {"title": {"text": "pass rate"}, "tickformat": ".0%"}})


def _latency(store: Store, runs: list[dict[str, Any]]) -> str:
    traces = [{"type": "box", "name": _label(r), "y": store.latencies(r["id"]), "boxpoints": False} for r in runs]
    return plot("plot-latency", traces, {"title": {"text": "latency per sample (ms)"}})


def _histograms(store: Store, runs: list[dict[str, Any]]) -> list[str]:
    per_run = [store.score_values(r["id"]) for r in runs]
    names = list(dict.fromkeys(n for scores in per_run for n in scores))
    return [plot(f"plot-scores-{i}", [{"type": "histogram", "name": _label(r), "x": s.get(name, []), "opacity": 0.6}
                                      for r, s in zip(runs, per_run)],
                 {"title": {"text": f"scores: {name}"}, "barmode": "overlay"}) for i, name in enumerate(names)]


def report_data(store: Store, run_ids: list[str], *, by: list[str] | None = None, prices: Any = None,
                flipped_limit: int = 200) -> dict[str, Any]:
    """Everything the report shows, as plain data (the HTML renders it)."""
    from ..decide import compare_many, load_prices

    prices = prices or load_prices()
    ids = [store.resolve_run_id(r) for r in run_ids]
    runs = [_data.run_row(store, store.get_run(r), prices) for r in ids]
    data: dict[str, Any] = {
        "object": "gradeloop.report", "runs": runs,
        "criteria": [_data.criteria_rows(store, r) for r in ids],
        "by": [{"field": f, "runs": [_data.field_breakdown(store, r, [f])[0]["rows"] for r in ids],
                "criteria": [_criteria_by(store, r, f) for r in ids]} for f in by or []],
        "comparisons": compare_many(store, ids, by=by, prices=prices) if len(ids) > 1 else [],
        "pareto": pareto_front([(r["cost"]["cost_per_1k_items"] or 0.0, r["pass_rate"]["value"] or 0.0) for r in runs]),
    }
    data["edits"] = [edit_examples(store, r) for r in ids]
    if 2 <= len(ids) <= _compare.MAX_RUNS:
        sbs = _compare.side_by_side(store, ids, limit=None)
        data["flipped"] = {**sbs, "rows": [r for r in sbs["rows"] if r["flipped"]][:flipped_limit]}
    return data


def _criteria_by(store: Store, run_id: str, field: str) -> list[dict[str, Any]]:
    """Each criterion's pass rate and mean score per value of ``field`` (a code-edit run: applies,
    tests pass, extraneous edits, lint per format or kind)."""
    rows = []
    for value, criteria in store.criteria_by_field(run_id, field).items():
        for c in criteria:
            graded = c["passed"] + c["failed"]
            rows.append({"value": value, **c, "pass_rate": c["passed"] / graded if graded else None})
    return sorted(rows, key=lambda r: (r["value"] is None, str(r["value"]), r["criterion"]))


def edit_examples(store: Store, run_id: str, limit: int = EDIT_EXAMPLES) -> list[dict[str, Any]]:
    """Up to ``limit`` output items of a code-edit run (items with ``reference_diff``), failed ones
    first: ``{index, epoch, status, task_id, kind, edit}`` with the applied and reference diffs."""
    out: list[dict[str, Any]] = []
    for status in ("fail", "pass"):
        for o in store.output_items(run_id, status=status, limit=limit):
            edit = _data.edit_view(o["item"], o["sample"], o["given_sample"]) if len(out) < limit else None
            if edit is not None:
                item = o["item"]
                out.append({"index": o["index"], "epoch": o["epoch"], "status": o["status"],
                            "task_id": item.get("task_id"), "kind": item.get("kind"), "edit": edit})
    return out


def build_report(store: Store, run_ids: list[str], *, by: list[str] | None = None, prices: Any = None) -> str:
    """The report as one HTML document with plotly.js inlined (no request leaves the file)."""
    from ._app import plotly_js

    data = report_data(store, run_ids, by=by, prices=prices)
    runs = data["runs"]
    rows = [[esc(r["model"] or _label(r)), esc(r["id"]), str(r["counts"]["total"]), rate_cell(r["pass_rate"]),
             f"{r['tokens']['prompt']:,} / {r['tokens']['completion']:,}", money(r["cost"]["cost_per_1k_items"]),
             f"{ms(r['cost']['latency_p50_ms'])} / {ms(r['cost']['latency_p95_ms'])}", "★" if front else ""]
            for r, front in zip(runs, data["pareto"])]
    parts = ["<h1>gradeloop report</h1>",
             table(["model", "run", "output items", "pass rate [95% CI]", "tokens in / out", "cost / 1k items",
                    "p50 / p95 latency", "Pareto"], rows),
             "<div class=plots>",
             _grouped_bars("plot-criteria", "pass rate per criterion", runs, data["criteria"], "name")]
    parts += [_grouped_bars(f"plot-by-{i}", f"pass rate by {b['field']}", runs, b["runs"], "value")
              for i, b in enumerate(data["by"])]
    if data["comparisons"]:
        parts.append(_render.forest("plot-forest", data["comparisons"]))
    parts += [_cost_quality(runs), _latency(store, runs), *_histograms(store, runs), "</div>"]
    parts += _criteria_tables(runs, data)
    if data["comparisons"]:
        parts += ["<h2>Paired differences against the first run</h2>", _render.comparison_table(data["comparisons"]),
                  "<p class=muted>Criterion and group rows are Holm-corrected within each comparison "
                  "(see <code>gradeloop eval compare</code>).</p>"]
    for run, examples in zip(runs, data["edits"]):
        if examples:
            parts.append(f"<h2>Code edits: {esc(_label(run))} (up to {EDIT_EXAMPLES}, failed first)</h2>")
            parts += [f"<h3>item {e['index']} · {esc(e['task_id'])} · {esc(e['kind'])} · {esc(e['status'])}</h3>"
                      + _render.edit_diffs(e["edit"]) for e in examples]
    if "flipped" in data:
        f = data["flipped"]
        parts += [f"<h2>Flipped items: {f['flipped']} of {f['shared']} shared</h2>",
                  _render.side_by_side_table(f, item_links=False)]
    head = f"<script>{_inline_safe(plotly_js())}</script>"
    return page("gradeloop report", "".join(parts), head=head, nav=False)


def _criteria_tables(runs: list[dict[str, Any]], data: dict[str, Any]) -> list[str]:
    out = ["<h2>Pass rate per criterion</h2>", table(["model", "criterion", "passed", "failed", "pass rate [95% CI]"], [
        [esc(_label(r)), esc(c["name"]), str(c["passed"]), str(c["failed"]),
         rate_cell({"value": c["pass_rate"], "low": c["low"], "high": c["high"]})]
        for r, crit in zip(runs, data["criteria"]) for c in crit])]
    for b in data["by"]:
        heads = ["model", b["field"], "passed", "failed", "pass rate [95% CI]"]
        out += [f"<h2>Pass rate by {esc(b['field'])}</h2>", table(heads, [
            [esc(_label(r)), esc(row["value"]), str(row["passed"]), str(row["failed"]),
             rate_cell({"value": row["pass_rate"], "low": row["low"], "high": row["high"]})]
            for r, rows in zip(runs, b["runs"]) for row in rows])]
        if any(len({c["criterion"] for c in rows}) > 1 for rows in b["criteria"]):
            out += [f"<h2>Each criterion by {esc(b['field'])}</h2>", table(
                ["model", b["field"], "criterion", "passed", "failed", "pass rate", "mean score"], [
                    [esc(_label(r)), esc(c["value"]), esc(c["name"]), str(c["passed"]), str(c["failed"]),
                     pct(c["pass_rate"]), "–" if c["mean_score"] is None else f"{c['mean_score']:.3f}"]
                    for r, rows in zip(runs, b["criteria"]) for c in rows])]
    return out


def _inline_safe(js: str) -> str:
    return js.replace("</script", "<\\/script")


def write_report(store: Store, run_ids: list[str], out: str | Path, *, by: list[str] | None = None,
                 prices: Any = None) -> Path:
    """Write :func:`build_report` to ``out`` (whole or not at all); returns the path."""
    from ..errors import InputError

    html = build_report(store, run_ids, by=by, prices=prices)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the report: {exc.strerror}", file=str(out), field="out") from None
    return out
