"""What the control plane keeps per app: counters, faults, and how each target renders an
injected HTTP status (registered by the services, so this package imports none of them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from flask import Flask, Response, current_app

from emulator.control.counters import Counters
from emulator.control.faults import FaultBook

EXTENSION_KEY = "emulator.control"

# Renders an injected HTTP status (e.g. 503) as the target service's error response.
StatusRenderer = Callable[[int], Response]


@dataclass
class ControlState:
    # Set when the server stops, so that injected delays end early.
    stopping: threading.Event
    counters: Counters = field(default_factory=Counters)
    faults: FaultBook = field(default_factory=FaultBook)
    renderers: dict[str, StatusRenderer] = field(default_factory=dict)


def control_of(app: Flask) -> ControlState:
    return cast(ControlState, app.extensions[EXTENSION_KEY])


def current_control() -> ControlState:
    return control_of(current_app)
