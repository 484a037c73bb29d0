"""An HTTPS proxy on a free loopback port that tunnels chosen host names to a loopback port:
what a hosts file would do, without changing the machine's DNS. A client told to use it
(HTTPS_PROXY) reaches, say, https://login.microsoftonline.us, with that name in TLS SNI and
the Host header, at the emulator. Every other host is refused with 403."""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
from collections.abc import Mapping
from types import TracebackType

HEAD_LIMIT = 8192
IDLE_TIMEOUT = 60.0


class _Tunnel(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(IDLE_TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
            chunk = client.recv(HEAD_LIMIT)
            if not chunk:
                return
            head += chunk
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        host, _, port = rest.split(" ", 1)[0].rpartition(":")
        target = self.server.routes.get(host)
        if method != "CONNECT" or port != "443" or target is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.server.record(host)
        with socket.create_connection(("127.0.0.1", target), timeout=IDLE_TIMEOUT) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            _relay(client, upstream)


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes or both stay idle too long."""
    peers = {one: other, other: one}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            ready = selector.select(IDLE_TIMEOUT)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
                except OSError:
                    return


class ConnectProxy(socketserver.ThreadingTCPServer):
    """``with ConnectProxy({"login.microsoftonline.us": 8443}) as proxy: proxy.url``"""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, routes: Mapping[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.routes = dict(routes)
        self._lock = threading.Lock()
        self._hosts: list[str] = []
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="connect-proxy",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, host: str) -> None:
        with self._lock:
            self._hosts.append(host)

    @property
    def hosts(self) -> list[str]:
        """The hosts tunnelled to, in order (one entry per connection)."""
        with self._lock:
            return list(self._hosts)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()
