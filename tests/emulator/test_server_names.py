"""An emulator posing under other host names (a national cloud): its certificate covers them,
its documents name the host a request came to, and Graph and ARM accept its tokens issued
under any of its names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from emulator import TENANT_ID, Emulator
from tests.emulator.support import bearer, trusting_session

NAMES = ("login.microsoftonline.us", "graph.microsoft.us", "management.usgovcloudapi.net")


@pytest.fixture()
def posing(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "state", server_names=NAMES) as emu:
        yield emu


def test_the_certificate_covers_the_names(posing: Emulator, tmp_path: Path) -> None:
    certificate = x509.load_pem_x509_certificate((tmp_path / "state" / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert set(NAMES) | {"localhost"} <= set(names)


def test_a_restart_with_more_names_renews_the_certificate(tmp_path: Path) -> None:
    with Emulator(state_dir=tmp_path / "state"):
        pass
    with Emulator(state_dir=tmp_path / "state", server_names=NAMES[:1]):
        pem = (tmp_path / "state" / "server.pem").read_bytes()
    names = (
        x509.load_pem_x509_certificate(pem)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert NAMES[0] in names


def test_discovery_names_the_host_it_was_asked_at(posing: Emulator) -> None:
    with trusting_session(posing) as http:
        document = http.get(
            f"{posing.authority}/v2.0/.well-known/openid-configuration", headers={"Host": NAMES[0]}
        ).json()
    assert document["issuer"] == f"https://{NAMES[0]}/{TENANT_ID}/v2.0"
    assert document["token_endpoint"] == f"https://{NAMES[0]}/{TENANT_ID}/oauth2/v2.0/token"


@pytest.mark.parametrize(("server_names", "status"), [(NAMES, 200), ((), 401)])
def test_graph_accepts_tokens_issued_under_its_names(
    tmp_path: Path, server_names: tuple[str, ...], status: int
) -> None:
    with Emulator(state_dir=tmp_path / "state", server_names=server_names) as emu:
        token = emu.issue_user_token(
            "alice",
            audience="00000003-0000-0000-c000-000000000000",
            scope="User.Read",
            iss=f"https://{NAMES[0]}/{TENANT_ID}/v2.0",
        )
        with trusting_session(emu) as http:
            response: requests.Response = http.get(
                f"{emu.graph_url}/me", headers={**bearer(token), "Host": NAMES[1]}
            )
    assert response.status_code == status, response.text
