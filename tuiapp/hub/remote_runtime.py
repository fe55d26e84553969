"""The parts of a hub's runtime (``tuiapp --server URL``): the TUI drives them as the local
``tuiapp.runtime.Runtime``'s poller, engine and state, over the hub's API (docs/hub-api.md):

    RemotePoller    the hub's rows (``RemoteRow``), kept current by its event stream;
                    ``run()`` is the stream: connect with ``Last-Event-ID``, apply the
                    events, on ``gap`` re-read ``/fleet``; on a dropped stream mark every
                    row stale and reconnect, backing off 1, 2, 4 … 30 s with jitter
    RemoteEngine    plans and runs through the hub (tuiapp.hub.remote_engine)
    RemoteState     cooldowns and the last action of every row, from the rows
    HubClock        the hub's clock (``fleet.at`` + local time since it came): every
                    time the hub sends is on it, so the app runs on it too. A poller
                    made with ``local_time`` (one of several hubs, tuiapp.hub
                    .remote_multi) instead moves every time the hub sends onto this
                    machine's clock by that offset, so that hubs with different clocks
                    share one app clock

``tuiapp.hub.remote_attach`` puts them together (``RemoteRuntime``, from the hub's
first snapshot). No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping

from tuiapp import gcpause
from tuiapp.events import (
    EngineEvent,
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
    WorkStuck,
)
from tuiapp.hub.client import HubClient, HubError, SseEvent
from tuiapp.hub.remote_engine import RemoteEngine
from tuiapp.hub.remote_fleet import (
    LinkFacts,
    RemoteRow,
    RemoteStateData,
    hub_interval,
    new_row,
    shift_times,
    update_row,
)
from tuiapp.hub.wire import JSONObject, JSONValue
from tuiapp.model import Status, Transition
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = ["HubClock", "RemotePoller", "RemoteState", "backoff"]

log = logging.getLogger("tuiapp.hub.client")

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
_STATUSES = frozenset(s.value for s in Status)


class HubClock:
    """The hub's clock: local time shifted by the offset the last snapshot showed."""

    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self.local = local
        self.offset = 0.0

    def __call__(self) -> float:
        return self.local() + self.offset

    def sync(self, hub_at: float, local_at: float) -> None:
        self.offset = hub_at - local_at


def _float(value: JSONValue | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _position(event_id: str | None) -> tuple[str, int] | None:
    if not event_id:
        return None
    boot, _, seq = event_id.rpartition(".")
    return (boot, int(seq)) if boot and seq.isdigit() else None


def backoff(attempt: int, rng: random.Random) -> float:
    """1, 2, 4 … at most 30 s, each with up to 20 % jitter either way."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)
    return base * rng.uniform(0.8, 1.2)


class RemoteState:
    """``SharedState.snapshot()`` as far as the UI reads it, from the hub's rows."""

    def __init__(self, rows: Mapping[str, RemoteRow]) -> None:
        self._rows = rows

    def snapshot(self) -> RemoteStateData:
        return RemoteStateData(self._rows)


class RemotePoller:
    """The hub's rows and its event stream (see the module docstring)."""

    def __init__(
        self,
        client: HubClient,
        engine: RemoteEngine,
        link: LinkFacts,
        clock: HubClock,
        first: JSONObject,
        *,
        rng: random.Random | None = None,
        local_time: bool = False,
        received_at: float | None = None,
    ) -> None:
        self._client = client
        self._engine = engine
        self.link = link
        self._clock = clock
        self._local_time = local_time  # the hub's times moved onto this machine's clock
        self._rng = rng or random.Random()
        self.rows: dict[str, RemoteRow] = {}
        self.paused = False  # the hub polls for the whole team; nothing pauses it here
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        self._outages: dict[str, str] = {}
        self._network_down = False
        self._last_id: str | None = None
        self._floor: tuple[str, int] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.retry_at: float | None = None  # local time of the next reconnect, while down
        self.error: str | None = None  # why the link is down (one redacted line)
        self.changed = asyncio.Event()  # set on every applied event (tests wait on it)
        self.on_changed: Callable[[], None] | None = None  # told with ``changed`` (remote_multi)
        self.resyncs = 0  # snapshots re-read after a gap
        self.hub: JSONObject = {}
        self._apply_snapshot(first, emit=False, local_at=received_at)

    # ---- the poller's API, as the UI uses it ------------------------------------------

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None:
        self._subscribers.append(callback)

    def outage_accounts(self) -> set[str]:
        return set(self._outages)

    @property
    def network_down(self) -> bool:
        return self._network_down

    @property
    def last_sweep_at(self) -> float | None:
        return self.link.sweep_at

    def pause(self) -> None:
        """The hub polls for the whole team: a client does not pause it."""

    def resume(self) -> None:
        """See ``pause``."""

    def stale_interval(self, target: Row) -> float:
        """What the hub measures the row's data age against: every row it sends carries
        it (``poll_interval``), kept on the row's account (``remote_fleet``)."""
        return hub_interval(target)

    def poll_now(self, name: str) -> str | None:
        """u: the row read from the hub now (``GET /instances/NAME``); why not, else None."""
        if not self.link.connected:
            return "disconnected from the hub"
        if name not in self.rows:
            return f"{name} is not on the hub"

        async def read() -> None:
            with contextlib.suppress(HubError):
                data = await self._client.instance(name)
                self._apply_row(data)

        task = asyncio.get_running_loop().create_task(read())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # ---- the stream -------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the hub until ``stop``: the stream, resumes, gaps, reconnects."""
        self._emit_facts()
        attempt = 0
        while not self._stopping:
            try:
                async for event in self._client.events(self._last_id):
                    if event.event == "hello":
                        attempt = 0
                        self._up()
                        continue
                    if event.event == "shutdown":
                        self.error = "the hub is shutting down"
                        break
                    await self._handle(event)
                    self._changed()
                else:
                    self.error = self.error or "the hub ended the event stream"
            except HubError as exc:
                self.error = str(exc)
            except Exception as exc:  # a hub bug must not end the client
                log.debug("stream failed", exc_info=True)
                self.error = GLOBAL_REDACTOR.redact(f"{type(exc).__name__}: {exc}")
            if self._stopping:
                break
            self._down()
            delay = backoff(attempt, self._rng)
            attempt += 1
            self.retry_at = time.time() + delay
            self._changed()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        self.link.connected = False

    def _up(self) -> None:
        self.link.connected = True
        self.error = None
        self.retry_at = None
        self._all_rows_changed()
        self._changed()

    def _down(self) -> None:
        if self.link.connected:
            self.link.connected = False
            self._all_rows_changed()  # every row stale now, with its age

    def _changed(self) -> None:
        self.changed.set()
        if self.on_changed is not None:
            self.on_changed()

    def _here(self, at: float | None) -> float | None:
        """A time the hub sent, on the clock this poller's rows use (see ``local_time``)."""
        if at is None or not self._local_time:
            return at
        return at - self._clock.offset

    def _now(self) -> float:
        return time.time() if self._local_time else self._clock()

    def _local(self, row: JSONObject) -> JSONObject:
        return shift_times(row, -self._clock.offset) if self._local_time else row

    async def _handle(self, event: SseEvent) -> None:
        data = event.data
        if event.event == "gap":
            await self._resync()
            return
        position = _position(event.id)
        if position is not None:
            floor = self._floor
            if floor is not None and position[0] == floor[0] and position[1] <= floor[1]:
                return  # already in the snapshot
            self._last_id = event.id
        match event.event:
            case "row":
                row = data.get("row")
                if isinstance(row, dict):
                    self._apply_row(row)
            case "transition":
                self._transition(data)
            case "outage":
                account, message = data.get("account"), data.get("message")
                if isinstance(account, str):
                    active = data.get("active") is True
                    self._outage(account, active, str(message or ""))
            case "network":
                self._network(data.get("active") is True)
            case "sweep":
                at = self._here(_float(data.get("finished_at")))
                self.link.sweep_at = at
                polled, limited = data.get("polled"), data.get("rate_limited")
                self._emit(
                    SweepFinished(
                        at=at or self._now(),
                        duration=_float(data.get("duration")) or 0.0,
                        polled=polled if isinstance(polled, int) else 0,
                        rate_limited=limited if isinstance(limited, int) else 0,
                    )
                )
            case "stuck":
                name, what = data.get("name"), data.get("what")
                self._emit(
                    WorkStuck(
                        name=str(name or ""),
                        what=str(what or ""),
                        seconds=_float(data.get("seconds")) or 0.0,
                        active=data.get("active") is not False,
                    )
                )
            case "action_progress" | "action_finished" | "bulk_progress":
                self._engine.on_stream(event.event, data)
            case _:
                pass  # a type this client does not know (the API is additive)

    async def _resync(self) -> None:
        """After a gap: the snapshot again; events up to its id are in it."""
        local = time.time()
        fleet = await self._client.fleet(resume=True)
        self.resyncs += 1
        self._apply_snapshot(fleet, emit=True, local_at=local)

    # ---- applying what the hub says -------------------------------------------------------

    def _emit(self, event: EngineEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def _all_rows_changed(self) -> None:
        for name, row in self.rows.items():
            self._emit(InstanceObserved(name, row))

    def _apply_row(self, data: JSONObject) -> None:
        name = data.get("name")
        if not isinstance(name, str):
            return
        data = self._local(data)
        row = self.rows.get(name)
        try:
            if row is None:
                row = self.rows[name] = new_row(data, self.link)
            else:
                update_row(row, data)
        except ValueError as exc:
            log.debug("bad row from the hub: %s", exc)
            return
        self._emit(InstanceObserved(name, row))

    def _apply_snapshot(
        self, fleet: JSONObject, *, emit: bool, local_at: float | None = None
    ) -> None:
        # the hub's clock as it took the request (its ``at`` may be older: a snapshot
        # made ahead of requests), else the snapshot's time
        at = _float(fleet.get("hub_time"))
        if at is None:
            at = _float(fleet.get("at"))
        if at is not None:
            self._clock.sync(at, local_at if local_at is not None else time.time())
        hub = fleet.get("hub")
        self.hub = hub if isinstance(hub, dict) else {}
        event_id = fleet.get("event_id")
        self._last_id = event_id if isinstance(event_id, str) else None
        self._floor = _position(self._last_id)
        self.link.sweep_at = self._here(_float(fleet.get("last_sweep_at")))
        rows = fleet.get("rows")
        with gcpause.paused():  # up to 100,000 new rows: no collection walks them meanwhile
            for item in rows if isinstance(rows, list) else []:
                if not isinstance(item, dict):
                    continue
                if emit:
                    self._apply_row(item)
                    continue
                name = item.get("name")
                with contextlib.suppress(ValueError):
                    if isinstance(name, str):
                        self.rows[name] = new_row(self._local(item), self.link)
        outages: dict[str, str] = {}
        raw = fleet.get("outages")
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("account"), str):
                outages[str(item["account"])] = str(item.get("message") or "")
        if emit:
            for account in set(self._outages) - set(outages):
                self._outage(account, False, "ended")
            for account, message in outages.items():
                if self._outages.get(account) != message:
                    self._outage(account, True, message)
            self._network(fleet.get("network_down") is True)
        else:
            self._outages = outages
            self._network_down = fleet.get("network_down") is True

    def _emit_facts(self) -> None:
        """The first snapshot's outages and network state, to the subscribers."""
        for account, message in self._outages.items():
            self._emit(OutageChanged(account, True, message))
        if self._network_down:
            self._emit(NetworkDown(True))

    def _outage(self, account: str, active: bool, message: str) -> None:
        if active:
            self._outages[account] = message
        elif self._outages.pop(account, None) is None:
            return
        self._emit(OutageChanged(account, active, message))

    def _network(self, active: bool) -> None:
        if active != self._network_down:
            self._network_down = active
            self._emit(NetworkDown(active))

    def _transition(self, data: JSONObject) -> None:
        name, old, new = data.get("instance"), data.get("old"), data.get("new")
        if not isinstance(name, str) or old not in _STATUSES or new not in _STATUSES:
            return
        reason = data.get("reason")
        transition = Transition(
            instance=name,
            old=Status(str(old)),
            new=Status(str(new)),
            at=self._here(_float(data.get("changed_at")) or _float(data.get("at"))) or self._now(),
            reason=reason if isinstance(reason, str) else None,
        )
        row = self.rows.get(name)
        if row is not None:
            row.add_transition(transition)
        self._emit(TransitionConfirmed(transition))
