"""Azure Resource Manager endpoints: GET /subscriptions (paged) and /subscriptions/{id}."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from emulator.arm.responses import add_arm_headers, arm_error, arm_json
from emulator.control import current_control, serves
from emulator.directory import ARM, subscriptions_in
from emulator.resource_auth import BearerRejected, Principal, authenticate_bearer, cae_challenge
from emulator.signing import b64url, b64url_decode
from emulator.state import current_state

bp = Blueprint("arm", __name__)
bp.after_request(add_arm_headers)
COUNTERS = ("arm",)

API_VERSIONS = (
    "2022-12-01",
    "2022-09-01",
    "2022-01-01",
    "2021-01-01",
    "2020-01-01",
    "2019-11-01",
    "2019-06-01",
    "2018-06-01",
    "2016-06-01",
    "2015-01-01",
    "2014-04-01",
)
PAGE_SIZE = 2
ALLOWED_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)
# The national clouds' ARM accepts its own, for an emulator posing as one (server_names).
ACCEPTED_AUDIENCES = frozenset(
    {*ALLOWED_AUDIENCES, *(f"{uri}{slash}" for uri in ARM.identifier_uris for slash in ("/", ""))}
)
_REJECTIONS = {
    "missing": (
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
    ),
    "malformed": (
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is provided in an invalid format.",
    ),
    "signature": ("InvalidAuthenticationToken", "The access token is invalid."),
    "issuer": ("InvalidAuthenticationToken", "The access token is from an invalid issuer."),
}
View = Callable[..., Response]


def _www_authenticate(description: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
        f'error="invalid_token", error_description="{description}"'
    }


def _rejection(exc: BearerRejected) -> Response:
    if exc.kind == "audience":
        aud = exc.token.claims.get("aud") if exc.token else None
        allowed = ",".join(f"'{a}'" for a in ALLOWED_AUDIENCES)
        code, message = (
            "InvalidAuthenticationTokenAudience",
            (
                f"The access token has been obtained for wrong audience or resource '{aud}'. It "
                f"should exactly match with one of the allowed audiences {allowed}."
            ),
        )
    elif exc.kind == "expired":
        exp = exc.token.claims.get("exp") if exc.token else None
        code, message = (
            "ExpiredAuthenticationToken",
            (
                f"The access token expiry UTC time '{_arm_time(exp)}' is earlier than current UTC "
                f"time '{_arm_time(None)}'."
            ),
        )
    else:
        code, message = _REJECTIONS[exc.kind]
    return arm_error(401, code, message, _www_authenticate(message))


def _arm_time(epoch: object) -> str:
    moment = (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        if isinstance(epoch, int | float)
        else dt.datetime.now(dt.UTC)
    )
    hour = moment.hour % 12 or 12
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S %p}"


def _authenticated(view: View) -> View:
    """Run `view` for a valid token with a supported api-version, or answer as ARM does."""

    @functools.wraps(view)
    def wrapper(**path_args: str) -> Response:
        try:
            principal = authenticate_bearer(
                current_state().keys, ACCEPTED_AUDIENCES, server_names=current_state().server_names
            )
        except BearerRejected as exc:
            return _rejection(exc)
        if claims := cae_challenge(current_control(), "arm", principal):
            # ARM words its CAE challenge differently from Graph (invalid_token, no realm).
            challenge = (
                'Bearer authorization_uri="https://login.windows.net/", '
                'error="invalid_token", error_description="User session has been '
                f'revoked", claims="{claims}"'
            )
            return arm_error(
                401,
                "InvalidAuthenticationToken",
                "User session has been revoked.",
                {"WWW-Authenticate": challenge},
            )
        return _check_api_version() or view(principal, **path_args)

    return wrapper


def _check_api_version() -> Response | None:
    version = request.args.get("api-version")
    if not version:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in API_VERSIONS:
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(API_VERSIONS)}'.",
        )
    return None


@bp.get("/subscriptions")
@serves("arm")
@_authenticated
def list_subscriptions(principal: Principal) -> Response:
    subscriptions = subscriptions_in(principal.tenant_id)
    try:
        offset = _page_offset(request.args["$skiptoken"]) if "$skiptoken" in request.args else 0
    except ValueError:
        return arm_error(400, "InvalidSkipToken", "The provided skip token is invalid.")
    end = offset + PAGE_SIZE
    body: dict[str, Any] = {"value": [s.arm_properties() for s in subscriptions[offset:end]]}
    if end < len(subscriptions):
        version = request.args["api-version"]
        body["nextLink"] = (
            f"{request.host_url}subscriptions?api-version={version}&%24skiptoken={_page_token(end)}"
        )
    body["count"] = {"type": "Total", "value": len(subscriptions)}
    return arm_json(body)


@bp.get("/subscriptions/<subscription_id>")
@serves("arm")
@_authenticated
def get_subscription(principal: Principal, subscription_id: str) -> Response:
    for subscription in subscriptions_in(principal.tenant_id):
        if subscription.subscription_id == subscription_id.lower():
            return arm_json(subscription.arm_properties())
    return arm_error(
        404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
    )


def _page_token(offset: int) -> str:
    """An opaque continuation token for the page that starts at `offset`."""
    return b64url(json.dumps({"nextOffset": offset}, separators=(",", ":")).encode())


def _page_offset(token: str) -> int:
    """The offset a continuation token stands for; ValueError for one ARM did not make."""
    try:
        offset = json.loads(b64url_decode(token))["nextOffset"]
    except (KeyError, TypeError) as exc:
        raise ValueError("not an ARM continuation token") from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError("not an ARM continuation token")
    return offset
