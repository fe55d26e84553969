"""``MultiRuntime``: one TUI attached to several hubs at once (``tuiapp --server A --server B``).

A fleet larger than one hub is split between hubs, each owning its accounts; the TUI
shows them as one grid. It holds one ``RemoteRuntime`` per hub (tuiapp.hub
.remote_attach) and offers what ``tuiapp.engine_api.RuntimeApi`` asks, so the UI drives
it exactly as one hub:

    MultiPoller   the union of the hubs' rows; their events fanned in; ``run()`` follows
                  every hub's stream at once; ``poll_now`` goes to the row's hub;
                  outages are the union, ``network_down`` holds when every hub says so
    MultiEngine   plans and runs routed to the hub owning the targets
                  (tuiapp.hub.remote_multi_engine, which says why a span is refused)
    RemoteState   cooldowns and last actions, from the union of the rows
    badge()       "hubs a, b · b DISCONNECTED, retrying in 4s" (links first, then
                  "b viewer", "a INSECURE: plain HTTP")

Each hub keeps its own link: when one drops, only its rows go stale and only actions on
them are refused. Each keeps its own role: a viewer on one hub is read-only there only.

**Ownership.** Hubs must own disjoint accounts and instances: ``check_disjoint`` refuses
to start when two first snapshots share an account or an instance name (or are the
same hub). An instance (or account) that appears on a second hub later keeps its first
owner; the newcomer's row is left out, logged once.

**Clock.** Each hub has its own offset (``fleet.at`` against this machine's clock when
the snapshot came); each hub's poller moves the times it receives onto this machine's
clock by its own offset (``local_time``), and the app runs on this machine's clock
(``MultiRuntime.clock``). So ages, countdowns and "since" are right even when the hubs'
clocks disagree; the hubs still decide cooldowns on their own clocks.

No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import httpx

from tuiapp.config_types import AccountConfig, FleetConfig, MonitorConfig
from tuiapp.events import (
    EngineEvent,
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    TransitionConfirmed,
)
from tuiapp.hub.client import HubError
from tuiapp.hub.remote_attach import RemoteRuntime, connect, fetch_fleet
from tuiapp.hub.remote_fleet import RemoteRow, hub_interval
from tuiapp.hub.remote_multi_engine import MultiEngine
from tuiapp.hub.remote_runtime import HubClock, RemoteState
from tuiapp.hub.wire import JSONObject
from tuiapp.row import Row

__all__ = [
    "MultiPoller",
    "MultiRuntime",
    "Ownership",
    "attach",
    "check_disjoint",
    "fetch_fleets",
    "hub_labels",
]

log = logging.getLogger("tuiapp.hub.client")


def hub_labels(urls: Sequence[str], firsts: Sequence[JSONObject]) -> list[str]:
    """Each hub's name (its ``--name``); ``name@host:port`` where two share a name."""
    names = [
        str(_obj(first.get("hub")).get("name") or url)
        for url, first in zip(urls, firsts, strict=True)
    ]
    return [
        f"{name}@{urlsplit(url).netloc}" if names.count(name) > 1 else name
        for name, url in zip(names, urls, strict=True)
    ]


def _obj(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _accounts(first: JSONObject) -> list[str]:
    """The accounts a snapshot shows: the hub's own list, then its rows' accounts."""
    out: list[str] = []
    raw = _obj(first.get("hub")).get("accounts")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append(str(item["name"]))
    rows = first.get("rows")
    for item in rows if isinstance(rows, list) else []:
        if isinstance(item, dict) and isinstance(item.get("account"), str):
            out.append(str(item["account"]))
    return list(dict.fromkeys(out))


def _instances(first: JSONObject) -> list[str]:
    rows = first.get("rows")
    items = rows if isinstance(rows, list) else []
    return [str(i["name"]) for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def check_disjoint(urls: Sequence[str], firsts: Sequence[JSONObject]) -> None:
    """HubError (one line) when two hubs are the same one, or share an account or an
    instance name: each account belongs to one hub."""
    labels = hub_labels(urls, firsts)
    for i in range(len(firsts)):
        for j in range(i + 1, len(firsts)):
            a, b = f"{labels[i]} ({urls[i]})", f"{labels[j]} ({urls[j]})"
            boot_i = _obj(firsts[i].get("hub")).get("boot_id")
            if boot_i and boot_i == _obj(firsts[j].get("hub")).get("boot_id"):
                raise HubError(f"--server {urls[i]} and {urls[j]} are the same hub ({labels[i]})")
            for what, shared in (
                ("account", set(_accounts(firsts[i])) & set(_accounts(firsts[j]))),
                ("instance", set(_instances(firsts[i])) & set(_instances(firsts[j]))),
            ):
                if shared:
                    first, *rest = sorted(shared)
                    more = f" (and {len(rest)} more)" if rest else ""
                    raise HubError(
                        f"hubs {a} and {b} both have {what} {first}{more}: each account and"
                        " instance must belong to one hub"
                    )


async def fetch_fleets(
    urls: Sequence[str],
    tokens: Sequence[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[tuple[JSONObject, float]]:
    """Every hub's first ``/fleet``, read at once (each waits up to 60 s for its hub's
    first sweep), with the local time it was asked for (the hub's ``hub_time`` is its
    clock as it took the request); HubError (one line) when one fails."""

    async def one(url: str, token: str) -> tuple[JSONObject, float]:
        asked = time.time()
        return await fetch_fleet(url, token, transport=transport), asked

    answers = await asyncio.gather(
        *(one(url, token) for url, token in zip(urls, tokens, strict=True)), return_exceptions=True
    )
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:
        error = failed[0]
        if not isinstance(error, HubError):
            raise error
        more = f" (and {len(failed) - 1} more hubs failed)" if len(failed) > 1 else ""
        raise HubError(f"{error}{more}")
    return [a for a in answers if not isinstance(a, BaseException)]


@dataclass(slots=True)
class Ownership:
    """Which hub (its index) owns each instance and each account: the first to show it."""

    labels: Sequence[str]
    instances: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    _logged: set[tuple[int, str]] = field(default_factory=set)

    def claim_account(self, index: int, account: str) -> bool:
        owner = self.accounts.setdefault(account, index)
        if owner != index:
            self._left_out(index, f"account {account}", owner)
        return owner == index

    def claim_row(self, index: int, name: str, account: str) -> bool:
        owner = self.instances.get(name)
        if owner is None:
            if not self.claim_account(index, account):
                return False
            self.instances[name] = index
            return True
        if owner != index:
            self._left_out(index, f"instance {name}", owner)
        return owner == index

    def _left_out(self, index: int, what: str, owner: int) -> None:
        if (index, what) in self._logged:
            return
        self._logged.add((index, what))
        log.warning(
            "hub %s shows %s, which belongs to hub %s: its row stays %s's",
            self.labels[index],
            what,
            self.labels[owner],
            self.labels[owner],
        )


class MultiPoller:
    """The union of the hubs' rows and streams (see the module docstring)."""

    def __init__(self, hubs: Sequence[RemoteRuntime], labels: Sequence[str]) -> None:
        self.hubs = list(hubs)
        self.labels = list(labels)
        self.owners = Ownership(self.labels)
        self.rows: dict[str, RemoteRow] = {}
        self.paused = False  # the hubs poll for their teams; nothing pauses them here
        self.changed = asyncio.Event()  # set whenever any hub applied an event
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        for index, hub in enumerate(self.hubs):
            for account in _accounts({"hub": hub.poller.hub}):
                self.owners.claim_account(index, account)
        for index, hub in enumerate(self.hubs):
            for name, row in hub.poller.rows.items():
                if self.owners.claim_row(index, name, row.account.name):
                    self.rows[name] = row
            hub.poller.subscribe(self._receiver(index))
            hub.poller.on_changed = self.changed.set
        self._network_down = False  # what the subscribers were told (each run says it)

    def owner_of(self, name: str) -> int | None:
        return self.owners.instances.get(name)

    # ---- the poller's API, as the UI uses it ------------------------------------------

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None:
        self._subscribers.append(callback)

    def outage_accounts(self) -> set[str]:
        out: set[str] = set()
        for index, hub in enumerate(self.hubs):
            out |= {a for a in hub.poller.outage_accounts() if self.owners.accounts.get(a) == index}
        return out

    @property
    def network_down(self) -> bool:
        """Every hub says every account of its own is out of reach."""
        return all(hub.poller.network_down for hub in self.hubs)

    @property
    def last_sweep_at(self) -> float | None:
        sweeps = [hub.poller.link.sweep_at for hub in self.hubs]
        return max((at for at in sweeps if at is not None), default=None)

    def pause(self) -> None:
        """The hubs poll for their teams: a client does not pause them."""

    def resume(self) -> None:
        """See ``pause``."""

    def stale_interval(self, target: Row) -> float:
        """As its hub says (``RemotePoller.stale_interval``)."""
        return hub_interval(target)

    def poll_now(self, name: str) -> str | None:
        """u: the row read from its hub now; why not, else None."""
        index = self.owner_of(name)
        if index is None:
            return f"{name} is on none of the attached hubs"
        hub = self.hubs[index]
        if not hub.poller.link.connected:
            return f"disconnected from the hub {self.labels[index]}"
        return hub.poller.poll_now(name)

    def stop(self) -> None:
        for hub in self.hubs:
            hub.poller.stop()

    async def run(self) -> None:
        """Follow every hub's stream at once until ``stop`` (each reconnects on its
        own); a hub's poller that fails ends them all, with its error."""
        tasks = [asyncio.create_task(hub.poller.run()) for hub in self.hubs]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- the hubs' events, fanned in --------------------------------------------------

    def _receiver(self, index: int) -> Callable[[EngineEvent], None]:
        return lambda event: self._from_hub(index, event)

    def _from_hub(self, index: int, event: EngineEvent) -> None:
        match event:
            case InstanceObserved(name=name):
                row = self.hubs[index].poller.rows.get(name)
                if row is None or not self.owners.claim_row(index, name, row.account.name):
                    return
                self.rows[name] = row
            case TransitionConfirmed(transition=transition):
                if self.owner_of(transition.instance) != index:
                    return
            case OutageChanged(account=account):
                if not self.owners.claim_account(index, account):
                    return
            case NetworkDown():
                down = self.network_down
                if down == self._network_down:
                    return
                self._network_down = down
                event = NetworkDown(down)
            case _:
                pass
        for callback in list(self._subscribers):
            callback(event)


@dataclass(slots=True)
class MultiRuntime:
    """Several hubs as one runtime: what ``FleetApp`` drives (see the module docstring)."""

    hubs: list[RemoteRuntime]
    labels: list[str]
    poller: MultiPoller
    engine: MultiEngine
    state: RemoteState
    clock: HubClock
    read_only: bool
    remote: ClassVar[bool] = True

    @property
    def fleet(self) -> FleetConfig:
        """The merged config the UI reads: each account from the hub that owns it."""
        accounts: dict[str, AccountConfig] = {}
        owners = self.poller.owners.accounts
        for index, hub in enumerate(self.hubs):
            for name, account in hub.fleet.accounts.items():
                if owners.get(name, index) == index:
                    accounts.setdefault(name, account)
        monitor = MonitorConfig(
            read_only=self.read_only, state_dir=Path("/nonexistent/tuiapp-hub-client")
        )
        instances = tuple(row.instance for row in self.poller.rows.values())
        return FleetConfig(path=None, monitor=monitor, accounts=accounts, instances=instances)

    def badge(self) -> str:
        """ "hubs a, b · b DISCONNECTED, retrying in 4s · a INSECURE: plain HTTP": every
        hub, then the links that are down (first: the polling line is cut at the
        terminal's width), then what limits this token on a hub."""
        parts = ["hubs " + ", ".join(self.labels)]
        down = [i for i, hub in enumerate(self.hubs) if not hub.poller.link.connected]
        if down:
            who = "all" if len(down) == len(self.hubs) else ", ".join(self.labels[i] for i in down)
            text = f"{who} DISCONNECTED"
            retries = [self.hubs[i].poller.retry_at for i in down]
            soonest = min((at for at in retries if at is not None), default=None)
            if soonest is not None:
                when = "retrying" if len(down) == 1 else "next retry"
                text += f", {when} in {max(0.0, soonest - time.time()):.0f}s"
            parts.append(text)
        for label, hub in zip(self.labels, self.hubs, strict=True):
            marks: list[str] = []
            if hub.viewer and not self.read_only:
                marks.append("viewer" if hub.role == "viewer" else "read-only")
            if hub.insecure:
                marks.append("INSECURE: plain HTTP")
            if marks:
                parts.append(f"{label} {', '.join(marks)}")
        return " · ".join(parts)

    async def aclose(self) -> None:
        self.poller.stop()
        for hub in self.hubs:
            with contextlib.suppress(Exception):
                await hub.aclose()


def attach(
    urls: Sequence[str],
    tokens: Sequence[str],
    firsts: Sequence[tuple[JSONObject, float]],
    *,
    read_only: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] = os.environ,
) -> MultiRuntime:
    """The runtime for the hubs at ``urls`` from their first snapshots (``fetch_fleets``);
    HubError (one line) when they are not disjoint (``check_disjoint``). No connection is
    made before the app's loop runs ``poller.run()``."""
    check_disjoint(urls, [first for first, _ in firsts])
    labels = hub_labels(urls, [first for first, _ in firsts])
    hubs = [
        connect(
            url,
            token,
            first,
            read_only=read_only,
            transport=transport,
            environ=environ,
            local_time=True,
            received_at=received_at,
        )
        for url, token, (first, received_at) in zip(urls, tokens, firsts, strict=True)
    ]
    poller = MultiPoller(hubs, labels)
    return MultiRuntime(
        hubs=hubs,
        labels=labels,
        poller=poller,
        engine=MultiEngine(hubs, labels, poller.owner_of),
        state=RemoteState(poller.rows),
        clock=HubClock(),  # this machine's clock: each hub's times are moved onto it
        read_only=read_only or all(hub.viewer for hub in hubs),
    )
