"""An emulated Entra ID (v2 endpoints): discovery, keys, the token endpoint's grants,
interactive sign-in for single-page apps, and its part of the control plane."""

from __future__ import annotations

from flask import Flask

from emulator import control
from emulator.entra import controls, endpoints, sign_in
from emulator.entra.errors import render_status
from emulator.entra.grants import GRANT_COUNTERS
from emulator.entra.runtime import EXTENSION_KEY, EntraRuntime

COUNTERS = (
    "openid-configuration",
    "keys",
    "token",
    *GRANT_COUNTERS.values(),
    "userrealm",
    *sign_in.COUNTERS,
)


def init_app(app: Flask, runtime: EntraRuntime) -> None:
    app.extensions[EXTENSION_KEY] = runtime
    app.register_blueprint(endpoints.bp)
    app.register_blueprint(sign_in.bp)
    app.register_blueprint(controls.bp)
    control.declare_counters(app, COUNTERS)
    control.register_status_renderer(app, ["openid-configuration", "keys", "token"], render_status)
