"""The hub: one runtime for the whole team, its events as a stream, its plans and runs.

``HubService`` is everything ``tuiapp serve`` does except HTTP (tuiapp.hub.routes):

    start()         recover interrupted actions, read the shared state, start polling
    fleet_body()    the snapshot as JSON, with the id the event stream resumes from
    desk            the operators' engines, plans and runs (tuiapp.hub.desk)
    stop()          no new requests, streams end, polling stops, actions in flight are
                    cancelled and audited ``unknown`` as when the TUI quits

Row events: every read emits ``InstanceObserved``; the hub publishes a ``row`` event
only when something a view shows changed (status, reason, flags, notes, the action
facts of the shared state), not for a re-read that only refreshed the latency and the
data age. A tick re-reads the shared state (other processes on this host may act too)
and catches rows that turned stale or stopped being rate-limited by the clock alone.
Stale is measured against how often the row can really be read under its account's
budgets (``Poller.stale_interval``; the ROW's ``poll_interval``), so a row read as
often as its budget allows does not turn stale and fresh again with every round.
Each published row's JSON is kept for the snapshot (tuiapp.hub.snapshot_body), and each
of its values encoded for the snapshot's columns layout (tuiapp.hub.snapshot_columns).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

import httpx

from tuiapp import __version__
from tuiapp.clock import Clock, Sleep
from tuiapp.config_types import FleetConfig
from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    EngineEvent,
    InstanceObserved,
    SweepFinished,
)
from tuiapp.filelock import StateError
from tuiapp.hub.auth import Identity
from tuiapp.hub.budget_use import budget_scopes, budget_use
from tuiapp.hub.counters import HubCounters, LoopWatch
from tuiapp.hub.desk import ActionDesk
from tuiapp.hub.ring import EventRing
from tuiapp.hub.snapshot_body import (
    SLICE_SECONDS,
    CatchUp,
    RowKey,
    RowTexts,
    SnapshotCache,
    dumps,
    encode_snapshot,
    row_event_body,
    volatile_tail,
)
from tuiapp.hub.snapshot_columns import ColumnStore
from tuiapp.hub.wire import (
    NO_ACTIONS,
    ActionFacts,
    JSONObject,
    JSONValue,
    action_facts,
    event_payload,
    row_json,
    transition_json,
)
from tuiapp.metrics import FleetFacts, HubFacts
from tuiapp.poller import Poller
from tuiapp.row import Row
from tuiapp.runtime import Runtime, build_runtime
from tuiapp.snapshot import InstanceSnapshot, instance_snapshot
from tuiapp.state import StateData

__all__ = ["HubService"]

log = logging.getLogger("tuiapp.hub")

TICK_SECONDS = 1.0
CLOCK_FLAG_TICKS = 3  # every 3 ticks: rows gone stale (3 poll intervals) by the clock alone
CLOCK_FLAG_SLICE = 2000  # rows checked per event-loop turn
LOOP_REPORT_TICKS = 60  # the loop's lag is logged this often (when it lagged at all)
LOOP_LAG_LOGGED = 0.1  # seconds: a window whose worst lag was under this is not logged
SNAPSHOT_REUSE = 1.0  # seconds an encoded snapshot is served again (its event_id matches it)
# a big fleet's older one is served at once (a new one made meanwhile) while a client
# that resumes from it replays at most this share of the event ring (snapshot_body.CatchUp)
SNAPSHOT_CATCH_UP = 0.5
WARM_CHECK = 1.0  # seconds between looks at whether the columns snapshot wants making ...
WARM_DUTY = 10.0  # ... made at most every 10 times what the last took (<= 10 % of the loop)
WARM_FAILED = 30.0  # seconds before the warmer tries again after an encoding failed
LAYOUTS = ("rows", "columns")  # GET /api/v1/fleet?layout=...
STOP_GRACE = 10.0  # seconds the poller gets to end on stop


class HubService:
    """The hub's engine side; every method runs on the hub's event loop."""

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        name: str,
        insecure: bool = False,
        event_buffer: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        state_dir: Path | None = None,
        environ: Mapping[str, str] = os.environ,
        tick: float = TICK_SECONDS,
        freeze_gc: bool = False,
    ) -> None:
        self.fleet = fleet
        self.name = name
        self.insecure = insecure
        self.clock = clock
        self.sleep = sleep
        self.operator = f"hub {name}"
        self.runtime: Runtime = build_runtime(
            fleet,
            operator=self.operator,
            transport=transport,
            clock=clock,
            sleep=sleep,
            state_dir=state_dir,
            environ=environ,
        )
        self.ring = EventRing(event_buffer)
        self.counters = HubCounters()
        self.started_at = clock()
        self.ready = asyncio.Event()
        self.stopping = False
        self.stream_clients = 0
        self._tick_seconds = tick
        self._freeze_gc = freeze_gc
        self.loop_watch = LoopWatch() if freeze_gc else None  # ``tuiapp serve`` only
        self.desk = ActionDesk(
            fleet,
            self.runtime,
            clock=clock,
            sleep=sleep,
            hub_operator=self.operator,
            on_engine=self._on_engine,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._keys: dict[str, RowKey] = {}  # row -> what was published last
        self._clock_flags: dict[str, tuple[bool, bool]] = {}  # row -> (stale, rate limited)
        self._facts: dict[str, ActionFacts] = {}
        self._texts = RowTexts()  # each row's JSON as last published, for the snapshot
        self._columns = ColumnStore()  # ... and each of its values (the columns layout)
        self._state_problem: str | None = None
        self.snapshots = {
            "rows": self._snapshot_cache(self._encode_fleet),
            "columns": self._snapshot_cache(self._encode_columns),
        }
        self._scopes = budget_scopes(self.runtime.adapters, fleet.instances)

    def _snapshot_cache(self, encode: Callable[[], Awaitable[bytes]]) -> SnapshotCache:
        catch_up = CatchUp(
            position=lambda: self.ring.seq,
            behind=self.ring.behind,
            events=int(self.ring.capacity * SNAPSHOT_CATCH_UP),
        )
        return SnapshotCache(encode, self.ready.is_set, SNAPSHOT_REUSE, catch_up=catch_up)

    # ---- life ----------------------------------------------------------------------------

    @property
    def poller(self) -> Poller:
        return self.runtime.poller

    async def start(self) -> None:
        """Recover interrupted actions, read the shared state, start polling and the tick."""
        self.poller.subscribe(self._on_poller)
        self.runtime.engine.subscribe(partial(self._on_engine, self.operator))
        try:
            for report in await self.runtime.engine.arecover_interrupted():
                log.warning(
                    "interrupted action reported unknown",
                    extra={"instance": report.name, "action": report.action},
                )
        except StateError as exc:
            log.error("could not recover interrupted actions", extra={"error": str(exc)})
        self.refresh_state()
        self._tasks.append(asyncio.create_task(self._poll(), name="hub-poller"))
        self._tasks.append(asyncio.create_task(self._tick(), name="hub-tick"))
        self._tasks.append(asyncio.create_task(self._warm(), name="hub-warm"))
        if self.loop_watch is not None:
            self._tasks.append(asyncio.create_task(self.loop_watch.run(), name="hub-loop-watch"))

    async def _poll(self) -> None:
        try:
            await self.poller.run()
        except Exception:
            log.exception("the poller stopped")

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self._tick_seconds)
            ticks += 1
            try:
                self.refresh_state()
                if ticks % CLOCK_FLAG_TICKS == 0:
                    await self._check_clock_flags()
                if self.loop_watch is not None and ticks % LOOP_REPORT_TICKS == 0:
                    figures = self.loop_watch.report()
                    if figures.get("lag_max_ms", 0) >= 1000 * LOOP_LAG_LOGGED:
                        log.info("event loop lag", extra=figures)
            except Exception:
                log.exception("hub tick failed")

    async def _warm(self, sleep: Sleep = asyncio.sleep) -> None:
        """The columns snapshot (what tuiapp's clients ask for) made ahead of requests
        when it is slow to make, so that a client attaching to a big fleet is not the one
        that waits for it (``SnapshotCache.wants_refresh``)."""
        await self.ready.wait()
        cache = self.snapshots["columns"]
        while True:
            started = time.monotonic()
            try:
                await cache.refresh()
            except Exception:  # a request makes it again (and says why); not every second
                log.exception("the snapshot could not be made")
                await sleep(WARM_FAILED)
            await sleep(max(WARM_CHECK, WARM_DUTY * (time.monotonic() - started)))
            while not cache.wants_refresh():
                await sleep(WARM_CHECK)

    async def stop(self) -> None:
        """Stop taking work, end the streams, stop polling, audit actions in flight."""
        if self.stopping:
            return
        self.stopping = True
        self.ring.close()
        self.poller.stop()
        for cache in self.snapshots.values():
            cache.close()
        runs = await self.desk.cancel_runs()
        for task in self._tasks:
            if task.get_name() in ("hub-tick", "hub-warm", "hub-loop-watch"):
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        await self.runtime.aclose()
        log.info("hub stopped", extra={"interrupted_actions": runs})

    # ---- events in -----------------------------------------------------------------------

    def _on_poller(self, event: object) -> None:
        self.counters.receive(event)
        if isinstance(event, InstanceObserved):
            self.row_changed(event.name)
            return
        if isinstance(event, SweepFinished) and not self.ready.is_set():
            self.ready.set()
            log.info("first sweep done", extra={"seconds": round(event.duration, 3)})
            if self._freeze_gc:
                # The rows and everything built for them live as long as the hub: out of
                # every later cyclic collection (a full one over 10,000 rows is a pause of
                # ~200 ms that every stream waits for). Collected first, so that no
                # garbage is frozen with them (tuiapp.hub.serve keeps it so afterwards).
                gc.collect()
                gc.freeze()
        self._publish(event, None)

    def _on_engine(self, operator: str, event: EngineEvent) -> None:
        self.counters.receive(event)
        self._publish(event, operator)
        self.refresh_state()  # the action's record and lock: cooldowns show at once
        if isinstance(event, ActionProgressed):
            self.row_changed(event.name)  # "action running"
        elif isinstance(event, ActionFinished):
            self.row_changed(event.report.name)

    def _publish(self, event: object, operator: str | None) -> None:
        payload = event_payload(event, operator)  # type: ignore[arg-type]
        if payload is None:
            return
        kind, data = payload
        self.ring.publish(kind, {"at": self.clock(), **data})

    # ---- rows ----------------------------------------------------------------------------

    def in_flight(self) -> set[str]:
        return set(self.runtime.engine.in_flight) | self.desk.in_flight()

    def _busy(self, name: str) -> bool:
        return name in self.runtime.engine.in_flight or name in self.desk.in_flight()

    def _row_view(
        self, row: Row, now: float, busy: bool
    ) -> tuple[RowKey, InstanceSnapshot, float, ActionFacts]:
        """What a view shows of ``row`` (the key compared between events) and its parts."""
        interval = self.poller.stale_interval(row)
        snap = instance_snapshot(row, now, interval, busy=busy)
        facts = self._facts.get(row.name, NO_ACTIONS)
        obs = row.obs
        limited = "rate limited" in snap.notes
        key = RowKey(
            snap.status,
            snap.confirmed,
            snap.reason,
            snap.error,
            snap.since,
            snap.since_exact,
            snap.stale,
            snap.flapping,
            snap.problem,
            snap.notes,
            row.rate_limited_until if limited else None,
            facts,
            obs.raw_status if obs is not None else None,
            obs.error_kind if obs is not None else None,
            bool(obs is not None and obs.keep_last),
            limited,
            busy,
        )
        return key, snap, interval, facts

    def _row_json(self, row: Row, now: float, busy: bool) -> JSONObject:
        _key, snap, interval, facts = self._row_view(row, now, busy)
        return row_json(snap, row, interval, facts)

    def row_changed(self, name: str) -> None:
        """Publish ``name``'s row if something a view shows changed since the last one."""
        row = self.poller.rows.get(name)
        if row is None:
            return
        now = self.clock()
        if name not in self._columns.positions:
            self._columns.sync(self.poller.rows)
        self._columns.read(name, row)
        key, snap, interval, facts = self._row_view(row, now, busy=self._busy(name))
        self._clock_flags[name] = (key.stale, key.limited)
        if self._keys.get(name) == key:
            return  # a re-read that changed only the latency or the data age
        self._keys[name] = key
        data = row_json(snap, row, interval, facts)
        stable = self._texts.keep(name, key, data)
        self._columns.keep(name, key, data, key.busy)
        self.ring.publish_json("row", row_event_body(now, stable, data))

    def _snapshot_row(
        self, name: str, row: Row, now: float, busy: set[str], intervals: Mapping[str, float]
    ) -> str:
        """``name``'s ROW at ``now`` as JSON: its last published text with the volatile
        fields written afresh, or (never published) built and encoded in full."""
        interval = intervals.get(row.account.name)
        if interval is None:
            interval = self.poller.stale_interval(row)
        key = self._keys.get(name)
        text = self._texts.get(name, key) if key is not None else None
        if text is not None:
            return text + volatile_tail(row, now, interval, name in busy)
        return dumps(self._row_json(row, now, name in busy))

    def _intervals(self) -> dict[str, float]:
        """Each account's ``Poller.stale_interval`` (the same for all its rows)."""
        return {
            account: self.poller.stale_interval(rows[0])
            for account, rows in self.poller.tracker.account_rows.items()
            if rows
        }

    @staticmethod
    def _flags(row: Row, now: float, interval: float) -> tuple[bool, bool]:
        limited = row.rate_limited_until is not None and row.rate_limited_until > now
        return row.is_stale(now, interval), limited

    async def _check_clock_flags(self) -> None:
        """Rows that turned stale (or stopped being rate limited) with time alone; in
        slices (``CLOCK_FLAG_SLICE`` rows, or ``SLICE_SECONDS``), yielding in between."""
        names = list(self.poller.rows)
        rows = self.poller.rows
        deadline = time.perf_counter() + SLICE_SECONDS
        now = self.clock()
        for index, name in enumerate(names, 1):
            row = rows[name]
            if self._clock_flags.get(name) != self._flags(
                row, now, self.poller.stale_interval(row)
            ):
                self.row_changed(name)
            if index % CLOCK_FLAG_SLICE == 0 or (
                index % 64 == 0 and time.perf_counter() > deadline
            ):
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
                now = self.clock()

    def refresh_state(self) -> None:
        """Re-read the shared state's action facts; publish rows whose facts changed."""
        try:
            data = self.runtime.state.snapshot()
        except StateError as exc:
            if self._state_problem != str(exc):
                log.error("shared state unreadable", extra={"error": str(exc)})
            self._state_problem = str(exc)
            return
        self._state_problem = None
        now = self.clock()
        ttl = self.runtime.engine.lock_ttl
        names = set(data.names()) | set(self._facts)
        changed = []
        for name in names:
            facts = action_facts(data, name, now, ttl)
            if facts != self._facts.get(name, NO_ACTIONS):
                if facts == NO_ACTIONS:
                    self._facts.pop(name, None)
                else:
                    self._facts[name] = facts
                changed.append(name)
        for name in changed:
            self.row_changed(name)

    def state_data(self) -> StateData:
        return self.runtime.state.snapshot()

    # ---- reading ---------------------------------------------------------------------------

    def hub_json(self) -> JSONObject:
        counts: dict[str, int] = {}
        for inst in self.fleet.instances:
            counts[inst.account] = counts.get(inst.account, 0) + 1
        accounts: list[JSONValue] = [
            {"name": name, "provider": acct.provider, "instances": counts.get(name, 0)}
            for name, acct in self.fleet.accounts.items()
        ]
        return {
            "name": self.name,
            "version": __version__,
            "boot_id": self.ring.boot_id,
            "started_at": self.started_at,
            "insecure": self.insecure,
            "read_only": self.fleet.monitor.read_only,
            "accounts": accounts,
        }

    async def fleet_body(
        self, identity: Identity, layout: str = "rows", *, catch_up: bool = False
    ) -> bytes:
        """``GET /api/v1/fleet``'s body for ``identity`` (tuiapp.hub.snapshot_body), its
        rows one object each (``layout`` "rows") or one array per field ("columns");
        ``catch_up``: the client resumes the events from it (an older one will do)."""
        return await self.snapshots[layout].body(_operator(identity), catch_up=catch_up)

    async def fleet_body_gzip(
        self, identity: Identity, layout: str = "rows", *, catch_up: bool = False
    ) -> bytes:
        """The same, gzipped (once per encoding)."""
        return await self.snapshots[layout].gzipped(_operator(identity), catch_up=catch_up)

    def _head(self) -> tuple[JSONObject, float, set[str]]:
        """The snapshot's head, its ``at`` and the rows with an action running; taken on
        the loop (the ``event_id`` before any row is read)."""
        ready = self.ready.is_set()
        now = self.clock()
        tracker = self.poller.tracker
        busy = self.in_flight()
        head: JSONObject = {
            "hub": self.hub_json(),
            "ready": ready,
            "at": now,
            "event_id": self.ring.latest_id,
            "last_sweep_at": tracker.last_sweep_at,
            "network_down": tracker.network_down,
            "outages": [{"account": a, "message": m} for a, m in sorted(tracker.outages.items())],
            "in_flight": sorted(busy),
        }
        return head, now, busy

    async def _encode_fleet(self) -> bytes:
        head, now, busy = self._head()
        rows = self.poller.rows
        intervals = self._intervals()
        body = await asyncio.to_thread(
            encode_snapshot,
            head,
            rows,
            list(rows),
            lambda name, row: self._snapshot_row(name, row, now, busy, intervals),
        )
        return body

    async def _encode_columns(self) -> bytes:
        head, now, busy = self._head()
        head["layout"] = "columns"
        self._columns.sync(self.poller.rows)
        rows = list(self.poller.rows.values())
        return await asyncio.to_thread(
            self._columns.encode,
            head,
            rows,
            now,
            busy,
            self._intervals(),
            lambda row, on: self._row_json(row, now, on),
        )

    def instance_json(self, name: str) -> JSONObject:
        """One row now and its recent transitions (KeyError: no such row)."""
        row = self.poller.rows[name]
        data = self._row_json(row, self.clock(), busy=name in self.in_flight())
        data["transitions"] = [transition_json(t) for t in row.transitions]
        return data

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self.poller.rows]

    # ---- metrics ---------------------------------------------------------------------------

    def metrics_facts(self) -> FleetFacts:
        use = budget_use(self.poller.budgets, self._scopes)
        tracker = self.poller.tracker
        return FleetFacts(
            rows=list(self.poller.rows.values()),
            outages=dict(tracker.outages),
            hub=HubFacts(
                name=self.name,
                insecure=self.insecure,
                now=self.clock(),
                network_down=tracker.network_down,
                last_sweep_at=tracker.last_sweep_at,
                actions=dict(self.counters.actions),
                rate_limited=dict(self.counters.rate_limited),
                poll_errors=dict(self.counters.poll_errors),
                budget_use=use,
                stream_clients=self.stream_clients,
            ),
        )


def _operator(identity: Identity) -> JSONObject:
    return {"name": identity.name, "role": identity.role}
