"""A managed identity endpoint as Azure App Service and Container Apps run one for the app
(IDENTITY_ENDPOINT, IDENTITY_HEADER): the tokens of the identities assigned to the compute,
issued by the emulated Entra."""

from __future__ import annotations

from flask import Flask

from emulator import control
from emulator.managed_identity.endpoints import (
    COUNTERS,
    EXTENSION_KEY,
    ManagedIdentityEndpoint,
    bp,
    endpoint_of,
    render_status,
)

__all__ = ["ManagedIdentityEndpoint", "endpoint_of", "init_app"]


def init_app(app: Flask) -> ManagedIdentityEndpoint:
    endpoint = ManagedIdentityEndpoint()
    app.extensions[EXTENSION_KEY] = endpoint
    app.register_blueprint(bp)
    control.declare_counters(app, COUNTERS)
    control.register_status_renderer(app, ["managed-identity"], render_status)
    return endpoint
