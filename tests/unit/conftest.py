"""Unit-test fixtures: real RSA keys and signed tokens, Entra/Graph/ARM stubbed with responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TENANT_ID = "5e1c2b3a-0000-4000-8000-00000000beef"
CLIENT_ID = "6e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
SPA_CLIENT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT_SECRET = "unit-test-secret-value"
AUTHORITY_HOST = "https://login.microsoftonline.com"
ISSUER = f"{AUTHORITY_HOST}/{TENANT_ID}/v2.0"
OTHER_ISSUER = f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0"
METADATA_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
JWKS_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/discovery/v2.0/keys"
TOKEN_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/oauth2/v2.0/token"
GRAPH_URL = "https://graph.microsoft.com/v1.0"
ARM_URL = "https://management.azure.com"
GRAPH_AUD = "00000003-0000-0000-c000-000000000000"

BASE_ENV = {
    "AZURE_TENANT_ID": TENANT_ID,
    "AZURE_CLIENT_ID": CLIENT_ID,
    "AZURE_CLIENT_SECRET": CLIENT_SECRET,
}


@dataclass(frozen=True)
class Signer:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self, issuer: str | None = ISSUER) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, use="sig", x5t=self.kid)
        if issuer is not None:
            jwk["issuer"] = issuer
        return dict(jwk)


def _new_signer(kid: str) -> Signer:
    return Signer(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def signer() -> Signer:
    return _new_signer("key-1")


@pytest.fixture(scope="session")
def second_signer() -> Signer:
    return _new_signer("key-2")


@pytest.fixture(scope="session")
def foreign_signer() -> Signer:
    """A key nobody publishes, under a kid the tenant does publish."""
    return _new_signer("key-1")


@pytest.fixture(scope="session")
def attacker_signer() -> Signer:
    """A key the attacker holds, under a kid of its own that the tenant does not publish."""
    return _new_signer("attacker-key")


@pytest.fixture(scope="session")
def other_tenant_signer() -> Signer:
    """A key to publish with another tenant's issuer (``StubServices.key_issuers``)."""
    return _new_signer("key-other-tenant")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_segment(value: Any) -> str:
    """A token segment: bytes as they are, str as JSON text, anything else JSON-encoded."""
    if isinstance(value, bytes):
        return b64url(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return b64url(text.encode("utf-8"))


class TokenFactory:
    """Named builders for the tokens a middle tier meets, all really RS256-signed."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": CLIENT_ID, "iss": ISSUER, "iat": now - 30, "nbf": now - 30,
            "exp": now + 3600, "ver": "2.0", "tid": TENANT_ID, "oid": str(uuid.uuid4()),
            "sub": "sub-" + uuid.uuid4().hex, "azp": SPA_CLIENT_ID, "azpacr": "0",
            "scp": "access_as_user", "name": "Alice Example",
            "preferred_username": "alice@contoso.test", "uti": uuid.uuid4().hex[:22],
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def build(self, *, signer: Signer | None = None, header: dict[str, Any] | None = None,
              **overrides: Any) -> str:
        signer = signer or self.signer
        headers = {"kid": signer.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(self.claims(**overrides), signer.private_key, algorithm="RS256",
                          headers=headers)

    def valid(self, **overrides: Any) -> str:
        return self.build(**overrides)

    def expired(self) -> str:
        now = int(time.time())
        return self.build(iat=now - 7200, nbf=now - 7200, exp=now - 3600)

    def wrong_audience(self) -> str:
        return self.build(aud="api://someone-else")

    def graph_audience(self) -> str:
        return self.build(aud=GRAPH_AUD, scp="User.Read")

    def foreign_key(self, foreign: Signer) -> str:
        return self.build(signer=foreign)

    def v1(self) -> str:
        return self.build(iss=f"https://sts.windows.net/{TENANT_ID}/", ver="1.0")

    def app_only(self) -> str:
        return self.build(scp=None, roles=["Reports.Read.All"], idtyp="app",
                          oid=str(uuid.uuid4()))

    def missing_scope(self) -> str:
        return self.build(scp="User.Read")

    def other_tenant(self) -> str:
        return self.build(iss=f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0", tid=OTHER_TENANT_ID)

    def id_token(self) -> str:
        return self.build(scp=None, azp=None, azpacr=None, nonce="n-0S6_WzA2Mj")

    # Hand-assembled tokens, for what PyJWT will not encode: JSON nulls and odd types in the
    # header, duplicate members, other algorithms' signatures over the usual claims.

    def header(self, *, drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        """The header ``build`` uses, with ``fields`` set (None stays a JSON null)."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self.signer.kid, **fields}
        return {key: value for key, value in header.items() if key not in drop}

    def sign_raw(self, header: Any, payload: Any, *, signer: Signer | None = None) -> str:
        """Header and payload exactly as given (see ``json_segment``), really RS256-signed."""
        signer = signer or self.signer
        signing_input = f"{json_segment(header)}.{json_segment(payload)}"
        signature = signer.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                            hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def exact(self, claims: dict[str, Any] | None = None, *, header: dict[str, Any] | None = None,
              signer: Signer | None = None) -> str:
        """RS256-signed ``claims`` (default: the usual ones) with JSON nulls kept."""
        return self.sign_raw(header or self.header(), self.claims() if claims is None else claims,
                             signer=signer)

    def unsigned(self, header: Any, payload: Any = None, signature: str = "") -> str:
        """Header and payload as given (default payload: the usual claims), any signature."""
        body = self.claims() if payload is None else payload
        return f"{json_segment(header)}.{json_segment(body)}.{signature}"

    def hmac_signed(self, secret: bytes, alg: str = "HS256") -> str:
        """Key confusion: the usual claims MAC-ed with ``secret`` (e.g. the public key)."""
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        signing_input = f"{json_segment(self.header(alg=alg))}.{json_segment(self.claims())}"
        mac = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
        return f"{signing_input}.{b64url(mac)}"

    def signed_with(self, key: Any, alg: str, **header: Any) -> str:
        """The usual claims, really signed with ``key`` under another algorithm."""
        return jwt.encode(self.claims(), key, algorithm=alg,
                          headers={"kid": self.signer.kid, "typ": "JWT", **header})


@pytest.fixture()
def tokens(signer: Signer) -> TokenFactory:
    return TokenFactory(signer)


@dataclass
class StubServices:
    """Entra ID, Graph and ARM answered by ``responses``; behaviour set per test."""

    mock: responses.RequestsMock
    signers: list[Signer]
    obo_errors: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    graph_responses: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    issued: list[dict[str, Any]] = field(default_factory=list)
    expires_in: int = 3599
    # kid -> the issuer the JWKS publishes for that key (default ISSUER; None: no issuer).
    key_issuers: dict[str, str | None] = field(default_factory=dict)

    def calls_to(self, url_prefix: str) -> int:
        return sum(1 for call in self.mock.calls if call.request.url.startswith(url_prefix))

    @property
    def token_calls(self) -> int:
        return self.calls_to(TOKEN_URL)

    @property
    def jwks_calls(self) -> int:
        return self.calls_to(JWKS_URL)

    def register(self) -> None:
        self.mock.add_callback(responses.GET, METADATA_URL, callback=self._metadata)
        self.mock.add_callback(responses.GET, JWKS_URL, callback=self._jwks)
        self.mock.add_callback(responses.POST, TOKEN_URL, callback=self._token)
        self.mock.add_callback(responses.GET, f"{GRAPH_URL}/me", callback=self._graph)
        self.mock.add_callback(responses.GET, f"{GRAPH_URL}/users", callback=self._graph)
        self.mock.add_callback(responses.GET, f"{ARM_URL}/subscriptions", callback=self._arm)

    def _metadata(self, request: Any) -> tuple[int, dict[str, str], str]:
        document = {
            "issuer": ISSUER, "jwks_uri": JWKS_URL, "token_endpoint": TOKEN_URL,
            "authorization_endpoint": f"{AUTHORITY_HOST}/{TENANT_ID}/oauth2/v2.0/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(document)

    def _jwks(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = {"keys": [signer.jwk(self.key_issuers.get(signer.kid, ISSUER))
                         for signer in self.signers]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {key: values[0] for key, values in parse_qs(request.body).items()}
        if self.obo_errors:
            status, body, headers = self.obo_errors.pop(0)
            return status, {"Content-Type": "application/json", **headers}, json.dumps(body)
        if "assertion" in form:
            assertion = jwt.decode(form["assertion"], options={"verify_signature": False})
        else:  # a refresh token names its user: rt.<oid>.<n>
            assertion = {"oid": form["refresh_token"].split(".")[1], "tid": TENANT_ID}
        resource = "arm" if "management.azure.com" in form["scope"] else "graph"
        access_token = f"{resource}-token-{len(self.issued) + 1}"
        self.issued.append({"form": form, "token": access_token})
        client_info = b64url(json.dumps({"uid": assertion["oid"],
                                         "utid": assertion["tid"]}).encode())
        id_token = ".".join([b64url(b'{"alg":"none"}'), b64url(json.dumps({
            "iss": ISSUER, "aud": CLIENT_ID, "oid": assertion["oid"], "tid": TENANT_ID,
            "sub": "s", "preferred_username": "alice@contoso.test", "exp": time.time() + 3600,
            "iat": time.time()}).encode()), ""])
        body = {"token_type": "Bearer", "scope": form["scope"], "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in, "access_token": access_token,
                "refresh_token": f"rt.{assertion['oid']}.{len(self.issued)}", "id_token": id_token,
                "client_info": client_info}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _graph(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.graph_responses:
            status, body, headers = self.graph_responses.pop(0)
            text = body if isinstance(body, str) else json.dumps(body)
            return status, {"Content-Type": "application/json", **headers}, text
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer graph-token-"):
            return 401, {}, json.dumps({"error": {"code": "InvalidAuthenticationToken",
                                                  "message": "Access token is empty."}})
        if request.path_url.startswith("/v1.0/me"):
            body = {"displayName": "Alice Example", "mail": "alice@contoso.test",
                    "token": auth.split()[1]}
        else:
            body = {"value": [{"displayName": "Alice"}, {"displayName": "Bob"}],
                    "query": request.path_url}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _arm(self, request: Any) -> tuple[int, dict[str, str], str]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer arm-token-"):
            return 401, {}, json.dumps({"error": {"code": "InvalidAuthenticationToken",
                                                  "message": "bad token"}})
        query = parse_qs(request.path_url.partition("?")[2])
        start = int(query.get("$skiptoken", ["0"])[0])
        page = self.subscriptions[start:start + 2]
        body: dict[str, Any] = {"value": page}
        if start + 2 < len(self.subscriptions):
            body["nextLink"] = (f"{ARM_URL}/subscriptions?api-version=2022-12-01"
                                f"&$skiptoken={start + 2}")
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture()
def stubs(signer: Signer) -> Iterator[StubServices]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        services = StubServices(mock=mock, signers=[signer])
        services.subscriptions = [
            {"subscriptionId": f"sub-{n}", "displayName": f"Subscription {n}", "state": "Enabled"}
            for n in range(5)
        ]
        services.register()
        yield services


@pytest.fixture()
def app(stubs: StubServices) -> Flask:
    return create_app(BASE_ENV)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_params(header: str) -> dict[str, str]:
    """Parse ``Bearer a="b", c="d"`` into a dict (and check the scheme)."""
    assert header.startswith("Bearer ")
    params = {}
    for part in header[len("Bearer "):].split('", '):
        key, _, value = part.partition("=")
        params[key] = value.strip('"')
    return params
