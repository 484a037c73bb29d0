"""Validating the user assertion of an On-Behalf-Of request, in the order Entra does."""

from __future__ import annotations

import datetime as dt

from emulator.directory import USERS, ClientApp, Tenant, User, find_resource
from emulator.entra.errors import ClientUnauthorized, GrantRefused, RequestInvalid
from emulator.entra.token_claims import issued_by_emulator
from emulator.signing import (
    BadSignature,
    KeyRing,
    MalformedToken,
    UnknownSigningKey,
    VerifiedToken,
    verify_signature,
)


def validate_user_assertion(
    assertion: str, *, client: ClientApp, tenant: Tenant, keys: KeyRing, host: str, now: float
) -> tuple[VerifiedToken, User]:
    """Return the verified assertion and its user, or raise the AADSTS error Entra would."""
    token = _verify(assertion, keys)
    claims = token.claims
    if not issued_by_emulator(claims.get("iss"), tenant.id, host):
        raise GrantRefused(
            50013,
            f"Assertion failed issuer validation. The issuer '{claims.get('iss')}' "
            f"is not a valid issuer for tenant '{tenant.id}'.",
        )
    if token.expired(now) or token.not_yet_valid(now):
        raise GrantRefused(
            500133,
            "Assertion is not within its valid time range. Ensure that the access "
            "token is not expired before using it for user assertion, or request a new "
            f"token. Current time: {_iso(now)}, expiry time of assertion "
            f"{_iso(claims.get('exp'))}.",
        )
    _check_audience(claims.get("aud"), client)
    if token.is_app_only:
        raise ClientUnauthorized(
            7000114,
            f"Application '{claims.get('azp', claims.get('appid'))}' is not allowed "
            "to make application on-behalf-of calls.",
        )
    user = next((u for u in USERS.values() if u.id == claims.get("oid")), None)
    if user is None or user.tenant_id != tenant.id:
        raise GrantRefused(
            50034,
            f"The user account {{EmailHidden}} does not exist in the {tenant.id} "
            "directory. To sign into this application, the account must be added to the "
            "directory.",
        )
    return token, user


def _verify(assertion: str, keys: KeyRing) -> VerifiedToken:
    try:
        return verify_signature(assertion, keys)
    except MalformedToken as exc:
        raise RequestInvalid(50027, "JWT token is invalid or malformed.") from exc
    except UnknownSigningKey as exc:
        raise _signature_error("The key was not found.", exc.kid) from exc
    except BadSignature as exc:
        raise _signature_error(
            "The provided signature value did not match the expected signature value.", exc.kid
        ) from exc


def _signature_error(reason: str, kid: str) -> GrantRefused:
    return GrantRefused(
        50013,
        f"Assertion failed signature validation. [Reason - {reason}, Thumbprint of key "
        f"used by client: '{kid}']",
    )


def _check_audience(audience: object, client: ClientApp) -> None:
    resource = find_resource(client.app_id)
    accepted = {client.app_id.lower()} | {
        uri.lower() for uri in (resource.identifier_uris if resource else ())
    }
    if not isinstance(audience, str) or audience.rstrip("/").lower() not in accepted:
        raise GrantRefused(
            500131,
            "Assertion audience does not match the Client app presenting the "
            f"assertion. The audience in the assertion was '{audience}' and the expected "
            f"audience is '{client.app_id}' or one of the Application Uris of this application "
            f"with App ID '{client.app_id}'({client.display_name}). The downstream client must "
            "request a token for the expected audience (the application that made the OBO "
            "request) and this application should use that token as the assertion.",
        )


def _iso(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "(none)"
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"
