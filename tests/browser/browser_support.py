"""Browser test support: Debian's Chromium, the SPA in front of the stack, the pages a user sees.

The tests drive the sample SPA (samples/spa/) in a real Chromium against the emulator and the
API under gunicorn. `SpaPage` is what a user sees and does: the SPA's page and the emulator's
sign-in pages.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import BrowserContext, Locator, Page, Playwright, expect

from scripts.spa_server import SpaServer
from scripts.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_DIR = ROOT / "test-artifacts" / "browser"
# Generous: a sign-in is several page loads, token requests and an OBO exchange on a busy CI box.
EXPECT_TIMEOUT_MS = 20_000
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def certificate_pin(host: str, port: int) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the certificate a TLS server presents."""
    pem = ssl.get_server_certificate((host, port))
    spki = (
        x509.load_pem_x509_certificate(pem.encode("ascii"))
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def launch_chromium(
    playwright: Playwright, profile_dir: Path, trusted_pins: list[str], console: list[str]
) -> BrowserContext:
    """Headless Debian Chromium with a fresh profile, no background traffic, and the TLS
    certificates whose keys are in ``trusted_pins`` accepted (the emulator's is self-signed):
    Chromium honours the pin list only with a user-data-dir of the caller's, which a persistent
    context is, and every other certificate error still fails. Console lines go to ``console``.
    """
    context = playwright.chromium.launch_persistent_context(
        profile_dir,
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={','.join(trusted_pins)}"],
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    context.on("weberror", lambda error: console.append(f"pageerror: {error.error}"))
    return context


@dataclass
class SpaStack:
    """The emulator and the API (``stack``) with the SPA on its own origin (``spa``)."""

    stack: Stack
    spa: SpaServer

    def counters(self) -> dict[str, int]:
        return self.stack.emulator.counters()


class SpaPage:
    """The sample SPA in a browser tab, and the emulator's pages it sends the user to."""

    def __init__(self, page: Page, spa_url: str, entra_url: str) -> None:
        self.page = page
        self.spa_url = spa_url
        self.entra_url = entra_url
        self.status = page.locator("#status")
        self.error = page.locator("#error")
        self.profile = page.locator("#profile")
        self.users = page.locator("#users > li")
        self.subscriptions = page.locator("#subscriptions > li")
        self.activity = page.locator("#activity > li")
        self.sign_in_button = page.locator("#sign-in")
        self.sign_out_button = page.locator("#sign-out")
        self.reload_button = page.locator("#reload")

    def open(self) -> SpaPage:
        self.page.goto(self.spa_url)
        expect(self.status).to_have_attribute("data-state", "signed-out")
        return self

    def sign_in(self, user: str) -> None:
        """Click Sign in and pick ``user`` on the emulator's sign-in page."""
        self.sign_in_button.click()
        self.pick_user(user)

    def pick_user(self, user: str) -> None:
        self.expect_on_entra()
        self.page.locator(f'[data-user="{user}"]').click()

    def approve_mfa(self) -> None:
        self.expect_on_entra()
        self.page.locator("#mfa-approve").click()

    def expect_on_entra(self) -> None:
        """The browser left the SPA for Entra ID's (the emulator's) sign-in pages."""
        expect(self.page).to_have_url(re.compile("^" + re.escape(f"{self.entra_url}/")))

    def expect_loaded(self, loads: int = 1) -> None:
        """The SPA finished its ``loads``-th round of API calls and every call succeeded."""
        expect(self.status).to_have_attribute("data-loads", str(loads))
        expect(self.status).to_have_attribute("data-state", "ready")

    def activity_line(self, pattern: str) -> Locator:
        return self.activity.filter(has_text=re.compile(pattern))
