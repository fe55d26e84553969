"""The Evolution adapter against a real Evolution API 2.3.6 server (upstream tier).

Instances are created through the server's own API, without a QR (so no WhatsApp
socket, no CPU): offline they are ``close``, never ``open``. Stored and live status
are made to disagree with psql, as an instance whose socket dropped looks for real.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from upstream_lab import EvolutionLab, wait_until

from tuiapp.config import AccountConfig, InstanceConfig, MonitorConfig
from tuiapp.model import ActionOutcome, Status
from tuiapp.providers.evolution import EvolutionAdapter
from tuiapp.providers.registry import make_client
from tuiapp.secrets import Redactor, Secret

pytestmark = pytest.mark.upstream

AdapterFactory = Callable[..., EvolutionAdapter]


@pytest.fixture
async def adapter(evo: EvolutionLab) -> AsyncIterator[AdapterFactory]:
    client = make_client(MonitorConfig())  # the real aiohttp transport, as tuiapp runs
    redactors: list[Redactor] = []

    def build(key: str | None = None) -> EvolutionAdapter:
        account = AccountConfig(
            "evo", "evolution", evo.server.url, Secret(key or evo.server.key, "env:EVO")
        )
        redactor = Redactor()
        redactors.append(redactor)
        return EvolutionAdapter(account, client, timeout=10, redactor=redactor)

    try:
        yield build
    finally:
        await client.aclose()


def _name(tag: str) -> str:
    return f"t-{tag}-{uuid.uuid4().hex[:8]}"


def _inst(name: str) -> InstanceConfig:
    return InstanceConfig(name=name, account="evo", id=name)


async def test_fetch_reads_the_live_close_state_unpaired(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    name = _name("fetch")
    evo.create(name)
    obs = await adapter().fetch(_inst(name), None)
    assert obs.status is Status.STOPPED, obs
    assert obs.raw_status == "close"
    assert obs.paired is False  # ownerJid null: never paired
    assert obs.http_status == 200


async def test_list_reads_every_instance_created_through_the_api(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    names = [_name("list"), _name("list")]
    for name in names:
        evo.create(name)
    listed = await adapter().list_instances()
    assert listed.failure is None
    for name in names:
        assert listed.observations[name].status is Status.STOPPED
        assert listed.names[name] == name


async def test_stored_open_live_close_is_not_working_in_fetch_or_list(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    """The HIGH fidelity finding: fetchInstances' connectionStatus is stored, not live."""
    names = [_name("stored"), _name("stored")]
    for name in names:
        evo.create(name)
    evo.store_status(names[:1], "open")
    assert evo.stored()[names[0]] == "open"
    assert evo.state(names[0]) == "close"  # the live socket state
    one = adapter()
    assert (await one.fetch(_inst(names[0]), None)).status is not Status.WORKING
    listed = await one.list_instances()
    for name in names:
        obs = listed.observations.get(name)
        assert obs is None or obs.status is not Status.WORKING, (name, obs)
    assert evo.stored()[names[0]] == "open"  # nothing tuiapp did changed the stored value


async def test_restart_of_a_closed_instance_answers_200_error_and_is_a_failure(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    name = _name("restart")
    evo.create(name)
    one = adapter()
    last = await one.fetch(_inst(name), None)
    # tuiapp's guard rail refuses it before sending anything ...
    assert one.refusal("restart", last) is not None
    # ... and if it is sent anyway (a stale verdict), 200 {"error": true} is no success.
    response = await one.restart(_inst(name), None)
    assert response.http_status == 200
    assert response.outcome is ActionOutcome.FAILED, response
    assert evo.state(name) == "close"


async def test_reconnect_of_a_closed_instance_connects_and_never_reads_working(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    """``GET /instance/connect`` on ``close`` opens a socket; offline it gives no QR
    (``{"count": 0}``) and the state alternates close/connecting, never open."""
    name = _name("connect")
    evo.create(name)
    one = adapter()
    try:
        response = await one.reconnect(_inst(name), None)
        assert response.outcome is ActionOutcome.ACCEPTED, response
        assert response.http_status == 200
        seen = set()
        for _ in range(3):
            obs = await one.fetch(_inst(name), None)
            seen.add(obs.status)
        assert seen <= {Status.STOPPED, Status.STARTING}, seen
    finally:
        evo.delete(name)  # a connecting instance keeps retrying until deleted


async def test_logout_of_a_closed_instance_is_refused_and_the_instance_reads_the_same(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    name = _name("logout")
    evo.create(name)
    answer = evo.http.delete(f"/instance/logout/{name}")
    assert answer.status_code == 400
    assert "not connected" in answer.text
    obs = await adapter().fetch(_inst(name), None)
    assert obs.status is Status.STOPPED


async def test_deleted_instance_is_not_found_on_fetch_and_leaves_the_list(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    name = _name("deleted")
    evo.create(name)
    evo.delete(name)  # waits until the server answers 404 for it
    one = adapter()
    obs = await one.fetch(_inst(name), None)
    assert obs.status is Status.NOT_FOUND, obs
    assert obs.http_status == 404
    # "listed ~5 s longer" (README quirks): bounded wait until the list forgets it too.
    wait_until(lambda: name not in evo.stored(), what=f"{name} gone from fetchInstances")
    listed = await one.list_instances()
    assert name not in listed.observations
    response = await one.restart(_inst(name), None)
    assert response.status is Status.NOT_FOUND, response


async def test_wrong_api_key_is_auth_error(evo: EvolutionLab, adapter: AdapterFactory) -> None:
    name = _name("badkey")
    evo.create(name)
    one = adapter(key="wrong-key-0000")
    obs = await one.fetch(_inst(name), None)
    assert obs.status is Status.AUTH_ERROR, obs
    assert obs.http_status == 401
    listed = await one.list_instances()
    assert listed.failure is not None and listed.failure.status is Status.AUTH_ERROR


async def test_list_body_tokens_are_registered_and_never_shown(
    evo: EvolutionLab, adapter: AdapterFactory
) -> None:
    name = _name("secret")
    token = f"PLANTED-adapter-token-{uuid.uuid4().hex}"
    evo.create(name, token=token)
    one = adapter()
    listed = await one.list_instances()
    answer = evo.http.get("/instance/fetchInstances")
    assert token in answer.text  # the real list body does carry it
    assert token not in one.redact(f"x {token} y")
    for obs in listed.observations.values():
        assert token not in repr(obs) and evo.server.key not in repr(obs)
    # The instance's own token is a key too: the server accepts it for that instance.
    own = httpx.get(f"{evo.server.url}/instance/connectionState/{name}", headers={"apikey": token})
    assert own.status_code == 200
    assert (await adapter(key=token).fetch(_inst(name), None)).status is Status.STOPPED
