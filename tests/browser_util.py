"""Headless Debian Chromium driven by Playwright for the viewer and report tests (never a
downloaded browser). Skips with a reason when either is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("GRADELOOP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def local(url: str) -> bool:
    """True for a URL that stays on this machine: 127.0.0.1, a file, data or blob."""
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname == "127.0.0.1"


class Watched:
    """A page with its console errors, page errors and every requested URL."""

    def __init__(self, page: Any) -> None:
        self.page, self.errors, self.urls = page, [], []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        self.urls.append(route.request.url)
        route.continue_() if local(route.request.url) else route.abort()

    def assert_clean(self) -> None:
        """No console error, and no request left 127.0.0.1."""
        assert self.errors == []
        assert self.urls and [u for u in self.urls if not local(u)] == []


@contextmanager
def browser() -> Iterator[Any]:
    """A launched headless Chromium; skips the test when Chromium or Playwright is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup.sh installs Debian's chromium as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def open_page(b: Any, url: str) -> Watched:
    """A new page, watched, loaded at ``url``."""
    watched = Watched(b.new_page(viewport={"width": 1300, "height": 900}))
    watched.page.goto(url, wait_until="load")
    return watched


def plots_drawn(page: Any, expected: int) -> None:
    """Wait until ``expected`` Plotly plots have drawn their SVG."""
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= {expected}",
                           timeout=30_000)
