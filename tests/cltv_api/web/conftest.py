"""Browser-test fixtures: Debian's Chromium driven by Playwright against a real uvicorn process.

The browser is ``/usr/bin/chromium`` (``make system-deps`` installs it); a downloaded Playwright
build is never used. Without it the tests fail, saying so: they are not skipped.

One server serves every browser test of the session (they all run in the ``browser`` xdist
group). Its fits of more than ``SYNC_FIT_MAX_CUSTOMERS`` customers run as background jobs, so
that the page's job polling is exercised with a small file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize

from cltv_api.storage.db import Database
from tests.cltv_api.service.conftest import REPO_ROOT, LiveServer, new_workspace, start_live_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
AXE_SCRIPT = Path(__file__).parent / "vendor" / "axe.min.js"
SYNC_FIT_MAX_CUSTOMERS = 100
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}

# Chromium logs every HTTP error response of a fetch as a console error; the 4xx answers the
# tests provoke on purpose (validation errors) are expected, nothing else is.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Launch Debian's Chromium (never `playwright install`'s download)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}; install it with "
            "`make system-deps` (apt-get install chromium fonts-liberation)."
        )
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@dataclass(frozen=True)
class WebApp:
    """The live server and an API key of a workspace in it."""

    server: LiveServer
    key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def api(self) -> httpx.Client:
        """An httpx client of the same server, authenticated with the key."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


@pytest.fixture(scope="session")
def web_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    """uvicorn serving ``cltv_api.main:app`` (the page at ``/``), stopped with SIGTERM."""
    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLTV_SYNC_FIT_MAX_CUSTOMERS", str(SYNC_FIT_MAX_CUSTOMERS))
        env.setenv("CLTV_JOB_POLL_INTERVAL_SECONDS", "0.05")
        server = start_live_server(root / "data", root / "uvicorn.log")
    try:
        db = Database(f"sqlite:///{server.data_dir / 'cltv.sqlite3'}")
        try:
            key = new_workspace(db, "browser tests").key
        finally:
            db.dispose()
        yield WebApp(server, key)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_url(web_app: WebApp) -> str:
    """Relative URLs of the pages (``page.goto("/")``) are on the live server.

    Also replaces pytest-playwright's fallback ``base_url`` fixture, a session fixture defined
    as an instance method, which pytest 9 deprecates with a warning (an error here).
    """
    return web_app.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """Every page opens in an English-speaking browser, on a desktop screen."""
    return {
        **browser_context_args,
        "locale": "en-US",
        "viewport": DESKTOP,
        "accept_downloads": True,
    }


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of a page (CSP refusals are console errors)."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not EXPECTED_CONSOLE.search(message.text):
            self.errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def console(page: Page) -> Iterator[ConsoleLog]:
    """Collects the page's console errors; the test fails if there were any."""
    log = ConsoleLog()
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    yield log
    assert log.errors == [], f"console errors on the page: {log.errors}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page, impacts: frozenset[str] = frozenset({"serious", "critical"})) -> Any:
    """Run the vendored axe-core on the page; the violations of the given impacts.

    The page's CSP forbids injected scripts, so the scanner is evaluated through the DevTools
    protocol (``page.evaluate``), which CSP does not govern.
    """
    page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    violations = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )
    return [v for v in violations if v["impact"] in impacts]


def has_horizontal_scroll(page: Page) -> bool:
    """Whether the document is wider than the viewport (the page scrolls sideways)."""
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


def formatted(x: float, lang: str, min_digits: int, max_digits: int | None = None) -> str:
    """``x`` as ``Intl.NumberFormat`` writes it for the page's locales: en-US ``1,234.5``, ru-RU
    ``1 234,5`` (the page's no-break space written as a plain one; Playwright's text
    assertions treat them alike). Between ``min_digits`` and ``max_digits`` fraction digits."""
    digits = min_digits if max_digits is None else max_digits
    text = f"{x:,.{digits}f}"
    while digits > min_digits and text.endswith("0"):
        text, digits = text[:-1], digits - 1
    text = text.removesuffix(".")
    if lang == "ru":
        text = text.replace(",", " ").replace(".", ",")
    return text
