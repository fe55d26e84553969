"""The faults an instance (or a whole account) can be given, and how they are checked.

Three families:

- *delivery before the action*: the request fails before it is carried out
  (``timeout`` never answers, ``http_500``, ``html`` error page, ``reset`` drops the
  connection, ``provider_down`` 503, Wawp ``quota`` 403, Evolution ``error_200``
  answers HTTP 200 ``{error: true}``; ``echo`` answers with the full request URL and every
  request header, credentials included, as a careless gateway does: ``status`` 500 (the
  default) or any 4xx/5xx in the provider's error shape, 200 in its success shape with
  that text as the status, an unknown status: a hostile provider for secret-hygiene tests);
- *delivery after the action*: the action happened, the answer is spoiled
  (``reset_after_action``, ``trickle`` one byte per second, ``malformed`` JSON);
- *state overlays* on reads: ``flapping`` (WORKING <-> STARTING every ``period`` s)
  and ``false_stopped`` (reads STOPPED for ``seconds`` every ``every`` s while WORKING).

Parameters: ``on`` ("all", "read" or "action": which requests a delivery fault hits),
``rate`` (probability per request, default 1), ``period``, ``seconds``, ``every``,
``interval`` (trickle seconds per byte), ``status`` (HTML page status, default 502; ``echo``
status, default 500).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AFTER_ACTION",
    "BEFORE_ACTION",
    "FAULTS",
    "FAULT_PARAMS",
    "STATE_OVERLAYS",
    "validate_fault",
]

BEFORE_ACTION = frozenset(
    {"timeout", "http_500", "html", "reset", "provider_down", "quota", "error_200", "echo"}
)
AFTER_ACTION = frozenset({"reset_after_action", "trickle", "malformed"})
STATE_OVERLAYS = frozenset({"flapping", "false_stopped"})
FAULTS = BEFORE_ACTION | AFTER_ACTION | STATE_OVERLAYS

FAULT_PARAMS: dict[str, type | tuple[type, ...]] = {
    "on": str,
    "rate": (int, float),
    "period": (int, float),
    "seconds": (int, float),
    "every": (int, float),
    "interval": (int, float),
    "status": int,
}

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flapping": {"period": 15.0},
    "false_stopped": {"seconds": 10.0, "every": None},
    "trickle": {"interval": 1.0},
    "html": {"status": 502},
    "echo": {"status": 500},
    "error_200": {"on": "action"},
    "reset_after_action": {"on": "action"},
}


def validate_fault(fault: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Check a fault name and its parameters; return the parameters with defaults filled in."""
    if fault is None:
        return {}
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    merged = dict(DEFAULT_PARAMS.get(fault, {}))
    for key, value in params.items():
        expected = FAULT_PARAMS.get(key)
        if expected is None:
            raise ValueError(f"unknown fault parameter {key!r}")
        if value is not None and not isinstance(value, expected):
            raise ValueError(f"fault parameter {key!r} has the wrong type")
        merged[key] = value
    if merged.get("on", "all") not in ("all", "read", "action"):
        raise ValueError("fault parameter 'on' must be all, read or action")
    if fault == "echo":
        status = merged.get("status")
        if status != 200 and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("fault parameter 'status' of echo must be 200 or 400-599")
    rate = merged.get("rate", 1.0)
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError("fault parameter 'rate' must be between 0 and 1")
    return merged
