"""What the real-browser tests share: Debian's `chromium` driven by Playwright, a fresh page,
the admin login, and where screenshots go (`ADMIN_SCREENSHOT_DIR` keeps them, for docs/)."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.factories import PASSWORD

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not on PATH (`make test` installs it when run as root)")
    return path


@contextmanager
def browser_page(chromium: str, *, height: int = 900) -> Iterator[Page]:
    """A fresh 1280-px-wide page. The test's own ORM calls go outside this block: inside,
    Playwright runs the code in a greenlet that Django would give a connection of its own."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": height})
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def log_in(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert username.upper() in page.locator("#user-tools").inner_text().upper()


def screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("ADMIN_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
