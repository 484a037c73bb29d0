"""Serving: the local CA and server certificate, restarts, keep-alive, shutdown."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from pathlib import Path

import certifi
import pytest
from cryptography import x509

from emulator import API_CLIENT_ID, GRAPH_APP_ID, TENANT_ID, Emulator
from tests.emulator.support import bearer, obo_form, token_url, trusting_session


def test_server_certificate_covers_loopback_names(emulator: Emulator) -> None:
    state = emulator.state_dir
    ca = x509.load_pem_x509_certificate((state / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((state / "server.pem").read_bytes())

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert leaf.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (state / "server-key.pem").stat().st_mode & 0o077 == 0


def test_ca_bundle_adds_the_local_ca_to_the_system_roots(emulator: Emulator) -> None:
    bundle = emulator.ca_bundle.read_text()

    assert bundle.startswith(Path(certifi.where()).read_text().rstrip("\n")[:200])
    assert bundle.rstrip().endswith((emulator.state_dir / "ca.pem").read_text().rstrip())


def test_plain_ssl_clients_verify_the_server(emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))

    for host in ("127.0.0.1", "localhost"):
        with (
            socket.create_connection((host, emulator.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_connections_are_kept_alive(emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    conn = http.client.HTTPSConnection("127.0.0.1", emulator.port, context=context, timeout=5)
    try:
        statuses = []
        for _ in range(3):
            conn.request("GET", f"/{TENANT_ID}/v2.0/.well-known/openid-configuration")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            assert response.getheader("Connection") is None
            sock = conn.sock
        assert statuses == [200, 200, 200]
        assert conn.sock is sock  # the same TLS connection served all three
    finally:
        conn.close()


def test_restart_keeps_ca_and_signing_keys(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Emulator(state_dir=state) as first:
        kids, ca = first.signing_kids(), (state / "ca.pem").read_bytes()
        user_token = first.issue_user_token("alice")
        graph_token = first.issue_user_token(
            "alice", scope="User.Read", audience=GRAPH_APP_ID, azp=API_CLIENT_ID
        )
        port = first.port

    with Emulator(state_dir=state, port=port) as second, trusting_session(second) as http:
        assert second.signing_kids() == kids
        assert (state / "ca.pem").read_bytes() == ca
        obo = http.post(token_url(second), data=obo_form(user_token))
        me = http.get(f"{second.graph_url}/me", headers=bearer(graph_token))

    assert obo.status_code == 200
    assert me.status_code == 200


@pytest.mark.timeout(30)
def test_stop_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    emu = Emulator(state_dir=tmp_path / "state").start()
    port = emu.port
    context = ssl.create_default_context(cafile=str(emu.ca_bundle))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        conn.request("GET", f"/{TENANT_ID}/discovery/v2.0/keys")
        conn.getresponse().read()

        emu.stop()  # would wait for the idle connection's 60 s timeout if it did not close it

        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        with pytest.raises(OSError):  # reset, EOF or broken pipe, depending on timing
            conn.request("GET", f"/{TENANT_ID}/discovery/v2.0/keys")
            conn.getresponse()
    finally:
        conn.close()


def test_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        emu = Emulator(state_dir=tmp_path / "state", host="::1").start()
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    try:
        with trusting_session(emu) as http:
            doc = http.get(f"{emu.authority}/v2.0/.well-known/openid-configuration").json()
        assert emu.base_url.startswith("https://[::1]:")
        assert doc["issuer"] == f"{emu.base_url}/{TENANT_ID}/v2.0"
    finally:
        emu.stop()


def test_api_needs_a_running_emulator(tmp_path: Path) -> None:
    emu = Emulator(state_dir=tmp_path)

    with pytest.raises(RuntimeError, match="not running"):
        emu.issue_user_token()


def test_only_loopback_hosts_are_served(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Emulator(state_dir=tmp_path, host="0.0.0.0")  # noqa: S104
