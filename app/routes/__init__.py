"""HTTP routes, one blueprint per downstream API plus health checks and API docs."""

from __future__ import annotations

from flask import Flask

from app.routes import arm, docs, graph, health


def init_app(app: Flask) -> None:
    for blueprint in (health.bp, graph.bp, arm.bp, docs.bp):
        app.register_blueprint(blueprint)
