"""Authenticating the client at the token endpoint: client_secret in the body or HTTP Basic,
or a client assertion (emulator.entra.client_assertions)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import unquote_plus

from emulator.directory import CLIENTS, ClientApp, Tenant
from emulator.entra.client_assertions import AssertionTrust, check_client_assertion
from emulator.entra.errors import (
    ClientAuthenticationFailed,
    ClientUnauthorized,
    missing_parameter,
)


def find_client(client_id: str, tenant: Tenant) -> ClientApp:
    """The app registration, or the AADSTS error Entra gives for an unknown client id."""
    client = CLIENTS.get(client_id.lower())
    if client is None:
        raise ClientUnauthorized(
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.display_name}'. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You may have sent your authentication request to the wrong tenant.",
        )
    return client


def authenticate_client(
    form: Mapping[str, str], authorization: str | None, tenant: Tenant, trust: AssertionTrust
) -> ClientApp:
    """Return the calling app, or raise the AADSTS error Entra gives for its credentials."""
    basic_id, basic_secret = _basic_credentials(authorization)
    client_id = form.get("client_id") or basic_id
    if not client_id:
        raise missing_parameter("client_id")
    client = find_client(client_id, tenant)
    if form.get("client_assertion"):
        if not client.is_confidential:
            raise _public_client_with_credential()
        check_client_assertion(form, client, trust)
        return client
    _check_secret(client, form.get("client_secret") or basic_secret)
    return client


def _check_secret(client: ClientApp, secret: str | None) -> None:
    if client.secret is None:
        if secret:
            raise _public_client_with_credential()
        return
    if not secret:
        raise missing_credential()
    if not hmac.compare_digest(secret.encode(), client.secret.encode()):
        raise ClientAuthenticationFailed(
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID, for a secret added "
            f"to app '{client.app_id}'.",
        )


def _public_client_with_credential() -> ClientAuthenticationFailed:
    return ClientAuthenticationFailed(
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    )


def missing_credential() -> ClientAuthenticationFailed:
    """Entra's answer when a flow that needs a confidential client gets none."""
    return ClientAuthenticationFailed(
        7000218,
        "The request body must contain the following parameter: 'client_assertion' "
        "or 'client_secret'.",
    )


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, _, password = decoded.partition(":")
    # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding (MSAL does this).
    return unquote_plus(user), unquote_plus(password)
