"""A hub's ROW objects (docs/hub-api.md) back into ``Row`` values, for ``check``'s renderers.

``check --server`` prints exactly what a local ``check`` prints, with the same code
(tuiapp.report): so the rows it renders are real ``Row`` objects, rebuilt from the fields
the hub sends. Anything malformed is a ``ValueError`` naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TypeVar

from tuiapp.config_types import AccountConfig, InstanceConfig
from tuiapp.hub.wire import JSONObject, JSONValue
from tuiapp.model import Observation, Status
from tuiapp.row import Row
from tuiapp.vocabulary import ErrorKind

__all__ = ["row_from_json", "rows_from_fleet"]

_STATUSES = {s.value: s for s in Status}  # a dict lookup, not the enum's call (100k rows)
_KINDS = {k.value: k for k in ErrorKind}
R = TypeVar("R", bound=Row)


def _str(data: Mapping[str, JSONValue], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"row field {key!r}: expected a string")
    return value


def _opt_str(data: Mapping[str, JSONValue], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_float(data: Mapping[str, JSONValue], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _status(data: Mapping[str, JSONValue], key: str) -> Status:
    status = _STATUSES.get(_str(data, key))
    if status is None:
        raise ValueError(f"row field {key!r}: not a status")
    return status


@functools.lru_cache(maxsize=4096)
def _account(name: str, provider: str) -> AccountConfig:
    """One (frozen) account value for all its rows."""
    return AccountConfig(name=name, provider=provider, base_url="")


def row_from_json(data: JSONObject, make: Callable[..., R] = Row) -> R:  # type: ignore[assignment]
    """One ROW as a ``Row`` (what ``tuiapp.report`` reads of it), or as ``make`` (a
    subclass) builds it from the same fields."""
    name = _str(data, "name")
    tags = data.get("tags")
    expect = data.get("expect")
    instance = InstanceConfig(
        name=name,
        account=_str(data, "account"),
        id=_str(data, "id"),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        expect=_STATUSES.get(expect) if isinstance(expect, str) else None,
        muted=data.get("muted") is True,
    )
    account = _account(instance.account, _str(data, "provider"))
    status = _status(data, "status")
    kind = _opt_str(data, "error_kind")
    obs = None
    if data.get("polled") is True:
        obs = Observation(
            status=status,
            raw_status=_opt_str(data, "raw_status"),
            reason=_opt_str(data, "reason"),
            latency_ms=_opt_float(data, "latency_ms"),
            observed_at=_opt_float(data, "data_at") or 0.0,
            error=_opt_str(data, "error"),
            keep_last=data.get("kept_last") is True,
            error_kind=_KINDS.get(kind) if kind is not None else None,
        )
    return make(
        instance=instance,
        account=account,
        obs=obs,
        status=status,
        confirmed=_status(data, "confirmed"),
        since=_opt_float(data, "since"),
        since_exact=data.get("since_exact") is True,
        last_error=_opt_str(data, "error"),
        rate_limited_until=_opt_float(data, "rate_limited_until"),
        flapping=data.get("flapping") is True,
    )


def rows_from_fleet(fleet: JSONObject) -> list[Row]:
    """Every row of a ``GET /api/v1/fleet`` answer."""
    rows = fleet.get("rows")
    if not isinstance(rows, list):
        raise ValueError("the hub's answer has no rows")
    return [row_from_json(item) for item in rows if isinstance(item, dict)]
