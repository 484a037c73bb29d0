"""Validate an Entra ID v2 access token into its claims.

Order matters: structure and header first (no key lookup for junk), then the signature, and
only then the claims -- nothing from the payload is trusted before the signature verifies.
Every refusal is an ``InvalidToken`` whose description says what to fix.

Each segment is decoded and parsed once, and the signature is checked with the key's
``cryptography`` object directly. A token that passed every check is remembered (by its
SHA-256, LRU-bounded, until it expires, and only while the key that verified it is still the
published one), so a client's next requests with it skip decoding and the RSA verification;
its lifetime is still checked on every request, and scopes and roles by the caller.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app.auth.keys import KeysUnavailable, SigningKey, SigningKeyCache, UnknownSigningKey
from app.errors import InvalidToken, ServiceUnavailable

Claims = dict[str, Any]

MAX_TOKEN_LENGTH = 16 * 1024
# Leeway for exp, nbf and iat: clocks of Entra and this host may disagree by this much.
CLOCK_SKEW_SECONDS = 60
# Verified tokens remembered per process, twice the default OBO_CACHE_MAX_USERS: a user renews
# a token hourly. An entry is mostly its claims, about 2.5 KiB for a 1 KB token, so the cache
# stays within about 25 MiB per worker.
MAX_VERIFIED_TOKENS = 10_000
# header.payload.signature, unpadded base64url; the signature may be empty (then it fails).
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# By segment length mod 4: the last character may only be one whose unused low bits are zero
# (4 unused bits after 2 characters, 2 after 3), i.e. every 16th or every 4th of the alphabet.
_CANONICAL_LAST = {2: _ALPHABET[::16], 3: _ALPHABET[::4]}
_GRAPH_AUDIENCES = {
    "00000003-0000-0000-c000-000000000000",
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
}
_ARM_AUDIENCES = {
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
}
_TIME_CLAIMS = ("exp", "nbf", "iat")
# 9999-12-31T23:59:59Z. No real token lives longer; huge values overflow float(exp) downstream.
_MAX_NUMERIC_DATE = 253402300799
# Entra's headers and claims nest two or three levels; deeper input is only an attack on parsers.
MAX_JSON_DEPTH = 16
_RS256_PADDING = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class Segments(NamedTuple):
    """A compact JWS taken apart, each segment decoded once; nothing in it is verified yet."""

    header: Mapping[str, Any]
    claims: Claims
    signing_input: bytes
    signature: bytes


class _Verified(NamedTuple):
    """Claims that passed every check, and the key that verified them."""

    claims: Claims
    key: SigningKey
    expires_at: float  # exp plus the leeway: no longer accepted from then on


class VerifiedTokens:
    """Tokens that passed validation, by SHA-256 of the token; LRU-bounded, thread-safe."""

    def __init__(self, max_entries: int = MAX_VERIFIED_TOKENS) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> _Verified | None:
        """The entry for ``digest`` unless absent or expired (an expired one is dropped)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.expires_at <= now:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry

    def put(self, digest: bytes, entry: _Verified) -> None:
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class TokenValidator:
    """Checks signature, issuer, audience, lifetime and version of an access token."""

    def __init__(
        self,
        keys: SigningKeyCache,
        audiences: tuple[str, ...],
        *,
        leeway: int = CLOCK_SKEW_SECONDS,
        clock: Callable[[], float] = time.time,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self._keys = keys
        self._audiences = audiences
        self._leeway = leeway
        self._clock = clock
        self._verified = VerifiedTokens() if verified is None else verified

    def validate(self, token: str) -> Claims:
        """Return the verified claims of ``token`` or raise InvalidToken / ServiceUnavailable."""
        now = self._clock()
        digest = _digest(token)
        verified = None if digest is None else self._verified.get(digest, now)
        if verified is not None and self._still_published(verified.key):
            _check_lifetime(verified.claims, now, self._leeway)
        else:
            verified = self._verify(token, now)
            if digest is not None:
                self._verified.put(digest, verified)
        return dict(verified.claims)  # a copy: what the cache holds stays as verified

    def _verify(self, token: str, now: float) -> _Verified:
        segments = parse_segments(token)
        kid = check_header(segments.header)
        key, issuer = self._key_and_issuer(kid)
        _check_signature(segments, key)
        claims = segments.claims
        _check_key_issuer(key.issuer, claims, issuer)
        _check_issuer(claims, issuer)
        _check_audience(claims, self._audiences)
        _check_lifetime(claims, now, self._leeway)
        _check_version_and_kind(claims)
        return _Verified(claims, key, claims["exp"] + self._leeway)

    def _still_published(self, key: SigningKey) -> bool:
        """Whether the tenant still publishes ``key`` under its kid. A reloaded key set holds
        new key objects, so its tokens are verified once more."""
        return self._key_and_issuer(key.kid)[0] is key

    def _key_and_issuer(self, kid: str) -> tuple[SigningKey, str]:
        try:
            return self._keys.get(kid), self._keys.issuer()
        except KeysUnavailable as exc:
            raise ServiceUnavailable(
                "signing keys are not available yet; retry later", retry_after=exc.retry_after
            ) from exc
        except UnknownSigningKey as exc:
            raise InvalidToken(
                "the token is signed with a key this tenant does not publish"
            ) from exc


def _digest(token: str) -> bytes | None:
    """The cache key of ``token``; None for a token that cannot be valid (not ASCII, too long)."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    return hashlib.sha256(token.encode("ascii")).digest()


def parse_segments(token: str) -> Segments:
    """Check the compact JWS shape strictly and decode its three segments (unverified).

    The payload is refused here for what a lenient parser would accept: duplicate keys
    (which one wins is parser-dependent), non-objects, absurd nesting.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(f"token longer than {MAX_TOKEN_LENGTH} characters")
    # fullmatch: with match() and $, a trailing newline would slip through.
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        _refuse_shape(token)
    header_segment, payload_segment, signature_segment = match.groups()
    header = _decode_header(header_segment)
    claims = _decode_json_object(payload_segment, "payload")
    try:
        signature = _decode_base64url(signature_segment, "signature")
    except binascii.Error as exc:
        raise InvalidToken("malformed token: the signature is not valid base64url") from exc
    return Segments(header, claims, token[: match.end(2)].encode("ascii"), signature)


@functools.lru_cache(maxsize=32)
def _decode_header(segment: str) -> Mapping[str, Any]:
    """The header as a JSON object. Entra signs all tokens of a key under one header, so the
    few in use are remembered (read-only: the dict is shared)."""
    return _decode_json_object(segment, "header")


def _refuse_shape(token: str) -> NoReturn:
    """Say what is wrong with a token that is not three base64url segments."""
    parts = token.split(".")
    if len(parts) == 5:
        raise InvalidToken("encrypted tokens (JWE) are not accepted; send a signed JWT")
    if len(parts) != 3:
        raise InvalidToken("malformed token: a JWT has three dot-separated segments")
    raise InvalidToken("malformed token: segments must be unpadded base64url")


def _decode_base64url(segment: str, what: str) -> bytes:
    """The bytes of an unpadded base64url segment (binascii.Error for an impossible length),
    in its one canonical spelling only."""
    # RFC 4648 3.5: the bits the last character carries beyond the data must be zero.
    # Otherwise one value has several spellings, and a token could be altered without
    # touching its signature.
    if segment and segment[-1] not in _CANONICAL_LAST.get(len(segment) % 4, _ALPHABET):
        raise InvalidToken(f"malformed token: the {what} is not canonical base64url")
    standard = segment.replace("-", "+").replace("_", "/") + "=" * (-len(segment) % 4)
    return binascii.a2b_base64(standard, strict_mode=True)


def _decode_json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = _decode_base64url(segment, what)
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidToken(f"malformed token: the {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: the {what} is not a JSON object")
    # Each level opens a bracket, so text with few brackets needs no walk (Entra's has 1-3).
    if (
        raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH
        and _nesting_depth(value) > MAX_JSON_DEPTH
    ):
        # Refusal descriptions print header values; deep ones could exhaust the stack there.
        raise InvalidToken(f"malformed token: the {what} is nested too deeply")
    return value


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON (RFC 8259), only a Python extension.
    raise ValueError(f"{name} is not JSON")


def _nesting_depth(value: dict[str, Any]) -> int:
    """How deep arrays and objects nest in ``value``, counted without recursion."""
    deepest = 0
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending.extend(
            [(child, depth + 1) for child in children if isinstance(child, (dict, list))]
        )
    return deepest


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


# Built once: json.loads() with hooks compiles a new decoder on every call.
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)


def check_header(header: Mapping[str, Any]) -> str:
    """Allow RS256 with a kid and nothing we would have to understand; return the kid."""
    alg = header.get("alg")
    if alg != "RS256":
        raise InvalidToken(f"algorithm {_short(alg)} is not accepted; tokens must be RS256")
    if "crit" in header:
        raise InvalidToken("critical header extensions are not supported")
    if header.get("cty") is not None or header.get("typ", "JWT") not in ("JWT", "at+jwt"):
        raise InvalidToken("nested or non-JWT tokens are not accepted")
    if header.get("b64") is False:
        # RFC 7797's unencoded payload, which is only valid listed in crit (refused above).
        raise InvalidToken("malformed token: b64=false (an unencoded payload) is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise InvalidToken("the token header has no key id (kid)")
    # jku, x5u, jwk and x5c are deliberately ignored: keys come only from the tenant's JWKS.
    return kid


def _check_signature(segments: Segments, key: SigningKey) -> None:
    # RS256 (RFC 7518 section 3.3): RSASSA-PKCS1-v1_5 with SHA-256.
    try:
        key.key.verify(segments.signature, segments.signing_input, _RS256_PADDING, _SHA256)
    except InvalidSignature as exc:
        raise InvalidToken("signature verification failed") from exc


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
        raise InvalidToken(
            "this token is for Microsoft Graph, not this API; request a token "
            "for this API scope (api://<client id>/access_as_user)"
        )
    if aud in _ARM_AUDIENCES:
        raise InvalidToken(
            "this token is for Azure Resource Manager, not this API; request a "
            "token for this API scope (api://<client id>/access_as_user)"
        )
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
            if claims.get("ver") == "1.0"
            else "unsupported token version; expected ver 2.0"
        )
    for name in ("scp", "tid", "oid", "azp"):
        if name in claims and not isinstance(claims[name], str):
            raise InvalidToken(f"the {name} claim must be a string")
    roles = claims.get("roles")
    # Like scp, an explicit null is a malformed claim, not an absent one.
    if "roles" in claims and not (
        isinstance(roles, list) and all(isinstance(role, str) for role in roles)
    ):
        raise InvalidToken("the roles claim must be a list of strings")
    if "azp" not in claims:
        # v2 access tokens always carry azp; ID tokens never do.
        raise InvalidToken(
            "not an access token (no azp claim); send the access token for "
            "this API, not an ID token"
        )


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[:40]
    return text[:80]
