"""A fake Microsoft Graph v1.0 that validates the emulator's tokens."""

from __future__ import annotations

from flask import Flask

from emulator import control
from emulator.graph.endpoints import COUNTERS, bp
from emulator.graph.responses import graph_status_error


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    control.declare_counters(app, COUNTERS)
    control.register_status_renderer(app, ["graph"], graph_status_error)
