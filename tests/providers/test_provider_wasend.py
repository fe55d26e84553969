"""Wasend adapter: exact requests, session vs downstream mapping, errors, actions, secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.wasend import ADAPTER, WasendAdapter
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, Handler, MockClients, Server, hang, reply

TOKEN = "wsk-PLANTED-secret-7f3a9c21"
INSTANCE_TOKEN = "wsk-INSTANCE-secret-55e1d0"
BASE = "https://api.wasend.dev"
SESSION_ID = "a1b2c3d4-0000-4000-8000-00000000feed"
INSTANCE = InstanceConfig(name="sales", account="ws", id=SESSION_ID)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[WasendAdapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Handler, *, timeout: float = 5.0, max_rpm: int | None = None
        ) -> tuple[WasendAdapter, Server]:
            account = AccountConfig("ws", "wasend", BASE, Secret(TOKEN, "env:WS_TOKEN"))
            return clients.adapter(
                WasendAdapter, account, handler, timeout=timeout, max_rpm=max_rpm
            )

        yield build


def session(status: str | None = "CONNECTED", downstream: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "session": {
            "uniqueSessionId": SESSION_ID,
            "sessionName": "Sales BR",
            "phoneNumber": "+5511999999999",
            "status": status,
            "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-02T00:00:00Z",
        }
    }
    if downstream is not None:
        item["downstream"] = downstream
    return item


def assert_clean(*texts: Any) -> None:
    for text in texts:
        assert TOKEN not in str(text)
        assert INSTANCE_TOKEN not in str(text)


# ---- requests ----------------------------------------------------------------------------


async def test_fetch_sends_get_session_with_bearer(make: Any) -> None:
    adapter, server = make(reply(200, session()))
    await adapter.fetch(INSTANCE, Secret(TOKEN))
    request = server.only
    assert request.method == "GET"
    assert request.url.raw_path == f"/sessions/{SESSION_ID}".encode()
    assert request.url.host == "api.wasend.dev"
    assert request.url.query == b""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_fetch_uses_the_instance_secret_and_encodes_the_id(make: Any) -> None:
    adapter, server = make(reply(200, session()))
    odd = InstanceConfig(name="odd", account="ws", id="a b/c")
    await adapter.fetch(odd, Secret(INSTANCE_TOKEN))
    assert server.only.url.raw_path == b"/sessions/a%20b%2Fc"
    assert server.only.headers["authorization"] == f"Bearer {INSTANCE_TOKEN}"


async def test_fetch_without_any_secret_falls_back_to_the_account_token(make: Any) -> None:
    adapter, server = make(reply(200, session()))
    await adapter.fetch(INSTANCE, None)
    assert server.only.headers["authorization"] == f"Bearer {TOKEN}"


async def test_list_sends_get_sessions_with_the_account_key(make: Any) -> None:
    adapter, server = make(reply(200, {"sessions": []}))
    await adapter.list_instances()
    request = server.only
    assert (request.method, request.url.raw_path) == ("GET", b"/sessions")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_restart_sends_post_restart(make: Any) -> None:
    adapter, server = make(reply(200, session("STARTING")))
    await adapter.restart(INSTANCE, Secret(TOKEN))
    request = server.only
    assert (request.method, request.url.raw_path) == (
        "POST",
        f"/sessions/{SESSION_ID}/restart".encode(),
    )
    assert request.url.query == b""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_module_exports_the_adapter() -> None:
    assert ADAPTER is WasendAdapter
    assert WasendAdapter.info.name == "wasend"


# ---- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CONNECTED", Status.WORKING),
        ("WORKING", Status.WORKING),
        ("CREATED", Status.STOPPED),
        ("STOPPED", Status.STOPPED),
        ("STARTING", Status.STARTING),
        ("ERROR", Status.FAILED),
        ("FAILED", Status.FAILED),
        ("QR_REQUIRED", Status.SCAN_QR_CODE),
        ("SCAN_QR_CODE", Status.SCAN_QR_CODE),
        ("connected", Status.WORKING),
    ],
)
async def test_session_status_mapping(make: Any, raw: str, expected: Status) -> None:
    adapter, _ = make(reply(200, session(raw)))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is expected
    assert observation.raw_status == raw
    assert observation.observed_at == NOW
    assert observation.http_status == 200


@pytest.mark.parametrize(
    ("own", "engine", "expected", "raw"),
    [
        ("CONNECTED", "SCAN_QR_CODE", Status.SCAN_QR_CODE, "SCAN_QR_CODE (session CONNECTED)"),
        ("STARTING", "WORKING", Status.WORKING, "WORKING (session STARTING)"),
        ("CONNECTED", "FAILED", Status.FAILED, "FAILED (session CONNECTED)"),
        ("ERROR", "STOPPED", Status.STOPPED, "STOPPED (session ERROR)"),
        ("WORKING", "WORKING", Status.WORKING, "WORKING"),
        (None, "STARTING", Status.STARTING, "STARTING"),
    ],
)
async def test_downstream_status_wins_over_session_status(
    make: Any, own: str | None, engine: str, expected: Status, raw: str
) -> None:
    adapter, _ = make(reply(200, session(own, {"status": engine})))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is expected
    assert observation.raw_status == raw


@pytest.mark.parametrize("downstream", [None, {}, {"status": None}, {"status": ""}, []])
async def test_missing_downstream_status_falls_back_to_session_status(
    make: Any, downstream: Any
) -> None:
    body = session("QR_REQUIRED")
    body["downstream"] = downstream
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.SCAN_QR_CODE
    assert observation.raw_status == "QR_REQUIRED"


async def test_unknown_downstream_status_is_unknown_even_when_session_looks_fine(make: Any) -> None:
    adapter, _ = make(reply(200, session("CONNECTED", {"status": "BANNED_MAYBE"})))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "unknown_status"
    assert observation.raw_status == "BANNED_MAYBE (session CONNECTED)"


async def test_unknown_session_status_keeps_the_raw_value(make: Any) -> None:
    adapter, _ = make(reply(200, session("HIBERNATING")))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "unknown_status"
    assert observation.raw_status == "HIBERNATING"
    assert "HIBERNATING" in (observation.error or "")


@pytest.mark.parametrize(
    "body",
    [
        session("CONNECTED")["session"],  # bare session object
        session("CONNECTED"),  # wrapped like a list item
        {"success": True, "data": session("CONNECTED")["session"]},  # an envelope
        {"success": True, "data": session("CONNECTED")},
    ],
)
async def test_fetch_accepts_the_session_bare_or_wrapped(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.WORKING


async def test_bare_session_with_its_own_downstream(make: Any) -> None:
    body = {**session("CONNECTED")["session"], "downstream": {"status": "SCAN_QR_CODE"}}
    adapter, _ = make(reply(200, body))
    assert (await adapter.fetch(INSTANCE, Secret(TOKEN))).status is Status.SCAN_QR_CODE


@pytest.mark.parametrize(
    "body",
    [
        [],
        "CONNECTED",
        42,
        None,
        {"session": "CONNECTED"},
        {"session": {"status": 5}},
        {"session": {"status": ["CONNECTED"]}, "downstream": "WORKING"},
        {"data": []},
        {"success": False, "error": "Session not found"},
    ],
)
async def test_surprising_shapes_are_classified_not_raised(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.reason == "bad_body"
    assert observation.error


# ---- HTTP and transport errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body", "status", "reason"),
    [
        (401, {"success": False, "error": "Invalid API key"}, Status.AUTH_ERROR, "unauthorized"),
        (403, {"success": False, "error": "Forbidden"}, Status.AUTH_ERROR, "forbidden"),
        (404, {"success": False, "error": "Session not found"}, Status.NOT_FOUND, "not_found"),
        (500, {"success": False, "error": "Internal error"}, Status.UNREACHABLE, "http_500"),
        (503, "<html><body>Service Unavailable</body></html>", Status.UNREACHABLE, "http_503"),
    ],
)
async def test_http_errors(make: Any, code: int, body: Any, status: Status, reason: str) -> None:
    adapter, _ = make(reply(code, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is status
    assert observation.reason == reason
    assert observation.http_status == code
    assert observation.error


async def test_error_body_message_is_kept(make: Any) -> None:
    adapter, _ = make(reply(404, {"success": False, "error": "Session not found"}))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert "Session not found" in (observation.error or "")


# ---- list ----------------------------------------------------------------------------------


async def test_list_parses_every_session_keyed_by_unique_session_id(make: Any) -> None:
    body = {
        "sessions": [
            session("CONNECTED"),
            {
                "session": {
                    "uniqueSessionId": "s-2",
                    "sessionName": "Support",
                    "status": "CONNECTED",
                },
                "downstream": {"status": "SCAN_QR_CODE"},
            },
            {"session": {"uniqueSessionId": "s-3", "status": "CREATED"}},
            {"session": {"uniqueSessionId": "s-4", "status": "WHATEVER"}},
            {"session": {"uniqueSessionId": "s-5"}},
            {"session": {"sessionName": "no id", "status": "CONNECTED"}},
            "junk",
            {"session": {"uniqueSessionId": ["x"], "status": "CONNECTED"}},
        ]
    }
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is None
    assert set(listed.observations) == {SESSION_ID, "s-2", "s-3", "s-4", "s-5"}
    assert listed.observations[SESSION_ID].status is Status.WORKING
    assert listed.observations["s-2"].status is Status.SCAN_QR_CODE
    assert listed.observations["s-3"].status is Status.STOPPED
    assert listed.observations["s-4"].reason == "unknown_status"
    assert listed.observations["s-5"].reason == "bad_body"
    assert listed.names == {
        SESSION_ID: "Sales BR",
        "s-2": "Support",
        "s-3": "s-3",
        "s-4": "s-4",
        "s-5": "s-5",
    }


async def test_list_accepts_a_bare_array(make: Any) -> None:
    adapter, _ = make(reply(200, [session("STOPPED")]))
    listed = await adapter.list_instances()
    assert listed.observations[SESSION_ID].status is Status.STOPPED


@pytest.mark.parametrize("body", [{"sessions": None}, {"data": []}, "x", 3, {"sessions": {}}])
async def test_list_with_no_array_is_a_failure(make: Any, body: Any) -> None:
    adapter, _ = make(reply(200, body))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.status is Status.UNREACHABLE
    assert listed.observations == {}


async def test_list_429_fails_with_keep_last(make: Any) -> None:
    adapter, _ = make(reply(429, {"error": "slow down"}, headers={"Retry-After": "12"}))
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.keep_last
    assert listed.failure.retry_at == NOW + 12


async def test_list_timeout_fails_unreachable(make: Any) -> None:
    adapter, _ = make(hang, timeout=0.05)
    listed = await adapter.list_instances()
    assert listed.failure is not None
    assert listed.failure.reason == "timeout"


# ---- restart -------------------------------------------------------------------------------


async def test_restart_accepted_reports_the_new_status(make: Any) -> None:
    adapter, _ = make(reply(200, session("STARTING")))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.STARTING
    assert response.http_status == 200


async def test_restart_accepted_with_a_bare_session_or_no_status(make: Any) -> None:
    adapter, _ = make(reply(201, {"uniqueSessionId": SESSION_ID, "status": "QR_REQUIRED"}))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is Status.SCAN_QR_CODE
    adapter, _ = make(reply(200, b""))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.ACCEPTED
    assert response.status is None


async def test_restart_409_is_a_named_refusal(make: Any) -> None:
    adapter, _ = make(reply(409, {"success": False, "error": "Session is already running"}))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.REFUSED
    assert response.reason == "conflict_running"
    assert response.http_status == 409
    assert "already running" in response.message


@pytest.mark.parametrize(
    ("code", "outcome", "reason", "status"),
    [
        (401, ActionOutcome.FAILED, "auth_error", Status.AUTH_ERROR),
        (404, ActionOutcome.FAILED, "not_found", Status.NOT_FOUND),
        (429, ActionOutcome.RATE_LIMITED, "rate_limited", None),
        (500, ActionOutcome.FAILED, "http_500", None),
        (502, ActionOutcome.UNKNOWN, "http_502", None),
    ],
)
async def test_restart_errors(
    make: Any, code: int, outcome: ActionOutcome, reason: str, status: Status | None
) -> None:
    adapter, _ = make(reply(code, {"success": False, "error": "nope"}))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is outcome
    assert response.reason == reason
    assert response.status is status


async def test_restart_2xx_with_success_false_failed(make: Any) -> None:
    adapter, _ = make(reply(200, {"success": False, "error": "engine unavailable"}))
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.FAILED
    assert "engine unavailable" in response.message


async def test_restart_timeout_is_unknown_and_sent_once(make: Any) -> None:
    adapter, server = make(hang, timeout=0.05)
    response = await adapter.restart(INSTANCE, Secret(TOKEN))
    assert response.outcome is ActionOutcome.UNKNOWN
    assert len(server.requests) == 1


# ---- refusal and budgets -------------------------------------------------------------------


def last(status: Status, **fields: Any) -> Observation:
    return Observation(status=status, observed_at=NOW, **fields)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.STOPPED, True),
        (Status.FAILED, True),
        (Status.UNREACHABLE, True),
        (Status.UNKNOWN, True),
        (Status.AUTH_ERROR, True),  # the engine's general rule, not this adapter's
        (Status.NOT_FOUND, True),
        (Status.WORKING, False),
        (Status.STARTING, False),
        (Status.PENDING, False),
        (Status.SCAN_QR_CODE, False),
    ],
)
async def test_restart_refusal_table(make: Any, status: Status, allowed: bool) -> None:
    adapter, _ = make(reply())
    reason = adapter.refusal("restart", last(status))
    assert (reason is None) is allowed
    if status in (Status.WORKING, Status.STARTING):
        assert reason is not None and "409" in reason and "STOPPED or FAILED" in reason


async def test_restart_allowed_before_any_read_and_reconnect_never(make: Any) -> None:
    adapter, _ = make(reply())
    assert adapter.refusal("restart", None) is None
    assert adapter.refusal("reconnect", last(Status.STOPPED)) == "wasend has no reconnect"


async def test_budget_scopes(make: Any) -> None:
    adapter, _ = make(reply())
    for kind in ("fetch", "list", "restart", "reconnect"):
        assert adapter.budget_scopes(kind, INSTANCE) == [BudgetScope("wasend:ws", 60)]
    capped, _ = make(reply(), max_rpm=20)
    assert capped.budget_scopes("fetch", INSTANCE) == [
        BudgetScope("wasend:ws", 60),
        BudgetScope("wasend:ws:all", 20),
    ]
    with pytest.raises(ValueError):
        adapter.budget_scopes("dance", INSTANCE)


# ---- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (401, {"success": False, "error": f"bad key {TOKEN}"}),
        (500, f"<html>trace: Authorization: Bearer {TOKEN} / {INSTANCE_TOKEN}</html>"),
        (200, {"echo": f"{TOKEN} {INSTANCE_TOKEN}"}),
        (200, {"session": {"status": f"X-{TOKEN}-{INSTANCE_TOKEN}"}}),
        (200, f"not json {TOKEN} {INSTANCE_TOKEN}"),
    ],
)
async def test_planted_tokens_never_reach_observations(make: Any, code: int, body: Any) -> None:
    adapter, _ = make(reply(code, body))
    # The adapter learns a secret when it is handed one (config registers all at load).
    for secret in (Secret(INSTANCE_TOKEN), Secret(TOKEN)):
        observation = await adapter.fetch(INSTANCE, secret)
        assert_clean(observation.error, observation.raw_status, repr(observation), repr(adapter))


async def test_planted_tokens_never_reach_action_messages(make: Any) -> None:
    for code, body in [
        (409, {"error": f"running {TOKEN} {INSTANCE_TOKEN}"}),
        (500, f"boom {TOKEN} {INSTANCE_TOKEN}"),
        (200, {"success": False, "error": f"{TOKEN} {INSTANCE_TOKEN}"}),
    ]:
        adapter, _ = make(reply(code, body))
        response = await adapter.restart(INSTANCE, Secret(INSTANCE_TOKEN))
        assert_clean(response.message, repr(response))


async def test_secret_looking_fields_are_masked_in_excerpts(make: Any) -> None:
    body = json.dumps({"webhook": {"apiKey": "unregistered-key-1234", "url": "https://x"}})
    adapter, _ = make(reply(200, body))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert "unregistered-key-1234" not in (observation.error or "")
    assert '"apiKey": "***"' in (observation.error or "")
