"""What the emulated Entra keeps while it runs: refresh-token key, MFA record, sign-in
sessions and codes, the SPA's redirect URIs, the lifetime of the tokens it issues, and what
authenticates an app besides its secret: registered certificates, the client CA, and the keys
of the external issuers its federated identity credentials name."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

from flask import Flask, current_app

from emulator.directory import API_CLIENT_ID
from emulator.entra.conditional_access import MfaRecord
from emulator.entra.key_credentials import (
    CLIENT_CA_FILE,
    KEY_CREDENTIALS_FILE,
    ClientCertificate,
    ClientCertificateAuthority,
    KeyCredentials,
    Trust,
    make_client_certificate,
)
from emulator.entra.redirect_uris import DEFAULT_SPA_REDIRECT_URIS, RedirectUris
from emulator.entra.refresh_tokens import REFRESH_KEY_FILE, RefreshTokenCodec
from emulator.entra.sessions import SignInStore
from emulator.signing import KeyRing
from emulator.state_dir import exclusive

EXTENSION_KEY = "emulator.entra"
# Entra gives access tokens a random lifetime between 60 and 90 minutes.
DEFAULT_LIFETIME_RANGE = (3600, 5400)
MIN_TOKEN_LIFETIME = 60
MAX_TOKEN_LIFETIME = 24 * 3600


class EntraRuntime:
    """`trusted_issuers`: the signing keys of external issuers (a Kubernetes cluster), by
    issuer URL, which Entra would fetch from their OpenID configuration."""

    def __init__(
        self,
        state_dir: Path,
        spa_redirect_uris: Iterable[str] = (),
        trusted_issuers: Mapping[str, KeyRing] | None = None,
    ) -> None:
        with exclusive(state_dir):
            self.refresh_tokens = RefreshTokenCodec(state_dir / REFRESH_KEY_FILE)
            self.key_credentials = KeyCredentials(state_dir / KEY_CREDENTIALS_FILE)
            self.client_ca = ClientCertificateAuthority(state_dir / CLIENT_CA_FILE)
        self.trusted_issuers: Mapping[str, KeyRing] = dict(trusted_issuers or {})
        self.mfa = MfaRecord()
        self.sign_ins = SignInStore()
        self.redirect_uris = RedirectUris([*DEFAULT_SPA_REDIRECT_URIS, *spa_redirect_uris])
        # None: Entra's random 60-90 minutes. Tests set a fixed (short) lifetime to exercise
        # refreshes (MSAL treats tokens with under 5 minutes left as expired).
        self.token_lifetime: int | None = None

    def new_client_certificate(
        self, trust: Trust, *, password: str | None = None, expired: bool = False
    ) -> ClientCertificate:
        """A new certificate for the API, registered by thumbprint if `trust` says so."""
        made = make_client_certificate(trust, self.client_ca, password=password, expired=expired)
        if trust == "thumbprint":
            self.key_credentials.register(API_CLIENT_ID, made.certificate)
        return made

    def access_token_lifetime(self) -> int:
        if self.token_lifetime is not None:
            return self.token_lifetime
        low, high = DEFAULT_LIFETIME_RANGE
        return low + secrets.randbelow(high - low + 1)


def checked_token_lifetime(value: object) -> int | None:
    """A token lifetime setting: seconds in range, or None for Entra's random default."""
    if value is None:
        return None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not (MIN_TOKEN_LIFETIME <= value <= MAX_TOKEN_LIFETIME)
    ):
        raise ValueError(
            f"token_lifetime must be null or an integer from {MIN_TOKEN_LIFETIME} "
            f"to {MAX_TOKEN_LIFETIME} (seconds)"
        )
    return value


def entra_of(app: Flask) -> EntraRuntime:
    return cast(EntraRuntime, app.extensions[EXTENSION_KEY])


def current_entra() -> EntraRuntime:
    return entra_of(current_app)
