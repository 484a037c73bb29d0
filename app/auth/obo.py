"""On-Behalf-Of token acquisition: one MSAL client per process, one cache partition per user.

``acquire_token_on_behalf_of`` never reads MSAL's cache, so each call first looks in the
user's partition with ``acquire_token_silent`` and exchanges the incoming token only on a
miss. Entra's answers are translated here into the API's error contract.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from app.auth.token_cache import PartitionedTokenCache
from app.config import DownstreamApi, Settings
from app.errors import (
    ApiError,
    BadGateway,
    ClaimsChallenge,
    ConsentRequired,
    InteractionRequired,
    InvalidToken,
    ServerError,
    ServiceUnavailable,
)
from app.http import TimeoutSession, parse_retry_after

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5  # MSAL's own throttle time for confidential clients without Retry-After
# The client capability "cp1" tells Entra this API handles CAE claims challenges from
# downstream APIs (see app.downstream), so Entra may issue long-lived, revocable tokens.
CLIENT_CAPABILITIES = ["cp1"]

# Status and Retry-After of the last Entra response seen by this thread's MSAL call.
_last_failure: ContextVar[tuple[int, str | None] | None] = ContextVar("entra_failure", default=None)


def _record_failure(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        _last_failure.set((response.status_code, response.headers.get("Retry-After")))


class EntraBackoff:
    """After a 429/5xx from Entra, refuse exchanges for that scope until Retry-After passes.

    MSAL does the same internally: its throttle key for OBO is the token endpoint, client
    and scope, with no user in it, so one user's 429 holds back every user of that scope.
    Keeping the window here makes that behaviour explicit and gives callers the exact
    remaining seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock

    def remaining(self, scope_key: str) -> int:
        until = self._until.get(scope_key, 0.0)
        return max(0, int(until - self._clock() + 0.999))

    def hold(self, scope_key: str, seconds: int) -> None:
        self._until[scope_key] = self._clock() + seconds


class DownstreamTokenProvider:
    """Gets a delegated token for a downstream API on behalf of the caller."""

    def __init__(self, settings: Settings, cache: PartitionedTokenCache) -> None:
        self._settings = settings
        self._cache = cache
        self._session = TimeoutSession(settings.http_timeout)
        self._session.hooks["response"].append(_record_failure)
        self._backoff = EntraBackoff()
        self._app: Any = None
        self._app_lock = threading.Lock()

    def acquire(
        self, api: DownstreamApi, assertion: str, expires_at: float,
        claims_challenge: str | None = None,
    ) -> str:
        """An access token for ``api``; ``claims_challenge`` forces a fresh exchange."""
        key = hashlib.sha256(assertion.encode("ascii")).hexdigest()
        with self._cache.partition(key, expires_at):
            if claims_challenge is None:
                token = self._from_cache(api)
                if token is not None:
                    return token
            return self._exchange(api, assertion, claims_challenge)

    def _from_cache(self, api: DownstreamApi) -> str | None:
        app = self._client()
        accounts = app.get_accounts()
        if not accounts:
            return None
        result = self._call(api, lambda: app.acquire_token_silent_with_error(
            list(api.scopes), account=accounts[0]))
        if result and "access_token" in result:
            return str(result["access_token"])
        return None  # a failed silent refresh falls back to a fresh exchange

    def _exchange(self, api: DownstreamApi, assertion: str, claims: str | None) -> str:
        scope_key = " ".join(api.scopes)
        wait = self._backoff.remaining(scope_key)
        if wait:
            raise ServiceUnavailable(
                "Entra ID is throttling token requests for this downstream API", retry_after=wait)
        app = self._client()
        result = self._call(api, lambda: app.acquire_token_on_behalf_of(
            assertion, list(api.scopes), claims_challenge=claims))
        if "access_token" in result:
            log.info("obtained a %s token on behalf of the caller", api.name)
            return str(result["access_token"])
        raise translate_error(result, api)

    def _call(self, api: DownstreamApi, call: Callable[[], Any]) -> Any:
        """Run one MSAL call; network trouble and Entra 429/5xx become a 503."""
        _last_failure.set(None)
        try:
            result = call()
        except (requests.RequestException, MsalServiceError, ValueError) as exc:
            log.warning("token request for %s failed: %s", api.name, type(exc).__name__)
            self._raise_unavailable(api)
            raise ServiceUnavailable(retry_after=DEFAULT_RETRY_AFTER) from exc
        if isinstance(result, dict) and "error" in result:
            self._raise_unavailable(api)
        return result

    def _raise_unavailable(self, api: DownstreamApi) -> None:
        failure = _last_failure.get()
        if failure is None:
            return
        status, retry_after = failure
        seconds = parse_retry_after(retry_after, DEFAULT_RETRY_AFTER)
        self._backoff.hold(" ".join(api.scopes), seconds)
        log.warning("Entra ID answered HTTP %d for %s; holding back %ds", status, api.name, seconds)
        raise ServiceUnavailable(f"Entra ID answered HTTP {status}; retry later",
                                 retry_after=seconds)

    def _client(self) -> Any:
        """The process's ConfidentialClientApplication, created on first use.

        Creating it fetches the tenant's metadata, so it is deferred until a token is needed
        (start-up must not depend on Entra) and retried if that fetch fails.
        """
        if self._app is not None:
            return self._app
        with self._app_lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self._settings.client_id,
                        client_credential=self._settings.client_secret,
                        authority=self._settings.authority,
                        instance_discovery=False,  # talk to AZURE_AUTHORITY_HOST only
                        token_cache=self._cache,
                        http_client=self._session,
                        client_capabilities=CLIENT_CAPABILITIES,
                    )
                except (requests.RequestException, MsalServiceError, ValueError) as exc:
                    # MSAL raises MsalServiceError when the metadata endpoint answers 5xx/4xx.
                    log.warning("could not reach Entra ID metadata: %s", type(exc).__name__)
                    raise ServiceUnavailable(retry_after=DEFAULT_RETRY_AFTER) from exc
        return self._app


def translate_error(result: dict[str, Any], api: DownstreamApi) -> ApiError:
    """Map an Entra error response to the API's error contract."""
    error = str(result.get("error", ""))
    codes = result.get("error_codes") or []
    code = f"AADSTS{codes[0]}" if codes else error
    log.info("Entra ID refused the %s exchange: %s %s suberror=%s",
             api.name, error, code, result.get("suberror"))
    if error == "interaction_required" or result.get("claims"):
        claims = result.get("claims")
        if isinstance(claims, str) and claims:
            return ClaimsChallenge(
                f"{code}: the user must satisfy a Conditional Access policy (e.g. MFA); "
                "acquire a new token with the claims in this challenge", claims=claims)
        return InteractionRequired(f"{code}: the user must sign in again interactively")
    if 65001 in codes or result.get("suberror") == "consent_required":
        return ConsentRequired(
            f"{code}: consent is missing for this API to call {api.name} on the user's behalf; "
            "an administrator can grant admin consent to the API's delegated permissions, or add "
            "the frontend to the API's knownClientApplications and request its .default scope")
    if 500133 in codes:
        return InvalidToken(f"{code}: the token expired before it could be exchanged; "
                            "acquire a new one")
    if error == "invalid_client" or error == "unauthorized_client":
        log.error("Entra ID refused this API's client credential (%s)", code)
        return ServerError("the API could not authenticate to Entra ID")
    if error in ("temporarily_unavailable", "server_error"):
        return ServiceUnavailable(retry_after=DEFAULT_RETRY_AFTER)
    if error == "invalid_grant":
        return InvalidToken(f"{code}: Entra ID refused to exchange the token")
    return BadGateway(f"Entra ID refused the token exchange ({code})")
