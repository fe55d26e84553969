"""``RemoteRuntime``: the TUI's backend when it is attached to a hub (``tuiapp --server URL``).

It has what ``tuiapp.engine_api.RuntimeApi`` asks (``poller``, ``engine``, ``state``,
``remote``, ``badge``, ``aclose``): the UI drives it exactly as the local runtime.
``fetch_fleet`` reads the hub's first snapshot (on its own client: the CLI reads it
before the app's loop exists); ``connect`` builds the runtime from it, the fleet config
the app shows (``runtime.fleet``) and the hub's clock (``runtime.clock``) included.
Several hubs at once (``--server A --server B``): tuiapp.hub.remote_multi, one
``RemoteRuntime`` per hub. No Textual here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import httpx

from tuiapp.config_types import FleetConfig
from tuiapp.hub.client import HubClient
from tuiapp.hub.remote_engine import RemoteEngine
from tuiapp.hub.remote_fleet import LinkFacts, fleet_config
from tuiapp.hub.remote_runtime import HubClock, RemotePoller, RemoteState
from tuiapp.hub.wire import JSONObject
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = ["RemoteRuntime", "connect", "fetch_fleet"]


@dataclass(slots=True)
class RemoteRuntime:
    """The hub as a runtime: what ``FleetApp`` drives (see the module docstring)."""

    url: str
    client: HubClient
    poller: RemotePoller
    engine: RemoteEngine
    state: RemoteState
    clock: HubClock
    read_only: bool
    role: str
    remote: ClassVar[bool] = True

    @property
    def viewer(self) -> bool:
        """This hub does not let this token act: a viewer's token, or a read-only hub."""
        return self.role == "viewer" or self.poller.hub.get("read_only") is True

    @property
    def fleet(self) -> FleetConfig:
        return fleet_config({"hub": self.poller.hub}, self.poller.rows, read_only=self.read_only)

    @property
    def hub_name(self) -> str:
        return str(self.poller.hub.get("name") or self.url)

    @property
    def insecure(self) -> bool:
        return self.poller.hub.get("insecure") is True

    def badge(self) -> str:
        """The header's badge: the hub, "insecure", and the link while it is down."""
        text = f"hub {self.hub_name}"
        if self.insecure:
            text += " (INSECURE: plain HTTP)"
        if not self.poller.link.connected:
            text += " · DISCONNECTED"
            retry_at = self.poller.retry_at
            if retry_at is not None:
                text += f", retrying in {max(0.0, retry_at - time.time()):.0f}s"
        return text

    async def aclose(self) -> None:
        self.poller.stop()
        with contextlib.suppress(Exception):
            await self.client.aclose()


async def fetch_fleet(
    url: str, token: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> JSONObject:
    """One ``/fleet`` (waiting up to 60 s for the hub's first sweep), on its own client."""
    async with HubClient(url, token, transport=transport) as client:
        return await client.fleet(wait_ready=60, resume=True)


def connect(
    url: str,
    token: str,
    first: JSONObject,
    *,
    read_only: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] = os.environ,
    local_time: bool = False,
    received_at: float | None = None,
) -> RemoteRuntime:
    """The runtime for the hub at ``url``, from its first snapshot ``first`` (which came
    at local time ``received_at``). Its client makes no connection before the app's loop
    runs ``poller.run()``. ``local_time``: the rows' times on this machine's clock, not
    the hub's (see tuiapp.hub.remote_runtime)."""
    GLOBAL_REDACTOR.add_secret(Secret(token, "env:TUIAPP_TOKEN"))
    client = HubClient(url, token, transport=transport, environ=environ)
    link = LinkFacts()
    clock = HubClock()
    engine = RemoteEngine(client, link, url=client.url)
    operator = first.get("operator")
    role = ""
    if isinstance(operator, dict):
        engine.operator = str(operator.get("name") or "")
        role = str(operator.get("role") or "")
    poller = RemotePoller(
        client, engine, link, clock, first, local_time=local_time, received_at=received_at
    )
    hub_read_only = poller.hub.get("read_only") is True
    return RemoteRuntime(
        url=client.url,
        client=client,
        poller=poller,
        engine=engine,
        state=RemoteState(poller.rows),
        clock=clock,
        read_only=read_only or hub_read_only or role == "viewer",
        role=role,
    )
