"""Hostile requests and tokens against /api/me: each gets the RFC 6750 answer, never a 500.

Every refusal is checked the same way: status, JSON body, the WWW-Authenticate challenge, and
that nothing was fetched but the tenant's own OpenID metadata and keys -- no OBO exchange, no
Graph call, no request to a URL the token names.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient

from app.auth.tokens import MAX_JSON_DEPTH, MAX_TOKEN_LENGTH
from tests.support.contract import assert_refusal, challenge_params
from tests.support.stubs import JWKS_URL, METADATA_URL, StubServices
from tests.support.tokens import (
    AUTHORITY_HOST,
    CLIENT_ID,
    GRAPH_AUD,
    ISSUER,
    OTHER_ISSUER,
    OTHER_TENANT_ID,
    REALM,
    TENANT_ID,
    Signer,
    TokenFactory,
    b64url,
    bearer,
)

ATTACKER = "https://attacker.example"
ATTACKER_JWKS = f"{ATTACKER}/keys"
ATTACKER_CERT = f"{ATTACKER}/cert.pem"
V1_HINT = "v1 token; set accessTokenAcceptedVersion to 2"


# --- the request a case sends, and the keys the cases need ----------------------------------


@dataclass(frozen=True)
class Sent:
    """What the client sends: Authorization headers, a query string, a form body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    query: str = ""
    form: dict[str, str] | None = None


def auth(*values: str, query: str = "", form: dict[str, str] | None = None) -> Sent:
    return Sent([("Authorization", value) for value in values], query, form)


def token(value: str) -> Sent:
    return auth(f"Bearer {value}")


@dataclass(frozen=True)
class Kit:
    """The token builders plus the keys an attacker (or another tenant) holds."""

    tokens: TokenFactory
    attacker: Signer
    other_tenant: Signer
    ec_key: ec.EllipticCurvePrivateKey
    attacker_cert: str  # base64 DER, as in x5c

    def valid(self, **overrides: Any) -> str:
        return self.tokens.valid(**overrides)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """The usual claims with ``overrides`` applied as they are (None stays a JSON null)."""
        return {**self.tokens.claims(), **overrides}

    def without(self, *names: str) -> str:
        return self.tokens.exact({k: v for k, v in self.tokens.claims().items() if k not in names})

    def with_claims(self, **overrides: Any) -> str:
        return self.tokens.exact(self.claims(**overrides))

    def with_header(self, *, drop: tuple[str, ...] = (), **fields: Any) -> str:
        return self.tokens.exact(header=self.tokens.header(drop=drop, **fields))

    def attacker_jwk(self) -> dict[str, Any]:
        return self.attacker.jwk(issuer=None)

    def public_pem(self, fmt: serialization.PublicFormat) -> bytes:
        return self.tokens.signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, fmt
        )


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def attacker_cert(attacker_signer: Signer) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(attacker_signer.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(attacker_signer.private_key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


@pytest.fixture()
def kit(
    stubs: StubServices,
    tokens: TokenFactory,
    attacker_signer: Signer,
    other_tenant_signer: Signer,
    ec_key: ec.EllipticCurvePrivateKey,
    attacker_cert: str,
) -> Kit:
    # The tenant's JWKS also lists a key that may only sign for another tenant.
    stubs.signers.append(other_tenant_signer)
    stubs.key_issuers[other_tenant_signer.kid] = OTHER_ISSUER
    # The attacker's URLs answer, so following a jku/x5u would let the token in.
    stubs.mock.get(ATTACKER_JWKS, json={"keys": [attacker_signer.jwk(issuer=None)]})
    stubs.mock.get(ATTACKER_CERT, body=attacker_cert)
    return Kit(tokens, attacker_signer, other_tenant_signer, ec_key, attacker_cert)


def send(client: FlaskClient, sent: Sent) -> Any:
    return client.get("/api/me", headers=sent.headers, query_string=sent.query, data=sent.form)


# --- what every answer must look like ------------------------------------------------------


def assert_refused(
    response: Any, stubs: StubServices, status: int, error: str, description: str | None
) -> None:
    # RFC 6750 3.1: no error code when the request carried no (Bearer) credentials.
    body = assert_refusal(
        response,
        status,
        error,
        description=description or "",
        challenge="" if error == "unauthorized" else error,
    )
    assert set(body) == {"error", "error_description"}
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["realm"] == REALM
    if status == 403:
        assert params["scope"] == "access_as_user"
    assert stubs.token_calls == 0
    assert {call.request.url for call in stubs.mock.calls} <= {METADATA_URL, JWKS_URL}


def assert_accepted(response: Any, stubs: StubServices) -> None:
    assert response.status_code == 200, response.json
    assert response.json["displayName"] == "Alice Example"
    assert "WWW-Authenticate" not in response.headers
    assert stubs.token_calls == 1


def check(
    client: FlaskClient,
    stubs: StubServices,
    sent: Sent,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    response = send(client, sent)
    if status == 200:
        assert_accepted(response, stubs)
    else:
        assert error is not None
        assert_refused(response, stubs, status, error, description)


Build = Callable[[Kit], Sent]


def case(
    build: Build, status: int, error: str | None = None, description: str | None = None, *, id: str
) -> Any:
    return pytest.param(build, status, error, description, id=id)


def now() -> int:
    return int(time.time())


def segments(*parts: str) -> Build:
    return lambda kit: token(".".join(parts))


def with_header(**fields: Any) -> Build:
    """The usual claims, RS256-signed, under the usual header with ``fields`` set."""
    return lambda kit: token(kit.with_header(**fields))


def unsigned_with_header(**fields: Any) -> Build:
    """The usual claims under the usual header with ``fields`` set, with no signature."""
    return lambda kit: token(kit.tokens.unsigned(kit.tokens.header(**fields)))


def with_header_text(text: str) -> Build:
    """A hand-written header (duplicates, nesting), really RS256-signed."""
    return lambda kit: token(kit.tokens.sign_raw(text, kit.claims()))


def with_claims(**overrides: Any) -> Build:
    """The usual claims with ``overrides`` exactly (None stays a JSON null), RS256-signed."""
    return lambda kit: token(kit.with_claims(**overrides))


def without_claims(*names: str) -> Build:
    return lambda kit: token(kit.without(*names))


def signed_with_tenant_key(alg: str) -> Build:
    """The usual claims signed with the tenant's own RSA key, under another algorithm."""
    return lambda kit: token(kit.tokens.signed_with(kit.tokens.signer.private_key, alg))


# --- the Authorization header itself --------------------------------------------------------

HEADER_SHAPE = [
    case(lambda kit: Sent(), 401, "unauthorized", id="no-header"),
    case(lambda kit: auth("Basic dXNlcjpwYXNz"), 401, "unauthorized", id="basic"),
    case(
        lambda kit: auth('Digest username="alice", realm="api", nonce="abc", response="0a"'),
        401,
        "unauthorized",
        id="digest",
    ),
    case(
        lambda kit: auth("Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1"),
        401,
        "unauthorized",
        id="negotiate",
    ),
    case(lambda kit: auth(f"Token {kit.valid()}"), 401, "unauthorized", id="token-scheme"),
    case(lambda kit: auth(f"Bearer{kit.valid()}"), 401, "unauthorized", id="no-separator"),
    case(lambda kit: auth(kit.valid()), 401, "unauthorized", id="bare-token"),
    case(lambda kit: auth(""), 401, "unauthorized", id="empty-header"),
    # NBSP is not HTTP whitespace: "\xa0Bearer" is simply another scheme.
    case(lambda kit: auth(f"\xa0Bearer {kit.valid()}"), 401, "unauthorized", id="nbsp-scheme"),
    case(lambda kit: auth("Bearer"), 400, "invalid_request", "empty", id="bearer-alone"),
    case(lambda kit: auth("Bearer "), 400, "invalid_request", "empty", id="bearer-space"),
    case(lambda kit: auth("Bearer \t  "), 400, "invalid_request", "empty", id="bearer-blank"),
    # RFC 7235: the scheme is case-insensitive.
    case(lambda kit: auth(f"bearer {kit.valid()}"), 200, id="lowercase-scheme"),
    case(lambda kit: auth(f"BEARER {kit.valid()}"), 200, id="uppercase-scheme"),
    case(lambda kit: auth(f"bEaReR {kit.valid()}"), 200, id="mixed-case-scheme"),
    case(lambda kit: auth(f"Bearer   {kit.valid()}  "), 200, id="extra-spaces"),
    # RFC 6750 2.1 is "Bearer" 1*SP b64token; a tab is not SP, so the header is malformed.
    case(
        lambda kit: auth(f"Bearer\t{kit.valid()}"),
        400,
        "invalid_request",
        "not tabs",
        id="tab-separator",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}", f"Bearer {kit.valid()}"),
        400,
        "invalid_request",
        "more than one token",
        id="two-bearer-headers",
    ),
    case(
        lambda kit: auth("Basic dXNlcjpwYXNz", f"Bearer {kit.valid()}"),
        400,
        "invalid_request",
        "more than one token",
        id="basic-then-bearer-headers",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}", "Basic dXNlcjpwYXNz"),
        400,
        "invalid_request",
        "more than one token",
        id="bearer-then-basic-headers",
    ),
    case(
        lambda kit: auth("", f"Bearer {kit.valid()}"),
        400,
        "invalid_request",
        "more than one token",
        id="empty-then-bearer-headers",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()},Bearer {kit.valid()}"),
        400,
        "invalid_request",
        "more than one token",
        id="comma-joined-bearers",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()} {kit.valid()}"),
        400,
        "invalid_request",
        "more than one token",
        id="two-tokens",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}", query=f"access_token={kit.valid()}"),
        400,
        "invalid_request",
        "both",
        id="header-and-query",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}", query="access_token="),
        400,
        "invalid_request",
        "both",
        id="header-and-empty-query",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}", form={"access_token": kit.valid()}),
        400,
        "invalid_request",
        "both",
        id="header-and-form",
    ),
    # RFC 6750 allows the query string and form body; this API refuses both (tokens in URLs
    # end up in logs), so such a request carries no acceptable credentials: a bare 401.
    case(
        lambda kit: Sent(query=f"access_token={kit.valid()}"),
        401,
        "unauthorized",
        "not accepted",
        id="query-only",
    ),
    case(
        lambda kit: Sent(form={"access_token": kit.valid()}),
        401,
        "unauthorized",
        "not accepted",
        id="form-only",
    ),
    case(
        lambda kit: auth("Bearer abc def"),
        400,
        "invalid_request",
        "more than one token",
        id="space-inside",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\tx"),
        400,
        "invalid_request",
        "more than one token",
        id="tab-inside",
    ),
    case(lambda kit: auth("Bearer abc$def"), 400, "invalid_request", "token grammar", id="dollar"),
    case(
        lambda kit: auth(f'Bearer "{kit.valid()}"'),
        400,
        "invalid_request",
        "token grammar",
        id="quoted",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()},"),
        400,
        "invalid_request",
        "token grammar",
        id="trailing-comma",
    ),
    case(
        lambda kit: auth("Bearer a.b.c,d.e.f"),
        400,
        "invalid_request",
        "token grammar",
        id="comma-inside",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\u00e9"),
        400,
        "invalid_request",
        "token grammar",
        id="latin1",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\u20ac"),
        400,
        "invalid_request",
        "token grammar",
        id="non-latin1",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\x00"),
        400,
        "invalid_request",
        "token grammar",
        id="nul",
    ),
    # Python's str.split() would take VT, NEL and NBSP for whitespace and accept the token.
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\x0b"),
        400,
        "invalid_request",
        "token grammar",
        id="vertical-tab",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\x85"),
        400,
        "invalid_request",
        "token grammar",
        id="next-line",
    ),
    case(
        lambda kit: auth(f"Bearer {kit.valid()}\xa0"),
        400,
        "invalid_request",
        "token grammar",
        id="nbsp-after",
    ),
    case(
        lambda kit: auth("Bearer =abc"),
        400,
        "invalid_request",
        "token grammar",
        id="leading-padding",
    ),
    case(lambda kit: token("a" * 20_000), 400, "invalid_request", "longer than", id="20000-chars"),
    case(
        lambda kit: token("a" * (MAX_TOKEN_LENGTH + 1)),
        400,
        "invalid_request",
        "longer than",
        id="one-over-limit",
    ),
    case(
        lambda kit: token("a" * MAX_TOKEN_LENGTH),
        401,
        "invalid_token",
        "three",
        id="at-limit-but-junk",
    ),
]


@pytest.mark.parametrize(("build", "status", "error", "description"), HEADER_SHAPE)
def test_header_shape(
    client: FlaskClient,
    stubs: StubServices,
    kit: Kit,
    build: Build,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    check(client, stubs, build(kit), status, error, description)
    if status != 200:
        assert len(stubs.mock.calls) == 0  # a bad header never costs a key lookup


# --- the compact JWS structure: refused before any key lookup ------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_payload_text(text: str | bytes) -> Build:
    """Hand-written payload text under the usual header, really RS256-signed."""
    return lambda kit: token(kit.tokens.sign_raw(kit.tokens.header(), text))


def unsigned_header_text(text: str) -> Build:
    return lambda kit: token(kit.tokens.unsigned(text, signature="c2ln"))


def claims_text(kit: Kit, extra: str, **overrides: Any) -> str:
    """The usual claims (with ``overrides``) as JSON text, ``extra`` members appended as is."""
    return json.dumps(kit.claims(**overrides))[:-1] + extra + "}"


STRUCTURE = [
    case(segments("eyJhbGciOiJSUzI1NiJ9"), 401, "invalid_token", "three", id="1-segment"),
    case(
        lambda kit: token(kit.valid().rpartition(".")[0]),
        401,
        "invalid_token",
        "three",
        id="2-segments",
    ),
    case(lambda kit: token(kit.valid() + ".e30"), 401, "invalid_token", "three", id="4-segments"),
    case(
        lambda kit: token(kit.valid() + ".e30.e30.e30"),
        401,
        "invalid_token",
        "three",
        id="6-segments",
    ),
    case(
        segments(b64url(b'{"alg":"RSA-OAEP","enc":"A256GCM"}'), "a", "b", "c", "d"),
        401,
        "invalid_token",
        "JWE",
        id="jwe-5-segments",
    ),
    case(segments("", "", ""), 401, "invalid_token", "base64url", id="empty-segments"),
    case(
        lambda kit: token(".".join(["", *kit.valid().split(".")[1:]])),
        401,
        "invalid_token",
        "base64url",
        id="empty-header",
    ),
    case(
        lambda kit: token("+" + kit.valid()), 401, "invalid_token", "base64url", id="plus-in-header"
    ),
    case(
        lambda kit: token(kit.valid().replace(".", "./", 1)),
        401,
        "invalid_token",
        "base64url",
        id="slash-in-payload",
    ),
    case(
        lambda kit: token(kit.valid() + "~"),
        401,
        "invalid_token",
        "base64url",
        id="tilde-in-signature",
    ),
    case(
        lambda kit: token(kit.valid().replace(".", ".*", 1)),
        400,
        "invalid_request",
        "token grammar",
        id="star-in-payload",
    ),
    case(
        lambda kit: token(kit.valid() + "=="),
        401,
        "invalid_token",
        "base64url",
        id="padded-signature",
    ),
    # token68 allows '=' only at the very end, so padding inside is a header-grammar error.
    case(
        lambda kit: token(kit.valid().replace(".", "=.", 1)),
        400,
        "invalid_request",
        "token grammar",
        id="padded-header",
    ),
    case(
        segments("a", "e30", ""),
        401,
        "invalid_token",
        "not valid JSON",
        id="impossible-base64-length",
    ),
    *[
        case(
            unsigned_header_text(text),
            401,
            "invalid_token",
            "header is not a JSON object",
            id=f"header-{label}",
        )
        for label, text in [
            ("array", "[]"),
            ("string", '"RS256"'),
            ("number", "1"),
            ("null", "null"),
        ]
    ],
    *[
        case(
            with_payload_text(text),
            401,
            "invalid_token",
            "payload is not a JSON object",
            id=f"payload-{label}",
        )
        for label, text in [
            ("array", "[{}]"),
            ("string", '"claims"'),
            ("number", "42"),
            ("null", "null"),
            ("true", "true"),
        ]
    ],
    case(
        unsigned_header_text('{"alg":"RS256",'),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="header-truncated-json",
    ),
    case(
        with_payload_text("{'aud': 'x'}"),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="payload-python-repr",
    ),
    case(
        lambda kit: token(
            kit.tokens.sign_raw(b'{"alg":"RS256","kid":"key-1","x":"\xff"}', kit.claims())
        ),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="header-not-utf8",
    ),
    case(
        with_payload_text(b'{"aud":"\xc3\x28"}'),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="payload-not-utf8",
    ),
    # NaN and Infinity are Python's JSON extensions, not JSON (RFC 8259).
    case(
        lambda kit: token(kit.tokens.sign_raw(kit.tokens.header(), claims_text(kit, ',"x":NaN'))),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="payload-nan",
    ),
    case(
        with_header_text('{"alg":"RS256","kid":"key-1","x":Infinity}'),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="header-infinity",
    ),
    # RFC 7515 section 4 lets a parser take either duplicate; RFC 8725 says be strict: refuse.
    case(
        with_header_text('{"alg":"none","alg":"RS256","kid":"key-1","typ":"JWT"}'),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="duplicate-alg",
    ),
    case(
        with_header_text('{"alg":"RS256","kid":"nope","kid":"key-1"}'),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="duplicate-kid",
    ),
    # A last-wins parser would see our audience here.
    case(
        lambda kit: token(
            kit.tokens.sign_raw(
                kit.tokens.header(), claims_text(kit, f',"aud":"{CLIENT_ID}"', aud="api://other")
            )
        ),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="duplicate-aud",
    ),
    case(
        lambda kit: token(
            kit.tokens.sign_raw(
                kit.tokens.header(), claims_text(kit, ',"scp":"access_as_user Admin.All"')
            )
        ),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="duplicate-scp",
    ),
    case(
        unsigned_header_text(f'{{"alg":"RS256","kid":"key-1","x":{nested(5000)}}}'),
        401,
        "invalid_token",
        "header is not valid JSON",
        id="header-nested-5000",
    ),
    case(
        with_payload_text(f'{{"x":{nested(3000)}}}'),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="payload-nested-3000",
    ),
    # Near the recursion limit the header may parse here and then fail when PyJWT parses it
    # again or when the error description prints it, both deeper in the stack.
    *[
        case(
            with_header_text(f'{{"alg":{nested(depth)},"kid":"key-1"}}'),
            401,
            "invalid_token",
            "malformed token: the header",
            id=f"alg-nested-{depth}",
        )
        for depth in (900, 975)
    ],
    *[
        case(
            with_header_text(f'{{"alg":"RS256","kid":"key-1","x":{nested(depth)}}}'),
            401,
            "invalid_token",
            "malformed token: the header",
            id=f"header-nested-{depth}",
        )
        for depth in (900, 978)
    ],
    case(
        with_claims(x=json.loads(nested(MAX_JSON_DEPTH))),
        401,
        "invalid_token",
        "payload is nested too deeply",
        id="payload-one-too-deep",
    ),
    case(
        with_header(x=json.loads(nested(MAX_JSON_DEPTH))),
        401,
        "invalid_token",
        "header is nested too deeply",
        id="header-one-too-deep",
    ),
    case(with_header(cty="JWT"), 401, "invalid_token", "nested", id="cty-jwt"),
    case(
        lambda kit: token(
            kit.tokens.sign_raw(kit.tokens.header(cty="JWT"), json.dumps(kit.valid()))
        ),
        401,
        "invalid_token",
        "payload is not a JSON object",
        id="payload-is-jwt-string",
    ),
    case(
        lambda kit: token(kit.tokens.sign_raw(kit.tokens.header(cty="JWT"), kit.valid())),
        401,
        "invalid_token",
        "payload is not valid JSON",
        id="payload-is-raw-jwt",
    ),
    case(with_header(typ="JWE"), 401, "invalid_token", "non-JWT", id="typ-jwe"),
]


@pytest.mark.parametrize(("build", "status", "error", "description"), STRUCTURE)
def test_structure(
    client: FlaskClient,
    stubs: StubServices,
    kit: Kit,
    build: Build,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    check(client, stubs, build(kit), status, error, description)
    assert len(stubs.mock.calls) == 0  # junk never costs a key lookup


# --- the JOSE header: refused before any key lookup -----------------------------------------

HEADER_REFUSED = [
    *[
        case(
            unsigned_with_header(alg=alg),
            401,
            "invalid_token",
            f"algorithm {alg} is not accepted",
            id=f"alg-{alg}",
        )
        for alg in ("none", "None", "NONE", "nOnE")
    ],
    case(
        lambda kit: token(
            kit.tokens.unsigned(kit.tokens.header(alg="none"), signature=kit.valid().split(".")[2])
        ),
        401,
        "invalid_token",
        "algorithm none",
        id="alg-none-with-signature",
    ),
    case(
        lambda kit: token(kit.with_header(drop=("alg",))),
        401,
        "invalid_token",
        "algorithm null",
        id="alg-missing",
    ),
    case(with_header(alg=""), 401, "invalid_token", "RS256", id="alg-empty"),
    # RFC 7515 4.1.1: alg values are case-sensitive.
    case(with_header(alg="rs256"), 401, "invalid_token", "RS256", id="alg-lowercase"),
    case(with_header(alg=["RS256"]), 401, "invalid_token", "RS256", id="alg-list"),
    case(
        lambda kit: token(
            kit.tokens.hmac_signed(kit.public_pem(serialization.PublicFormat.SubjectPublicKeyInfo))
        ),
        401,
        "invalid_token",
        "algorithm HS256",
        id="hs256-spki-pem-secret",
    ),
    case(
        lambda kit: token(kit.tokens.hmac_signed(kit.public_pem(serialization.PublicFormat.PKCS1))),
        401,
        "invalid_token",
        "algorithm HS256",
        id="hs256-pkcs1-pem-secret",
    ),
    case(
        lambda kit: token(kit.tokens.hmac_signed(json.dumps(kit.tokens.signer.jwk()).encode())),
        401,
        "invalid_token",
        "algorithm HS256",
        id="hs256-jwk-secret",
    ),
    case(
        lambda kit: token(
            kit.tokens.hmac_signed(
                kit.public_pem(serialization.PublicFormat.SubjectPublicKeyInfo), "HS512"
            )
        ),
        401,
        "invalid_token",
        "algorithm HS512",
        id="hs512-pem-secret",
    ),
    *[
        case(
            signed_with_tenant_key(alg),
            401,
            "invalid_token",
            f"algorithm {alg}",
            id=f"{alg}-tenant-key",
        )
        for alg in ("RS384", "RS512", "PS256", "PS512")
    ],
    case(
        lambda kit: token(kit.tokens.signed_with(kit.ec_key, "ES256")),
        401,
        "invalid_token",
        "algorithm ES256",
        id="ES256",
    ),
    case(
        lambda kit: token(kit.with_header(drop=("kid",))),
        401,
        "invalid_token",
        "no key id",
        id="kid-missing",
    ),
    *[
        case(with_header(kid=kid), 401, "invalid_token", "no key id", id=f"kid-{name}")
        for name, kid in [
            ("int", 1),
            ("null", None),
            ("list", ["key-1"]),
            ("object", {"kid": "key-1"}),
            ("empty", ""),
            ("long", "k" * 257),
        ]
    ],
    case(with_header(crit=["exp"], exp=1), 401, "invalid_token", "critical", id="crit"),
    case(with_header(crit=[]), 401, "invalid_token", "critical", id="crit-empty"),
    case(
        with_header(crit=["b64"], b64=False), 401, "invalid_token", "critical", id="crit-b64-false"
    ),
]


@pytest.mark.parametrize(("build", "status", "error", "description"), HEADER_REFUSED)
def test_header_refused(
    client: FlaskClient,
    stubs: StubServices,
    kit: Kit,
    build: Build,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    check(client, stubs, build(kit), status, error, description)
    assert len(stubs.mock.calls) == 0


# --- keys and signatures ----------------------------------------------------------------------


def swapped_payload(kit: Kit, **overrides: Any) -> str:
    header, _, signature = kit.valid().split(".")
    payload = b64url(json.dumps(kit.claims(**overrides)).encode())
    return f"{header}.{payload}.{signature}"


KEYS_AND_SIGNATURES = [
    case(
        lambda kit: token(kit.valid().rpartition(".")[0] + "."),
        401,
        "invalid_token",
        "signature verification failed",
        id="empty-signature",
    ),
    case(
        lambda kit: token(kit.valid().rpartition(".")[0] + "." + kit.valid().split(".")[2]),
        401,
        "invalid_token",
        "signature verification failed",
        id="other-tokens-signature",
    ),
    case(
        lambda kit: token(kit.valid().rpartition(".")[0] + ".AAAA"),
        401,
        "invalid_token",
        "signature verification failed",
        id="short-signature",
    ),
    case(
        lambda kit: token(swapped_payload(kit, scp="access_as_user Admin.All")),
        401,
        "invalid_token",
        "signature verification failed",
        id="payload-edited",
    ),
    case(
        lambda kit: token(swapped_payload(kit, aud=CLIENT_ID, exp=now() + 10**6)),
        401,
        "invalid_token",
        "signature verification failed",
        id="payload-extended",
    ),
    case(
        lambda kit: token(
            b64url(json.dumps(kit.tokens.header(jku=ATTACKER_JWKS)).encode())
            + "."
            + kit.valid().split(".", 1)[1]
        ),
        401,
        "invalid_token",
        "signature verification failed",
        id="header-edited",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(signer=kit.attacker, header=kit.tokens.header(kid="key-1"))
        ),
        401,
        "invalid_token",
        "signature verification failed",
        id="attacker-key-tenant-kid",
    ),
    case(with_header(kid="key-9"), 401, "invalid_token", "does not publish", id="unknown-kid"),
    case(with_header(kid="KEY-1"), 401, "invalid_token", "does not publish", id="kid-case-variant"),
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.attacker,
                header=kit.tokens.header(kid=kit.attacker.kid, jku=ATTACKER_JWKS),
            )
        ),
        401,
        "invalid_token",
        "does not publish",
        id="jku-attacker-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(signer=kit.attacker, header=kit.tokens.header(jku=ATTACKER_JWKS))
        ),
        401,
        "invalid_token",
        "signature verification failed",
        id="jku-tenant-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.attacker,
                header=kit.tokens.header(kid=kit.attacker.kid, x5u=ATTACKER_CERT),
            )
        ),
        401,
        "invalid_token",
        "does not publish",
        id="x5u-attacker-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.attacker,
                header=kit.tokens.header(kid=kit.attacker.kid, jwk=kit.attacker_jwk()),
            )
        ),
        401,
        "invalid_token",
        "does not publish",
        id="embedded-jwk-attacker-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(signer=kit.attacker, header=kit.tokens.header(jwk=kit.attacker_jwk()))
        ),
        401,
        "invalid_token",
        "signature verification failed",
        id="embedded-jwk-tenant-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.attacker, header=kit.tokens.header(drop=("kid",), jwk=kit.attacker_jwk())
            )
        ),
        401,
        "invalid_token",
        "no key id",
        id="embedded-jwk-no-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.attacker,
                header=kit.tokens.header(kid=kit.attacker.kid, x5c=[kit.attacker_cert]),
            )
        ),
        401,
        "invalid_token",
        "does not publish",
        id="x5c-attacker-kid",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(signer=kit.attacker, header=kit.tokens.header(x5c=[kit.attacker_cert]))
        ),
        401,
        "invalid_token",
        "signature verification failed",
        id="x5c-tenant-kid",
    ),
    # The JWKS says that key signs only for another tenant; our own issuer in the token
    # does not make it ours (Entra's multi-tenant key-issuer check).
    case(
        lambda kit: token(
            kit.tokens.exact(
                signer=kit.other_tenant, header=kit.tokens.header(kid=kit.other_tenant.kid)
            )
        ),
        401,
        "invalid_token",
        "belongs to another issuer",
        id="other-tenants-key",
    ),
    case(
        lambda kit: token(
            kit.tokens.exact(
                kit.claims(iss=OTHER_ISSUER, tid=OTHER_TENANT_ID),
                signer=kit.other_tenant,
                header=kit.tokens.header(kid=kit.other_tenant.kid),
            )
        ),
        401,
        "invalid_token",
        "belongs to another issuer",
        id="other-tenants-key-and-issuer",
    ),
    # PyJWT's RFC 7797 support: b64=false without crit is malformed, not a detached payload.
    case(with_header(b64=False), 401, "invalid_token", "malformed token", id="b64-false"),
]


@pytest.mark.parametrize(("build", "status", "error", "description"), KEYS_AND_SIGNATURES)
def test_keys_and_signatures(
    client: FlaskClient,
    stubs: StubServices,
    kit: Kit,
    build: Build,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    check(client, stubs, build(kit), status, error, description)
    assert stubs.calls_to(ATTACKER) == 0
    assert stubs.jwks_calls <= 2  # the cold load, then at most one refresh for an unknown kid


# --- claims: verified first, then checked strictly ------------------------------------------

TIME_CLAIMS = ("exp", "nbf", "iat")

CLAIMS = [
    case(lambda kit: token(kit.valid()), 200, id="control-valid"),
    case(
        lambda kit: token(kit.tokens.expired()),
        401,
        "invalid_token",
        "expired",
        id="expired-long-ago",
    ),
    case(
        lambda kit: token(kit.valid(exp=now() - 90)),
        401,
        "invalid_token",
        "expired",
        id="expired-beyond-leeway",
    ),
    case(lambda kit: token(kit.valid(exp=now() - 30)), 200, id="expired-within-leeway"),
    case(
        lambda kit: token(kit.valid(nbf=now() + 120)),
        401,
        "invalid_token",
        "not valid yet",
        id="nbf-beyond-leeway",
    ),
    case(lambda kit: token(kit.valid(nbf=now() + 30)), 200, id="nbf-within-leeway"),
    case(
        lambda kit: token(kit.valid(iat=now() + 120, nbf=now() - 30)),
        401,
        "invalid_token",
        "issued in the future",
        id="iat-beyond-leeway",
    ),
    case(lambda kit: token(kit.valid(iat=now() + 30)), 200, id="iat-within-leeway"),
    *[
        case(without_claims(name), 401, "invalid_token", f"no {name} claim", id=f"{name}-missing")
        for name in TIME_CLAIMS
    ],
    # RFC 7519 allows non-integer NumericDates, but Entra only issues integers; refusing the
    # rest is strictly safer than guessing what "9999999999" or true was meant to be.
    *[
        case(with_claims(**{name: value}), 401, "invalid_token", description, id=f"{name}-{label}")
        for name in TIME_CLAIMS
        for label, value, description in [
            ("string", "9999999999", "integer NumericDate"),
            ("float", float(now() + 600), "integer NumericDate"),
            ("true", True, "integer NumericDate"),
            ("null", None, f"no {name} claim"),
            ("list", [now() + 600], "integer NumericDate"),
        ]
    ],
    case(
        lambda kit: token(kit.valid(exp=10**400)),
        401,
        "invalid_token",
        "out of range",
        id="exp-overflows-float",
    ),
    case(
        lambda kit: token(kit.valid(exp=253402300800)),
        401,
        "invalid_token",
        "out of range",
        id="exp-after-year-9999",
    ),
    case(
        lambda kit: token(kit.valid(nbf=-1)),
        401,
        "invalid_token",
        "out of range",
        id="nbf-negative",
    ),
    case(
        lambda kit: token(kit.tokens.graph_audience()),
        401,
        "invalid_token",
        "for Microsoft Graph",
        id="graph-aud-guid",
    ),
    case(
        lambda kit: token(kit.valid(aud="https://graph.microsoft.com")),
        401,
        "invalid_token",
        "for Microsoft Graph",
        id="graph-aud-url",
    ),
    case(
        lambda kit: token(kit.valid(aud="https://management.azure.com/", scp="user_impersonation")),
        401,
        "invalid_token",
        "for Azure Resource Manager",
        id="arm-aud",
    ),
    # RFC 7519 allows an array, but Entra v2 access tokens carry one audience string; a list
    # is not a token Entra issued for this API, even when it names us.
    case(
        lambda kit: token(kit.valid(aud=[CLIENT_ID])),
        401,
        "invalid_token",
        "single string",
        id="aud-list-with-ours",
    ),
    case(
        lambda kit: token(kit.valid(aud=[GRAPH_AUD, CLIENT_ID])),
        401,
        "invalid_token",
        "single string",
        id="aud-list-mixed",
    ),
    case(
        lambda kit: token(kit.with_claims(aud=None)),
        401,
        "invalid_token",
        "single string",
        id="aud-null",
    ),
    case(without_claims("aud"), 401, "invalid_token", "single string", id="aud-missing"),
    # v2 tokens name the API by client id; the Application ID URI is what v1 tokens use.
    case(
        lambda kit: token(kit.valid(aud=REALM)),
        401,
        "invalid_token",
        "not accepted",
        id="aud-app-id-uri",
    ),
    case(
        lambda kit: token(kit.valid(aud=CLIENT_ID.upper())),
        401,
        "invalid_token",
        "not accepted",
        id="aud-case-variant",
    ),
    case(lambda kit: token(kit.tokens.v1()), 401, "invalid_token", V1_HINT, id="v1"),
    case(lambda kit: token(kit.valid(ver="1.0")), 401, "invalid_token", V1_HINT, id="v1-ver-only"),
    case(
        lambda kit: token(kit.valid(iss=f"https://sts.windows.net/{TENANT_ID}/")),
        401,
        "invalid_token",
        V1_HINT,
        id="v1-issuer-only",
    ),
    case(
        lambda kit: token(
            kit.valid(
                iss=f"https://sts.windows.net/{TENANT_ID}/",
                ver="1.0",
                aud=REALM,
                scp="access_as_user",
            )
        ),
        401,
        "invalid_token",
        V1_HINT,
        id="v1-app-id-uri-aud",
    ),
    case(
        lambda kit: token(kit.tokens.other_tenant()),
        401,
        "invalid_token",
        "is not the expected issuer",
        id="other-tenant",
    ),
    case(
        lambda kit: token(kit.valid(iss=ISSUER[:-5])),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-prefix",
    ),
    case(
        lambda kit: token(kit.valid(iss=ISSUER + "/")),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-trailing-slash",
    ),
    case(
        lambda kit: token(kit.valid(iss=ISSUER + ".attacker.example")),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-suffix",
    ),
    case(
        lambda kit: token(kit.valid(iss=f"{AUTHORITY_HOST}/{TENANT_ID.upper()}/v2.0")),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-tenant-uppercase",
    ),
    case(
        lambda kit: token(kit.valid(iss=ISSUER.replace("https", "HTTPS"))),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-scheme-uppercase",
    ),
    case(
        lambda kit: token(kit.valid(iss=ISSUER.replace("https", "http"))),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-http",
    ),
    case(
        lambda kit: token(kit.valid(iss=f"{AUTHORITY_HOST}/common/v2.0")),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-common",
    ),
    case(
        lambda kit: token(kit.with_claims(iss=[ISSUER])),
        401,
        "invalid_token",
        "not the expected issuer",
        id="issuer-list",
    ),
    case(
        without_claims("iss"), 401, "invalid_token", "not the expected issuer", id="issuer-missing"
    ),
    case(
        lambda kit: token(kit.tokens.id_token()),
        401,
        "invalid_token",
        "not an access token",
        id="id-token",
    ),
    case(without_claims("azp"), 401, "invalid_token", "not an access token", id="azp-missing"),
    case(
        without_claims("ver"), 401, "invalid_token", "unsupported token version", id="ver-missing"
    ),
    case(
        lambda kit: token(kit.valid(ver="2")),
        401,
        "invalid_token",
        "unsupported token version",
        id="ver-2",
    ),
    case(
        lambda kit: token(kit.valid(ver=2.0)),
        401,
        "invalid_token",
        "unsupported token version",
        id="ver-number",
    ),
    *[
        case(
            with_claims(**{name: value}),
            401,
            "invalid_token",
            f"the {name} claim must be a string",
            id=f"{name}-{label}",
        )
        for name in ("scp", "tid", "oid", "azp")
        for label, value in [("list", ["access_as_user"]), ("int", 7), ("null", None)]
    ],
    *[
        case(
            with_claims(roles=value),
            401,
            "invalid_token",
            "roles claim must be a list of strings",
            id=f"roles-{label}",
        )
        for label, value in [
            ("string", "Reports.Read.All"),
            ("ints", [1, 2]),
            ("null", None),
            ("nested", [["Reports.Read.All"]]),
            ("object", {"a": "b"}),
        ]
    ],
    case(
        lambda kit: token(kit.tokens.app_only()),
        403,
        "insufficient_scope",
        "app-only token",
        id="app-only",
    ),
    case(
        lambda kit: token(kit.valid(scp=None)),
        403,
        "insufficient_scope",
        "app-only token",
        id="no-scp-no-roles",
    ),
    case(
        lambda kit: token(kit.tokens.missing_scope()),
        403,
        "insufficient_scope",
        "lacks the access_as_user scope",
        id="missing-scope",
    ),
    # Scope values are case-sensitive (RFC 6749 3.3) and space-delimited: nothing else splits.
    *[
        case(
            with_claims(scp=scp),
            403,
            "insufficient_scope",
            "lacks the access_as_user scope",
            id=f"scope-{label}",
        )
        for label, scp in [
            ("case", "Access_As_User"),
            ("suffix", "access_as_user2"),
            ("prefix", "xaccess_as_user"),
            ("comma", "access_as_user,User.Read"),
            ("tab", "User.Read\taccess_as_user"),
            ("empty", ""),
            ("uri", f"{REALM}/access_as_user"),
        ]
    ],
    case(
        lambda kit: token(kit.valid(scp="User.Read access_as_user")), 200, id="scope-among-others"
    ),
    case(lambda kit: token(kit.valid(roles=["Reports.Read.All"])), 200, id="delegated-with-roles"),
    case(
        lambda kit: token(kit.valid(x=json.loads(nested(MAX_JSON_DEPTH - 1)))),
        200,
        id="payload-at-depth-limit",
    ),
]


@pytest.mark.parametrize(("build", "status", "error", "description"), CLAIMS)
def test_claims(
    client: FlaskClient,
    stubs: StubServices,
    kit: Kit,
    build: Build,
    status: int,
    error: str | None,
    description: str | None,
) -> None:
    check(client, stubs, build(kit), status, error, description)


# --- key lookups cannot be turned into a flood ---------------------------------------------


def random_kid_token(kit: Kit) -> str:
    header = kit.tokens.header(kid=secrets.token_urlsafe(12))
    return kit.tokens.exact(header=header, signer=kit.attacker)


def test_random_kids_cost_at_most_one_extra_key_fetch_when_cold(
    client: FlaskClient, stubs: StubServices, kit: Kit
) -> None:
    for _ in range(50):
        response = client.get("/api/me", headers=bearer(random_kid_token(kit)))
        assert_refused(response, stubs, 401, "invalid_token", "does not publish")
    assert stubs.jwks_calls <= 2  # the cold load, then at most one refresh for unknown kids
    assert_accepted(client.get("/api/me", headers=bearer(kit.valid())), stubs)
    assert stubs.jwks_calls <= 2


def test_random_kids_cost_at_most_one_extra_key_fetch_when_warm(
    client: FlaskClient, stubs: StubServices, kit: Kit
) -> None:
    assert_accepted(client.get("/api/me", headers=bearer(kit.valid())), stubs)
    before = stubs.jwks_calls
    for _ in range(50):
        response = client.get("/api/me", headers=bearer(random_kid_token(kit)))
        assert response.status_code == 401
        assert (response.json or {}).get("error") == "invalid_token"
    assert stubs.jwks_calls - before <= 1
    assert stubs.token_calls == 1


@pytest.fixture()
def entra_down(stubs: StubServices) -> Iterator[StubServices]:
    stubs.mock.replace(responses.GET, METADATA_URL, status=503)
    yield stubs


@pytest.mark.parametrize(
    "value", ["Bearer a.b.c", "Bearer " + "e30." * 2 + "x", "Bearer eyJhbGciOiJub25lIn0.e30."]
)
def test_junk_is_401_even_when_keys_are_unavailable(
    client: FlaskClient, entra_down: StubServices, value: str
) -> None:
    # Junk is refused on its shape alone, so a cold start with Entra down cannot make it a 503.
    response = client.get("/api/me", headers={"Authorization": value})
    assert_refused(response, entra_down, 401, "invalid_token", None)
    assert len(entra_down.mock.calls) == 0
