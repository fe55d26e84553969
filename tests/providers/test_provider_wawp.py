"""Wawp adapter against httpx.MockTransport: query credentials, parsing, 403 quota, actions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.wawp import ADAPTER, WawpAdapter
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, assert_hidden, hang, reply

BASE = "https://api.wawp.net"
ACCESS_TOKEN = "wawp/ACCESS+token=planted&9f"  # characters that URL-encoding changes
IID = "A1B2C3D4E5F6"
INSTANCE = InstanceConfig(name="shop", account="ww", id=IID, token=Secret(ACCESS_TOKEN))
SECRET = Secret(ACCESS_TOKEN, "env:WAWP_SHOP")
TOKEN_FORMS = (ACCESS_TOKEN, quote(ACCESS_TOKEN, safe=""), quote(ACCESS_TOKEN))

SESSION = {
    "name": "default",
    "status": "WORKING",
    "config": {"proxy": None, "webhooks": []},
    "me": {"id": "5511999990000@c.us", "pushName": "Shop"},
}


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[WawpAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler,
            *,
            timeout: float = 2.0,
            account_max_rpm: int | None = None,
            max_rpm: int | None = None,
        ) -> tuple[WawpAdapter, Server]:
            account = AccountConfig("ww", "wawp", BASE, None, max_rpm=account_max_rpm)
            return clients.adapter(WawpAdapter, account, handler, timeout=timeout, max_rpm=max_rpm)

        yield build


def assert_no_secret(*things: object) -> None:
    assert_hidden(TOKEN_FORMS, *things)


def assert_credentials(request: httpx.Request, method: str, path: str) -> None:
    """Exact method and path; the two credentials in the query string and nowhere else."""
    assert request.method == method
    assert request.url.scheme == "https"
    assert request.url.host == "api.wawp.net"
    assert request.url.path == path
    assert dict(request.url.params) == {"instance_id": IID, "access_token": ACCESS_TOKEN}
    assert "authorization" not in request.headers
    assert request.content == b""


# ---- fetch ------------------------------------------------------------------------------------


async def test_fetch_gets_session_info_with_credentials_in_the_query(make) -> None:
    adapter, server = make(reply(200, SESSION))
    await adapter.fetch(INSTANCE, SECRET)
    assert_credentials(server.only, "GET", "/v2/session/info")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("STOPPED", Status.STOPPED),
        ("STARTING", Status.STARTING),
        ("SCAN_QR_CODE", Status.SCAN_QR_CODE),
        ("WORKING", Status.WORKING),
        ("FAILED", Status.FAILED),
    ],
)
async def test_fetch_maps_the_waha_vocabulary(make, raw: str, status: Status) -> None:
    adapter, _ = make(reply(200, {**SESSION, "status": raw}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is status
    assert obs.raw_status == raw
    assert obs.observed_at == NOW
    assert obs.http_status == 200
    assert obs.error is None


async def test_fetch_marks_a_session_with_me_as_paired(make) -> None:
    adapter, _ = make(reply(200, SESSION))
    assert (await adapter.fetch(INSTANCE, SECRET)).paired is True


@pytest.mark.parametrize("me", [None, {}, {"id": ""}, {"id": 5}, "5511@c.us"], ids=repr)
async def test_fetch_without_me_says_nothing_about_pairing(make, me: Any) -> None:
    adapter, _ = make(reply(200, {"name": "default", "status": "STOPPED", "me": me}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.STOPPED
    assert obs.paired is None


async def test_fetch_unknown_status_is_unreachable_with_the_raw_value(make) -> None:
    adapter, _ = make(reply(200, {**SESSION, "status": "HIBERNATING"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "unknown_status"
    assert obs.raw_status == "HIBERNATING"


async def test_fetch_pending_is_not_wawp_vocabulary(make) -> None:
    adapter, _ = make(reply(200, {**SESSION, "status": "PENDING"}))
    assert (await adapter.fetch(INSTANCE, SECRET)).reason == "unknown_status"


@pytest.mark.parametrize(
    "body",
    [{"name": "default"}, {"status": None}, {"status": 1}, {"status": {}}, [], "WORKING", None],
    ids=repr,
)
async def test_fetch_body_without_a_usable_status_is_unparseable(make, body: Any) -> None:
    adapter, _ = make(reply(200, json.dumps(body).encode()))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "bad_body"


async def test_fetch_without_an_access_token_sends_nothing(make) -> None:
    adapter, server = make(reply(200, SESSION))
    obs = await adapter.fetch(INSTANCE, None)
    assert server.requests == []
    assert obs.status is Status.AUTH_ERROR
    assert obs.reason == "no_token"


async def test_fetch_400_missing_parameters_is_unreachable(make) -> None:
    adapter, _ = make(reply(400, {"message": "instance_id and access_token are required"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "http_400"
    assert "are required" in (obs.error or "")


async def test_fetch_401_is_auth_error(make) -> None:
    adapter, _ = make(reply(401, {"message": "Invalid access token"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.AUTH_ERROR
    assert "Invalid access token" in (obs.error or "")


async def test_fetch_403_is_quota_and_keeps_the_last_status(make) -> None:
    adapter, _ = make(reply(403, {"message": "Monthly quota exceeded"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.keep_last
    assert obs.reason == "quota"
    assert obs.status is not Status.AUTH_ERROR
    assert obs.http_status == 403
    assert obs.retry_at == NOW + 60
    assert "Monthly quota exceeded" in (obs.error or "")
    assert not obs.rate_limited  # quota, not a 429


async def test_fetch_403_quota_honours_retry_after(make) -> None:
    adapter, _ = make(reply(403, {"message": "Plan limit"}, headers={"Retry-After": "300"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.retry_at == NOW + 300


async def test_fetch_404_is_not_found(make) -> None:
    adapter, _ = make(reply(404, {"message": "Instance not found"}))
    assert (await adapter.fetch(INSTANCE, SECRET)).status is Status.NOT_FOUND


async def test_fetch_500_is_unreachable(make) -> None:
    adapter, _ = make(reply(500, {"message": "Internal error"}))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "http_500"


async def test_fetch_html_error_page_is_unreachable(make) -> None:
    adapter, _ = make(reply(503, b"<html><title>503 Service Unavailable</title></html>"))
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "http_503"
    assert "503 Service Unavailable" in (obs.error or "")


async def test_fetch_connect_error_never_shows_the_token_of_the_url(make) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    adapter, _ = make(refuse)
    obs = await adapter.fetch(INSTANCE, SECRET)
    assert obs.status is Status.UNREACHABLE
    assert obs.reason == "connect_error"
    assert "cannot connect to <url>" in (obs.error or "")
    assert "access_token" not in (obs.error or "")
    assert_no_secret(obs)


async def test_action_connect_error_never_shows_the_url(make) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    adapter, _ = make(refuse)
    response = await adapter.reconnect(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.UNKNOWN
    assert "<url>" in response.message
    assert "instance_id" not in response.message
    assert_no_secret(response)


async def test_echoed_tokens_are_masked_in_every_error(make) -> None:
    echo = {"message": f"bad access_token={quote(ACCESS_TOKEN, safe='')} ({ACCESS_TOKEN})"}
    for status in (200, 400, 401, 403, 404, 429, 500):
        adapter, _ = make(reply(status, echo))
        obs = await adapter.fetch(INSTANCE, SECRET)
        restart = await adapter.restart(INSTANCE, SECRET)
        start = await adapter.reconnect(INSTANCE, SECRET)
        assert_no_secret(obs, restart, start, adapter)
        assert "***" in (obs.error or "")


# ---- actions --------------------------------------------------------------------------------


async def test_restart_posts_with_credentials_and_reads_the_new_status(make) -> None:
    adapter, server = make(reply(200, {**SESSION, "status": "STARTING"}))
    response = await adapter.restart(INSTANCE, SECRET)
    assert_credentials(server.only, "POST", "/v2/session/restart")
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.STARTING
    assert response.http_status == 200
    assert "STARTING" in response.message


async def test_reconnect_posts_session_start(make) -> None:
    adapter, server = make(reply(201, {**SESSION, "status": "STARTING"}))
    response = await adapter.reconnect(INSTANCE, SECRET)
    assert_credentials(server.only, "POST", "/v2/session/start")
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.STARTING


@pytest.mark.parametrize("raw", [b"", b"OK", b'{"status": "WEIRD"}', b"[]"])
async def test_action_2xx_without_a_known_status_is_accepted_without_one(make, raw) -> None:
    adapter, _ = make(reply(200, raw))
    response = await adapter.restart(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is None


@pytest.mark.parametrize("action", ["restart", "reconnect"])
async def test_action_403_is_a_quota_failure(make, action: str) -> None:
    adapter, _ = make(reply(403, {"message": "Quota exceeded"}))
    response = await getattr(adapter, action)(INSTANCE, SECRET)
    assert response.outcome is ActionOutcome.FAILED
    assert response.reason == "quota"
    assert response.status is None  # says nothing about the session
    assert "Quota exceeded" in response.message


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (400, ActionOutcome.FAILED, "http_400"),
        (401, ActionOutcome.FAILED, "auth_error"),
        (404, ActionOutcome.FAILED, "not_found"),
        (429, ActionOutcome.RATE_LIMITED, "rate_limited"),
        (500, ActionOutcome.FAILED, "http_500"),
        (502, ActionOutcome.UNKNOWN, "http_502"),
    ],
)
async def test_action_errors(make, status: int, outcome: ActionOutcome, reason: str) -> None:
    adapter, _ = make(reply(status, {"message": "no"}))
    response = await adapter.reconnect(INSTANCE, SECRET)
    assert response.outcome is outcome
    assert response.reason == reason


async def test_action_timeout_is_unknown(make) -> None:
    adapter, _ = make(hang, timeout=0.05)
    response = await asyncio.wait_for(adapter.restart(INSTANCE, SECRET), 2.0)
    assert response.outcome is ActionOutcome.UNKNOWN


async def test_action_without_an_access_token_sends_nothing(make) -> None:
    adapter, server = make(reply(200, SESSION))
    response = await adapter.restart(INSTANCE, None)
    assert server.requests == []
    assert response.outcome is ActionOutcome.FAILED
    assert response.reason == "no_token"


# ---- refusals and budgets -------------------------------------------------------------------


def _last(status: Status) -> Observation:
    return Observation(status=status, observed_at=NOW)


@pytest.mark.parametrize(
    ("last", "allowed"),
    [
        (None, True),
        (_last(Status.STOPPED), True),
        (_last(Status.UNREACHABLE), True),  # real state unknown; a start is harmless
        (_last(Status.UNKNOWN), True),
        (_last(Status.WORKING), False),
        (_last(Status.STARTING), False),
        (_last(Status.FAILED), False),
        (_last(Status.SCAN_QR_CODE), False),
    ],
    ids=lambda v: getattr(v, "status", v),
)
async def test_reconnect_is_offered_only_when_stopped(make, last, allowed: bool) -> None:
    adapter, _ = make(reply(200, {}))
    message = adapter.refusal("reconnect", last)
    if allowed:
        assert message is None
    else:
        assert message is not None and "only a STOPPED session" in message


@pytest.mark.parametrize("status", list(Status))
async def test_restart_has_no_wawp_specific_refusal(make, status: Status) -> None:
    adapter, _ = make(reply(200, {}))
    assert adapter.refusal("restart", _last(status)) is None
    assert adapter.refusal("logout", _last(status)) is not None


async def test_budget_is_sixty_per_instance_and_there_is_no_list(make) -> None:
    adapter, _ = make(reply(200, {}), max_rpm=60)  # the catalog default, as the registry passes
    scope = [BudgetScope(f"wawp:ww:{IID}", 60)]
    assert adapter.budget_scopes("fetch", INSTANCE) == scope
    assert adapter.budget_scopes("restart", INSTANCE) == scope
    assert adapter.budget_scopes("reconnect", INSTANCE) == scope
    assert adapter.budget_scopes("list", None) == []


async def test_an_operator_cap_adds_an_account_wide_scope(make) -> None:
    adapter, _ = make(reply(200, {}), account_max_rpm=60)
    assert adapter.budget_scopes("fetch", INSTANCE) == [
        BudgetScope(f"wawp:ww:{IID}", 60),
        BudgetScope("wawp:ww:all", 60),
    ]


async def test_wawp_has_no_list_call(make) -> None:
    adapter, server = make(reply(200, []))
    with pytest.raises(NotImplementedError):
        await adapter.list_instances()
    assert server.requests == []
    assert ADAPTER is WawpAdapter
