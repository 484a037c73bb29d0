"""Validate an Entra ID v2 access token into its claims.

Order matters: structure and header first (no key lookup for junk), then the signature, and
only then the claims -- nothing from the payload is trusted before the signature verifies.
Every refusal is an ``InvalidToken`` whose description says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from typing import Any, NoReturn

import jwt

from app.auth.keys import KeysUnavailable, SigningKeyCache, UnknownSigningKey
from app.errors import InvalidToken, ServiceUnavailable

Claims = dict[str, Any]

MAX_TOKEN_LENGTH = 16 * 1024
# Leeway for exp, nbf and iat: clocks of Entra and this host may disagree by this much.
CLOCK_SKEW_SECONDS = 60
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]*")
_GRAPH_AUDIENCES = {"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com",
                    "https://graph.microsoft.com/"}
_ARM_AUDIENCES = {"https://management.azure.com", "https://management.azure.com/",
                  "https://management.core.windows.net/"}
_TIME_CLAIMS = ("exp", "nbf", "iat")
# 9999-12-31T23:59:59Z. No real token lives longer; huge values overflow float(exp) downstream.
_MAX_NUMERIC_DATE = 253402300799
# Entra's headers and claims nest two or three levels; deeper input is only an attack on parsers.
MAX_JSON_DEPTH = 16


class TokenValidator:
    """Checks signature, issuer, audience, lifetime and version of an access token."""

    def __init__(
        self,
        keys: SigningKeyCache,
        audiences: tuple[str, ...],
        *,
        leeway: int = CLOCK_SKEW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._audiences = audiences
        self._leeway = leeway
        self._clock = clock

    def validate(self, token: str) -> Claims:
        """Return the verified claims of ``token`` or raise InvalidToken / ServiceUnavailable."""
        header = parse_segments(token)
        kid = check_header(header)
        try:
            key = self._keys.get(kid)
            issuer = self._keys.issuer()
        except KeysUnavailable as exc:
            raise ServiceUnavailable("signing keys are not available yet; retry later",
                                     retry_after=exc.retry_after) from exc
        except UnknownSigningKey as exc:
            raise InvalidToken(
                "the token is signed with a key this tenant does not publish") from exc
        claims = _verify_signature(token, key.key)
        _check_key_issuer(key.issuer, claims, issuer)
        _check_issuer(claims, issuer)
        _check_audience(claims, self._audiences)
        _check_lifetime(claims, self._clock(), self._leeway)
        _check_version_and_kind(claims)
        return claims


def parse_segments(token: str) -> dict[str, Any]:
    """Check the compact JWS shape strictly and return the (unverified) header.

    The payload is parsed here too, only to refuse what a lenient parser would accept:
    duplicate keys (which one wins is parser-dependent), non-objects, absurd nesting.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(f"token longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise InvalidToken("encrypted tokens (JWE) are not accepted; send a signed JWT")
    if len(parts) != 3:
        raise InvalidToken("malformed token: a JWT has three dot-separated segments")
    # fullmatch: with match() and $, a trailing newline would slip through.
    if not (_SEGMENT.fullmatch(parts[0]) and _SEGMENT.fullmatch(parts[1])
            and _SIGNATURE.fullmatch(parts[2])):
        raise InvalidToken("malformed token: segments must be unpadded base64url")
    header = _decode_json_object(parts[0], "header")
    _decode_json_object(parts[1], "payload")
    return header


def _decode_json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                           parse_constant=_no_constant)
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidToken(f"malformed token: the {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: the {what} is not a JSON object")
    if _nesting_depth(value) > MAX_JSON_DEPTH:
        # Parsed once here, the same text is parsed and printed again later (PyJWT, error
        # descriptions); near the recursion limit one of those could fail where this did not.
        raise InvalidToken(f"malformed token: the {what} is nested too deeply")
    return value


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259), only a Python extension.
    raise ValueError(f"{name} is not JSON")


def _nesting_depth(value: object) -> int:
    """How deep arrays and objects nest in ``value``, counted without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key}")
        result[key] = value
    return result


def check_header(header: dict[str, Any]) -> str:
    """Allow RS256 with a kid and nothing we would have to understand; return the kid."""
    alg = header.get("alg")
    if alg != "RS256":
        raise InvalidToken(f"algorithm {_short(alg)} is not accepted; tokens must be RS256")
    if "crit" in header:
        raise InvalidToken("critical header extensions are not supported")
    if header.get("cty") is not None or header.get("typ", "JWT") not in ("JWT", "at+jwt"):
        raise InvalidToken("nested or non-JWT tokens are not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise InvalidToken("the token header has no key id (kid)")
    # jku, x5u, jwk and x5c are deliberately ignored: keys come only from the tenant's JWKS.
    return kid


def _verify_signature(token: str, key: Any) -> Claims:
    try:
        claims: Claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            # Claims are checked below, in a fixed order and with strict types.
            options={"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                     "verify_iat": False, "verify_aud": False, "verify_iss": False,
                     "verify_sub": False, "verify_jti": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("signature verification failed") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    return claims


def _check_key_issuer(key_issuer: str | None, claims: Claims, issuer: str) -> None:
    if key_issuer is None:
        return
    tid = claims.get("tid")
    expanded = key_issuer.replace("{tenantid}", tid) if isinstance(tid, str) else key_issuer
    if expanded != issuer:
        raise InvalidToken("the signing key belongs to another issuer")


def _check_issuer(claims: Claims, issuer: str) -> None:
    iss = claims.get("iss")
    if iss == issuer:
        return
    if claims.get("ver") == "1.0" or (isinstance(iss, str) and "sts.windows.net" in iss):
        raise InvalidToken(
            "v1 token; set accessTokenAcceptedVersion to 2 in the API app registration manifest"
        )
    raise InvalidToken(f"issuer {_short(iss)} is not the expected issuer {issuer}")


def _check_audience(claims: Claims, audiences: tuple[str, ...]) -> None:
    aud = claims.get("aud")
    if not isinstance(aud, str):
        raise InvalidToken("the aud claim must be a single string")
    if aud in audiences:
        return
    if aud in _GRAPH_AUDIENCES:
        raise InvalidToken("this token is for Microsoft Graph, not this API; request a token "
                           "for this API scope (api://<client id>/access_as_user)")
    if aud in _ARM_AUDIENCES:
        raise InvalidToken("this token is for Azure Resource Manager, not this API; request a "
                           "token for this API scope (api://<client id>/access_as_user)")
    raise InvalidToken(f"audience {_short(aud)} is not accepted by this API")


def _check_lifetime(claims: Claims, now: float, leeway: int) -> None:
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        # bool is an int subclass; strings and floats are not NumericDates Entra issues.
        if value is None:
            raise InvalidToken(f"the token has no {name} claim")
        if type(value) is not int:
            raise InvalidToken(f"the {name} claim must be an integer NumericDate")
        if not 0 <= value <= _MAX_NUMERIC_DATE:
            raise InvalidToken(f"the {name} claim is out of range")
    if claims["exp"] <= now - leeway:
        raise InvalidToken("the token has expired")
    if claims["nbf"] > now + leeway:
        raise InvalidToken("the token is not valid yet (nbf is in the future)")
    if claims["iat"] > now + leeway:
        raise InvalidToken("the token was issued in the future (iat)")


def _check_version_and_kind(claims: Claims) -> None:
    if claims.get("ver") != "2.0":
        raise InvalidToken(
            "v1 token; set accessTokenAcceptedVersion to 2 in the API app registration manifest"
            if claims.get("ver") == "1.0" else "unsupported token version; expected ver 2.0"
        )
    for name in ("scp", "tid", "oid", "azp"):
        if name in claims and not isinstance(claims[name], str):
            raise InvalidToken(f"the {name} claim must be a string")
    roles = claims.get("roles")
    # Like scp, an explicit null is a malformed claim, not an absent one.
    if "roles" in claims and not (isinstance(roles, list)
                                  and all(isinstance(role, str) for role in roles)):
        raise InvalidToken("the roles claim must be a list of strings")
    if "azp" not in claims:
        # v2 access tokens always carry azp; ID tokens never do.
        raise InvalidToken("not an access token (no azp claim); send the access token for "
                           "this API, not an ID token")


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[:40]
    return text[:80]
