"""/_emulator/: counters, faults and signing-key rotation, as JSON, for tests and benchmarks."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from emulator.control.faults import InvalidFault, parse_fault
from emulator.control.registry import current_control
from emulator.state import current_state

bp = Blueprint("control", __name__, url_prefix="/_emulator")


def bad_request(message: str) -> tuple[Response, int]:
    """The control plane's one error shape."""
    return jsonify({"error": "bad_request", "message": message}), 400


@bp.get("/counters")
def counters() -> Response:
    return jsonify(current_control().counters.snapshot())


@bp.post("/counters/reset")
def reset_counters() -> Response:
    control = current_control()
    control.counters.reset()
    return jsonify(control.counters.snapshot())


@bp.get("/faults")
def list_faults() -> Response:
    return jsonify({"faults": current_control().faults.active()})


@bp.post("/faults")
def add_fault() -> tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        return bad_request("the body must be a JSON object")
    try:
        fault = parse_fault(spec)
    except InvalidFault as exc:
        return bad_request(str(exc))
    current_control().faults.add(fault)
    return jsonify(fault.to_dict()), 201


@bp.delete("/faults")
def clear_faults() -> Response:
    current_control().faults.clear()
    return jsonify({"faults": []})


@bp.post("/keys/rotate")
def rotate_keys() -> Response | tuple[Response, int]:
    spec = request.get_json(silent=True)
    spec = {} if spec is None else spec
    drop_old = spec.get("drop_old", False) if isinstance(spec, dict) else None
    if not isinstance(drop_old, bool):
        return bad_request("drop_old must be true or false")
    keys = current_state().keys
    signer = keys.rotate(drop_old=drop_old)
    return jsonify({"signer": signer.kid, "published": [k.kid for k in keys.published()]})
