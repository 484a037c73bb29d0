"""Stub services: Entra ID, Graph and ARM answered in-process by ``responses``, and a real
HTTPS server on a free loopback port for what needs a socket (a body that trickles in)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.tokens import (
    AUTHORITY_HOST,
    CLIENT_ID,
    CLIENT_SECRET,
    ISSUER,
    TENANT_ID,
    Signer,
    b64url,
)

METADATA_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
JWKS_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/discovery/v2.0/keys"
TOKEN_URL = f"{AUTHORITY_HOST}/{TENANT_ID}/oauth2/v2.0/token"
GRAPH_URL = "https://graph.microsoft.com/v1.0"
ARM_URL = "https://management.azure.com"

# The settings every unit test starts from; everything else takes its default.
BASE_ENV = {
    "AZURE_TENANT_ID": TENANT_ID,
    "AZURE_CLIENT_ID": CLIENT_ID,
    "AZURE_CLIENT_SECRET": CLIENT_SECRET,
}


def metadata_document(issuer: str = ISSUER, base: str = AUTHORITY_HOST) -> dict[str, Any]:
    """The tenant's OpenID configuration, with its endpoints under ``base``."""
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/{TENANT_ID}/discovery/v2.0/keys",
        "token_endpoint": f"{base}/{TENANT_ID}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/{TENANT_ID}/oauth2/v2.0/authorize",
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def token_response(
    form: dict[str, str], access_token: str, serial: int, expires_in: int = 3599
) -> dict[str, Any]:
    """A successful token endpoint answer to ``form`` (an OBO or refresh-token grant)."""
    if "assertion" in form:
        assertion = jwt.decode(form["assertion"], options={"verify_signature": False})
    else:  # a refresh token names its user: rt.<oid>.<n>
        assertion = {"oid": form["refresh_token"].split(".")[1], "tid": TENANT_ID}
    client_info = b64url(json.dumps({"uid": assertion["oid"], "utid": assertion["tid"]}).encode())
    id_token = ".".join(
        [
            b64url(b'{"alg":"none"}'),
            b64url(
                json.dumps(
                    {
                        "iss": ISSUER,
                        "aud": CLIENT_ID,
                        "oid": assertion["oid"],
                        "tid": TENANT_ID,
                        "sub": "s",
                        "preferred_username": "alice@contoso.test",
                        "exp": time.time() + 3600,
                        "iat": time.time(),
                    }
                ).encode()
            ),
            "",
        ]
    )
    return {
        "token_type": "Bearer",
        "scope": form["scope"],
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
        "refresh_token": f"rt.{assertion['oid']}.{serial}",
        "id_token": id_token,
        "client_info": client_info,
    }


@dataclass
class StubServices:
    """Entra ID, Graph and ARM answered by ``responses``; behaviour set per test."""

    mock: responses.RequestsMock
    signers: list[Signer]
    obo_errors: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    graph_responses: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    arm_responses: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
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
        return 200, {"Content-Type": "application/json"}, json.dumps(metadata_document())

    def _jwks(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = {
            "keys": [
                signer.jwk(self.key_issuers.get(signer.kid, ISSUER)) for signer in self.signers
            ]
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {key: values[0] for key, values in parse_qs(request.body).items()}
        if self.obo_errors:
            status, body, headers = self.obo_errors.pop(0)
            return status, {"Content-Type": "application/json", **headers}, json.dumps(body)
        resource = "arm" if "management.azure.com" in form["scope"] else "graph"
        access_token = f"{resource}-token-{len(self.issued) + 1}"
        self.issued.append({"form": form, "token": access_token})
        body = token_response(form, access_token, len(self.issued), self.expires_in)
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    @staticmethod
    def _queued(
        queue: list[tuple[int, Any, dict[str, str]]],
    ) -> tuple[int, dict[str, str], str] | None:
        if not queue:
            return None
        status, body, headers = queue.pop(0)
        text = body if isinstance(body, str) else json.dumps(body)
        return status, {"Content-Type": "application/json", **headers}, text

    def _graph(self, request: Any) -> tuple[int, dict[str, str], str]:
        queued = self._queued(self.graph_responses)
        if queued is not None:
            return queued
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer graph-token-"):
            return (
                401,
                {},
                json.dumps(
                    {
                        "error": {
                            "code": "InvalidAuthenticationToken",
                            "message": "Access token is empty.",
                        }
                    }
                ),
            )
        if request.path_url.startswith("/v1.0/me"):
            body = {
                "displayName": "Alice Example",
                "mail": "alice@contoso.test",
                "token": auth.split()[1],
            }
        else:
            body = {
                "value": [{"displayName": "Alice"}, {"displayName": "Bob"}],
                "query": request.path_url,
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _arm(self, request: Any) -> tuple[int, dict[str, str], str]:
        queued = self._queued(self.arm_responses)
        if queued is not None:
            return queued
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer arm-token-"):
            return (
                401,
                {},
                json.dumps(
                    {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}}
                ),
            )
        query = parse_qs(request.path_url.partition("?")[2])
        start = int(query.get("$skiptoken", ["0"])[0])
        page = self.subscriptions[start : start + 2]
        body: dict[str, Any] = {"value": page}
        if start + 2 < len(self.subscriptions):
            body["nextLink"] = (
                f"{ARM_URL}/subscriptions?api-version=2022-12-01&$skiptoken={start + 2}"
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@contextmanager
def stub_services(*signers: Signer) -> Iterator[StubServices]:
    """Entra ID (publishing ``signers``), Graph and ARM stubbed for the block."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        services = StubServices(mock=mock, signers=list(signers))
        services.subscriptions = [
            {"subscriptionId": f"sub-{n}", "displayName": f"Subscription {n}", "state": "Enabled"}
            for n in range(5)
        ]
        services.register()
        yield services


# --- a real HTTPS server on loopback ----------------------------------------------------------


@dataclass(frozen=True)
class LoopbackTls:
    """A CA and a certificate for 127.0.0.1 it signed, as files; ``ca_file`` is the bundle a
    client trusts (REQUESTS_CA_BUNDLE)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def loopback_tls(directory: Path) -> LoopbackTls:
    """Write a CA and a 127.0.0.1 server certificate that strict X.509 checks accept."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unit test loopback CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        _certificate(name, ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = LoopbackTls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: Any, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Route:
    """What the loopback server answers on a path. With ``trickle`` = (bytes, seconds), the
    body goes out that many bytes at a time with that pause in between."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    trickle: tuple[int, float] | None = None


def json_route(document: Any, *, trickle: tuple[int, float] | None = None) -> Route:
    return Route(json.dumps(document).encode(), trickle=trickle)


class LoopbackServer:
    """An HTTPS server on a free port of 127.0.0.1, answering GET and POST by path
    (query ignored); unknown paths get 404. ``requests`` lists the paths asked for."""

    def __init__(self, tls: LoopbackTls) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        # The handshake happens in the request's thread, not in the accepting one.
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # ends trickles still in progress
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._answer(self)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.partition("?")[0]
        self.requests.append(path)
        route = self.routes.get(path, Route(b'{"error": "not_found"}', status=404))
        handler.send_response(route.status)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(route.body)))
        handler.end_headers()
        try:
            self._write(handler, route)
        except (ConnectionError, ssl.SSLError, OSError):
            handler.close_connection = True  # the client gave up, as it should

    def _write(self, handler: BaseHTTPRequestHandler, route: Route) -> None:
        if route.trickle is None:
            handler.wfile.write(route.body)
            return
        size, pause = route.trickle
        for start in range(0, len(route.body), size):
            handler.wfile.write(route.body[start : start + size])
            handler.wfile.flush()
            if self._stopping.wait(pause):
                handler.close_connection = True
                return
