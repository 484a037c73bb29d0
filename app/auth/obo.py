"""On-Behalf-Of token acquisition: one MSAL client per process, one cache partition per user.

``acquire_token_on_behalf_of`` never reads MSAL's cache, so each call first looks in the
user's partition with ``acquire_token_silent`` and exchanges the incoming token only on a
miss. Concurrent requests of one user share that lookup and exchange (single-flight); with a
shared cache, instances also take turns to exchange for one user. Entra's answers are
translated here into the API's error contract.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from app.auth.credentials import client_credential
from app.auth.single_flight import SingleFlight
from app.auth.token_cache import PartitionedTokenCache
from app.config import DownstreamApi, Settings
from app.errors import (
    AccessDenied,
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
from app.logs import describe_exception
from app.observability import metrics
from app.observability.entra_http import ObservedEntraClient

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5  # MSAL's own throttle time for confidential clients without Retry-After
# Token responses and OpenID metadata are a few KiB; anything near this is not Entra.
MAX_ENTRA_BODY_BYTES = 1024 * 1024
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
        self._session = TimeoutSession(
            settings.http_timeout, total=settings.http_total_timeout, max_body=MAX_ENTRA_BODY_BYTES
        )
        self._session.hooks["response"].append(_record_failure)
        self._backoff = EntraBackoff()
        self._app: Any = None
        self._app_lock = threading.Lock()
        self._flights: SingleFlight[str] = SingleFlight()

    def acquire(
        self,
        api: DownstreamApi,
        assertion: str,
        expires_at: float,
        claims_challenge: str | None = None,
    ) -> str:
        """An access token for ``api``; ``claims_challenge`` forces a fresh exchange.

        Concurrent calls for one caller and API share one lookup, and so one exchange."""
        key = _partition_key(assertion)
        return self._flights.run(
            ("acquire", key, api.name, claims_challenge),
            lambda: self._acquire(api, assertion, key, expires_at, claims_challenge),
        )

    def reacquire(self, api: DownstreamApi, assertion: str, expires_at: float) -> str:
        """A new token for ``api`` after it refused the cached one: that token is dropped
        from the caller's partition (their other APIs' tokens stay) and the incoming token
        is exchanged again."""
        key = _partition_key(assertion)
        return self._flights.run(
            ("reacquire", key, api.name), lambda: self._reacquire(api, assertion, key, expires_at)
        )

    def _acquire(
        self, api: DownstreamApi, assertion: str, key: str, expires_at: float, claims: str | None
    ) -> str:
        with self._cache.partition(key, expires_at):
            if claims is not None:
                return self._exchange(api, assertion, claims)
            if self._cached(api):
                token = self._from_cache(api)
                if token is not None:
                    return token
        return self._from_entra(api, assertion, key, expires_at)

    def _cached(self, api: DownstreamApi) -> bool:
        """Whether the caller's partition has a token for ``api`` that needs no call to Entra:
        this process's copy first, then the shared cache's (another instance may have one)."""
        held = self._cache.holds_access_token(api.scopes)
        metrics.cache_lookup("process", hit=held)
        if held or not self._cache.is_shared:
            return held
        shared = self._cache.refresh_from_shared(api.scopes)
        metrics.cache_lookup("redis", hit=shared)
        return shared

    def _from_entra(self, api: DownstreamApi, assertion: str, key: str, expires_at: float) -> str:
        """A token from Entra: by the refresh token if the partition has one, else by an
        exchange. Instances take turns per caller and API; one that waited for its turn first
        looks at what the other obtained."""
        with self._cache.exclusive(key, api.name), self._cache.partition(key, expires_at):
            token = self._from_cache(api)
            return token if token is not None else self._exchange(api, assertion, None)

    def _reacquire(self, api: DownstreamApi, assertion: str, key: str, expires_at: float) -> str:
        with self._cache.partition(key, expires_at):
            self._cache.remove_access_tokens(api.scopes)
            return self._exchange(api, assertion, None)

    def _from_cache(self, api: DownstreamApi) -> str | None:
        app = self._client()
        accounts = app.get_accounts()
        if not accounts:
            return None
        result = self._call(
            api, lambda: app.acquire_token_silent_with_error(list(api.scopes), account=accounts[0])
        )
        if result and "access_token" in result:
            return str(result["access_token"])
        return None  # a failed silent refresh falls back to a fresh exchange

    def _exchange(self, api: DownstreamApi, assertion: str, claims: str | None) -> str:
        scope_key = " ".join(api.scopes)
        wait = self._backoff.remaining(scope_key)
        if wait:
            raise ServiceUnavailable(
                "Entra ID is throttling token requests for this downstream API", retry_after=wait
            )
        app = self._client()
        result = self._call(
            api,
            lambda: app.acquire_token_on_behalf_of(
                assertion, list(api.scopes), claims_challenge=claims
            ),
        )
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
            log.warning("token request for %s failed: %s", api.name, describe_exception(exc))
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
        metrics.entra_throttled(api.name)
        log.warning("Entra ID answered HTTP %d for %s; holding back %ds", status, api.name, seconds)
        raise ServiceUnavailable(
            f"Entra ID answered HTTP {status}; retry later", retry_after=seconds
        )

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
                        client_credential=client_credential(self._settings),
                        authority=self._settings.authority,
                        instance_discovery=False,  # talk to AZURE_AUTHORITY_HOST only
                        token_cache=self._cache,
                        http_client=ObservedEntraClient(self._session),  # request id, counts
                        client_capabilities=CLIENT_CAPABILITIES,
                    )
                except (requests.RequestException, MsalServiceError, ValueError) as exc:
                    # MSAL raises MsalServiceError when the metadata endpoint answers 5xx/4xx.
                    log.warning("could not reach Entra ID metadata: %s", describe_exception(exc))
                    raise ServiceUnavailable(retry_after=DEFAULT_RETRY_AFTER) from exc
        return self._app


def _partition_key(assertion: str) -> str:
    """The caller's token cache partition: a hash of their incoming token, as MSAL.NET keys OBO."""
    return hashlib.sha256(assertion.encode("ascii")).hexdigest()


# Entra's suberror for an invalid_grant or interaction_required answer says what the user can
# do (MSAL's InvalidGrantClassification). These three need the user at an interactive sign-in.
_INTERACTIVE_SUBERRORS = {"basic_action", "additional_action", "user_password_expired"}
_INTERACTION_HINTS = {
    "basic_action": "the user must sign in again interactively to satisfy a policy "
    "(e.g. multi-factor authentication)",
    "additional_action": "the user must complete an action outside sign-in (e.g. register "
    "a second factor); an interactive sign-in shows what",
    "user_password_expired": "the user's password has expired; an interactive sign-in "
    "lets them change it",
}


@dataclass(frozen=True)
class EntraRefusal:
    """The parts of a token-endpoint error answer the contract depends on, strictly typed."""

    error: str
    suberror: str
    codes: tuple[int, ...]
    claims: str
    description: str
    correlation_id: str

    @classmethod
    def parse(cls, result: dict[str, Any]) -> EntraRefusal:
        codes = result.get("error_codes")
        claims = result.get("claims")
        return cls(
            error=str(result.get("error", "")),
            suberror=str(result.get("suberror") or ""),
            codes=tuple(item for item in codes if type(item) is int)
            if isinstance(codes, list)
            else (),
            claims=claims if isinstance(claims, str) else "",
            description=str(result.get("error_description") or ""),
            correlation_id=str(result.get("correlation_id", "-"))[:64],
        )

    @property
    def code(self) -> str:
        """``AADSTS<n>`` when Entra sent an error code, else the OAuth error."""
        return f"AADSTS{self.codes[0]}" if self.codes else self.error


def translate_error(result: dict[str, Any], api: DownstreamApi) -> ApiError:
    """Map an Entra error response to the API's error contract."""
    refusal = EntraRefusal.parse(result)
    log.info(
        "Entra ID refused the %s exchange: %s %s suberror=%s correlation_id=%s",
        api.name,
        refusal.error,
        refusal.code,
        refusal.suberror or "-",
        refusal.correlation_id,
    )
    return _user_must_act(refusal, api) or _exchange_refused(refusal)


def _user_must_act(refusal: EntraRefusal, api: DownstreamApi) -> ApiError | None:
    """Claims first (whatever the error says, a claims challenge is what the user must answer),
    then consent, then Entra's suberror classification."""
    code = refusal.code
    if refusal.claims:
        return ClaimsChallenge(
            f"{code}: the user must satisfy a Conditional Access policy (e.g. MFA); "
            "acquire a new token with the claims in this challenge",
            claims=refusal.claims,
        )
    if 65001 in refusal.codes or refusal.suberror == "consent_required":
        return ConsentRequired(
            f"{code}: consent is missing for this API to call {api.name} on the user's behalf; "
            "an administrator can grant admin consent to the API's delegated permissions, or add "
            "the frontend to the API's knownClientApplications and request its .default scope"
        )
    if refusal.suberror == "message_only":
        return AccessDenied(_entra_message(refusal))
    if refusal.error in ("interaction_required", "user_password_expired") or (
        refusal.error == "invalid_grant" and refusal.suberror in _INTERACTIVE_SUBERRORS
    ):
        hint = _INTERACTION_HINTS.get(
            refusal.suberror or refusal.error, "the user must sign in again interactively"
        )
        return InteractionRequired(f"{code}: {hint}")
    return None


def _exchange_refused(refusal: EntraRefusal) -> ApiError:
    """Refusals of the exchange itself: the incoming token, this API's credential, Entra."""
    code, error = refusal.code, refusal.error
    if 500133 in refusal.codes:
        return InvalidToken(
            f"{code}: the token expired before it could be exchanged; acquire a new one"
        )
    if error == "invalid_client" or error == "unauthorized_client":
        log.error("Entra ID refused this API's client credential (%s)", code)
        return ServerError("the API could not authenticate to Entra ID")
    if error in ("temporarily_unavailable", "server_error"):
        return ServiceUnavailable(retry_after=DEFAULT_RETRY_AFTER)
    if error == "invalid_grant":
        return InvalidToken(f"{code}: Entra ID refused to exchange the token")
    return BadGateway(f"Entra ID refused the token exchange ({code})")


def _entra_message(refusal: EntraRefusal) -> str:
    """Entra's own description, without the trace lines it appends, led by its AADSTS code."""
    text = re.split(r"[\r\n]| Trace ID:", refusal.description, maxsplit=1)[0].strip()
    if not text:
        return f"{refusal.code}: Entra ID denied access"
    return text if text.startswith(refusal.code) else f"{refusal.code}: {text}"
