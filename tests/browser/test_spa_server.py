"""scripts/spa_server.py: the SPA's files and config.json, nothing else, with safe headers."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.spa_server import SpaConfig, SpaServer

CONFIG = SpaConfig(
    client_id="spa-client",
    authority="https://login.example:8443/tenant",
    api_url="http://127.0.0.1:8000/",
    api_scopes=("api://api-client/access_as_user",),
)


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "vendor").mkdir(parents=True)
    (site / "index.html").write_text("<p>index</p>")
    (site / "app.js").write_text("export {};")
    (site / "vendor" / "lib.js").write_text("var lib;")
    (site / ".gitignore").write_text("vendor/")
    (site / "notes.py").write_text("secret = 1")
    (tmp_path / "outside.js").write_text("var outside;")
    (site / "link.js").symlink_to(tmp_path / "outside.js")
    return site


@pytest.fixture()
def log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture()
def server(site: Path, log: io.StringIO) -> Iterator[SpaServer]:
    with SpaServer(CONFIG, site_dir=site, log=log) as running:
        yield running


def fetch(
    server: SpaServer, path: str, method: str = "GET"
) -> tuple[http.client.HTTPResponse, bytes]:
    """The answer and its body, for the path as given (``..`` is not normalised away)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "content_type", "content"),
    [
        ("/", "text/html; charset=utf-8", b"<p>index</p>"),
        ("/index.html", "text/html; charset=utf-8", b"<p>index</p>"),
        ("/app.js", "text/javascript; charset=utf-8", b"export {};"),
        ("/vendor/lib.js", "text/javascript; charset=utf-8", b"var lib;"),
        ("/index.html?code=abc&state=xyz", "text/html; charset=utf-8", b"<p>index</p>"),
    ],
)
def test_the_sites_files_are_served(
    server: SpaServer, path: str, content_type: str, content: bytes
) -> None:
    response, data = fetch(server, path)
    assert response.status == 200
    assert response.getheader("Content-Type") == content_type
    assert data == content


def test_config_json_tells_the_page_where_entra_and_the_api_are(server: SpaServer) -> None:
    response, data = fetch(server, "/config.json")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data) == {
        "clientId": "spa-client",
        "authority": "https://login.example:8443/tenant",
        "knownAuthorities": ["login.example:8443"],
        "apiUrl": "http://127.0.0.1:8000",
        "apiScopes": ["api://api-client/access_as_user"],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/.gitignore",
        "/notes.py",
        "/vendor/",
        "/vendor",
        "/missing.js",
        "/../outside.js",
        "/%2e%2e/outside.js",
        "/vendor/..%2f..%2foutside.js",
        "//etc/passwd",
        "/link.js",  # a symlink out of the site
        "/vendor\\lib.js",
    ],
)
def test_nothing_else_is_served(server: SpaServer, path: str) -> None:
    response, _ = fetch(server, path)
    assert response.status == 404
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"


def test_every_answer_is_no_store_with_a_policy_naming_the_authority_and_the_api(
    server: SpaServer,
) -> None:
    for path in ("/", "/config.json", "/missing.js"):
        response, _ = fetch(server, path)
        assert response.getheader("Cache-Control") == "no-store"
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("Referrer-Policy") == "no-referrer"
        assert response.getheader("Cross-Origin-Opener-Policy") is None  # MSAL.js's bridge
        policy = response.getheader("Content-Security-Policy", "")
        assert "script-src 'self';" in policy
        assert "connect-src 'self' https://login.example:8443 http://127.0.0.1:8000;" in policy
        assert "frame-src https://login.example:8443;" in policy


def test_head_has_no_body_and_other_methods_are_refused(server: SpaServer) -> None:
    head, data = fetch(server, "/app.js", "HEAD")
    assert head.status == 200
    assert head.getheader("Content-Length") == str(len(b"export {};"))
    assert data == b""
    assert fetch(server, "/app.js", "POST")[0].status == 501


def test_the_log_leaves_out_query_strings(server: SpaServer, log: io.StringIO) -> None:
    fetch(server, "/redirect.html?code=secret-code&state=s")
    assert "/redirect.html" in log.getvalue()
    assert "secret-code" not in log.getvalue()


def test_the_origin_is_localhost_and_the_redirect_uri_the_bridge_page(server: SpaServer) -> None:
    assert server.origin == f"http://localhost:{server.port}"
    assert server.url == f"http://localhost:{server.port}/"
    assert server.redirect_uri == f"http://localhost:{server.port}/redirect.html"
