"""Reading an authorize request (/oauth2/v2.0/authorize) the way Entra does, and writing the
reply that goes back to the app's redirect URI.

Until the client and its redirect URI are known to be good, a problem can only be shown on a
page; after that, every refusal goes back to the app, in the response mode it asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from emulator.directory import ClientApp, Resource, Tenant
from emulator.entra.client_authentication import find_client
from emulator.entra.conditional_access import ClaimsRequest, parse_claims
from emulator.entra.errors import (
    EntraError,
    RequestInvalid,
    ResponseTypeUnsupported,
    missing_parameter,
)
from emulator.entra.redirect_uris import RedirectUris
from emulator.entra.scopes import authorize_resource

RESPONSE_MODES = ("query", "fragment")
PROMPTS = ("none", "login", "consent", "select_account")
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_PARAMETER_LENGTH = 8192


@dataclass(frozen=True)
class Reply:
    """Where and how the authorize endpoint answers the app."""

    redirect_uri: str
    response_mode: str
    state: str | None

    def location(self, fields: Mapping[str, str]) -> str:
        """The redirect URI carrying `fields` (and `state`) in the query or the fragment."""
        values = dict(fields)
        if self.state is not None:
            values["state"] = self.state
        encoded = urlencode(values)
        if self.response_mode == "fragment":
            return f"{self.redirect_uri}#{encoded}"
        return f"{self.redirect_uri}{'&' if '?' in self.redirect_uri else '?'}{encoded}"


@dataclass(frozen=True)
class AuthorizeRequest:
    tenant_id: str
    client_id: str
    reply: Reply
    scope: str
    resource: Resource  # the resource a code from this request is redeemed for by default
    code_challenge: str
    nonce: str | None
    prompt: str | None
    login_hint: str | None
    domain_hint: str | None
    claims: ClaimsRequest


class PageOnly(Exception):
    """A problem the authorize endpoint shows on a page: there is nowhere safe to send it."""

    def __init__(self, err: EntraError) -> None:
        super().__init__(str(err))
        self.err = err


def read_target(
    params: Mapping[str, str], tenant: Tenant, redirect_uris: RedirectUris
) -> tuple[ClientApp, Reply]:
    """The client and where to answer it; PageOnly while neither can be trusted."""
    client_id = _text(params, "client_id")
    if not client_id:
        raise PageOnly(missing_parameter("client_id"))
    try:
        client = find_client(client_id, tenant)
    except EntraError as err:
        raise PageOnly(err) from err
    redirect_uri = _text(params, "redirect_uri")
    if not redirect_uri:
        raise PageOnly(RequestInvalid(900971, "No reply address provided."))
    if not client.single_page_app or redirect_uri not in redirect_uris:
        raise PageOnly(
            RequestInvalid(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match "
                f"the redirect URIs configured for the application '{client.app_id}'. Make sure "
                "the redirect URI sent in the request matches one added to your application in "
                "the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn "
                "more about how to fix this.",
            )
        )
    mode = _text(params, "response_mode") or "query"
    return client, Reply(
        redirect_uri, mode if mode in RESPONSE_MODES else "query", _text(params, "state")
    )


def read_request(
    params: Mapping[str, str], tenant: Tenant, client: ClientApp, reply: Reply
) -> AuthorizeRequest:
    """The rest of the request; EntraError for a refusal that goes back to the app."""
    if (_text(params, "response_mode") or "query") not in RESPONSE_MODES:
        raise RequestInvalid(
            70007,
            "The application requested an unsupported response mode; a single-page "
            "application receives its code in the query or the fragment.",
        )
    _check_response_type(_text(params, "response_type"))
    scope = _text(params, "scope")
    if not scope:
        raise missing_parameter("scope")
    prompt = _text(params, "prompt")
    if prompt is not None and prompt not in PROMPTS:
        raise RequestInvalid(
            90023,
            f"Invalid prompt value '{prompt}'. Valid values are none, login, consent "
            "and select_account.",
        )
    return AuthorizeRequest(
        tenant_id=tenant.id,
        client_id=client.app_id,
        reply=reply,
        scope=scope,
        resource=authorize_resource(scope, tenant),
        code_challenge=_code_challenge(params),
        nonce=_text(params, "nonce"),
        prompt=prompt,
        login_hint=_text(params, "login_hint"),
        domain_hint=_text(params, "domain_hint"),
        claims=parse_claims(_text(params, "claims")),
    )


def _check_response_type(response_type: str | None) -> None:
    if not response_type:
        raise missing_parameter("response_type")
    kinds = set(response_type.split())
    if kinds == {"code"}:
        return
    if "id_token" in kinds or "token" in kinds:
        raise ResponseTypeUnsupported(
            700054,
            f"response_type '{response_type}' is not enabled for the application: "
            "implicit grant is not enabled for this single-page application.",
        )
    raise ResponseTypeUnsupported(
        70005, f"The application requested an unsupported response type '{response_type}'."
    )


def _code_challenge(params: Mapping[str, str]) -> str:
    challenge = _text(params, "code_challenge")
    if not challenge:
        raise RequestInvalid(
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization "
            "code redemption.",
        )
    method = _text(params, "code_challenge_method") or "plain"
    if method != "S256":
        raise RequestInvalid(
            90100,
            f"Invalid code_challenge_method '{method}': single-page applications must use 'S256'.",
        )
    if not S256_CHALLENGE.match(challenge):
        raise RequestInvalid(501491, "Invalid size of Code_Challenge parameter.")
    return challenge


def _text(params: Mapping[str, str], name: str) -> str | None:
    """A parameter's value: None when absent or empty; bounded like a URL is."""
    value = params.get(name)
    if not value:
        return None
    if len(value) > MAX_PARAMETER_LENGTH:
        raise PageOnly(RequestInvalid(90015, "The query string is too long."))
    return value
