"""What an injected fault does to a request: sleep, refuse, drop the connection, misbehave."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

from flask import Response, g, jsonify, request

from emulator.control.faults import Fault
from emulator.control.registry import ControlState
from emulator.https_server import SOCKET_ENVIRON_KEY

REQUEST_MODES = frozenset({"status", "reset", "html", "empty_keys", "huge"})
PADDING_FIELD = "padding"

BROKEN_PROXY_PAGE = """<!DOCTYPE html>
<html><head><title>{status} Proxy Error</title></head>
<body><h1>Proxy Error</h1>
<p>The proxy server received an invalid response from an upstream server.</p>
<hr><address>emulated proxy</address></body></html>
"""


def apply_request_faults(control: ControlState, target: str) -> Response | None:
    """Run the faults that act before the endpoint: a delay, then at most one other."""
    delay = control.faults.take(target, {"delay"})
    if delay is not None:
        control.stopping.wait(delay.seconds or 0)  # ends early when the server stops
    fault = control.faults.take(target, REQUEST_MODES)
    if fault is None:
        return None
    if fault.mode == "huge":
        g.emulator_pad_to = fault.size  # the endpoint answers, then the body is padded
        return None
    if fault.mode == "reset":
        return Response(_drop_connection())
    if fault.mode == "empty_keys":
        return jsonify({"keys": []})
    response = _html_page(fault) if fault.mode == "html" else _error(control, target, fault)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


def _error(control: ControlState, target: str, fault: Fault) -> Response:
    """The target's own error response for the status (its service registered how)."""
    return control.renderers[target](fault.status or 500)


def _html_page(fault: Fault) -> Response:
    status = fault.status or 200
    return Response(
        BROKEN_PROXY_PAGE.format(status=status),
        status=status,
        content_type="text/html; charset=utf-8",
    )


def _drop_connection() -> Iterator[bytes]:
    """A response body that, when the server starts sending it, resets the TCP connection
    instead: the client sees the connection close with no HTTP response at all."""
    sock = request.environ.get(SOCKET_ENVIRON_KEY)
    if isinstance(sock, socket.socket):
        # Linger 0 makes the close send a RST, like a proxy that gave up on the request.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    # The server treats ConnectionError as "the connection is gone" and writes nothing.
    raise ConnectionAbortedError("connection reset by an injected fault")
    yield b""  # pragma: no cover - makes this function a generator


def pad_response(response: Response) -> Response:
    """Grow a JSON object body to about the size a `huge` fault asked for."""
    size = g.pop("emulator_pad_to", None)
    if size is None or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return response
    current = len(response.get_data())
    body[PADDING_FIELD] = "x" * max(0, size - current - len(PADDING_FIELD) - 6)
    response.set_data(json.dumps(body, separators=(",", ":")))
    return response
