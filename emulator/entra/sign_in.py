"""Interactive sign-in, as a single-page app meets it: the authorize endpoint (account
picker, MFA step, consent), the emulator's session cookie for silent sign-in, and logout.

The pages work in MSAL.js popups, full-page redirects and (for `prompt=none`) hidden iframes:
they carry no Cross-Origin-Opener-Policy, which would cut a popup off from its opener.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, render_template, request, url_for

from emulator.control import serves
from emulator.directory import (
    BEHAVIOUR_DESCRIPTIONS,
    CLIENTS,
    TENANTS,
    Tenant,
    User,
    find_user,
    users_in,
)
from emulator.entra.authorization import AuthorizeRequest, PageOnly, read_request, read_target
from emulator.entra.conditional_access import mfa_needed_at_sign_in
from emulator.entra.endpoints import require_tenant
from emulator.entra.errors import (
    AccessDenied,
    EntraError,
    InteractionNeeded,
    LoginRequired,
    RequestInvalid,
    correlation_id,
    redirect_error_fields,
)
from emulator.entra.runtime import current_entra
from emulator.entra.sessions import AuthorizationCode, BrowserSession, SignInFlow

bp = Blueprint(
    "entra_sign_in",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/_entra/static",
)
COUNTERS = ("authorize", "login", "logout")
SESSION_COOKIE = "emulator_session"
PAGE_HEADERS = {
    "Cache-Control": "no-store, no-cache",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: with it, browsers send "Origin: null" on the pages' own form posts.
    "Referrer-Policy": "same-origin",
}


@bp.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
@serves("authorize")
def authorize(tenant: str) -> Response:
    params = _params()
    try:
        found = require_tenant(tenant)
        client, reply = read_target(params, found, current_entra().redirect_uris)
    except PageOnly as exc:
        return error_page(exc.err, None)
    except EntraError as err:
        return error_page(err, None)
    try:
        return _begin(read_request(params, found, client, reply), found)
    except PageOnly as exc:
        return error_page(exc.err, found)
    except EntraError as err:
        return _to_app(reply.location(redirect_error_fields(err)))


@bp.post("/<tenant>/login")
@serves("login")
def login(tenant: str) -> Response:
    """The pages' form posts: pick an account, approve MFA, accept or refuse consent."""
    found = _tenant_or_none(tenant)
    flow = current_entra().sign_ins.flow(request.form.get("flow", ""))
    if found is None or flow is None or flow.request.tenant_id != found.id:
        return error_page(_flow_expired(), found)
    if not _same_origin():
        return error_page(
            RequestInvalid(90100, "The sign-in form was posted from another site."), found
        )
    try:
        advanced = _apply(flow, request.form.get("action", ""), found)
    except EntraError as err:
        current_entra().sign_ins.end_flow(flow.id)
        return _to_app(flow.request.reply.location(redirect_error_fields(err)))
    if advanced is None:
        return error_page(RequestInvalid(90100, "The sign-in form is incomplete."), found)
    return _advance(advanced)


@bp.route("/<tenant>/oauth2/v2.0/logout", methods=["GET", "POST"])
@serves("logout")
def logout(tenant: str) -> Response:
    """End the emulator's session; back to the app if its post-logout URI is registered."""
    try:
        found = require_tenant(tenant)
    except EntraError as err:
        return error_page(err, None)
    params = _params()
    current_entra().sign_ins.close_session(request.cookies.get(SESSION_COOKIE))
    target = params.get("post_logout_redirect_uri")
    if target and target in current_entra().redirect_uris:
        state = params.get("state")
        response = _to_app(target if state is None else _with_query(target, {"state": state}))
    else:
        response = _page("entra/signed_out.html", found, status=200)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="None")
    return response


# -- the sign-in flow --------------------------------------------------------------------------


def _begin(auth: AuthorizeRequest, tenant: Tenant) -> Response:
    """Sign in silently when the session allows it; otherwise start a flow of pages."""
    session = _session(tenant)
    hinted = find_user(auth.login_hint, tenant.id) if auth.login_hint else None
    if auth.prompt == "none":
        return _silent(auth, session, hinted)
    sign_ins = current_entra().sign_ins
    fresh = auth.prompt in ("login", "select_account")
    if session is not None and not fresh and (hinted is None or hinted.id == session.user_id):
        flow = sign_ins.start_flow(auth, session.user_id, mfa_done=session.mfa)
    elif hinted is not None and not fresh:
        flow = sign_ins.start_flow(auth, hinted.id)
    else:
        flow = sign_ins.start_flow(auth)
    return _advance(flow)


def _silent(
    auth: AuthorizeRequest, session: BrowserSession | None, hinted: User | None
) -> Response:
    """prompt=none: a code from the session, or the error that says interaction is needed."""
    if session is None or (auth.login_hint and (hinted is None or hinted.id != session.user_id)):
        raise LoginRequired(50058, "A silent sign-in request was sent but no user is signed in.")
    user = find_user(session.user_id, auth.tenant_id)
    if user is None:
        raise LoginRequired(50058, "A silent sign-in request was sent but no user is signed in.")
    if _needs_mfa(auth, user) and not session.mfa:
        raise InteractionNeeded(
            50076,
            "Due to a configuration change made by your administrator, or because you "
            "moved to a new location, you must use multi-factor authentication to access "
            f"'{auth.resource.app_id}'.",
        )
    return _send_code(auth, user, session, mfa=session.mfa, set_cookie=False)


def _apply(flow: SignInFlow, action: str, tenant: Tenant) -> SignInFlow | None:
    """The flow after the user's choice on a page; None for a post that makes no sense."""
    save = current_entra().sign_ins.save_flow
    if action == "pick":
        user = find_user(request.form.get("user", ""), tenant.id)
        return (
            None
            if user is None
            else save(replace(flow, user_id=user.id, mfa_done=False, consented=False))
        )
    if flow.user_id is None:
        return None
    if action == "mfa":
        return save(replace(flow, mfa_done=True))
    if action == "consent":
        return save(replace(flow, consented=True))
    if action == "cancel":
        raise AccessDenied(65004, "User declined to consent to access the app.")
    return None


def _advance(flow: SignInFlow) -> Response:
    """The next page the flow needs, or the code once it needs none."""
    auth = flow.request
    tenant = TENANTS[auth.tenant_id]
    user = find_user(flow.user_id, auth.tenant_id) if flow.user_id else None
    if user is None:
        hinted = find_user(auth.login_hint, auth.tenant_id) if auth.login_hint else None
        return _page(
            "entra/pick_account.html",
            tenant,
            flow,
            users=users_in(tenant.id),
            hinted=hinted.username if hinted else None,
            behaviours=BEHAVIOUR_DESCRIPTIONS,
        )
    if _needs_mfa(auth, user) and not flow.mfa_done:
        return _page(
            "entra/mfa.html", tenant, flow, user=user, resource_name=auth.resource.display_name
        )
    if auth.prompt == "consent" and not flow.consented:
        return _page("entra/consent.html", tenant, flow, user=user, scopes=auth.scope.split())
    current_entra().sign_ins.end_flow(flow.id)
    session = current_entra().sign_ins.open_session(
        user.id, tenant.id, mfa=flow.mfa_done, previous=_session(tenant)
    )
    return _send_code(auth, user, session, mfa=flow.mfa_done, set_cookie=True)


def _needs_mfa(auth: AuthorizeRequest, user: User) -> bool:
    return mfa_needed_at_sign_in(user, auth.resource, step_up=auth.claims.asks_for_mfa)


def _send_code(
    auth: AuthorizeRequest, user: User, session: BrowserSession, *, mfa: bool, set_cookie: bool
) -> Response:
    code = current_entra().sign_ins.issue_code(
        AuthorizationCode(
            client_id=auth.client_id,
            redirect_uri=auth.reply.redirect_uri,
            tenant_id=auth.tenant_id,
            user_id=user.id,
            scope=auth.scope,
            code_challenge=auth.code_challenge,
            nonce=auth.nonce,
            mfa=mfa,
            signed_in_at=time.time(),
        )
    )
    response = _to_app(auth.reply.location({"code": code}))
    if set_cookie:
        # SameSite=None: the cookie must reach the emulator from the app's hidden iframe
        # (MSAL's ssoSilent), a cross-site request.
        response.set_cookie(
            SESSION_COOKIE, session.id, path="/", secure=True, httponly=True, samesite="None"
        )
    return response


def _session(tenant: Tenant) -> BrowserSession | None:
    session = current_entra().sign_ins.session(request.cookies.get(SESSION_COOKIE))
    return session if session is not None and session.tenant_id == tenant.id else None


# -- responses ---------------------------------------------------------------------------------


def _to_app(location: str) -> Response:
    """A 302 to the app (or its post-logout page), as Entra sends the code and errors."""
    response = Response(status=302, headers={"Location": location})
    response.headers.update(PAGE_HEADERS)
    return response


def _page(
    template: str,
    tenant: Tenant | None,
    flow: SignInFlow | None = None,
    *,
    status: int = 200,
    **context: object,
) -> Response:
    reply_origin = _origin(flow.request.reply.redirect_uri) if flow else None
    client = CLIENTS.get(flow.request.client_id) if flow else None
    body = render_template(
        template,
        tenant_name=tenant.display_name if tenant else "Microsoft Entra ID",
        client_name=client.display_name if client else "",
        flow_id=flow.id if flow else "",
        action=url_for("entra_sign_in.login", tenant=tenant.id) if tenant else "",
        **context,
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(PAGE_HEADERS)
    # The forms post here, and the answer redirects to the app: form-action covers both.
    form_targets = f"'self' {reply_origin}" if reply_origin else "'self'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {form_targets}; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def error_page(err: EntraError, tenant: Tenant | None) -> Response:
    """A refusal shown to the user, as Entra shows one it cannot send back (HTTP 200)."""
    return _page(
        "entra/error.html",
        tenant,
        error=err.error,
        code=err.code,
        message=err.message,
        trace_id=str(uuid.uuid4()),
        correlation_id=correlation_id(),
        timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    )


def _flow_expired() -> EntraError:
    return RequestInvalid(
        50089,
        "Flow token expired. Authentication failed due to flow token expired; start "
        "the sign-in again from the application.",
    )


# -- request details ---------------------------------------------------------------------------


def _params() -> Mapping[str, str]:
    """The first value of each parameter, from the query or a form post."""
    return {name: request.values.get(name, "") for name in request.values}


def _tenant_or_none(name: str) -> Tenant | None:
    try:
        return require_tenant(name)
    except EntraError:
        return None


def _same_origin() -> bool:
    """Forms post to the emulator itself; a post from another site is refused."""
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_query(url: str, fields: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(fields)}"
