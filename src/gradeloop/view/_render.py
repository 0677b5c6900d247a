"""The viewer's HTML pages, each rendered from the dict its JSON twin returns."""

from __future__ import annotations

from typing import Any

from ._html import date, diff_pre, error_bars, esc, link, money, ms, page, pct, plot, pre, rate_cell, short_name, table

PLOTLY_TAG = '<script src="/assets/plotly.js" defer></script>'

POLL_JS = """<script>
// live progress: every 2 s, rows of runs still queued or in progress fetch their JSON twin
setInterval(function () {
  document.querySelectorAll('tr[data-poll]').forEach(function (tr) {
    fetch(tr.dataset.poll, {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (d) {
      var run = d.run;
      tr.querySelector('.status').textContent = run.status;
      tr.querySelector('.progress').textContent = run.progress.done + ' / ' + run.progress.total;
      var p = run.pass_rate.value;
      tr.querySelector('.rate').textContent = p === null ? '–' : (100 * p).toFixed(1) + '%';
      if (run.status !== 'queued' && run.status !== 'in_progress') { tr.removeAttribute('data-poll'); }
    }).catch(function () {});
  });
}, 2000);
</script>"""

RUN_HEADERS = ["", "run", "model", "status", "progress", "pass rate [95% CI]", "tokens in / out", "cost / 1k items",
               "p50 / p95 latency", "created"]


def _status(status: str) -> str:
    css = {"pass": "pass", "fail": "fail", "error": "error", "completed": "pass", "failed": "fail"}.get(status, "")
    return f'<span class="{css}">{esc(status)}</span>'


def _run_cells(run: dict[str, Any], check: bool = True) -> list[str]:
    cost = run["cost"]
    return [
        f'<input type=checkbox name=run value="{esc(run["id"])}">' if check else "",
        link(f"/runs/{run['id']}", run["name"] or run["id"][:16]),
        esc(run["model"] or "(given samples)"),
        f'<span class=status>{_status(run["status"])}</span>',
        f'<span class=progress>{run["progress"]["done"]} / {run["progress"]["total"]}</span>',
        f'<span class=rate>{rate_cell(run["pass_rate"])}</span>',
        f'{run["tokens"]["prompt"]:,} / {run["tokens"]["completion"]:,}',
        money(cost["cost_per_1k_items"]),
        f'{ms(cost["latency_p50_ms"])} / {ms(cost["latency_p95_ms"])}',
        esc(date(run["created_at"])),
    ]


def _poll_attr(run: dict[str, Any]) -> str:
    live = run["status"] in ("queued", "in_progress")
    return f'data-poll="/runs/{esc(run["id"])}/progress.json"' if live else ""


def evals_html(data: dict[str, Any]) -> str:
    """The home page: every eval with its runs; tick 2–4 runs to compare them."""
    parts = ["<h1>Evals</h1>"]
    if not data["evals"]:
        parts.append("<p>No runs yet: <code>gradeloop eval run EVAL.yaml --model …</code></p>")
    for ev in data["evals"]:
        rows = [_run_cells(r) for r in ev["runs"]]
        parts.append(f"<h2>{esc(ev['name'] or ev['id'])}</h2><form action=/compare method=get>"
                     + table(RUN_HEADERS, rows, [_poll_attr(r) for r in ev["runs"]])
                     + "<button type=submit>Compare the ticked runs (2–4)</button></form>")
    return page("gradeloop: evals", "".join(parts) + POLL_JS)


def _rate_bars(div_id: str, title: str, names: list[str], rows: list[dict[str, Any]]) -> str:
    rates = [r["pass_rate"] for r in rows]
    trace = {"type": "bar", "x": names, "y": [v or 0 for v in rates],
             "error_y": error_bars(rates, [r["low"] for r in rows], [r["high"] for r in rows])}
    return plot(div_id, [trace], {"title": {"text": title}, "yaxis": {"range": [0, 1], "tickformat": ".0%"}})


def _filters(data: dict[str, Any]) -> str:
    f = data["filters"]
    options = "".join(f'<option value="{v}"{" selected" if f["status"] == v else ""}>{label}</option>'
                      for v, label in (("", "all"), ("fail", "failed"), ("error", "errored"), ("pass", "passed")))
    fields = [b["field"] for b in data["by"]]
    field_opts = "<option value=''>(field)</option>" + "".join(
        f'<option{" selected" if f["field"] == x else ""}>{esc(x)}</option>' for x in fields)
    return (f"<form class=filters method=get><label>status <select name=status>{options}</select></label>"
            f"<label>field <select name=field>{field_opts}</select></label>"
            f"<label>= <input name=value value=\"{esc(f['value'])}\" size=12></label>"
            f"<label>search <input name=q value=\"{esc(f['q'])}\" size=20></label>"
            "<button type=submit>Filter</button></form>")


def _short(value: Any, n: int = 160) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return esc(text if text is None or len(text) <= n else text[:n] + "…")


def _items_table(data: dict[str, Any]) -> str:
    rid = data["run"]["id"]
    rows = []
    for r in data["items"]["rows"]:
        scores = ", ".join(f"{esc(s['name'])}: {esc(s['score'])}" for s in r["scores"])
        rows.append([link(f"/runs/{rid}/items/{r['index']}", r["index"], epoch=r["epoch"] or None),
                     str(r["epoch"]), _status(r["status"]), _short(r["item"]),
                     _short(r["output"]) if not r["error"] else f'<span class=error>{_short(r["error"])}</span>',
                     scores, ms(r["latency_ms"])])
    f = data["filters"]
    nxt = data["items"]["next"]
    more = link(f"/runs/{rid}", "next page →", status=f["status"] or None, field=f["field"] or None,
                value=f["value"] if f["field"] else None, q=f["q"] or None, after=nxt) if nxt else "(last page)"
    return (f'<div id=items>{table(["#", "epoch", "status", "item", "output", "scores", "latency"], rows)}</div>'
            f"<p class=pager>{more}</p>")


def run_html(data: dict[str, Any]) -> str:
    """The run page: summary, pass rate per criterion and per field (plots and tables), items."""
    run = data["run"]
    crit = data["criteria"]
    plots = [_rate_bars("plot-criteria", "pass rate per criterion", [c["name"] for c in crit], crit)] if crit else []
    by_tables = []
    for i, group in enumerate(data["by"]):
        names = [str(r["value"]) for r in group["rows"]]
        plots.append(_rate_bars(f"plot-by-{i}", f"pass rate by {group['field']}", names, group["rows"]))
        by_tables.append(table([group["field"], "passed", "failed", "errored", "pass rate [95% CI]"], [
            [link(f"/runs/{run['id']}", r["value"], field=group["field"], value=r["value"]), str(r["passed"]),
             str(r["failed"]), str(r["errored"]), rate_cell({"value": r["pass_rate"], "low": r["low"],
                                                             "high": r["high"]})] for r in group["rows"]]))
    crit_table = table(["criterion", "type", "passed", "failed", "errored", "mean score", "pass rate [95% CI]"], [
        [esc(c["name"]), esc(c["type"]), str(c["passed"]), str(c["failed"]), str(c["errored"]),
         esc(None if c["mean_score"] is None else f"{c['mean_score']:.3f}"),
         rate_cell({"value": c["pass_rate"], "low": c["low"], "high": c["high"]})] for c in crit])
    body = (f"<h1>{esc(data['eval']['name'])} · {esc(run['model'] or '(given samples)')}</h1>"
            + table(RUN_HEADERS[1:], [_run_cells(run, check=False)[1:]], [_poll_attr(run)])
            + f"<div class=plots>{''.join(plots)}</div><h2>Criteria</h2>{crit_table}"
            + "".join(by_tables) + f"<h2>Items</h2>{_filters(data)}{_items_table(data)}")
    return page(f"gradeloop: run {run['id']}", body + POLL_JS, head=PLOTLY_TAG)


def _messages(messages: list[dict[str, Any]] | None) -> str:
    return "".join(f"<p><b>{esc(m.get('role'))}</b></p>"
                   f"{pre(m.get('content') if isinstance(m.get('content'), str) else m)}" for m in messages or [])


def _errors(result: dict[str, Any] | None) -> str:
    """The error flags a grader raised (OpenAI's ``errors`` with the set ones only)."""
    raised = {k: v for k, v in ((result or {}).get("errors") or {}).items() if v}
    return pre(raised) if raised else ""


def item_html(data: dict[str, Any]) -> str:
    """The item page: item, input messages, output, every grader's result, the raw calls."""
    sample = data["sample"] or {}
    scores = table(["criterion", "type", "score", "passed", "reasoning / details", "error"], [
        [esc(s["name"]), esc(s["type"]), esc(s["score"]),
         _status("pass" if s["passed"] else "fail") if s["passed"] is not None else "–",
         pre((s["result"] or {}).get("details") or ""), _errors(s["result"])] for s in data["scores"]])
    calls = "".join(
        f"<h3>{esc(c['purpose'])} · {esc(c['provider'])}/{esc(c['model'])} · attempt {esc(c['attempt'])} · "
        f"{esc(c['status'])} · {ms(c['latency_ms'])}</h3>{pre({k: c[k] for k in ('request', 'response', 'error')})}"
        for c in data["calls"]) or "<p class=muted>No model calls (given samples, or answered from the cache).</p>"
    body = (f"<h1>Item {data['index']} (epoch {data['epoch']}) · {_status(data['status'])}</h1>"
            f"<p>{link('/runs/' + data['run_id'], data['run_id'])} · {esc(data['model'])}</p>"
            f"<h2>Item</h2>{pre(data['item'])}"
            f"<h2>Output</h2>{pre(data['output'] or (data['given_sample'] or {}).get('output_text') or '')}"
            + (f"<h2>Sample error</h2>{pre(sample['error'])}" if sample.get("error") else "")
            + edit_diffs(data.get("edit"))
            + f"<h2>Graders</h2>{scores}<h2>Input messages</h2>{_messages(sample.get('input'))}"
            f"<h2>Model calls</h2>{calls}")
    return page(f"gradeloop: item {data['index']}", body)


def edit_diffs(edit: dict[str, Any] | None) -> str:
    """A code-edit item's applied diff next to its reference diff ('' for other items)."""
    if not edit:
        return ""
    if edit["applied"]:
        how = "applied" + (" (lenient parsing only; strict: " + esc(edit["reason"]) + ")" if edit["lenient"] else "")
        applied = diff_pre(edit["diff"]) if edit["diff"] else "<p class=muted>The edit changed nothing.</p>"
    else:
        how = f"<span class=fail>did not apply</span>: {esc(edit['reason'])}"
        applied = "<p class=muted>No diff: the edit did not apply.</p>"
    return (f"<h2>Edit ({esc(edit['format'])})</h2><p>{how}</p><div class=diffs><div><h3>Applied diff</h3>"
            f"{applied}</div><div><h3>Reference diff</h3>{diff_pre(edit['reference_diff'])}</div></div>")


def forest(div_id: str, comparisons: list[dict[str, Any]]) -> str:
    """The paired-difference forest plot: B − A with its interval, one row per comparison and
    criterion; a line at 0."""
    labels, values, plus, minus = [], [], [], []
    for cmp in comparisons:
        who = short_name(cmp["b"]["model"]) or cmp["b"]["run_id"][:16]
        for name, row in [("all", cmp["overall"])] + [(c["name"], c) for c in cmp["criteria"]]:
            if row["difference"] is None:
                continue
            labels.append(f"{who} · {name}")
            values.append(row["difference"])
            plus.append(row["high"] - row["difference"])
            minus.append(row["difference"] - row["low"])
    trace = {"type": "scatter", "mode": "markers", "x": values, "y": labels,
             "error_x": {"type": "data", "array": plus, "arrayminus": minus}}
    base = (short_name(comparisons[0]["a"]["model"]) or comparisons[0]["a"]["run_id"][:16]) if comparisons else ""
    return plot(div_id, [trace], {"title": {"text": f"difference in pass rate vs {base}"},
                                  "xaxis": {"tickformat": "+.0%", "zeroline": True},
                                  "yaxis": {"autorange": "reversed"}, "margin": {"l": 220, "r": 20, "t": 40, "b": 40}})


def _difference(row: dict[str, Any]) -> str:
    if row["difference"] is None:
        return "–"
    if row["low"] is None:
        return f"{100 * row['difference']:+.1f}"
    return f"{100 * row['difference']:+.1f} <span class=muted>[{100 * row['low']:+.1f}, {100 * row['high']:+.1f}]</span>"


def comparison_table(comparisons: list[dict[str, Any]]) -> str:
    """One row per comparison: both pass rates, B − A with its interval and p, Holm note."""
    rows = []
    for cmp in comparisons:
        o = cmp["overall"]
        rows.append([esc(cmp["b"]["model"] or cmp["b"]["run_id"]), esc(cmp["a"]["model"] or cmp["a"]["run_id"]),
                     str(o["paired_items"]), rate_cell(o["a"]), rate_cell(o["b"]),
                     _difference(o),
                     esc("–" if o["p_value"] is None else f"{o['p_value']:.3g}"),
                     money(cmp["b"]["cost"]["cost_per_1k_items"])])
    return table(["B", "A", "paired items", "A pass rate", "B pass rate", "B − A (points)", "p", "B cost / 1k"], rows)


def side_by_side_table(data: dict[str, Any], item_links: bool = True) -> str:
    """The matched items, one column per run, flipped rows highlighted."""
    heads = ["item"] + [r["model"] or r["run_id"][:16] for r in data["runs"]]
    rows, attrs = [], []
    for row in data["rows"]:
        cells = [_short(row["item"], 240)]
        for run, cell in zip(data["runs"], row["cells"]):
            label = _status("pass" if cell["pass_rate"] == 1 else "fail" if cell["pass_rate"] == 0 else "error"
                            if cell["pass_rate"] is None else "mixed")
            ref = link(f"/runs/{run['run_id']}/items/{cell['index']}", f"#{cell['index']}") if item_links else ""
            cells.append(f"{label} {ref}{pre(cell['output'] or '')}")
        rows.append(cells)
        attrs.append('class="flip"' if row["flipped"] else "")
    return table(heads, rows, attrs)


def compare_html(data: dict[str, Any]) -> str:
    """The compare page: statistics against the first run, forest plot, items side by side."""
    body = (f"<h1>Compare {len(data['runs'])} runs</h1>{comparison_table(data['comparisons'])}"
            f"<div class=plots>{forest('plot-forest', data['comparisons'])}</div>"
            f"<h2>Items: {data['flipped']} flipped of {data['shared']} shared (flipped first)</h2>"
            + side_by_side_table(data) + ("<p class=muted>(more rows left out)</p>" if data["truncated"] else ""))
    return page("gradeloop: compare", body, head=PLOTLY_TAG)


def jobs_html(data: dict[str, Any]) -> str:
    """The fine-tuning jobs list."""
    rows = [[link(f"/jobs/{j['id']}", j["id"]), esc(j["method"]), esc(j["model"]), _status(j["status"]),
             esc(j["fine_tuned_model"]), esc(date(j["created_at"]))] for j in data["jobs"]]
    heads = ["job", "method", "model", "status", "fine-tuned model", "created"]
    body = "<h1>Fine-tuning jobs</h1>" + (table(heads, rows) if rows else "<p>No fine-tuning jobs.</p>")
    return page("gradeloop: jobs", body)


def job_html(data: dict[str, Any]) -> str:
    """A job: its curves (reward or loss, validation), checkpoints and events."""
    job = data["job"]
    plots = [plot(f"plot-{i}", [{"type": "scatter", "mode": "lines+markers", "x": c["step"], "y": c["value"],
                                 "name": name}], {"title": {"text": name}, "xaxis": {"title": {"text": "step"}}})
             for i, (name, c) in enumerate(sorted(data["curves"].items()))]
    ckpts = table(["step", "name", "metrics", "removed"], [
        [str(c["step"]), esc(c["name"]), pre(c["metrics"]), esc(c["removed"])] for c in data["checkpoints"]])
    runs = table(["step", "validation run", "pass rate"], [
        [str(v["step"]), link(f"/runs/{v['run_id']}", v["run_id"]), pct(v["pass_rate"])]
        for v in data["validation_runs"]])
    events = table(["time", "level", "message"], [[esc(date(e["created_at"])), esc(e["level"]), esc(e["message"])]
                                                  for e in data["events"]])
    body = (f"<h1>{esc(job['id'])} · {esc(job['method'])} · {_status(job['status'])}</h1><p>{esc(job['model'])} → "
            f"{esc(job['fine_tuned_model'] or '…')}</p>"
            f"<div class=plots>{''.join(plots) or '<p>No metrics yet.</p>'}</div>"
            f"<h2>Checkpoints</h2>{ckpts}<h2>Validation runs</h2>{runs}<h2>Events</h2>{events}")
    return page(f"gradeloop: {job['id']}", body, head=PLOTLY_TAG)
