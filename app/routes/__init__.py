"""HTTP routes, one blueprint per downstream API plus health checks."""

from __future__ import annotations

from flask import Flask

from app.routes import arm, graph, health


def init_app(app: Flask) -> None:
    for blueprint in (health.bp, graph.bp, arm.bp):
        app.register_blueprint(blueprint)
