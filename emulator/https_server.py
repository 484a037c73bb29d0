"""A small threaded HTTPS server for a WSGI app, with HTTP/1.1 keep-alive.

Werkzeug's development server closes every connection after one response, which would make
each call to the emulator pay a new TLS handshake that real Entra, Graph and ARM do not
charge; clients that pool connections would look no faster than clients that do not.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("emulator.http")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
MAX_BODY = 10 * 1024 * 1024
SOCKET_ENVIRON_KEY = "emulator.socket"


class WsgiHandler(BaseHTTPRequestHandler):
    """Serve requests on one connection until the client closes it or goes idle."""

    protocol_version = "HTTP/1.1"
    server_version = "EntraEmulator/1.0"
    timeout = IDLE_TIMEOUT
    server: TlsThreadedServer

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:  # idle timeout, reset or TLS error: the connection is done
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if self.parse_request():
            self._run_wsgi()

    def _run_wsgi(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Length Required")  # no client of the emulator chunks
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return lambda data: None  # the apps here never use the legacy write()

        try:
            payload = self._collect(self.server.app(self._environ(body), start_response))
        except ConnectionError:
            self.close_connection = True  # a fault dropped the connection; send nothing
            return
        self._send(started[0], started[1], payload)

    @staticmethod
    def _collect(result: Iterable[bytes]) -> bytes:
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _send(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        code = int(status.split(" ", 1)[0])
        self.log_request(code)
        no_body = self.command == "HEAD" or code in (204, 304)
        lines = [
            f"{self.protocol_version} {status}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        lines += [
            f"{name}: {value}"
            for name, value in headers
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        lines.append(f"Content-Length: {0 if no_body else len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Headers and body leave in one write: two small writes would meet Nagle's algorithm
        # and the client's delayed ACK, adding ~40 ms to every response.
        self.wfile.write(head if no_body else head + payload)
        self.wfile.flush()

    def _environ(self, body: bytes) -> dict[str, Any]:
        url = urlsplit(self.path)
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            SOCKET_ENVIRON_KEY: self.connection,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            # PEP 3333: PATH_INFO carries the decoded bytes as latin-1 characters.
            "PATH_INFO": unquote(url.path).encode("utf-8").decode("latin-1"),
            "QUERY_STRING": url.query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('%s "%s" %s', self.client_address[0], self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.info(format, *args)


class TlsThreadedServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """One thread per connection; the TLS handshake runs in that thread, so a slow client
    cannot stall the accept loop. Connections are tracked so stop() can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: WsgiApp, tls: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), WsgiHandler)
        self.app = app
        self._tls = tls
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self._tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed handshake is the client's problem, not a server error
        with self._lock:
            self._connections.add(conn)
            self._workers.add(threading.current_thread())
        try:
            WsgiHandler(conn, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client went away mid-request
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._workers.discard(threading.current_thread())
            conn.close()

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._lock:
            connections, workers = list(self._connections), list(self._workers)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        for worker in workers:
            worker.join(timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving %s", client_address)
