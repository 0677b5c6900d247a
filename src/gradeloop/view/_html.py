"""Small HTML building blocks: every text goes through :func:`html.escape`; plots are Plotly
figures (plain JSON) drawn by plotly.js, which the page loads from the viewer or inlines."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any
from urllib.parse import urlencode

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:8px 20px}header a{color:#fff;margin-right:16px;text-decoration:none}
main{padding:16px 20px;max-width:1400px}h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:6px 0}td,th{border:1px solid #dde1e8;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#17803d}.fail{color:#b42318}.error{color:#a15c00}.muted{color:#6b7280}.flip{background:#fff7e0}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #dde1e8;padding:6px;margin:4px 0;
max-height:420px;overflow:auto}td pre{max-height:160px;border:0;padding:0;background:none}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{width:560px;height:340px;background:#fff;border:1px solid #dde1e8}
form.filters{background:#fff;border:1px solid #dde1e8;padding:8px;display:inline-block}form.filters>*{margin-right:8px}
.diffs{display:grid;grid-template-columns:1fr 1fr;gap:12px}.diffs pre{max-height:640px}.ins{color:#17803d}.del{color:#b42318}
"""


def esc(value: Any) -> str:
    """``value`` as escaped HTML text (None as an empty string)."""
    return "" if value is None else escape(str(value))


def pct(value: float | None, digits: int = 1) -> str:
    """0.912 → ``91.2%``; None → ``–``."""
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def rate_cell(rate: dict[str, Any]) -> str:
    """A pass rate with its interval: ``91.2% [88.0, 93.7]``."""
    if rate.get("value") is None:
        return "–"
    return f"{pct(rate['value'])} <span class=muted>[{100 * rate['low']:.1f}, {100 * rate['high']:.1f}]</span>"


def money(value: float | None) -> str:
    """USD with four significant digits, or ``–``."""
    return "–" if value is None else f"${value:.4g}"


def ms(value: float | None) -> str:
    """Milliseconds as ``123 ms`` / ``1.23 s``."""
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def date(ts: float | None) -> str:
    """A UTC timestamp as ``2026-12-07 10:40``."""
    return "" if not ts else dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def short_name(model: str | None) -> str:
    """A model name short enough for a plot label: the part after the last ``/``
    (``openai/gpt-4.1`` → ``gpt-4.1``, ``scripted/examples/large.yaml`` → ``large.yaml``)."""
    return (model or "").rstrip("/").rsplit("/", 1)[-1]


def link(href: str, text: Any, **params: Any) -> str:
    """An ``<a>`` whose query string is built from ``params`` (None values left out)."""
    query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
    return f'<a href="{esc(href + ("?" + query if query else ""))}">{esc(text)}</a>'


def table(headers: list[str], rows: list[list[str]], attrs: list[str] | None = None) -> str:
    """A table of already-escaped cells; ``attrs`` adds attributes to each ``<tr>``."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr {attrs[i] if attrs else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pre(value: Any) -> str:
    """Text or JSON in a ``<pre>`` block."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return f"<pre>{esc(text)}</pre>"


def diff_pre(diff: str) -> str:
    """A unified diff in a ``<pre>`` block, added lines green and removed ones red."""
    def line(text: str) -> str:
        kind = "ins" if text.startswith("+") and not text.startswith("+++") else \
            "del" if text.startswith("-") and not text.startswith("---") else ""
        return f"<span class={kind}>{esc(text)}</span>" if kind else esc(text)

    return "<pre>" + "\n".join(line(text) for text in diff.split("\n")) + "</pre>"


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can close it early)."""
    return json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def error_bars(values: list[float | None], lows: list[float | None], highs: list[float | None]) -> dict[str, Any]:
    """Plotly error bars from intervals (none where the value is unknown)."""
    known = [v is not None for v in values]
    return {"type": "data", "array": [h - v if k else 0 for v, h, k in zip(values, highs, known)],
            "arrayminus": [v - lo if k else 0 for v, lo, k in zip(values, lows, known)]}


def plot(div_id: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    """A Plotly figure: its ``<div>`` and the script that draws it."""
    layout = {"margin": {"l": 60, "r": 20, "t": 40, "b": 60}, **layout}
    config = {"displaylogo": False, "responsive": True}
    # drawn at DOMContentLoaded: the viewer loads plotly.js with defer, so the page paints first
    return (f'<div class="plot" id="{esc(div_id)}"></div><script>document.addEventListener("DOMContentLoaded", '
            f'function () {{ Plotly.newPlot({script_json(div_id)}, {script_json(data)}, {script_json(layout)}, '
            f'{script_json(config)}); }});</script>')


def page(title: str, body: str, *, head: str = "", nav: bool = True) -> str:
    """A whole HTML document with the viewer's CSS; ``head`` goes into ``<head>`` (scripts)."""
    bar = ('<header><a href="/">Evals</a><a href="/jobs">Fine-tuning jobs</a></header>' if nav else "")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<meta name=viewport content='width=device-width'><style>{CSS}</style>{head}</head>"
            f"<body>{bar}<main>{body}</main></body></html>")
