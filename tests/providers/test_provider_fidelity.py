"""Regression tests for every confirmed mismatch between an adapter and its upstream.

Each test names the mismatch it pins (the fidelity review's item numbers, kept for the
history). The answers are upstream's (Evolution API 2.3.6, WAHA Core 2024.10.8 source;
the providers' docs and SDKs for the hosted ones), served through httpx.MockTransport;
the poller tests drive the real Poller over them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tuiapp.budgets import Budgets
from tuiapp.config import AccountConfig, InstanceConfig, config_from_dict
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.poller import Poller
from tuiapp.providers.base import Adapter
from tuiapp.providers.evolution import EvolutionAdapter
from tuiapp.providers.hypersender import HypersenderAdapter
from tuiapp.providers.ryzeapi import RyzeapiAdapter
from tuiapp.providers.waha import WahaAdapter
from tuiapp.providers.wasend import WasendAdapter
from tuiapp.providers.wawp import WawpAdapter
from tuiapp.secrets import Redactor, Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, assert_hidden, streamed

KEY = "fid-PLANTED-server-key-5c1e"
LISTED = "fid-LISTED-instance-token-9b0d"
OLD_QR = "2@OLDQRPAYLOAD-never-show,xyz"
BASE = "http://127.0.0.1:9"


@pytest.fixture
async def clients() -> AsyncIterator[MockClients]:
    async with MockClients() as made:
        yield made


def account(provider: str, name: str = "acct", **extra: Any) -> AccountConfig:
    return AccountConfig(name, provider, BASE, Secret(KEY, "env:KEY"), **extra)


# ---- Evolution: an upstream 2.3.6 server in miniature -----------------------------------------


def evo_row(name: str, stored: str, *, owner: bool = True, code: int | None = None) -> dict:
    return {
        "id": f"cuid-{name}",
        "name": name,
        "connectionStatus": stored,
        "ownerJid": "5511999999999@s.whatsapp.net" if owner else None,
        "integration": "WHATSAPP-BAILEYS",
        "token": LISTED,
        "disconnectionReasonCode": code,
        "disconnectionAt": "2025-10-01T10:00:00.000Z" if code else None,
        "updatedAt": "2025-10-02T10:00:00.000Z",
    }


class EvoServer:
    """fetchInstances answers stored rows; connectionState the live state; restart/connect
    answer as 2.3.6's controller does (qrCode kept after pairing)."""

    def __init__(self, rows: list[dict], live: dict[str, str], qr: dict | None = None) -> None:
        self.rows = rows
        self.live = live
        self.qr = qr
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        name = path.rsplit("/", 1)[-1]
        if path == "/instance/fetchInstances":
            want = request.url.params.get("instanceName")
            rows = [r for r in self.rows if want is None or r["name"] == want]
            if want and not rows:
                return streamed(404, {"status": 404, "error": "Not Found", "response": {}})
            return streamed(200, rows)
        if path.startswith("/instance/connectionState/"):
            return streamed(200, {"instance": {"instanceName": name, "state": self.live[name]}})
        if path.startswith("/instance/restart/") and request.method == "POST":
            live = self.live[name]
            if live == "close":
                return streamed(200, {"error": True, "message": "[object Object]"})
            if live == "open":
                return streamed(200, {"instance": {"instanceName": name, "state": "open"}})
            return streamed(200, self.qr or {"count": 0})
        if path.startswith("/instance/connect/"):
            return streamed(200, self.qr or {"count": 0})
        return streamed(404, {"status": 404, "error": "Not Found", "response": {"message": []}})


def evo(clients: MockClients, server: Handler, **kw: Any) -> tuple[EvolutionAdapter, Server]:
    return clients.adapter(EvolutionAdapter, account("evolution"), server, **kw)


INST = InstanceConfig(name="shop", account="acct", id="shop")


# Mismatch 1 (HIGH): list/batch status was the stored connectionStatus.
async def test_evolution_list_status_comes_from_the_live_state_not_the_stored_row(
    clients: MockClients,
) -> None:
    server = EvoServer([evo_row("a", "open"), evo_row("b", "open")], {"a": "close", "b": "open"})
    adapter, _ = evo(clients, server)
    listed = await adapter.list_instances()
    assert listed.observations["a"].status is Status.STOPPED  # was WORKING
    assert listed.observations["a"].raw_status == "close"
    assert listed.observations["b"].status is Status.WORKING
    assert server.paths.count("/instance/fetchInstances") == 1
    assert sorted(p for p in server.paths if "connectionState" in p) == [
        "/instance/connectionState/a",
        "/instance/connectionState/b",
    ]
    assert_hidden([KEY, LISTED], listed, *listed.observations.values())


# Mismatch 4: a stored ``connecting`` means a QR was emitted.
@pytest.mark.parametrize("live", ["connecting", "close"])
async def test_evolution_stored_connecting_is_a_qr_waiting_for_a_scan(
    clients: MockClients, live: str
) -> None:
    server = EvoServer([evo_row("a", "connecting", owner=False), evo_row("b", "open")], {})
    server.live = {"a": live, "b": "connecting"}
    adapter, _ = evo(clients, server)
    listed = await adapter.list_instances()
    a, b = listed.observations["a"], listed.observations["b"]
    assert (a.status, a.reason) == (Status.SCAN_QR_CODE, "qr_pending")  # was STARTING
    assert b.status is Status.STARTING  # a paired instance reconnecting
    fetched = await adapter.fetch(InstanceConfig("a", "acct", "a"), None)
    assert (fetched.status, fetched.reason) == (Status.SCAN_QR_CODE, "qr_pending")
    assert adapter.refusal("restart", a) is not None


# Mismatch 3: disconnectionReasonCode is never cleared; it counts only for the current close.
async def test_evolution_an_old_close_code_does_not_label_a_later_transient_close(
    clients: MockClients,
) -> None:
    rows = [evo_row("shop", "open", code=401), evo_row("ban", "open", code=403)]
    server = EvoServer(rows, {"shop": "close", "ban": "close"})
    adapter, _ = evo(clients, server)
    observation = await adapter.fetch(INST, None)
    assert (observation.status, observation.close_code) == (Status.STOPPED, None)  # was QR
    assert adapter.refusal("reconnect", observation) is None  # reconnect can help
    listed = await adapter.list_instances()
    assert listed.observations["ban"].status is Status.STOPPED  # was FAILED banned
    # the same code while the row itself says close is the current close
    server.rows = [evo_row("shop", "close", code=401)]
    assert (await adapter.fetch(INST, None)).status is Status.SCAN_QR_CODE


# Mismatch 2: restart/connect answers carry a stale qrCode after pairing.
@pytest.mark.parametrize(("action", "live"), [("restart", "connecting"), ("reconnect", "close")])
async def test_evolution_a_stale_qr_in_an_action_answer_is_not_qr_needed(
    clients: MockClients, action: str, live: str
) -> None:
    stale = {"pairingCode": None, "code": OLD_QR, "base64": "data:image/png;base64,AAA", "count": 1}
    server = EvoServer([evo_row("shop", "open")], {"shop": live}, qr=stale)
    adapter, _ = evo(clients, server)
    response = await getattr(adapter, action)(INST, None)
    assert response.outcome is ActionOutcome.ACCEPTED, response  # was REFUSED qr_needed
    assert response.status is None  # verification decides
    assert_hidden([OLD_QR, KEY], response)
    # an instance whose row says a QR was emitted (or never paired) really needs a scan
    server.rows = [evo_row("shop", "connecting", owner=False)]
    refused = await getattr(adapter, action)(INST, None)
    assert (refused.outcome, refused.reason) == (ActionOutcome.REFUSED, "qr_needed")


async def test_evolution_restart_of_a_closed_instance_names_the_reason(
    clients: MockClients,
) -> None:
    adapter, _ = evo(clients, EvoServer([evo_row("shop", "open")], {"shop": "close"}))
    response = await adapter.restart(INST, None)
    assert (response.outcome, response.http_status) == (ActionOutcome.FAILED, 200)
    assert "not connected" in response.message and "[object Object]" not in response.message


# Mismatch 6 (v1): owner only while open; restart of a non-open instance is a silent no-op.
async def test_evolution_v1_closed_instance_can_be_reconnected(clients: MockClients) -> None:
    v1 = [{"instance": {"instanceName": "shop", "status": "close", "apikey": LISTED}}]
    adapter, _ = evo(clients, lambda r: streamed(200, v1))
    listed = await adapter.list_instances()
    closed = listed.observations["shop"]
    assert (closed.status, closed.paired) == (Status.STOPPED, None)
    assert adapter.refusal("reconnect", closed) is None  # was refused forever


async def test_evolution_v1_restart_of_a_non_open_instance_is_failed_not_accepted(
    clients: MockClients,
) -> None:
    def v1(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            message = {"message": [f"Cannot POST {request.url.path}"]}
            return streamed(404, {"status": 404, "error": "Not Found", "response": message})
        return streamed(200, {"instance": {"instanceName": "shop", "state": "connecting"}})

    adapter, server = evo(clients, v1)
    response = await adapter.restart(INST, None)
    assert [r.method for r in server.requests] == ["POST", "PUT"]
    assert (response.outcome, response.reason) == (ActionOutcome.FAILED, "v1_not_open")
    assert adapter.refusal("restart", Observation(Status.STARTING, observed_at=NOW)) is not None


# ---- Evolution through the poller: 2 and 50 instances, budget and concurrency -----------------


def evo_fleet(count: int, *, max_rpm: int | None = None, concurrency: int = 50) -> Any:
    acct: dict[str, Any] = {"provider": "evolution", "base_url": BASE, "token": KEY}
    if max_rpm is not None:
        acct["max_rpm"] = max_rpm
    return config_from_dict(
        {
            "monitor": {"concurrency": concurrency, "state_dir": "/nonexistent/tuiapp-test"},
            "accounts": {"evo": acct},
            "instances": [{"name": f"n{k}", "account": "evo", "id": f"i{k}"} for k in range(count)],
        },
        environ={},
    )


async def sweep(count: int, **kw: Any) -> tuple[Poller, EvoServer, Budgets]:
    rows = [evo_row(f"i{k}", "open") for k in range(count)]
    live = {f"i{k}": ("close" if k % 2 == 0 else "open") for k in range(count)}
    server = EvoServer(rows, live)
    fleet = evo_fleet(count, **kw)
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    adapters: dict[str, Adapter] = {
        "evo": EvolutionAdapter(
            fleet.accounts["evo"], client, clock=lambda: NOW, redactor=Redactor()
        )
    }
    budgets = Budgets(lambda: NOW)

    async def no_sleep(seconds: float) -> None:
        return None

    poller = Poller(fleet, adapters, clock=lambda: NOW, sleep=no_sleep, budgets=budgets)
    try:
        await poller.sweep_once()
    finally:
        await client.aclose()
    return poller, server, budgets


@pytest.mark.parametrize("count", [2, 50])
async def test_check_never_shows_working_for_a_live_close_on_a_batched_account(
    count: int,
) -> None:
    poller, server, budgets = await sweep(count)
    assert poller.is_batched("evo")
    for k in range(count):
        expected = Status.STOPPED if k % 2 == 0 else Status.WORKING
        assert poller.rows[f"n{k}"].status is expected, k
    # one interval costs 1 list + N connectionState, all spent on the account's budget
    assert server.paths.count("/instance/fetchInstances") == 1
    assert sum("connectionState" in p for p in server.paths) == count
    assert budgets.used("evolution:evo") == 1 + count


async def test_live_reads_beyond_the_budget_keep_the_last_status_never_the_stored_one() -> None:
    poller, server, budgets = await sweep(50, max_rpm=20)  # polls may use 16 of 20
    read = sum("connectionState" in p for p in server.paths)
    assert read == 15  # 16 for polls: 1 list + 15 live reads
    assert budgets.used("evolution:evo:all") == 16
    statuses = [row.status for row in poller.rows.values()]
    assert statuses.count(Status.UNKNOWN) == 50 - read  # not read: nothing guessed
    assert all(
        r.status is not Status.WORKING or r.obs.raw_status == "open" for r in poller.rows.values()
    )


async def test_live_reads_hold_the_fleet_concurrency_bound() -> None:
    poller, server, _ = await sweep(50, concurrency=1)  # a list slot must not deadlock
    assert sum("connectionState" in p for p in server.paths) == 50
    assert poller.rows["n0"].status is Status.STOPPED


# ---- WAHA (mismatch 7) ------------------------------------------------------------------------


def nest(code: int, message: str) -> dict:
    return {"statusCode": code, "message": message, "error": "Unprocessable Entity"}


async def test_waha_start_of_a_running_session_is_a_no_op_not_a_failure(
    clients: MockClients,
) -> None:
    answer = nest(422, "Session 'default' is already started.")
    adapter, _ = clients.adapter(WahaAdapter, account("waha"), lambda r: streamed(422, answer))
    response = await adapter.reconnect(InstanceConfig("w", "acct", "default"), None)
    assert (response.outcome, response.reason) == (ActionOutcome.ACCEPTED, "already_started")


async def test_waha_core_non_default_session_names_the_limit(clients: MockClients) -> None:
    text = (
        "WAHA Core support only 'default' session. If you want to run more then one "
        "WhatsApp account - please get WAHA PLUS version. Check this out: https://waha.devlike.pro"
    )
    adapter, _ = clients.adapter(
        WahaAdapter, account("waha"), lambda r: streamed(422, nest(422, text))
    )
    inst = InstanceConfig("w", "acct", "sales")
    observation = await adapter.fetch(inst, None)
    assert (observation.status, observation.reason) == (Status.NOT_FOUND, "core_default_only")
    assert "default" in (observation.error or "")  # was UNREACHABLE http_422
    response = await adapter.restart(inst, None)
    assert (response.outcome, response.reason) == (ActionOutcome.FAILED, "core_default_only")


# ---- Hypersender (mismatch 5) -----------------------------------------------------------------


async def test_hypersender_sends_accept_json(clients: MockClients) -> None:
    body = {"instance_id": "x", "connected_at": None, "status": "WORKING"}
    adapter, server = clients.adapter(
        HypersenderAdapter, account("hypersender"), lambda r: streamed(200, body)
    )
    await adapter.fetch(InstanceConfig("h", "acct", "x"), Secret(KEY))
    await adapter.restart(InstanceConfig("h", "acct", "x"), Secret(KEY))
    assert all(r.headers["accept"] == "application/json" for r in server.requests)


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(302, headers={"location": "https://app.hypersender.com/login"}),
        lambda r: streamed(200, b"<!DOCTYPE html><html><title>Login</title></html>"),
    ],
    ids=["redirect", "html-200"],
)
async def test_hypersender_login_answer_to_a_bad_token_is_auth_error(
    clients: MockClients, answer: Callable[[httpx.Request], httpx.Response]
) -> None:
    adapter, _ = clients.adapter(HypersenderAdapter, account("hypersender"), answer)
    inst = InstanceConfig("h", "acct", "x")
    observation = await adapter.fetch(inst, Secret(KEY))
    assert observation.status is Status.AUTH_ERROR  # was UNREACHABLE http_302 / bad_body
    assert (await adapter.list_instances()).failure.status is Status.AUTH_ERROR
    response = await adapter.restart(inst, Secret(KEY))
    assert (response.outcome, response.status) == (ActionOutcome.FAILED, Status.AUTH_ERROR)


# ---- RyzeAPI (mismatch 8 and §10.4) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "reason"),
    [("qr", Status.SCAN_QR_CODE, "qr_pending"), ("banned", Status.FAILED, "banned")],
)
async def test_ryzeapi_qr_and_banned_states(
    clients: MockClients, state: str, status: Status, reason: str
) -> None:
    body = {"success": True, "instances": [{"name": "r", "connection": {"state": state}}]}
    adapter, _ = clients.adapter(RyzeapiAdapter, account("ryzeapi"), lambda r: streamed(200, body))
    observation = await adapter.fetch(InstanceConfig("r", "acct", "r"), Secret(KEY))
    assert (observation.status, observation.reason) == (status, reason)  # was unknown_status


async def test_ryzeapi_own_503_on_reconnect_is_failed_instance_not_connected(
    clients: MockClients,
) -> None:
    body = {"success": False, "error": {"message": "Bridge not configured"}}
    adapter, _ = clients.adapter(RyzeapiAdapter, account("ryzeapi"), lambda r: streamed(503, body))
    response = await adapter.reconnect(InstanceConfig("r", "acct", "r"), Secret(KEY))
    assert (response.outcome, response.reason) == (ActionOutcome.FAILED, "not_connected")
    assert "instance not connected" in response.message  # was UNKNOWN "may have been"


# ---- Wasend (§10.5) ---------------------------------------------------------------------------


async def test_wasend_created_session_is_not_offered_a_restart(clients: MockClients) -> None:
    body = {"uniqueSessionId": "s1", "sessionName": "x", "status": "CREATED"}
    adapter, _ = clients.adapter(WasendAdapter, account("wasend"), lambda r: streamed(200, body))
    observation = await adapter.fetch(InstanceConfig("s", "acct", "s1"), None)
    assert observation.status is Status.STOPPED
    refusal = adapter.refusal("restart", observation)
    assert refusal is not None and "never started" in refusal  # was offered as STOPPED


# ---- Wawp (§10.1, §10.2: unsettled, so both ways work) ----------------------------------------

SESSION = {"name": "x", "status": "WORKING", "me": {"id": "55@c.us"}}
WAWP = InstanceConfig("w", "acct", "ABCDEF123456", token=Secret("wawp-PLANTED-token-4411"))


def wawp_server(*, info: str, creds: str) -> Handler:
    """A Wawp that wants the info read as ``info`` and credentials as ``creds``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/session/info" and request.method != info:
            return streamed(405 if info == "POST" else 404, {"message": "Not Found"})
        in_query = "access_token" in request.url.params
        in_headers = request.headers.get("x-instance-id") is not None
        if (creds == "query" and not in_query) or (creds == "headers" and not in_headers):
            return streamed(400, {"message": "missing parameters"})
        return streamed(200, SESSION)

    return handler


@pytest.mark.parametrize("info", ["GET", "POST"])
@pytest.mark.parametrize("creds", ["query", "headers"])
async def test_wawp_reads_whichever_way_the_api_wants_and_remembers_it(
    clients: MockClients, info: str, creds: str
) -> None:
    wawp_account = AccountConfig("acct", "wawp", BASE)
    adapter, server = clients.adapter(
        WawpAdapter, wawp_account, wawp_server(info=info, creds=creds)
    )
    first = await adapter.fetch(WAWP, WAWP.token)
    assert first.status is Status.WORKING
    assert (adapter.info_method, adapter.credentials) == (info, creds)
    server.requests.clear()
    assert (await adapter.fetch(WAWP, WAWP.token)).status is Status.WORKING
    assert len(server.requests) == 1  # remembered for the account: no more probing
    assert server.requests[0].method == info
    response = await adapter.restart(WAWP, WAWP.token)
    assert response.outcome is ActionOutcome.ACCEPTED
    assert_hidden(["wawp-PLANTED-token-4411"], first, response)


async def test_wawp_a_real_401_stays_auth_error(clients: MockClients) -> None:
    adapter, server = clients.adapter(
        WawpAdapter, AccountConfig("acct", "wawp", BASE), lambda r: streamed(401, {"message": "x"})
    )
    observation = await adapter.fetch(WAWP, WAWP.token)
    assert observation.status is Status.AUTH_ERROR
    assert len(server.requests) == 2 and adapter.credentials == "query"
