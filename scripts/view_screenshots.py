"""Screenshots of the viewer for docs/view.md: the evals, run, item and compare pages and the
report, of the three stand-in models (examples/triage-models/) on examples/ticket-triage.yaml.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; writes docs/img/view-*.png.
Run it from the repository root:

    .venv/bin/python scripts/view_screenshots.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MODELS = [f"scripted/examples/triage-models/{m}.yaml" for m in ("large", "mini", "nano")]
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main() -> None:
    """Run the three models into a temporary store, serve it, take the screenshots."""
    from playwright.sync_api import sync_playwright

    from gradeloop import Store, run_eval
    from gradeloop.view import BackgroundViewer, write_report

    out = Path("docs/img")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ["GRADELOOP_HOME"] = home
        os.environ["GRADELOOP_PRICES"] = "examples/triage-models/prices.yaml"
        runs = run_eval("examples/ticket-triage.yaml", MODELS)
        Store().close()
        failed = Store().output_items(runs[2], status="fail")[0]["index"]
        report = write_report(Store(), runs, Path(home) / "report.html", by=["correct_label"])
        with BackgroundViewer(Path(home) / "gradeloop.db") as viewer, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            shots = {"view-runs": "/", "view-run": f"/runs/{runs[1]}", "view-item": f"/runs/{runs[2]}/items/{failed}",
                     "view-compare": "/compare?" + "&".join(f"run={r}" for r in runs)}
            for name, path in shots.items():
                page.goto(viewer.url + path, wait_until="load")
                if "run=" in path or path.startswith("/runs/") and "items" not in path:
                    page.wait_for_selector(".js-plotly-plot svg.main-svg")
                    page.wait_for_timeout(500)  # Plotly's transitions
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"wrote {out / f'{name}.png'}")
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_selector(".js-plotly-plot svg.main-svg")
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "report.png"))
            print(f"wrote {out / 'report.png'}")
            browser.close()


if __name__ == "__main__":
    main()
