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


def status_label(run: dict[str, Any]) -> str:
    """A run's status for people: ``interrupted`` for a run whose runner died, else its status."""
    return "interrupted" if run.get("gradeloop", {}).get("interrupted") else run["status"]


def summary_table(summaries: list[dict[str, Any]]) -> Table:
    """One row per run: counts (``empty``: graded samples with no output), pass rate, tokens, latency."""
    table = Table(title="Results", title_justify="left")
    for col in ("model", "run", "pass", "fail", "error", "empty", "pass rate", "95% CI", "tokens in/out", "cached",
                "p50", "p95"):
        table.add_column(col, justify="left" if col in ("model", "run") else "right")
    for s in summaries:
        low, high = s["pass_rate_interval"]
        table.add_row(
            s["model"], short_id(s["run_id"]), str(s["passed"]), str(s["failed"]), str(s["errored"]), str(s["empty"]),
            _pct(s["pass_rate"]), "–" if low is None else f"{100 * low:.1f}–{100 * high:.1f}",
            f"{s['prompt_tokens']}/{s['completion_tokens']}", str(s["cached_samples"]),
            _ms(s["latency_p50_ms"]), _ms(s["latency_p95_ms"]))
    return table


def pass_at_k_line(summary: dict[str, Any]) -> str:
    """``pass@1 40.0%, pass@2 55.0%, pass@5 …`` (unbiased, over items with every sample)."""
    values = ", ".join(f"pass@{k} {_pct(v)}" for k, v in summary["pass_at_k"].items())
    return f"{summary['model']}: {values}"


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
        table.add_row(short_id(r["id"]), r["name"] or "", r["gradeloop"]["model"] or "(given samples)", status_label(r),
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
        elif it.get("gradeloop", {}).get("empty_output"):
            text = "(empty output)"
        text = " ".join(str(text).split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        scores = ", ".join(f"{r['criterion']}={r['score']:g}" for r in it["results"] if r["score"] is not None)
        table.add_row(str(it["datasource_item_id"]), str(it["epoch"]), it["status"], scores, text)
    return table


def breakdown_table(field: str, rows: list[dict[str, Any]]) -> Table:
    """Pass rate per value of an item field; with several criteria, each one's pass rate and
    mean score (``pass% / mean``) too."""
    table = Table(title=f"By {field}", title_justify="left")
    names = list(dict.fromkeys(k["name"] for r in rows for k in r.get("criteria", [])))
    names = names if len(names) > 1 else []
    for col in (field, "pass", "fail", "error", "pass rate", "tokens in/out", *names):
        table.add_column(col, justify="left" if col == field else "right")
    for r in rows:
        value = "(none)" if r["value"] is None else str(r["value"])
        tokens = f"{r.get('prompt_tokens', 0)}/{r.get('completion_tokens', 0)}"
        by_name = {k["name"]: k for k in r.get("criteria", [])}
        cells = [f"{_pct(by_name[n]['pass_rate'])} / {_mean(by_name[n]['mean_score'])}" if n in by_name else "–"
                 for n in names]
        table.add_row(value, str(r["passed"]), str(r["failed"]), str(r["errored"]), _pct(r["pass_rate"]), tokens,
                      *cells)
    return table


def _mean(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def effective_length_line(summary: dict[str, Any]) -> str:
    """``effective length: 16384 tokens (…)``: the rule and each length's pass rate."""
    length = summary["effective_length"]
    bins = ", ".join(f"{b['length']}: {_pct(b['pass_rate'])}{'' if b['holds'] else ' ✗'}" for b in summary["bins"])
    threshold = "–" if summary["threshold"] is None else _pct(summary["threshold"])
    said = f"{length} tokens" if length is not None else "none (no length holds)"
    return f"effective length: {said}; threshold {threshold} ({summary['rule']}); by {summary['field']}: {bins}"


def rates_lines(rates: list[dict[str, Any]]) -> list[str]:
    """One line per criterion that reports rates: ``rates of NAME: faithful 80.0% (n=40), …``."""
    return [f"rates of {r['name']}: " + ", ".join(f"{k} {_pct(v['rate'])} (n={v['n']})" for k, v in r["rates"].items())
            for r in rates]


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def comparison_table(cmp: dict[str, Any]) -> Table:
    """``eval compare``: both pass rates with intervals, the paired difference and its test."""
    a, b = cmp["a"], cmp["b"]
    label_a = f"A {a['model'] or short_id(a['run_id'])}"
    label_b = f"B {b['model'] or short_id(b['run_id'])}"
    level = round(100 * cmp["overall"]["confidence"])
    table = Table(title=f"B vs A on {cmp['items']['paired']} paired items ({level}% intervals)", title_justify="left")
    holm = bool(cmp.get("holm", {}).get("family"))
    for col in ("", label_a, label_b, "B − A (points)", "A only / B only", "p") + (("p (Holm)",) if holm else ()):
        table.add_column(col, justify="left" if not col else "right")

    def rate(r: dict[str, Any]) -> str:
        if r["value"] is None:
            return "–"
        return f"{100 * r['value']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"

    def row(name: str, c: dict[str, Any]) -> None:
        diff = "–" if c["difference"] is None else f"{_signed(c['difference'])} [{_signed(c['low'])}, {_signed(c['high'])}]"
        cells = [name, rate(c["a"]), rate(c["b"]), diff, f"{c['only_a']} / {c['only_b']}", _p(c["p_value"])]
        table.add_row(*cells, *([_p(c.get("p_holm"))] if holm else []))

    row("all criteria", cmp["overall"])
    for c in cmp["criteria"] if len(cmp["criteria"]) > 1 else []:  # one criterion: the row above
        row(c["name"], c)
    for g in cmp["by"]:
        row(f"{g['field']} = {g['value']}", g)
    return table


def comparison_line(cmp: dict[str, Any]) -> str:
    """One line: B against A, paired (printed after a run of several models)."""
    o = cmp["overall"]
    if o["difference"] is None:
        return f"{cmp['b']['model']} vs {cmp['a']['model']}: no item graded in both runs"
    return (f"{cmp['b']['model']} vs {cmp['a']['model']}: {_signed(o['difference'])} points "
            f"[{_signed(o['low'])}, {_signed(o['high'])}] on {o['paired_items']} paired items, "
            f"p {'' if _p(o['p_value']).startswith('<') else '= '}{_p(o['p_value'])} "
            f"(gradeloop eval compare {short_id(cmp['a']['run_id'])} {short_id(cmp['b']['run_id'])})")


def comparison_notes(cmp: dict[str, Any]) -> list[str]:
    """What the table cannot say: the test used, what was left out, what the items can detect."""
    o, items = cmp["overall"], cmp["items"]
    test = {"mcnemar-exact": "McNemar's exact test (one sample per item)",
            "sign-flip": "a sign-flip permutation test on per-item pass rates (several samples per item)"}
    notes = [f"p: {test.get(o['test'], 'no test')}; interval of B − A: paired bootstrap over items."]
    if cmp["a"]["run_id"] == cmp["b"]["run_id"]:
        notes.append("A and B are the same run.")
    left = []
    if items["only_in_a"] or items["only_in_b"]:
        left.append(f"{items['only_in_a']} items only in A, {items['only_in_b']} only in B")
    if items["errored_a"] or items["errored_b"]:
        left.append(f"errored samples: {items['errored_a']} in A, {items['errored_b']} in B")
    if left:
        notes.append("left out: " + "; ".join(left) + ".")
    if o["detectable"] is not None:
        notes.append(f"power: with {items['paired']} items and this share of items on which the runs disagree, "
                     f"a true difference of {100 * o['detectable']:.1f} points is found 4 times in 5; smaller ones "
                     "are easily missed.")
    if cmp.get("holm", {}).get("family"):
        notes.append(f"p (Holm): the {cmp['holm']['family']} rows below 'all criteria' are one family of tests; "
                     "their p-values are corrected with Holm–Bonferroni (the 'all criteria' row is the primary "
                     "test and is not).")
    return notes
