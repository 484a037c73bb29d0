"""Unit-test fixtures: real RSA keys and signed tokens, Entra/Graph/ARM stubbed with responses.

The builders, stubs and assertions themselves live in ``tests/support``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.support.stubs import (
    BASE_ENV,
    LoopbackServer,
    LoopbackTls,
    StubServices,
    loopback_tls,
    stub_services,
)
from tests.support.tokens import Signer, TokenFactory, new_signer


@pytest.fixture(scope="session")
def signer() -> Signer:
    return new_signer("key-1")


@pytest.fixture(scope="session")
def second_signer() -> Signer:
    return new_signer("key-2")


@pytest.fixture(scope="session")
def foreign_signer() -> Signer:
    """A key nobody publishes, under a kid the tenant does publish."""
    return new_signer("key-1")


@pytest.fixture(scope="session")
def attacker_signer() -> Signer:
    """A key the attacker holds, under a kid of its own that the tenant does not publish."""
    return new_signer("attacker-key")


@pytest.fixture(scope="session")
def other_tenant_signer() -> Signer:
    """A key to publish with another tenant's issuer (``StubServices.key_issuers``)."""
    return new_signer("key-other-tenant")


@pytest.fixture(scope="session")
def weak_signer() -> Signer:
    """A 1024-bit RSA key: under RFC 7518's minimum of 2048 bits."""
    return new_signer("weak-key", bits=1024)


@pytest.fixture()
def tokens(signer: Signer) -> TokenFactory:
    return TokenFactory(signer)


@pytest.fixture()
def stubs(signer: Signer) -> Iterator[StubServices]:
    with stub_services(signer) as services:
        yield services


@pytest.fixture()
def app(stubs: StubServices) -> Flask:
    return create_app(BASE_ENV)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LoopbackTls:
    return loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture()
def loopback(
    tls: LoopbackTls, stubs: StubServices, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LoopbackServer]:
    """A real HTTPS server on a free loopback port, trusted and let past the stubs."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    with LoopbackServer(tls) as server:
        stubs.mock.add_passthru(server.url)
        yield server


@pytest.fixture()
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (for .env files) for the test."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
