"""Real RSA keys and really signed tokens, built by name: the tokens a middle tier meets."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TENANT_ID = "5e1c2b3a-0000-4000-8000-00000000beef"
CLIENT_ID = "6e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
SPA_CLIENT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT_SECRET = "unit-test-secret-value"
AUTHORITY_HOST = "https://login.microsoftonline.com"
ISSUER = f"{AUTHORITY_HOST}/{TENANT_ID}/v2.0"
OTHER_ISSUER = f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0"
GRAPH_AUD = "00000003-0000-0000-c000-000000000000"
REALM = f"api://{CLIENT_ID}"


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


def new_signer(kid: str, bits: int = 2048) -> Signer:
    return Signer(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))


@functools.cache
def _forgery_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def with_kid(token: str, kid: str | None = None, key: Any = None) -> str:
    """``token``'s claims signed again under ``kid`` (default: a random one), by ``key``
    (default: a key nobody publishes)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(
        claims, key or _forgery_key(), algorithm="RS256", headers={"kid": kid or uuid.uuid4().hex}
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_segment(value: Any) -> str:
    """A token segment: bytes as they are, str as JSON text, anything else JSON-encoded."""
    if isinstance(value, bytes):
        return b64url(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return b64url(text.encode("utf-8"))


def bearer(token: str) -> dict[str, str]:
    """Request headers carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


class TokenFactory:
    """Named builders for the tokens a middle tier meets, all really RS256-signed."""

    def __init__(self, signer: Signer, issuer: str = ISSUER) -> None:
        self.signer = signer
        self.issuer = issuer

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": CLIENT_ID,
            "iss": self.issuer,
            "iat": now - 30,
            "nbf": now - 30,
            "exp": now + 3600,
            "ver": "2.0",
            "tid": TENANT_ID,
            "oid": str(uuid.uuid4()),
            "sub": "sub-" + uuid.uuid4().hex,
            "azp": SPA_CLIENT_ID,
            "azpacr": "0",
            "scp": "access_as_user",
            "name": "Alice Example",
            "preferred_username": "alice@contoso.test",
            "uti": uuid.uuid4().hex[:22],
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def build(
        self,
        *,
        signer: Signer | None = None,
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        signer = signer or self.signer
        headers = {"kid": signer.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(
            self.claims(**overrides), signer.private_key, algorithm="RS256", headers=headers
        )

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
        return self.build(scp=None, roles=["Reports.Read.All"], idtyp="app", oid=str(uuid.uuid4()))

    def missing_scope(self) -> str:
        return self.build(scp="User.Read")

    def other_tenant(self) -> str:
        return self.build(iss=f"{AUTHORITY_HOST}/{OTHER_TENANT_ID}/v2.0", tid=OTHER_TENANT_ID)

    def id_token(self) -> str:
        return self.build(scp=None, azp=None, azpacr=None, nonce="n-0S6_WzA2Mj")

    def signed_by(self, signer: Signer, **overrides: Any) -> str:
        """The usual claims signed by ``signer`` (any key size: no library warns here)."""
        return self.sign_raw(self.header(kid=signer.kid), self.claims(**overrides), signer=signer)

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
        signature = signer.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"

    def exact(
        self,
        claims: dict[str, Any] | None = None,
        *,
        header: dict[str, Any] | None = None,
        signer: Signer | None = None,
    ) -> str:
        """RS256-signed ``claims`` (default: the usual ones) with JSON nulls kept."""
        return self.sign_raw(
            header or self.header(), self.claims() if claims is None else claims, signer=signer
        )

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
        return jwt.encode(
            self.claims(),
            key,
            algorithm=alg,
            headers={"kid": self.signer.kid, "typ": "JWT", **header},
        )
