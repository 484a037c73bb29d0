"""The control plane: counters and faults on every served endpoint, and /_emulator/ to drive
them (plus key rotation and settings) from tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from emulator.counters import GRANT_COUNTERS
from emulator.fault_responses import apply_request_faults, pad_response
from emulator.faults import InvalidFault, parse_fault
from emulator.state import current_state

bp = Blueprint("control", __name__, url_prefix="/_emulator")

TARGET_ATTR = "emulator_target"
MIN_TOKEN_LIFETIME = 60
MAX_TOKEN_LIFETIME = 24 * 3600
ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def serves(target: str) -> Callable[[ViewT], ViewT]:
    """Mark a view as the endpoint that counters and faults call `target`."""

    def mark(view: ViewT) -> ViewT:
        setattr(view, TARGET_ATTR, target)
        return view

    return mark


def init_app(app: Flask) -> None:
    app.before_request(_count_and_inject)
    app.after_request(pad_response)
    app.register_blueprint(bp)


def _count_and_inject() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    target = getattr(view, TARGET_ATTR, None)
    if target is None:
        return None
    state = current_state()
    names = [target]
    if target == "token" and (grant := GRANT_COUNTERS.get(request.form.get("grant_type", ""))):
        names.append(grant)
    state.counters.increment(*names)
    return apply_request_faults(state, target)


@bp.get("/counters")
def counters() -> Response:
    return jsonify(current_state().counters.snapshot())


@bp.post("/counters/reset")
def reset_counters() -> Response:
    state = current_state()
    state.counters.reset()
    return jsonify(state.counters.snapshot())


@bp.get("/faults")
def list_faults() -> Response:
    return jsonify({"faults": current_state().faults.active()})


@bp.post("/faults")
def add_fault() -> tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        return _bad_request("the body must be a JSON object")
    try:
        fault = parse_fault(spec)
    except InvalidFault as exc:
        return _bad_request(str(exc))
    current_state().faults.add(fault)
    return jsonify(fault.to_dict()), 201


@bp.delete("/faults")
def clear_faults() -> Response:
    current_state().faults.clear()
    return jsonify({"faults": []})


@bp.post("/keys/rotate")
def rotate_keys() -> Response:
    spec = request.get_json(silent=True) or {}
    keys = current_state().keys
    signer = keys.rotate(drop_old=bool(spec.get("drop_old", False)))
    return jsonify({"signer": signer.kid, "published": [k.kid for k in keys.published()]})


@bp.get("/settings")
def get_settings() -> Response:
    return jsonify({"token_lifetime": current_state().token_lifetime})


@bp.post("/settings")
def update_settings() -> Response | tuple[Response, int]:
    spec = request.get_json(silent=True)
    try:
        lifetime = checked_token_lifetime(spec.get("token_lifetime") if isinstance(
            spec, dict) else None)
    except ValueError as exc:
        return _bad_request(str(exc))
    current_state().token_lifetime = lifetime
    return get_settings()


def checked_token_lifetime(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (
            MIN_TOKEN_LIFETIME <= value <= MAX_TOKEN_LIFETIME):
        raise ValueError(f"token_lifetime must be an integer from {MIN_TOKEN_LIFETIME} to "
                         f"{MAX_TOKEN_LIFETIME} (seconds)")
    return value


def _bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": "bad_request", "message": message}), 400
