"""Replay of real Evolution API 2.3.6 and WAHA Core 2024.10.8 answers through the adapters.

The recordings in tests/fixtures/upstream/ were made by tests/upstream/record.py against
the lab's real servers (secrets replaced by placeholders, which the adapters here use as
their keys). No node, no server: httpx.MockTransport serves each recorded answer for
its (method, path, query), checks the key sent is the recorded one, and fails on any
call that was not recorded (then the adapters changed what they send: re-record).

The expectations are what upstream means, not what tuiapp happened to say when the
recording was made.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Status
from tuiapp.providers.base import Adapter
from tuiapp.providers.evolution import EvolutionAdapter
from tuiapp.providers.waha import WahaAdapter
from tuiapp.secrets import Redactor, Secret

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
RECORDINGS = sorted(FIXTURES.glob("*.json"))
RERECORD = "re-record with: .venv/bin/python tests/upstream/record.py"
PLACEHOLDERS = ("<API_KEY>", "<WRONG_KEY>", "<INSTANCE_TOKEN>")

Key = tuple[str, str, tuple[tuple[str, str], ...]]


def load(stem: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{stem}.json").read_text())


def _key(method: str, path: str, query: dict[str, str]) -> Key:
    return method.upper(), path, tuple(sorted(query.items()))


@dataclass
class Replay:
    """A MockTransport handler serving one recording."""

    recording: dict[str, Any]
    answers: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    served: dict[Key, int] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)
    wrong_auth: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for exchange in self.recording["exchanges"]:
            request = exchange["request"]
            key = _key(request["method"], request["path"], request["query"])
            self.answers.setdefault(key, []).append(exchange)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.url.query))
        key = _key(request.method, request.url.path, query)
        recorded = self.answers.get(key)
        if not recorded:
            self.misses.append(f"{request.method} {request.url.path} {query or ''}".strip())
            return httpx.Response(599, text="not recorded")
        index = self.served.get(key, 0)
        self.served[key] = index + 1
        exchange = recorded[min(index, len(recorded) - 1)]
        for header, value in exchange["request"]["auth"].items():
            if request.headers.get(header) != value:
                self.wrong_auth.append(f"{request.method} {request.url.path}: {header}")
        answer = exchange["response"]
        if "json" in answer:
            content = json.dumps(answer["json"]).encode() if answer["json"] is not None else b""
        else:
            content = answer["text"].encode()
        return httpx.Response(
            answer["status"], headers=answer["headers"], stream=httpx.ByteStream(content)
        )

    def check(self) -> None:
        assert not self.misses, f"calls the recording does not have: {self.misses}; {RERECORD}"
        assert not self.wrong_auth, f"the recorded key was not sent: {self.wrong_auth}"


@dataclass
class Rig:
    replay: Replay
    client: httpx.AsyncClient
    provider: str

    def adapter(self, key: str | None = None) -> Adapter:
        cls = EvolutionAdapter if self.provider == "evolution" else WahaAdapter
        key = key or self.replay.recording["call"]["key"]
        account = AccountConfig(self.provider, self.provider, "http://upstream.test", Secret(key))
        return cls(account, self.client, timeout=5, redactor=Redactor())


def inst(name: str) -> InstanceConfig:
    return InstanceConfig(name=name, account="rec", id=name)


Check = Callable[[Rig], Awaitable[None]]


# ---- Evolution API 2.3.6 ---------------------------------------------------------------------


async def evo_fetch_close(rig: Rig) -> None:
    obs = await rig.adapter().fetch(inst("rec-one"), None)
    assert (obs.status, obs.raw_status, obs.paired) == (Status.STOPPED, "close", False), obs


async def evo_fetch_stored_open(rig: Rig) -> None:
    obs = await rig.adapter().fetch(inst("rec-open"), None)
    assert obs.status is Status.STOPPED, obs  # stored "open", live "close"


async def evo_list_stored_open(rig: Rig) -> None:
    listed = await rig.adapter().list_instances()
    assert listed.failure is None, listed.failure
    statuses = {
        name: listed.observations[name].status for name in ("rec-one", "rec-open", "rec-close")
    }
    assert statuses == dict.fromkeys(statuses, Status.STOPPED), statuses
    assert all(obs.status is not Status.WORKING for obs in listed.observations.values())


async def evo_restart_close(rig: Rig) -> None:
    response = await rig.adapter().restart(inst("rec-one"), None)
    assert response.http_status == 200  # 200 {"error": true, "message": "[object Object]"}
    assert response.outcome is ActionOutcome.FAILED, response


async def evo_reconnect_close(rig: Rig) -> None:
    response = await rig.adapter().reconnect(inst("rec-close"), None)
    assert response.outcome is ActionOutcome.ACCEPTED, response  # {"count": 0}: no QR offline
    assert response.status is not Status.SCAN_QR_CODE


async def evo_fetch_deleted(rig: Rig) -> None:
    one = rig.adapter()
    obs = await one.fetch(inst("rec-gone"), None)
    assert obs.status is Status.NOT_FOUND, obs
    for response in (
        await one.restart(inst("rec-gone"), None),
        await one.reconnect(inst("rec-gone"), None),
    ):
        assert response.outcome is ActionOutcome.FAILED and response.status is Status.NOT_FOUND


async def evo_wrong_key(rig: Rig) -> None:
    one = rig.adapter()
    assert (await one.fetch(inst("rec-one"), None)).status is Status.AUTH_ERROR
    listed = await one.list_instances()
    assert listed.failure is not None and listed.failure.status is Status.AUTH_ERROR
    response = await one.restart(inst("rec-one"), None)
    assert response.status is Status.AUTH_ERROR, response


async def evo_instance_token(rig: Rig) -> None:
    obs = await rig.adapter().fetch(inst("rec-one"), None)
    assert obs.status is Status.STOPPED, obs


# ---- WAHA Core 2024.10.8 (NOWEB) -------------------------------------------------------------


def _waha_reads(status: Status) -> Check:
    async def check(rig: Rig) -> None:
        one = rig.adapter()
        obs = await one.fetch(inst("default"), None)
        assert obs.status is status, obs
        listed = await one.list_instances()
        assert listed.observations["default"].status is status

    return check


def _waha_action(action: str) -> Check:
    async def check(rig: Rig) -> None:
        response = await getattr(rig.adapter(), action)(inst("default"), None)
        assert response.outcome is ActionOutcome.ACCEPTED, response
        assert response.status is Status.STARTING

    return check


async def waha_start_running(rig: Rig) -> None:
    response = await rig.adapter().reconnect(inst("default"), None)
    assert response.http_status == 422  # "Session 'default' is already started."
    assert response.outcome is ActionOutcome.ACCEPTED, response  # a no-op, not a failure
    assert response.status is not Status.UNREACHABLE


async def waha_deleted(rig: Rig) -> None:
    one = rig.adapter()
    assert (await one.fetch(inst("default"), None)).status is Status.NOT_FOUND
    listed = await one.list_instances()
    assert listed.failure is None and listed.observations == {}
    for response in (
        await one.restart(inst("default"), None),
        await one.reconnect(inst("default"), None),
    ):
        assert response.status is Status.NOT_FOUND, response


async def waha_other_session(rig: Rig) -> None:
    one = rig.adapter()
    assert (await one.fetch(inst("sales"), None)).status is Status.NOT_FOUND
    for response in (
        await one.restart(inst("sales"), None),
        await one.reconnect(inst("sales"), None),
    ):
        assert response.http_status == 422 and response.outcome is not ActionOutcome.ACCEPTED
        assert "default" in response.message, response.message  # Core serves only 'default'


async def waha_wrong_key(rig: Rig) -> None:
    obs = await rig.adapter().fetch(inst("default"), None)
    assert obs.status is Status.STOPPED, obs  # Core 2024.10.8 does not check X-Api-Key


EXPECTATIONS: dict[str, Check] = {
    "evolution-fetch-close": evo_fetch_close,
    "evolution-fetch-stored-open": evo_fetch_stored_open,
    "evolution-list-stored-open": evo_list_stored_open,
    "evolution-restart-close": evo_restart_close,
    "evolution-reconnect-close": evo_reconnect_close,
    "evolution-fetch-deleted": evo_fetch_deleted,
    "evolution-wrong-key": evo_wrong_key,
    "evolution-instance-token": evo_instance_token,
    "waha-stopped": _waha_reads(Status.STOPPED),
    "waha-running": _waha_reads(Status.STARTING),
    "waha-start-stopped": _waha_action("reconnect"),
    "waha-start-running": waha_start_running,
    "waha-restart-running": _waha_action("restart"),
    "waha-restart-stopped": _waha_action("restart"),
    "waha-deleted": waha_deleted,
    "waha-other-session": waha_other_session,
    "waha-wrong-key": waha_wrong_key,
}


def test_every_recording_has_an_expectation_and_no_secret() -> None:
    assert {path.stem for path in RECORDINGS} == set(EXPECTATIONS), RERECORD
    for path in RECORDINGS:
        data = json.loads(path.read_text())
        assert data["server"]["version"] in ("2.3.6", "2024.10.8"), path.name
        for exchange in data["exchanges"]:
            for value in exchange["request"]["auth"].values():
                assert value in PLACEHOLDERS, f"{path.name}: a real key was recorded"


@pytest.mark.parametrize("stem", sorted(EXPECTATIONS))
async def test_replay(stem: str) -> None:
    recording = load(stem)
    replay = Replay(recording)
    async with httpx.AsyncClient(transport=httpx.MockTransport(replay)) as client:
        rig = Rig(replay, client, recording["provider"])
        try:
            await EXPECTATIONS[stem](rig)
        except AssertionError:
            replay.check()  # an unrecorded call explains a failure better than its effect
            raise
    replay.check()
