"""Browser fixtures: the sample SPA in Debian's Chromium, against the emulator and the API.

One stack for the session: the emulator (HTTPS), the API under gunicorn allowing the SPA's
origin, and the SPA on ``http://localhost:<free port>``, registered with the emulator as a SPA
redirect URI. Each test gets a fresh Chromium profile in its own temporary directory, and a
failing test leaves a screenshot and the page's console in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Playwright, expect, sync_playwright

from emulator import API_APP_ID_URI, API_SCOPE, SPA_CLIENT_ID
from scripts.build_spa import BuildError, build
from scripts.spa_server import SpaConfig, SpaServer
from scripts.stack import Stack, free_port
from tests.browser.browser_support import (
    ARTIFACTS_DIR,
    CHROMIUM,
    EXPECT_TIMEOUT_MS,
    SpaPage,
    SpaStack,
    certificate_pin,
    launch_chromium,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: the sample SPA in headless Chromium against the local stack"
    )


def spa_config(authority: str, api_url: str) -> SpaConfig:
    return SpaConfig(
        client_id=SPA_CLIENT_ID,
        authority=authority,
        api_url=api_url,
        api_scopes=(f"{API_APP_ID_URI}/{API_SCOPE}",),
    )


@pytest.fixture(scope="session")
def spa_assets() -> Path:
    """MSAL.js copied from node_modules into the SPA (what `npm ci` + build_spa do)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        return build()
    except BuildError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def browser_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="session")
def spa_stack(spa_assets: Path, browser_dir: Path) -> Iterator[SpaStack]:
    """Emulator + API + the SPA on its own origin, which the API allows and Entra knows."""
    spa_port = free_port()
    origin = f"http://localhost:{spa_port}"
    with (
        (browser_dir / "servers.log").open("a", encoding="utf-8") as log,
        Stack(browser_dir / "state", log=log, extra_env={"CORS_ALLOWED_ORIGINS": origin}) as stack,
    ):
        config = spa_config(stack.emulator.authority, stack.api_url)
        with SpaServer(config, port=spa_port, log=log) as spa:
            stack.emulator.add_spa_redirect_uris(spa.redirect_uri)
            yield SpaStack(stack, spa)


@pytest.fixture(scope="session")
def static_spa(spa_assets: Path) -> Iterator[SpaServer]:
    """The SPA alone, configured for hosts that do not exist: for its scripts' own tests."""
    with SpaServer(spa_config("https://login.invalid/tenant", "http://api.invalid")) as spa:
        yield spa


@pytest.fixture(autouse=True)
def clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each stack test starts with no faults, zeroed counters and Entra's token lifetime."""
    if "spa_stack" not in request.fixturenames:
        yield
        return
    emulator = request.getfixturevalue("spa_stack").stack.emulator
    emulator.clear_faults()
    emulator.reset_counters()
    yield
    emulator.clear_faults()
    emulator.set_token_lifetime(None)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        expect.set_options(timeout=EXPECT_TIMEOUT_MS)
        yield driver


@pytest.fixture()
def console() -> list[str]:
    """What the test's pages wrote to their console, uncaught errors included."""
    return []


@pytest.fixture()
def spa(
    playwright: Playwright, spa_stack: SpaStack, tmp_path: Path, console: list[str]
) -> Iterator[SpaPage]:
    """The SPA in front of the stack in a new browser profile, opened and signed out."""
    emulator = spa_stack.stack.emulator
    context = launch_chromium(
        playwright,
        tmp_path / "chromium-profile",
        [certificate_pin(emulator.host, emulator.port)],
        console,
    )
    try:
        yield SpaPage(context.pages[0], spa_stack.spa.url, emulator.base_url).open()
    finally:
        context.close()


@pytest.fixture(scope="session")
def static_page(
    playwright: Playwright, static_spa: SpaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SpaPage]:
    """The SPA with nowhere to sign in, opened once: for running its modules in the page."""
    context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"), [], [])
    try:
        yield SpaPage(context.pages[0], static_spa.url, "https://login.invalid").open()
    finally:
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
    call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, save what the user saw and the console, and say where."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    pages = [value for value in funcargs.values() if isinstance(value, SpaPage)]
    if report.when == "call" and report.failed and pages:
        report.sections.append(
            ("browser", save_artifacts(item.nodeid, pages[0], funcargs.get("console", [])))
        )
    return report


def save_artifacts(nodeid: str, spa: SpaPage, console: list[str]) -> str:
    """A screenshot and the console in test-artifacts/browser/; where they are."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    ignore = ARTIFACTS_DIR.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text(
            "# test output, written by tests/browser/conftest.py\n*\n", encoding="utf-8"
        )
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)
    console_log = ARTIFACTS_DIR / f"{stem}.console.txt"
    console_log.write_text("".join(f"{line}\n" for line in console), encoding="utf-8")
    screenshot = ARTIFACTS_DIR / f"{stem}.png"
    try:
        spa.page.screenshot(path=screenshot, full_page=True)
        saved = f"screenshot: {screenshot}"
    except PlaywrightError as exc:
        saved = f"no screenshot: {exc.message}"
    return f"{saved}\npage: {spa.page.url}\nconsole: {console_log}"
