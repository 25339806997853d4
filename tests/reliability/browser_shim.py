"""Opening a report file in headless Chromium for the reliability tests, the way the
report's own browser test does (Debian's Chromium through playwright; skips without it)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from report.test_report_browser import CHROMIUM_ARGS  # the same flags as the report's test


def _chromium() -> str:
    candidates = [os.environ.get("SPLINESCOPE_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if os.environ.get("CI"):
        pytest.fail("CI must install Chromium for the report's browser tests")
    pytest.skip("Chromium not found")


@contextlib.contextmanager
def browser_page(path: Path):
    """(page, console lines, refused non-file requests, dialogs seen) for a file:// page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            console: list[str] = []
            requests: list[str] = []
            dialogs: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

            def on_dialog(d):
                dialogs.append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-figures-rendered]", state="attached", timeout=60_000)
            yield page, console, requests, dialogs
        finally:
            browser.close()
