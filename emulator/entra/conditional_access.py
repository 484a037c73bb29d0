"""Conditional Access and per-user policy, decided the way Entra decides it.

Whether a user passed MFA is a fact about how their token was obtained, which Entra knows
because it issued the token; it is not read from a claim the token carries. The emulator keeps
that fact in `MfaRecord`, keyed by each token's `uti`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from emulator.directory import (
    API,
    MFA_BEHAVIOURS,
    MFA_POLICY_ID,
    THROTTLE_RETRY_AFTER,
    ClientApp,
    Resource,
    User,
)
from emulator.entra.errors import (
    ConsentMissing,
    EntraError,
    GrantRefused,
    InteractionNeeded,
    RequestInvalid,
    StsThrottled,
)

MFA_CLAIMS_CHALLENGE = json.dumps(
    {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY_ID]}}},
    separators=(",", ":"),
)
# Claims a client asks for to step up authentication (Conditional Access policy ids,
# authentication contexts, methods); `xms_cc` (client capabilities) and `nbf` (CAE) are not.
STEP_UP_CLAIMS = frozenset({"capolids", "acrs", "acr", "amr"})


class MfaRecord:
    """The `uti` of every token the emulator issued after an MFA sign-in, until it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def add(self, uti: str, expires_at: float) -> None:
        now = time.time()
        with self._lock:
            self._expiry = {k: v for k, v in self._expiry.items() if v > now}
            self._expiry[uti] = expires_at

    def __contains__(self, uti: object) -> bool:
        with self._lock:
            return isinstance(uti, str) and self._expiry.get(uti, 0.0) > time.time()


@dataclass(frozen=True)
class ClaimsRequest:
    """What a `claims` request parameter asks for."""

    capabilities: tuple[str, ...] = ()
    is_challenge: bool = False  # asks for more than client capabilities (xms_cc)
    asks_for_mfa: bool = False  # asks to step up (Conditional Access policy, auth context)


def parse_claims(raw: str | None) -> ClaimsRequest:
    if not raw:
        return ClaimsRequest()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RequestInvalid(90100, "The 'claims' parameter is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise RequestInvalid(90100, "The 'claims' parameter must be a JSON object.")
    access = _object(data.get("access_token"))
    values = _object(access.get("xms_cc")).get("values")
    capabilities = (
        tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()
    )
    other = set(access) - {"xms_cc"} or set(data) - {"access_token"}
    asked = set(access) | set(_object(data.get("id_token")))
    return ClaimsRequest(capabilities, bool(other), bool(asked & STEP_UP_CLAIMS))


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def mfa_needed_at_sign_in(user: User, resource: Resource, *, step_up: bool) -> bool:
    """Whether an interactive sign-in must include the MFA step: the client asked for it,
    the user has per-user MFA, or a policy on the resource (Graph, ARM) demands it."""
    if step_up or user.behaviour == "per_user_mfa":
        return True
    return user.behaviour in MFA_BEHAVIOURS and resource is not API


def enforce_user_policy(user: User, resource: Resource, client: ClientApp, *, mfa: bool) -> None:
    """Raise the refusal the user's policy gives for a token for `resource`. The policies
    target the downstream APIs (Graph, ARM), so tokens for the middle-tier API pass."""
    if resource is API:
        return
    if user.behaviour in MFA_BEHAVIOURS and not mfa:
        raise mfa_refusal(user, resource)
    refusal = _refusals(client).get(user.behaviour)
    if refusal is not None:
        raise refusal


def mfa_refusal(user: User, resource: Resource) -> EntraError:
    message = (
        "Due to a configuration change made by your administrator, or because you "
        "moved to a new location, you must use multi-factor authentication to access "
        f"'{resource.app_id}'."
    )
    if user.behaviour == "mfa_required_legacy":
        return InteractionNeeded(50076, message, claims=MFA_CLAIMS_CHALLENGE)
    if user.behaviour == "per_user_mfa":
        return GrantRefused(50076, message, suberror="basic_action")
    return GrantRefused(50076, message, suberror="basic_action", claims=MFA_CLAIMS_CHALLENGE)


def injected_mfa_refusal(resource: Resource) -> EntraError:
    """The answer of an `interaction` fault: Entra's MFA refusal, the older way."""
    return InteractionNeeded(
        50076,
        "Due to a configuration change made by your administrator, or because you "
        "moved to a new location, you must use multi-factor authentication to access "
        f"'{resource.app_id}'.",
        suberror="basic_action",
        claims=MFA_CLAIMS_CHALLENGE,
    )


def consent_missing(client: ClientApp) -> ConsentMissing:
    return ConsentMissing(
        65001,
        f"The user or administrator has not consented to use the application with ID "
        f"'{client.app_id}' named '{client.display_name}'. Send an interactive authorization "
        "request for this user and resource.",
    )


def _refusals(client: ClientApp) -> dict[str, EntraError]:
    return {
        "blocked": GrantRefused(
            53003,
            "Access has been blocked by Conditional Access policies. The access policy "
            "does not allow token issuance.",
            suberror="message_only",
        ),
        "password_expired": GrantRefused(
            50055, "The password is expired.", suberror="user_password_expired"
        ),
        "consent_required": consent_missing(client),
        "throttled": StsThrottled(
            90055,
            "TenantThrottlingError - There are too many incoming requests. This "
            "request has been throttled; retry after the interval in the Retry-After header.",
            headers={"Retry-After": str(THROTTLE_RETRY_AFTER)},
        ),
    }
