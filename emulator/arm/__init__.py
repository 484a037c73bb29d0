"""A fake Azure Resource Manager that validates the emulator's tokens."""

from __future__ import annotations

from flask import Flask

from emulator import control
from emulator.arm.endpoints import COUNTERS, bp
from emulator.arm.responses import arm_status_error


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    control.declare_counters(app, COUNTERS)
    control.register_status_renderer(app, ["arm"], arm_status_error)
