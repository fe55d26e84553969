"""A list call's answer holds a whole account: read up to MAX_LIST_BODY, not MAX_BODY.

At 100,000 instances over 8 accounts a list answer is 2-3 MiB; the 1 MiB cap of a single
read cut it, so the list failed and (with ``discover = true``) the account had no rows
at all. Here: a list answer over 1 MiB is read whole for every provider with a list; an
answer over the list cap is cut without being read further and its rows say so; and the
requests a list call sends after its own (Evolution's live reads) keep the 1 MiB cap.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tuiapp.providers.http as http
from tuiapp.config import AccountConfig, config_from_dict
from tuiapp.model import Status
from tuiapp.providers.base import MAX_BODY
from tuiapp.providers.registry import adapter_class
from tuiapp.report import sweep
from tuiapp.secrets import Redactor, Secret
from tuiapp.simulator import SimTransport, create_app
from tuiapp.simulator.fleet_data import SimAccount, SimFleet, SimInstance

from helpers.provider_helpers import NOW, MockClients, reply
from helpers.sim_fixtures import SIM_BASE, FakeClock

LISTING = ("hypersender", "ryzeapi", "wasend", "waha")  # the list answer carries the status
TOKEN = "list-bodies-ACCOUNT-token-77ab"


def sim_fleet(provider: str, count: int) -> SimFleet:
    account = SimAccount("big", provider, TOKEN)
    instances = [
        SimInstance(
            name=f"inst-{i:05d}",
            account="big",
            provider=provider,
            id=f"inst-{i:05d}",
            token=f"sim-inst-token-{i:08d}",
            phone=f"5511{i:09d}",
            state="STOPPED" if i % 10 == 0 else "WORKING",
        )
        for i in range(count)
    ]
    return SimFleet(accounts={"big": account}, instances=instances)


class CountingStream(httpx.AsyncByteStream):
    """``total`` bytes of ``fill`` after ``head``, in 256 KiB chunks, made as pulled."""

    def __init__(self, head: bytes, fill: bytes, total: int) -> None:
        self.head, self.fill, self.total = head, fill, total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 256 * 1024
        sent = 0
        while sent < self.total:
            self.pulled += 1
            chunk = (self.head if sent == 0 else b"") + self.fill * size
            chunk = chunk[: self.total - sent]
            sent += len(chunk)
            yield chunk


@pytest.mark.parametrize("provider", LISTING)
async def test_a_list_answer_over_one_mib_is_read_whole(provider: str) -> None:
    count = 12_000
    app = create_app(sim_fleet(provider, count), FakeClock(), limits=False, latency=False)
    async with httpx.AsyncClient(transport=SimTransport(app)) as client:
        account = AccountConfig("big", provider, f"{SIM_BASE}/{provider}", Secret(TOKEN))
        adapter = adapter_class(provider)(account, client, clock=lambda: NOW, redactor=Redactor())
        answers: list[Any] = []
        original = adapter.send

        async def send(*args: Any, **kwargs: Any) -> Any:
            answers.append(await original(*args, **kwargs))
            return answers[-1]

        adapter.send = send  # type: ignore[method-assign]
        listed = await adapter.list_instances()
    answer = answers[0]
    assert len(answer.body) > MAX_BODY  # the answer really is over the single-read cap
    assert not answer.truncated and answer.limit > MAX_BODY
    assert len(repr(answer)) < 200 and "inst-00001" not in repr(answer)  # never the body
    assert listed.failure is None, listed.failure
    assert len(listed.observations) == count
    stopped = [key for key, obs in listed.observations.items() if obs.status is Status.STOPPED]
    assert len(stopped) == count // 10


async def test_an_answer_over_the_list_cap_is_cut_unread_and_every_row_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "MAX_LIST_BODY", 2 * MAX_BODY)  # the same rule, a smaller cap
    head = json.dumps({"sessions": [{"name": "a", "status": "WORKING"}]}).encode()[:-2]
    stream = CountingStream(head + b', "pad": "', b"x", 8 * MAX_BODY)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    fleet = config_from_dict(
        {
            "monitor": {"state_dir": str(tmp_path / "state"), "timeout": 5},
            "accounts": {
                "waha": {"provider": "waha", "base_url": "http://gw.test", "token": TOKEN}
            },
            "instances": [
                {"name": "a", "account": "waha", "id": "a"},
                {"name": "b", "account": "waha", "id": "b"},
            ],
        },
        environ={},
    )
    result = await sweep(fleet, transport=httpx.MockTransport(handler), clock=lambda: NOW)
    assert stream.pulled <= 2 * MAX_BODY // (256 * 1024) + 1  # not read past the cap...
    assert stream.pulled < 8 * MAX_BODY // (256 * 1024)  # ... nor whole
    assert [row.status for row in result.rows] == [Status.UNREACHABLE, Status.UNREACHABLE]
    for row in result.rows:
        assert row.obs is not None and row.obs.reason == "bad_body"
        assert "cut at" in (row.obs.error or "")
    assert result.exit_code == 2


async def test_the_reads_inside_a_list_call_keep_the_single_read_cap() -> None:
    """Evolution's list: fetchInstances (the list answer), then connectionState per
    instance. A connectionState answer over 1 MiB is cut as any single read is."""
    items = [{"name": "evo-1", "connectionStatus": "open"}]
    huge = b'{"instance": {"instanceName": "evo-1", "state": "open", "pad": "'
    huge += b"x" * (MAX_BODY + 10) + b'"}}'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/instance/fetchInstances"):
            return reply(200, items)(request)
        return httpx.Response(200, stream=httpx.ByteStream(huge))

    async with MockClients() as clients:
        account = AccountConfig("evo", "evolution", "http://gw.test", Secret(TOKEN))
        adapter, server = clients.adapter(adapter_class("evolution"), account, handler)
        listed = await adapter.list_instances()
    assert listed.failure is None
    obs = listed.observations["evo-1"]
    assert obs.status is Status.UNREACHABLE and obs.reason == "bad_body"
    assert "cut at" in (obs.error or "")
    assert len(server.requests) == 2


def test_answer_headers_look_each_name_up_once_and_follow_changes() -> None:
    raw = httpx.Headers([("X-RateLimit-Remaining", "5"), ("Set-Cookie", "a"), ("Set-Cookie", "b")])
    headers = http.AnswerHeaders(raw)
    assert headers.get("x-ratelimit-remaining") == headers["X-RATELIMIT-REMAINING"] == "5"
    assert headers["set-cookie"] == "a, b"  # several values joined, as httpx does
    assert headers.get("retry-after") is None and headers.get("retry-after", "7") == "7"
    assert "retry-after" not in headers
    with pytest.raises(KeyError):
        headers["retry-after"]
    headers["Retry-After"] = "30"
    assert headers.get("retry-after") == "30"
    headers.update({"x-ratelimit-remaining": "4"})
    assert headers["x-ratelimit-remaining"] == "4"
    del headers["x-ratelimit-remaining"]
    assert headers.get("x-ratelimit-remaining") is None


def test_a_list_answers_items_scan_its_headers_once_per_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = http.AnswerHeaders(httpx.Headers({"X-RateLimit-Remaining": "5"}))
    scans = 0
    scan = httpx.Headers.__getitem__

    def counted(self: httpx.Headers, key: str) -> str:
        nonlocal scans
        scans += 1
        return scan(self, key)

    monkeypatch.setattr(httpx.Headers, "__getitem__", counted)
    for _ in range(1_000):  # the items of one list answer
        assert headers.get("x-ratelimit-remaining") == "5"
        assert headers.get("x-ratelimit-reset") is None
    assert scans == 2
