"""Serve the sample SPA (samples/spa/) on its own origin, with a config.json for one API.

    .venv/bin/python -m scripts.spa_server --port 3000 --client-id <SPA client id> \\
        --authority https://login.microsoftonline.com/<tenant id> \\
        --api-url http://127.0.0.1:8000 --api-scope api://<API client id>/access_as_user

The page is static; config.json tells it where Entra ID and the API are. Only the SPA's files
are served (no listing, no dotfiles, GET and HEAD only), every answer is `no-store` (the
redirect page receives authorization codes) and carries a Content-Security-Policy that lets
scripts come only from this origin and lets the page talk only to the authority and the API.
Run `python -m scripts.build_spa` first: it puts MSAL.js into samples/spa/vendor/.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, cast
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = ROOT / "samples" / "spa"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
MAX_PORT = 65535


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class SpaConfig:
    """What the page needs to know: the SPA's registration, the authority and the API."""

    client_id: str
    authority: str
    api_url: str
    api_scopes: tuple[str, ...]

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "clientId": self.client_id,
                "authority": self.authority,
                # MSAL.js trusts only the Microsoft clouds unless the authority's host is listed.
                "knownAuthorities": [urlsplit(self.authority).netloc],
                "apiUrl": self.api_url.rstrip("/"),
                "apiScopes": list(self.api_scopes),
            },
            indent=2,
        ).encode("utf-8")

    def content_security_policy(self) -> str:
        authority, api = origin_of(self.authority), origin_of(self.api_url)
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                f"connect-src 'self' {authority} {api}",
                f"frame-src {authority}",  # MSAL.js renews in a hidden iframe when it must
                "img-src 'self' data:",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )


@dataclass(frozen=True)
class _Site:
    """What the request handler serves: the SPA's files, its config.json and headers."""

    directory: Path
    config_json: bytes
    content_security_policy: str
    log: IO[str] | None


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, site: _Site) -> None:
        super().__init__(("127.0.0.1", port), _SpaRequestHandler)
        self.site = site


class SpaServer:
    """The SPA on ``http://localhost:<port>`` (loopback only), in a background thread."""

    def __init__(
        self,
        config: SpaConfig,
        port: int = 0,
        site_dir: Path = SITE_DIR,
        log: IO[str] | None = None,
    ) -> None:
        site = _Site(site_dir.resolve(), config.as_json(), config.content_security_policy(), log)
        self._server = _SiteServer(port, site)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def origin(self) -> str:
        # localhost: Entra ID lets an app register plain-http redirect URIs for localhost only,
        # and browsers treat http://localhost as a secure context (MSAL.js needs Web Crypto).
        return f"http://localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    @property
    def redirect_uri(self) -> str:
        """The URI to register for the SPA: the MSAL.js redirect bridge page."""
        return f"{self.origin}/redirect.html"

    def start(self) -> SpaServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="spa-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SpaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _SpaRequestHandler(BaseHTTPRequestHandler):
    server_version = "spa-server"
    sys_version = ""

    @property
    def site(self) -> _Site:
        return cast(_SiteServer, self.server).site

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/config.json":
            self._send(HTTPStatus.OK, "application/json", self.site.config_json, send_body)
            return
        file = self._site_file(path)
        if file is None:
            self._send(HTTPStatus.NOT_FOUND, CONTENT_TYPES[".txt"], b"not found\n", send_body)
            return
        self._send(HTTPStatus.OK, CONTENT_TYPES[file.suffix], file.read_bytes(), send_body)

    def _site_file(self, path: str) -> Path | None:
        """The file under the site directory that ``path`` names, if it may be served."""
        relative = "index.html" if path == "/" else path.lstrip("/")
        parts = relative.split("/")
        if any(not part or part.startswith(".") or "\\" in part for part in parts):
            return None
        directory = self.site.directory
        file = (directory / relative).resolve()
        if not file.is_relative_to(directory) or file.suffix not in CONTENT_TYPES:
            return None
        return file if file.is_file() else None

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", self.site.content_security_policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log = self.site.log
        if log is None:
            return
        line = format % args
        path = getattr(self, "path", "")
        if path:
            # Without the query string: a response_mode=query redirect carries a code there.
            line = line.replace(path, urlsplit(path).path)
        log.write(f"spa {self.address_string()} {line}\n")


def port_number(text: str) -> int:
    """A TCP port from the command line: ASCII digits, 0 to 65535."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"not a port number (0-{MAX_PORT}): {text!r}")
    return int(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the sample SPA on http://localhost.")
    parser.add_argument("--port", type=port_number, default=3000, help="0: any free port")
    parser.add_argument("--client-id", required=True, help="the SPA's application (client) ID")
    parser.add_argument("--authority", required=True, help="https://<Entra host>/<tenant id>")
    parser.add_argument("--api-url", required=True, help="the API's base URL")
    parser.add_argument(
        "--api-scope",
        action="append",
        dest="api_scopes",
        required=True,
        help="a scope the SPA asks for, api://<API client id>/access_as_user (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = SpaConfig(
        client_id=args.client_id,
        authority=args.authority.rstrip("/"),
        api_url=args.api_url,
        api_scopes=tuple(args.api_scopes),
    )
    if not (SITE_DIR / "vendor" / "msal-browser.min.js").is_file():
        print("spa_server: MSAL.js is missing; run `python -m scripts.build_spa`", file=sys.stderr)
        return 1
    with SpaServer(config, port=args.port, log=sys.stderr) as server:
        print(f"SPA on {server.url} (redirect URI {server.redirect_uri})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
