"""RyzeAPI adapter against httpx.MockTransport: token header, mapping, rate headers, reconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.ryzeapi import ADAPTER, NO_SESSION_ADVICE, RyzeapiAdapter
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, assert_hidden, hang, reply

BASE = "https://ryzeapi.cloud"
ACCOUNT_TOKEN = "ryze-ACCOUNT-token-planted-a1b2"
OWN_TOKEN = "ryze-INSTANCE-token-planted-c3d4"
LISTED_TOKEN = "ryze-LISTED-token-planted-e5f6"
ACCOUNT_SECRET = Secret(ACCOUNT_TOKEN, "env:RYZE")
INSTANCE = InstanceConfig(name="sales", account="rz", id="sales-01")
OWN = InstanceConfig(name="vip", account="rz", id="vip-01", token=Secret(OWN_TOKEN))
ALL_TOKENS = (ACCOUNT_TOKEN, OWN_TOKEN, LISTED_TOKEN)
RATE = {
    "X-RateLimit-Limit": "100",
    "X-RateLimit-Remaining": "87",
    "X-RateLimit-Reset": "1700000030",
}


def item(name: str, state: Any, jid: Any = "5511999990000@s.whatsapp.net", **extra: Any):
    return {"name": name, "connection": {"state": state, "numberJid": jid}, **extra}


def listing(*items: Any, status: int = 200, **headers: str):
    return reply(status, {"success": True, "data": list(items)}, headers={**RATE, **headers})


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[RyzeapiAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler,
            *,
            timeout: float = 2.0,
            account_token: Secret | None = ACCOUNT_SECRET,
            max_rpm: int | None = None,
        ) -> tuple[RyzeapiAdapter, Server]:
            account = AccountConfig("rz", "ryzeapi", BASE, account_token)
            return clients.adapter(
                RyzeapiAdapter, account, handler, timeout=timeout, max_rpm=max_rpm
            )

        yield build


def assert_no_secret(*things: object) -> None:
    assert_hidden(ALL_TOKENS, *things)


def assert_token_header(request: httpx.Request, token: str) -> None:
    assert request.headers["token"] == token
    assert "authorization" not in request.headers


# ---- fetch: the request -----------------------------------------------------------------------


async def test_fetch_lists_one_instance_by_name_with_the_token_header(make) -> None:
    adapter, server = make(listing(item("sales-01", "connected")))
    await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    request = server.only
    assert request.method == "GET"
    assert request.url.path == "/api/instance/list"
    assert dict(request.url.params) == {"instanceName": "sales-01"}
    assert str(request.url).startswith(f"{BASE}/api/instance/list?")
    assert_token_header(request, ACCOUNT_TOKEN)


async def test_fetch_uses_the_instance_token_it_is_given(make) -> None:
    adapter, server = make(listing(item("vip-01", "connected")))
    obs = await adapter.fetch(OWN, OWN.token)
    assert_token_header(server.only, OWN_TOKEN)
    assert obs.status is Status.WORKING


async def test_fetch_without_a_token_sends_nothing(make) -> None:
    adapter, server = make(listing())
    obs = await adapter.fetch(INSTANCE, None)
    assert server.requests == []
    assert obs.status is Status.AUTH_ERROR


# ---- mapping ----------------------------------------------------------------------------------

JID = "5511999990000@s.whatsapp.net"


@pytest.mark.parametrize(
    ("state", "jid", "status", "paired", "reason"),
    [
        ("connected", JID, Status.WORKING, True, None),
        ("connecting", JID, Status.STARTING, True, None),
        ("connecting", None, Status.STARTING, None, None),
        ("disconnected", JID, Status.STOPPED, True, None),
        ("disconnected", None, Status.SCAN_QR_CODE, False, "logged_out"),
        ("disconnected", "", Status.SCAN_QR_CODE, False, "logged_out"),
        ("disconnected", 5511, Status.SCAN_QR_CODE, False, "logged_out"),
        ("loggedout", None, Status.SCAN_QR_CODE, False, "logged_out"),
        ("loggedout", JID, Status.SCAN_QR_CODE, False, "logged_out"),
        ("Connected", JID, Status.WORKING, True, None),
    ],
)
async def test_mapping_table(make, state, jid, status, paired, reason) -> None:
    adapter, _ = make(listing(item("sales-01", state, jid)))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is status
    assert obs.raw_status == state
    assert obs.paired is paired
    assert obs.reason == reason
    assert obs.error is None
    assert obs.observed_at == NOW


async def test_disconnected_without_the_jid_key_needs_a_qr(make) -> None:
    adapter, _ = make(listing({"name": "sales-01", "connection": {"state": "disconnected"}}))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.SCAN_QR_CODE
    assert obs.paired is False


async def test_unknown_state_is_unreachable_with_the_raw_value(make) -> None:
    adapter, _ = make(listing(item("sales-01", "suspended")))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "unknown_status"
    assert obs.raw_status == "suspended"


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "sales-01"},
        {"name": "sales-01", "connection": None},
        {"name": "sales-01", "connection": "connected"},
        {"name": "sales-01", "connection": {"numberJid": JID}},
        {"name": "sales-01", "connection": {"state": 1}},
        {"name": "sales-01", "connection": {"state": ""}},
    ],
    ids=repr,
)
async def test_entry_without_a_state_is_unparseable(make, entry: dict[str, Any]) -> None:
    adapter, _ = make(listing(entry))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "bad_body"


@pytest.mark.parametrize(
    "body",
    [
        {"success": True, "data": [item("sales-01", "connected")]},
        {"success": True, "instances": [item("sales-01", "connected")]},
        [item("sales-01", "connected")],
    ],
    ids=["data", "instances", "bare"],
)
async def test_every_array_key_is_accepted(make, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    assert (await adapter.fetch(INSTANCE, ACCOUNT_SECRET)).status is Status.WORKING


async def test_instance_absent_from_the_answer_is_not_found(make) -> None:
    adapter, _ = make(listing(item("someone-else", "connected")))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.NOT_FOUND
    assert obs.http_status == 200
    assert obs.rate_remaining == 87


async def test_rate_headers_land_in_the_observation(make) -> None:
    adapter, _ = make(listing(item("sales-01", "connected")))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.rate_remaining == 87
    assert obs.rate_reset_at == 1_700_000_030.0


async def test_missing_or_garbled_rate_headers_are_none(make) -> None:
    headers = {"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "soon"}
    adapter, _ = make(reply(200, [item("sales-01", "connected")], headers=headers))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.rate_remaining is None
    assert obs.rate_reset_at is None


# ---- fetch: errors ----------------------------------------------------------------------------


def error(message: str) -> dict[str, Any]:
    return {"success": False, "error": {"message": message}}


async def test_401_is_auth_error(make) -> None:
    adapter, _ = make(reply(401, error("Invalid token"), headers=RATE))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.AUTH_ERROR
    assert "Invalid token" in (obs.error or "")
    assert obs.rate_remaining == 87


async def test_403_is_auth_error_because_the_token_does_not_own_it(make) -> None:
    adapter, _ = make(reply(403, error("Forbidden"), headers=RATE))
    obs = await adapter.fetch(OWN, OWN.token)
    assert obs.status is Status.AUTH_ERROR
    assert obs.reason == "forbidden"
    assert "does not own" in (obs.error or "")


async def test_404_is_not_found(make) -> None:
    adapter, _ = make(reply(404, error("Instance not found")))
    assert (await adapter.fetch(INSTANCE, ACCOUNT_SECRET)).status is Status.NOT_FOUND


async def test_429_waits_until_the_rate_limit_reset(make) -> None:
    headers = {**RATE, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000045"}
    adapter, _ = make(reply(429, error("Too many requests"), headers=headers))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.keep_last
    assert obs.rate_limited
    assert obs.retry_at == 1_700_000_045.0
    assert obs.rate_remaining == 0


async def test_429_prefers_retry_after(make) -> None:
    adapter, _ = make(reply(429, error("slow"), headers={**RATE, "Retry-After": "9"}))
    assert (await adapter.fetch(INSTANCE, ACCOUNT_SECRET)).retry_at == NOW + 9


async def test_500_is_unreachable(make) -> None:
    adapter, _ = make(reply(500, error("database down")))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.error == "HTTP 500: database down"


async def test_2xx_with_success_false_is_a_provider_error(make) -> None:
    adapter, _ = make(reply(200, error("something broke")))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "provider_error"
    assert "something broke" in (obs.error or "")


@pytest.mark.parametrize(
    "raw",
    [b"", b"{oops", b"<html>Bad gateway</html>", b'{"data": {"x": 1}}', b"null", b'"s"'],
    ids=["empty", "invalid", "html", "no-array", "null", "string"],
)
async def test_2xx_without_an_instance_array_is_unparseable(make, raw: bytes) -> None:
    adapter, _ = make(reply(200, raw))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "bad_body"


async def test_html_error_page_is_unreachable(make) -> None:
    adapter, _ = make(reply(502, b"<html><title>502 Bad Gateway</title></html>"))
    obs = await adapter.fetch(INSTANCE, ACCOUNT_SECRET)
    assert obs.reason == "http_502"
    assert "502 Bad Gateway" in (obs.error or "")


# ---- list -------------------------------------------------------------------------------------


async def test_list_uses_the_account_token_and_no_filter(make) -> None:
    adapter, server = make(listing(item("sales-01", "connected")))
    await adapter.list_instances()
    request = server.only
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/api/instance/list"
    assert_token_header(request, ACCOUNT_TOKEN)


async def test_list_keys_rows_by_name_and_drops_instance_tokens(make) -> None:
    body = listing(
        item("sales-01", "connected", token=LISTED_TOKEN),
        item("vip-01", "disconnected", None, token=LISTED_TOKEN + "x"),
        item("", "connected"),
        {"connection": {"state": "connected"}},
        "junk",
        {"name": "odd", "connection": []},
    )
    adapter, _ = make(body)
    result = await adapter.list_instances()
    assert result.failure is None
    assert set(result.observations) == {"sales-01", "vip-01", "odd"}
    assert result.observations["sales-01"].status is Status.WORKING
    assert result.observations["vip-01"].status is Status.SCAN_QR_CODE
    assert result.observations["odd"].reason == "bad_body"
    assert result.names["sales-01"] == "sales-01"
    assert result.observations["sales-01"].rate_remaining == 87
    assert_no_secret(result)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"data": "nope", "token": LISTED_TOKEN}).encode(),
        b'{"data": [{"name": "a", "token": "' + LISTED_TOKEN.encode() + b'", "conn',
    ],
    ids=["wrong-shape", "truncated"],
)
async def test_list_bad_body_fails_without_leaking_tokens(make, raw: bytes) -> None:
    adapter, _ = make(reply(200, raw))
    result = await adapter.list_instances()
    assert result.failure is not None
    assert result.failure.reason == "bad_body"
    assert_no_secret(result)


async def test_list_429_is_a_keep_last_failure(make) -> None:
    adapter, _ = make(reply(429, error("slow"), headers={**RATE, "X-RateLimit-Remaining": "0"}))
    result = await adapter.list_instances()
    assert result.failure is not None
    assert result.failure.keep_last
    assert result.failure.retry_at == 1_700_000_030.0


async def test_list_without_an_account_token_sends_nothing(make) -> None:
    adapter, server = make(listing(), account_token=None)
    result = await adapter.list_instances()
    assert server.requests == []
    assert result.failure is not None
    assert result.failure.status is Status.AUTH_ERROR


async def test_list_timeout_fails_the_call(make) -> None:
    adapter, _ = make(hang, timeout=0.05)
    result = await asyncio.wait_for(adapter.list_instances(), 2.0)
    assert result.failure is not None
    assert result.failure.reason == "timeout"


# ---- reconnect --------------------------------------------------------------------------------

ACCEPTED = {"success": True, "message": "Reconnect initiated", "status": "connecting"}


async def test_reconnect_posts_with_the_token_and_is_accepted(make) -> None:
    adapter, server = make(reply(200, ACCEPTED, headers=RATE))
    response = await adapter.reconnect(OWN, OWN.token)
    request = server.only
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/api/instance/reconnect/vip-01"
    assert_token_header(request, OWN_TOKEN)
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.STARTING
    assert response.message == "Reconnect initiated"
    assert response.extra == {"rate_remaining": "87", "rate_reset_at": "1700000030"}


async def test_reconnect_percent_encodes_the_name(make) -> None:
    adapter, server = make(reply(200, ACCEPTED))
    await adapter.reconnect(InstanceConfig("x", "rz", "a b/c"), ACCOUNT_SECRET)
    assert server.only.url.raw_path == b"/api/instance/reconnect/a%20b%2Fc"


async def test_reconnect_without_a_saved_session_is_refused_with_the_next_step(make) -> None:
    body = error("Instance has no saved session, call /connect first")
    adapter, _ = make(reply(400, body, headers=RATE))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is ActionOutcome.REFUSED
    assert response.reason == "no_saved_session"
    assert response.status is Status.SCAN_QR_CODE
    assert response.http_status == 400
    assert "pair it again with a QR" in response.message
    assert response.extra["rate_remaining"] == "87"


async def test_reconnect_other_400_is_a_plain_failure(make) -> None:
    adapter, _ = make(reply(400, error("instanceName is invalid")))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert response.reason == "http_400"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "reason", "new_status"),
    [
        (401, error("Invalid token"), ActionOutcome.FAILED, "auth_error", Status.AUTH_ERROR),
        (403, error("Forbidden"), ActionOutcome.FAILED, "auth_error", Status.AUTH_ERROR),
        (404, error("Instance not found"), ActionOutcome.FAILED, "not_found", Status.NOT_FOUND),
        (500, error("Failed to reconnect: boom"), ActionOutcome.FAILED, "http_500", None),
        (503, None, ActionOutcome.UNKNOWN, "http_503", None),
    ],
)
async def test_reconnect_errors(make, status, body, outcome, reason, new_status) -> None:
    adapter, _ = make(reply(status, body))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is outcome
    assert response.reason == reason
    assert response.status is new_status


async def test_reconnect_500_keeps_the_provider_reason(make) -> None:
    adapter, _ = make(reply(500, error("Failed to reconnect: websocket closed")))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert "Failed to reconnect: websocket closed" in response.message


async def test_reconnect_403_says_the_token_does_not_own_it(make) -> None:
    adapter, _ = make(reply(403, error("Forbidden")))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert "does not own" in response.message


async def test_reconnect_429_waits_for_the_reset(make) -> None:
    headers = {**RATE, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000050"}
    adapter, _ = make(reply(429, error("Too many requests"), headers=headers))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is ActionOutcome.RATE_LIMITED
    assert response.retry_at == 1_700_000_050.0


async def test_reconnect_2xx_with_success_false_fails(make) -> None:
    adapter, _ = make(reply(200, error("not now")))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert "not now" in response.message


@pytest.mark.parametrize("raw", [b"", b"ok", b"[]", b'{"status": 3}'])
async def test_reconnect_2xx_with_an_odd_body_is_accepted(make, raw: bytes) -> None:
    adapter, _ = make(reply(200, raw))
    response = await adapter.reconnect(INSTANCE, ACCOUNT_SECRET)
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is None
    assert response.message == "reconnect requested"


async def test_reconnect_timeout_is_unknown(make) -> None:
    adapter, _ = make(hang, timeout=0.05)
    response = await asyncio.wait_for(adapter.reconnect(INSTANCE, ACCOUNT_SECRET), 2.0)
    assert response.outcome is ActionOutcome.UNKNOWN
    assert response.extra == {}


async def test_echoed_tokens_are_masked_everywhere(make) -> None:
    echo = error(f"bad token {ACCOUNT_TOKEN} and {OWN_TOKEN}")
    for status in (200, 400, 401, 403, 404, 429, 500):
        adapter, _ = make(reply(status, echo))
        obs = await adapter.fetch(OWN, OWN.token)
        listed = await adapter.list_instances()
        response = await adapter.reconnect(OWN, OWN.token)
        assert_no_secret(obs, listed, response, adapter)
        assert "***" in (obs.error or "")
        assert "***" in response.message


# ---- refusals and budgets ---------------------------------------------------------------------


def _last(status: Status, paired: bool | None) -> Observation:
    return Observation(status=status, observed_at=NOW, paired=paired)


@pytest.mark.parametrize(
    ("last", "refused"),
    [
        (None, False),
        (_last(Status.STOPPED, True), False),
        (_last(Status.UNREACHABLE, None), False),  # unknown state: worst case a clean 400
        (_last(Status.STARTING, None), False),
        (_last(Status.SCAN_QR_CODE, False), True),
        (_last(Status.UNKNOWN, False), True),
    ],
    ids=lambda v: f"{v.status}-{v.paired}" if isinstance(v, Observation) else str(v),
)
async def test_reconnect_refused_when_known_unpaired(make, last, refused: bool) -> None:
    adapter, _ = make(reply(200, {}))
    assert adapter.refusal("reconnect", last) == (NO_SESSION_ADVICE if refused else None)


async def test_restart_is_not_offered(make) -> None:
    adapter, _ = make(reply(200, {}))
    message = adapter.refusal("restart", _last(Status.STOPPED, True))
    assert message is not None and "no restart" in message
    with pytest.raises(NotImplementedError):
        await adapter.restart(INSTANCE, ACCOUNT_SECRET)


async def test_budget_is_one_scope_per_token(make) -> None:
    adapter, _ = make(reply(200, {}))
    account_scope = [BudgetScope("ryzeapi:rz:token", 25)]
    assert adapter.budget_scopes("fetch", INSTANCE) == account_scope
    assert adapter.budget_scopes("reconnect", INSTANCE) == account_scope
    assert adapter.budget_scopes("list", None) == account_scope
    own_scope = [BudgetScope("ryzeapi:rz:vip-01:token", 25)]
    assert adapter.budget_scopes("fetch", OWN) == own_scope
    assert adapter.budget_scopes("reconnect", OWN) == own_scope
    assert adapter.budget_scopes("restart", INSTANCE) == []


async def test_budget_follows_max_rpm(make) -> None:
    adapter, _ = make(reply(200, {}), max_rpm=40)
    assert adapter.budget_scopes("fetch", OWN) == [BudgetScope("ryzeapi:rz:vip-01:token", 40)]
    assert adapter.budget_scopes("list", None) == [BudgetScope("ryzeapi:rz:token", 40)]
    assert ADAPTER is RyzeapiAdapter
