"""Viewer: time to first render of a run page with 100,000 items.

What it measures
    A store in a temporary folder holding one run of ``--items`` items (default 100,000), one
    sample, two scores and one output item each, written row by row in one transaction (the
    runner writes the same rows, slower). Then:

    store read        ``Store.open_readonly`` + the run page's data (``view._data.run_data``:
                      counts, pass rate with interval, per-criterion and per-field rates, cost
                      and latency percentiles, the first page of 50 items) in this process
    server            GET /runs/<id> (the HTML page) from the viewer on 127.0.0.1: the first
                      request computes the summary above the item table (what "store read"
                      times, plus rendering); later requests of a finished run reuse it, so the
                      median of 5 more, the JSON twin and a page deep in the table
                      (``after=90000``) time the keyset page of items alone
    browser           headless Chromium (/usr/bin/chromium through Playwright, if both are
                      there), from navigation: first contentful paint, the load event (plotly.js,
                      4.8 MB from the viewer, loaded with defer, included) and until its plots
                      have drawn their SVG; cold, then again with plotly.js in the browser's cache

Target: under 1 s for the first response and the store read.

Run it from the repository root:

    .venv/bin/python bench/viewer.py
    .venv/bin/python bench/viewer.py --items 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path


def fill(path: Path, n: int) -> str:
    """A store at ``path`` with one run of ``n`` graded items; returns the run id."""
    from gradeloop import Store

    store = Store(path)
    eval_id = store.add_eval({"name": "bench", "testing_criteria": [
        {"type": "string_check", "name": "label", "input": "{{ sample.output_text }}", "operation": "eq",
         "reference": "{{ item.label }}"},
        {"type": "string_check", "name": "not empty", "input": "{{ sample.output_text }}", "operation": "ne",
         "reference": ""}], "data_source_config": {"type": "custom", "item_schema": {"type": "object"}}})
    labels = ["billing", "technical", "account", "shipping"]
    rows = ((i, {"ticket": f"ticket text number {i} " * 4, "label": labels[i % 4]}, None, None, None) for i in range(n))
    run_id = store.create_run(eval_id=eval_id, model="openai/gpt-4.1-mini", name="bench", data_source=None,
                              config={"epochs": 1}, rows=rows)
    now = time.time()
    passed = [int((i * 7919) % 10 < 8) for i in range(n)]
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO samples (run_id, idx, epoch, status, model, input, output, prompt_tokens, completion_tokens,"
            " latency_ms, cached, created_at) VALUES (?, ?, 0, 'ok', 'openai/gpt-4.1-mini', ?, ?, 60, 3, ?, 0, ?)",
            [(run_id, i, json.dumps([{"role": "user", "content": f"ticket {i}"}]),
              json.dumps({"role": "assistant", "content": labels[(i + 1 - passed[i]) % 4]}), 200 + i % 300, now)
             for i in range(n)])
        store.conn.executemany(
            "INSERT INTO scores VALUES (?, ?, 0, ?, ?, 'string_check', 'h', ?, ?, '{}', ?)",
            [(run_id, i, c, name, float(p), p, now) for i in range(n)
             for c, name, p in ((0, "label", passed[i]), (1, "not empty", 1))])
        store.conn.executemany("INSERT INTO output_items VALUES (?, ?, ?, 0, ?, ?)",
                               [(f"oi_{i}", run_id, i, "pass" if passed[i] else "fail", int(now)) for i in range(n)])
        store.conn.execute("UPDATE runs SET status = 'completed', started_at = ?, finished_at = ? WHERE id = ?",
                           (now - 60, now, run_id))
    store.close()
    return run_id


def timed_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        response.read()
    return time.perf_counter() - start


def browser_times(url: str) -> list[tuple[str, float]]:
    """Seconds from navigation to first contentful paint, load event and plots drawn, cold
    (plotly.js fetched) and warm (from the browser's cache); empty without Chromium or Playwright."""
    if not os.path.exists("/usr/bin/chromium"):
        return []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        out = []
        for cache in ("cold", "warm"):
            start = time.perf_counter()
            page.goto(url, wait_until="load")
            loaded = time.perf_counter() - start
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 2")
            drawn = time.perf_counter() - start
            paint = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0]"
                                  " || {startTime: NaN}).startTime") / 1000
            out += [(f"browser ({cache}): first contentful paint", paint), (f"browser ({cache}): load event", loaded),
                    (f"browser ({cache}): plots drawn", drawn)]
        browser.close()
    return out


def main() -> None:
    """Fill a store, time the run page, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    from gradeloop import Store
    from gradeloop.view import BackgroundViewer
    from gradeloop.view._data import run_data

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gradeloop.db"
        start = time.perf_counter()
        run_id = fill(path, args.items)
        fill_s = time.perf_counter() - start
        rows = []
        with BackgroundViewer(path) as viewer:
            base = f"{viewer.url}/runs/{run_id}"
            rows.append(("server, first request (HTML)", timed_get(base)))
            rows.append(("server, again: median of 5 (HTML)", statistics.median(timed_get(base) for _ in range(5))))
            rows.append(("server, JSON twin: median of 5",
                         statistics.median(timed_get(base + ".json") for _ in range(5))))
            rows.append(("server, page at after=90000: median of 5",
                         statistics.median(timed_get(f"{base}.json?after={int(args.items * 0.9)}") for _ in range(5))))
            start = time.perf_counter()
            store = Store.open_readonly(path)
            run_data(store, run_id)
            store.conn.close()
            rows.insert(0, ("store read (open + run page data)", time.perf_counter() - start))
            rows += browser_times(base) or [("browser (no chromium or playwright)", float("nan"))]
    print(f"run page of {args.items:,} items (store filled in {fill_s:.1f} s; {os.cpu_count()} CPUs)")
    print(f"{'measure':40s} {'seconds':>8s}")
    for name, value in rows:
        print(f"{name:40s} {value:8.3f}")


if __name__ == "__main__":
    main()
