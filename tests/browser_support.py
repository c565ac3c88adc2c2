"""Debian's chromium driven by Playwright, for the browser tests (the ``browser`` fixture is in conftest)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

ROOT = Path(__file__).resolve().parent.parent
#: Screenshots of the browser tests (gitignored).
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright never downloads a browser
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def watch(page: Page) -> dict[str, list[str]]:
    """What a page does that a test looks at: console errors and page errors, dialogs, badge batch requests."""
    seen: dict[str, list[str]] = {"errors": [], "dialogs": [], "batches": []}

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen["errors"].append(f"{message.text} @ {message.location.get('url', '')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: seen["batches"].append(request.url) if "/v1/badges?" in request.url else None)
    return seen


def badge_text(page: Page, selector: str) -> list[str]:
    """The texts of the marks badge.js put into the elements ``selector`` matches."""
    return page.locator(f"{selector} .provenance-badge").all_text_contents()
