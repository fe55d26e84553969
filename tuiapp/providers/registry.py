"""Which adapter class serves which provider, and the one shared HTTP client."""

from __future__ import annotations

import importlib
import ssl
import time

import httpx

from tuiapp.catalog import PROVIDER_NAMES
from tuiapp.clock import Clock
from tuiapp.config import AccountConfig, FleetConfig, MonitorConfig
from tuiapp.providers.base import Adapter

__all__ = ["adapter_class", "make_adapter", "make_adapters", "make_client"]

USER_AGENT = "tuiapp (fleet monitor)"


def adapter_class(provider: str) -> type[Adapter]:
    """The adapter class for a provider name from the catalog."""
    if provider not in PROVIDER_NAMES:
        raise KeyError(provider)
    module = importlib.import_module(f"tuiapp.providers.{provider}")
    return module.ADAPTER


def make_adapter(
    account: AccountConfig,
    client: httpx.AsyncClient,
    *,
    timeout: float,
    max_rpm: int | None = None,
    clock: Clock = time.time,
) -> Adapter:
    return adapter_class(account.provider)(
        account, client, timeout=timeout, max_rpm=max_rpm, clock=clock
    )


def make_adapters(
    fleet: FleetConfig, client: httpx.AsyncClient, *, clock: Clock = time.time
) -> dict[str, Adapter]:
    """One adapter per configured account, keyed by account name."""
    return {
        name: make_adapter(
            account,
            client,
            timeout=fleet.monitor.timeout,
            max_rpm=fleet.max_rpm_for(account),
            clock=clock,
        )
        for name, account in fleet.accounts.items()
    }


def _ssl_context(monitor: MonitorConfig) -> ssl.SSLContext:
    """System trust plus the optional extra CA bundle; verification is never turned off."""
    context = ssl.create_default_context()
    if monitor.ca_bundle is not None:
        context.load_verify_locations(cafile=str(monitor.ca_bundle))
    return context


def make_client(
    monitor: MonitorConfig, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The shared client: aiohttp transport for real traffic, explicit timeouts and pool limits.

    ``transport`` lets tests pass httpx.MockTransport or the simulator's in-process
    transport. The pool is as large as ``concurrency``, so the in-flight bound and the
    pool agree. httpx's own timeouts are per phase; the hard deadline is the adapter's.
    """
    limits = httpx.Limits(
        max_connections=monitor.concurrency, max_keepalive_connections=monitor.concurrency
    )
    timeout = httpx.Timeout(monitor.timeout)
    if transport is None:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(verify=_ssl_context(monitor), limits=limits)
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )
