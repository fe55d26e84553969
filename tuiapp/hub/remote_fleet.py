"""A hub's fleet as the TUI reads it: rows, the shared state's facts, the fleet config.

The TUI attached to a hub (``tuiapp --server URL``) reads the same ``Row`` objects as
a local one. Here they are ``RemoteRow``: a ``Row`` rebuilt from the hub's ROW objects
(``remote_rows.row_from_json``) and updated in place on every ``row`` event, plus
what only a client knows:

- whether the link to the hub is up (``LinkFacts``): while it is down every row is
  stale, with its age growing from the hub's last word;
- the hub's own ``stale`` flag (the hub sends a row again when it turns stale or
  fresh by the clock alone), and its last sweep: the hub does not resend a row whose
  re-read only refreshed its age, so a row's data is at least as fresh as that sweep.

``RemoteStateData`` answers what the bridge asks of the shared state (cooldowns, the
last action and who did it) from the rows' ``cooldown_until``, ``busy`` and
``last_action``. ``fleet_config`` builds the ``FleetConfig`` the UI needs (accounts,
instances, poll intervals) from a ``/fleet`` answer. ``shift_times`` moves a ROW's
times onto another clock (a TUI on several hubs runs on its own clock, each hub's
times shifted by that hub's offset). No Textual, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from tuiapp.config_types import AccountConfig, FleetConfig, InstanceConfig, MonitorConfig
from tuiapp.hub.remote_rows import row_from_json
from tuiapp.hub.wire import JSONObject, JSONValue
from tuiapp.row import Row
from tuiapp.state import ActionRecord

__all__ = [
    "HUB_PID",
    "LinkFacts",
    "RemoteRow",
    "RemoteStateData",
    "fleet_config",
    "hub_interval",
    "new_row",
    "shift_times",
    "update_row",
]

HUB_PID = -1  # an ActionRecord's pid for what the hub recorded: never this process's
_KEPT = frozenset({"transitions", "glimpses", "first_seen_at"})  # the client's own
_ROW_FIELDS = tuple(f.name for f in fields(Row) if f.name not in _KEPT)
_ROW_TIMES = ("since", "data_at", "rate_limited_until", "cooldown_until")
_NESTED_TIMES = (("busy", "since"), ("last_action", "at"))


@dataclass(slots=True)
class LinkFacts:
    """What every row of one hub shares: is the link up, the hub's last sweep."""

    connected: bool = False
    sweep_at: float | None = None  # the hub's last sweep (its clock)


@dataclass(eq=False, slots=True)
class RemoteRow(Row):
    """A hub's row; stale while the link is down, else when the hub says so."""

    link: LinkFacts | None = None
    hub_stale: bool = False
    cooldown_until: float | None = None
    busy: JSONObject | None = None
    last_action: JSONObject | None = None

    @property
    def data_at(self) -> float | None:
        """When the provider last said this status, as far as the hub's word goes: a
        fresh row was read again by every sweep since (the hub does not resend it)."""
        obs = self.obs
        if obs is None or obs.keep_last:
            return None
        at = obs.observed_at
        link = self.link
        if link is None or self.hub_stale or link.sweep_at is None:
            return at
        if self.rate_limited_until is not None:
            return at
        return max(at, link.sweep_at)

    def is_stale(self, now: float, interval: float) -> bool:
        link = self.link
        if link is not None and not link.connected:
            return True  # the hub is out of reach: nothing here is current
        return self.hub_stale


def hub_interval(row: Row) -> float:
    """What the hub measures a row's data age against: every row it sends carries it
    (``poll_interval``: its ``Poller.stale_interval``), kept on the row's account."""
    interval = row.account.poll_interval
    return interval if interval is not None else MonitorConfig().poll_interval


def _obj(value: JSONValue | None) -> JSONObject | None:
    return value if isinstance(value, dict) else None


def _float(value: JSONValue | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def shift_times(data: JSONObject, delta: float) -> JSONObject:
    """A copy of the ROW ``data`` with every time in it (not the durations) moved by
    ``delta`` seconds: from the hub's clock onto another one."""
    if not delta:
        return data
    out = dict(data)
    for key in _ROW_TIMES:
        value = _float(out.get(key))
        if value is not None:
            out[key] = value + delta
    for key, inner in _NESTED_TIMES:
        nested = _obj(out.get(key))
        value = _float(nested.get(inner)) if nested is not None else None
        if nested is not None and value is not None:
            out[key] = {**nested, inner: value + delta}
    return out


def new_row(data: JSONObject, link: LinkFacts) -> RemoteRow:
    """A ROW as a new ``RemoteRow`` sharing ``link``."""
    row = row_from_json(data, RemoteRow)
    row.link = link
    _hub_facts(row, data)
    row.first_seen_at = row.last_polled_at
    return row


def update_row(row: RemoteRow, data: JSONObject) -> None:
    """A newer ROW of the same instance, applied in place (the UI holds the object)."""
    fresh = row_from_json(data)
    for name in _ROW_FIELDS:
        setattr(row, name, getattr(fresh, name))
    _hub_facts(row, data)


def _hub_facts(row: RemoteRow, data: JSONObject) -> None:
    """What a ROW says beyond a ``Row``'s own fields."""
    at = _float(data.get("data_at"))
    polled = data.get("polled") is True
    # the hub says when the provider last said something, not when it last asked: a
    # row read without an answer (paced, kept) has no check time here, not the epoch's
    row.last_polled_at = at if polled else None
    row.last_ok_at = at
    row.hub_stale = data.get("stale") is True
    row.cooldown_until = _float(data.get("cooldown_until"))
    row.busy = _obj(data.get("busy"))
    row.last_action = _obj(data.get("last_action"))


class RemoteStateData:
    """The bridge's view of the shared state (``StateData``'s reading side) from rows."""

    def __init__(self, rows: Mapping[str, RemoteRow]) -> None:
        self._rows = rows

    def names(self) -> list[str]:
        return [
            name
            for name, row in self._rows.items()
            if row.cooldown_until is not None or row.last_action is not None or row.busy
        ]

    def cooldown_until(self, name: str) -> float | None:
        row = self._rows.get(name)
        return row.cooldown_until if row is not None else None

    def records(self, name: str) -> list[ActionRecord]:
        """The row's last action (and the running one), as the hub recorded them."""
        row = self._rows.get(name)
        if row is None:
            return []
        out: list[ActionRecord] = []
        for raw, outcome in ((row.last_action, None), (row.busy, "sent")):
            if raw is None:
                continue
            at = _float(raw.get("at")) or _float(raw.get("since"))
            if at is None:
                continue
            override = raw.get("override")
            out.append(
                ActionRecord(
                    action_id="",
                    action=str(raw.get("action") or ""),
                    at=at,
                    operator=str(raw.get("operator") or ""),
                    host="hub",
                    pid=HUB_PID,
                    outcome=outcome or str(raw.get("outcome") or "sent"),
                    cooldown_until=row.cooldown_until or 0.0,
                    override=override if isinstance(override, str) else None,
                )
            )
        return out


def fleet_config(
    fleet: JSONObject, rows: Mapping[str, RemoteRow], *, read_only: bool
) -> FleetConfig:
    """The ``FleetConfig`` the UI reads (accounts, instances, poll intervals, read-only)."""
    hub = _obj(fleet.get("hub")) or {}
    providers: dict[str, str] = {}
    accounts_raw = hub.get("accounts")
    for item in accounts_raw if isinstance(accounts_raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            providers[str(item["name"])] = str(item.get("provider") or "")
    intervals: dict[str, float] = {}
    raw_rows = fleet.get("rows")
    for item in raw_rows if isinstance(raw_rows, list) else []:
        if isinstance(item, dict):
            interval = _float(item.get("poll_interval"))
            account = item.get("account")
            if interval and isinstance(account, str):
                intervals.setdefault(account, interval)
    for row in rows.values():
        providers.setdefault(row.account.name, row.account.provider)
    accounts = {
        name: AccountConfig(
            name=name, provider=provider, base_url="", poll_interval=intervals.get(name)
        )
        for name, provider in providers.items()
    }
    instances: list[InstanceConfig] = [row.instance for row in rows.values()]
    monitor = MonitorConfig(read_only=read_only, state_dir=Path("/nonexistent/tuiapp-hub-client"))
    return FleetConfig(path=None, monitor=monitor, accounts=accounts, instances=tuple(instances))
