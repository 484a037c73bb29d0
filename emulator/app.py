"""The emulator's WSGI application: Entra, Graph and ARM endpoints plus the control plane."""

from __future__ import annotations

from flask import Flask

from emulator import arm, control, entra, graph
from emulator.state import EXTENSION_KEY, EmulatorState


def create_app(state: EmulatorState) -> Flask:
    app = Flask("emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Entra's field order
    app.extensions[EXTENSION_KEY] = state
    control.init_app(app)
    app.register_blueprint(entra.bp)
    app.register_blueprint(graph.bp)
    app.register_blueprint(arm.bp)
    return app
