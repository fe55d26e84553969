"""The WAHA adapter against a real WAHA Core 2024.10.8 server, engine NOWEB (upstream tier).

Core serves one session, ``default``; each test first puts it in the state it needs
through WAHA's own API. Offline a started session stays STARTING (it retries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from upstream_lab import WahaLab

from tuiapp.config import AccountConfig, InstanceConfig, MonitorConfig
from tuiapp.model import ActionOutcome, Status
from tuiapp.providers.registry import make_client
from tuiapp.providers.waha import WahaAdapter
from tuiapp.secrets import Redactor, Secret

pytestmark = pytest.mark.upstream

DEFAULT = InstanceConfig(name="waha-default", account="waha", id="default")
AdapterFactory = Callable[..., WahaAdapter]


@pytest.fixture
async def adapter(waha: WahaLab) -> AsyncIterator[AdapterFactory]:
    client = make_client(MonitorConfig())

    def build(key: str | None = None) -> WahaAdapter:
        account = AccountConfig(
            "waha", "waha", waha.server.url, Secret(key or waha.server.key, "env:WAHA")
        )
        return WahaAdapter(account, client, timeout=15, redactor=Redactor())

    try:
        yield build
    finally:
        await client.aclose()


async def test_stopped_session_reads_stopped_in_fetch_and_list(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    waha.stopped()
    one = adapter()
    obs = await one.fetch(DEFAULT, None)
    assert obs.status is Status.STOPPED and obs.raw_status == "STOPPED"
    listed = await one.list_instances()  # ?all=true: a stopped session is listed too
    assert listed.failure is None
    assert listed.observations["default"].status is Status.STOPPED


async def test_start_of_a_stopped_session_is_accepted_and_reads_starting(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    waha.stopped()
    one = adapter()
    assert one.refusal("reconnect", await one.fetch(DEFAULT, None)) is None
    response = await one.reconnect(DEFAULT, None)
    assert response.outcome is ActionOutcome.ACCEPTED, response
    assert response.http_status == 201
    assert (await one.fetch(DEFAULT, None)).status is Status.STARTING


async def test_start_on_a_running_session_422_is_a_no_op_not_a_failure(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    """WAHA Core answers 422 "Session 'default' is already started." (fidelity finding 7)."""
    waha.running()
    one = adapter()
    raw = waha.http.post("/api/sessions/default/start")
    assert raw.status_code == 422 and "already started" in raw.text
    response = await one.reconnect(DEFAULT, None)
    assert response.http_status == 422
    assert response.outcome is ActionOutcome.ACCEPTED, response  # nothing to do: a no-op
    assert response.status is not Status.UNREACHABLE
    obs = await one.fetch(DEFAULT, None)
    assert obs.status is Status.STARTING  # still running, not UNREACHABLE


async def test_restart_is_accepted_from_stopped_and_from_running(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    one = adapter()
    for setup in (waha.stopped, waha.running):
        setup()
        response = await one.restart(DEFAULT, None)
        assert response.outcome is ActionOutcome.ACCEPTED, response
        assert response.status is Status.STARTING
        assert (await one.fetch(DEFAULT, None)).status is Status.STARTING


async def test_logout_of_a_running_session_restarts_it_and_it_never_reads_working(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    waha.running()
    answer = waha.http.post("/api/sessions/default/logout")
    assert answer.status_code == 201
    obs = await adapter().fetch(DEFAULT, None)
    assert obs.status is Status.STARTING  # "restart a session if it was not STOPPED"
    assert obs.paired is None  # no ``me``


async def test_deleted_session_is_not_found(waha: WahaLab, adapter: AdapterFactory) -> None:
    waha.stopped()
    waha.delete()
    one = adapter()
    try:
        obs = await one.fetch(DEFAULT, None)
        assert obs.status is Status.NOT_FOUND, obs
        listed = await one.list_instances()
        assert listed.failure is None and "default" not in listed.observations
        response = await one.restart(DEFAULT, None)
        assert response.status is Status.NOT_FOUND, response
    finally:
        waha.stopped()  # brings the session back for the tests after this one


async def test_a_session_name_core_does_not_serve_gets_a_clear_message(
    waha: WahaLab, adapter: AdapterFactory
) -> None:
    """Core serves only ``default``: reads say 404, actions 422 "only 'default'"."""
    waha.stopped()
    other = InstanceConfig(name="waha-other", account="waha", id="sales")
    one = adapter()
    obs = await one.fetch(other, None)
    assert obs.status is Status.NOT_FOUND, obs
    response = await one.reconnect(other, None)
    assert response.http_status == 422
    assert response.outcome is not ActionOutcome.ACCEPTED
    assert "default" in response.message, response.message


async def test_core_does_not_check_the_api_key(waha: WahaLab, adapter: AdapterFactory) -> None:
    """WAHA Core 2024.10.8 does not enforce X-Api-Key (lab README): a wrong key still reads."""
    waha.stopped()
    obs = await adapter(key="wrong-key-0000").fetch(DEFAULT, None)
    assert obs.status is Status.STOPPED
