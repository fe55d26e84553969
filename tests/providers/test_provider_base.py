"""The shared adapter machinery: decoded and capped bodies, secret masking, shared helpers."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tuiapp.budgets import BudgetScope
from tuiapp.catalog import PROVIDER_NAMES, PROVIDERS
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, Observation, Status
from tuiapp.providers.base import (
    MAX_BODY,
    NO_TOKEN,
    Adapter,
    HttpAnswer,
    mask_secret_fields,
    segment,
)
from tuiapp.providers.registry import adapter_class
from tuiapp.secrets import Secret

from helpers.provider_helpers import NOW, MockClients, Server, assert_hidden, hang, reply, streamed

TOKEN = "base-ACCOUNT-token-planted-4e1f"
UNREGISTERED = "never-registered-secret-9d2c"
INSTANCE = InstanceConfig(name="one", account="acct", id="inst-1")


def account(provider: str = "waha", max_rpm: int | None = None) -> AccountConfig:
    return AccountConfig("acct", provider, "http://gw.test", Secret(TOKEN), max_rpm=max_rpm)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[Adapter, Server]]]:
    async with MockClients() as clients:

        def build(
            handler: Any,
            *,
            provider: str = "waha",
            timeout: float = 5.0,
            max_rpm: int | None = None,
            account_max_rpm: int | None = None,
        ) -> tuple[Adapter, Server]:
            cls = adapter_class(provider)
            config = account(provider, account_max_rpm)
            return clients.adapter(cls, config, handler, timeout=timeout, max_rpm=max_rpm)

        yield build


class CountingStream(httpx.AsyncByteStream):
    """Yields ``data`` in ``size``-byte chunks and counts how many were pulled."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.size):
            self.pulled += 1
            yield self.data[start : start + self.size]

    @property
    def chunks(self) -> int:
        return -(-len(self.data) // self.size)


# ---- send(): decoded bodies, the 1 MiB cap ---------------------------------------------------


async def test_a_gzip_encoded_answer_is_read_decoded(make: Any) -> None:
    body = b'{"status": "WORKING"}'
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    adapter, _ = make(reply(200, gzip.compress(body), headers))
    answer = await adapter.send("GET", "/api/sessions/one")
    assert isinstance(answer, HttpAnswer)
    assert answer.body == body
    assert not answer.truncated
    assert answer.json() == {"status": "WORKING"}
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.WORKING


async def test_a_deflate_answer_in_small_chunks_is_read_decoded(make: Any) -> None:
    body = b'{"status": "STOPPED", "pad": "' + b"p" * 50_000 + b'"}'
    stream = CountingStream(zlib.compress(body), 64)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Encoding": "deflate"})

    adapter, _ = make(handler)
    answer = await adapter.send("GET", "/x")
    assert isinstance(answer, HttpAnswer)
    assert answer.body == body
    assert stream.pulled == stream.chunks


async def test_a_gzip_bomb_stops_at_the_cap(make: Any) -> None:
    bomb = gzip.compress(b"\0" * (16 * MAX_BODY))  # 16 MiB inflated, 16 KiB sent
    stream = CountingStream(bomb, 1024)  # each 1 KiB chunk inflates to about 1 MiB

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Encoding": "gzip"})

    adapter, _ = make(handler)
    answer = await adapter.send("GET", "/x")
    assert isinstance(answer, HttpAnswer)
    assert answer.truncated
    assert len(answer.body) == MAX_BODY
    assert stream.pulled <= 4 < stream.chunks  # reading stopped right after the cap was passed
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert "cut at 1 MiB" in (observation.error or "")


async def test_a_plain_body_over_the_cap_is_cut_and_not_read_further(make: Any) -> None:
    stream = CountingStream(b"x" * (8 * MAX_BODY), 64 * 1024)
    adapter, _ = make(lambda request: httpx.Response(200, stream=stream))
    answer = await adapter.send("GET", "/x")
    assert isinstance(answer, HttpAnswer)
    assert answer.truncated and len(answer.body) == MAX_BODY
    assert stream.pulled == MAX_BODY // (64 * 1024) + 1


async def test_a_body_of_exactly_the_cap_is_whole(make: Any) -> None:
    adapter, _ = make(reply(200, b"y" * MAX_BODY))
    answer = await adapter.send("GET", "/x")
    assert isinstance(answer, HttpAnswer)
    assert not answer.truncated and len(answer.body) == MAX_BODY


async def test_an_already_read_response_is_capped_too(make: Any) -> None:
    adapter, _ = make(lambda request: httpx.Response(200, content=b"z" * (MAX_BODY + 5)))
    answer = await adapter.send("GET", "/x")
    assert isinstance(answer, HttpAnswer)
    assert answer.truncated and len(answer.body) == MAX_BODY


async def test_a_corrupt_gzip_body_is_a_transport_failure(make: Any) -> None:
    adapter, _ = make(reply(200, b"not gzip at all", {"Content-Encoding": "gzip"}))
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    assert observation.status is Status.UNREACHABLE
    assert observation.error_kind == "protocol"


# ---- every adapter: the answers whose meaning does not depend on the provider -------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"refused while sending {TOKEN}", request=request)


SLOW = {"timeout": 0.05}
RATE_LIMITED = {"status": Status.UNKNOWN, "reason": "rate_limited", "keep_last": True}
BAD_BODY = {"status": Status.UNREACHABLE, "reason": "bad_body"}
TOO_BIG = b'{"status": "WORKING", "pad": "' + b"x" * (2 * MAX_BODY) + b'"}'
GENERIC_ANSWERS = {
    "429-retry-after": (
        reply(429, {"message": "slow"}, {"Retry-After": "20"}),
        {**RATE_LIMITED, "retry_at": NOW + 20},
    ),
    "429-ratelimit-reset": (
        reply(429, {"message": "slow"}, {"X-RateLimit-Reset": str(int(NOW) + 50)}),
        {**RATE_LIMITED, "retry_at": NOW + 50},
    ),
    "429-bare": (reply(429, {"message": "slow"}), {**RATE_LIMITED, "retry_at": NOW + 60}),
    "2xx-invalid-json": (reply(200, b"{oops"), {**BAD_BODY, "error": "{oops"}),
    "2xx-empty": (reply(200, b""), {**BAD_BODY, "error": "empty body"}),
    "2xx-html": (reply(200, b"<html><body>Login</body></html>"), {**BAD_BODY, "error": "Login"}),
    "2xx-over-1-mib": (reply(200, TOO_BIG), {**BAD_BODY, "error": "cut at 1 MiB"}),
    "connect-error": (refuse, {"status": Status.UNREACHABLE, "reason": "connect_error"}),
    "timeout": (hang, {"status": Status.UNREACHABLE, "reason": "timeout"}),
}


@pytest.mark.parametrize("case", GENERIC_ANSWERS)
@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_every_adapter_classifies_a_generic_answer(
    make: Any, provider: str, case: str
) -> None:
    handler, expected = GENERIC_ANSWERS[case]
    if provider == "hypersender" and case == "2xx-html":  # Laravel's login page: bad token
        expected = {"status": Status.AUTH_ERROR, "reason": "unauthorized"}
    timeout = SLOW.get(case, 5.0)
    adapter, server = make(handler, provider=provider, timeout=timeout)
    observation = await adapter.fetch(INSTANCE, Secret(TOKEN))
    for key, value in expected.items():
        if key == "error":
            assert value in (observation.error or ""), observation.error
        else:
            assert getattr(observation, key) == value, key
    assert observation.observed_at == NOW
    assert len(observation.error or "") < 400
    assert len(server.requests) == 1  # Evolution asks again only after a readable close
    assert_hidden([TOKEN], observation)


# ---- get(): a read answer or its classified failure ------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, Status.AUTH_ERROR), (404, Status.NOT_FOUND), (500, Status.UNREACHABLE)],
)
async def test_get_classifies_an_http_error(make: Any, status: int, expected: Status) -> None:
    adapter, _ = make(reply(status, {"message": "no"}))
    answer = await adapter.get("/x")
    assert isinstance(answer, Observation)
    assert answer.status is expected
    assert answer.http_status == status


async def test_get_hands_a_2xx_answer_over(make: Any) -> None:
    adapter, server = make(reply(200, {"ok": True}))
    answer = await adapter.get("/x", headers={"X-Api-Key": TOKEN}, params={"all": "true"})
    assert isinstance(answer, HttpAnswer)
    assert answer.json() == {"ok": True}
    assert server.only.method == "GET"
    assert server.only.url.params["all"] == "true"


# ---- secrets in bodies -----------------------------------------------------------------------


def test_mask_secret_fields_masks_secret_looking_values_only() -> None:
    text = '{"apiKey": "k-123", "status": "WORKING", "webhook": {"hmac_secret": "s\\"x"}}'
    masked = mask_secret_fields(text)
    assert "k-123" not in masked and 's\\"x' not in masked
    assert '"status": "WORKING"' in masked
    assert masked.count('"***"') == 2
    assert mask_secret_fields('{"token": "cut-in-the-midd') == '{"token": "***"'


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_every_adapter_masks_secret_fields_in_excerpts(make: Any, provider: str) -> None:
    body = '{"broken": true, "config": {"password": "' + UNREGISTERED + '"'  # not JSON
    adapter, _ = make(reply(200, body), provider=provider)
    excerpt = adapter.body_excerpt(HttpAnswer(200, httpx.Headers(), body.encode(), False, 1.0))
    assert UNREGISTERED not in excerpt
    assert '"password": "***"' in excerpt


async def test_an_excerpt_never_shows_a_secret_cut_at_its_window(make: Any) -> None:
    adapter, _ = make(reply(200, b""))
    adapter.redactor.add(UNREGISTERED)
    # Mostly whitespace: the first 4 KiB flatten to a few characters, and the secret
    # straddles the 4 KiB mark, where a fixed window would cut it in half.
    body = ("x" + " " * 4080 + UNREGISTERED + " tail").encode()
    excerpt = adapter.body_excerpt(HttpAnswer(502, httpx.Headers(), body, False, 1.0))
    assert UNREGISTERED[:8] not in excerpt
    assert excerpt == "x *** tail"


@pytest.mark.parametrize(
    ("provider", "field"),
    [("hypersender", "access_token"), ("ryzeapi", "tokenInstance"), ("evolution", "apikey")],
)
async def test_token_fields_are_registered_before_an_error_excerpt(
    make: Any, provider: str, field: str
) -> None:
    value = "listed/secret-" + provider  # a JSON-escaped slash: both forms must be registered
    body = '{"oops": [{"' + field + '": "' + value.replace("/", "\\/") + '"}], "cut": "'
    adapter, _ = make(reply(500, body), provider=provider)
    answer = await adapter.get("/x")
    assert isinstance(answer, Observation)
    assert value not in (answer.error or "")
    assert value.replace("/", "\\/") not in (answer.error or "")
    assert adapter.redact(f"say {value}") == "say ***"


def test_providers_without_body_credentials_register_none() -> None:
    without = {name for name in PROVIDER_NAMES if adapter_class(name).token_fields is None}
    assert without == {"wawp", "wasend", "waha"}


# ---- no token, budgets, path segments --------------------------------------------------------


async def test_no_token_is_auth_error_without_a_request(make: Any) -> None:
    adapter, server = make(reply(200, {}))
    observation = adapter.no_token()
    assert observation == Observation(
        status=Status.AUTH_ERROR, reason="no_token", error=NO_TOKEN, observed_at=NOW
    )
    response = adapter.no_token_action("no access_token for this one")
    assert response.outcome is ActionOutcome.FAILED
    assert response.status is Status.AUTH_ERROR
    assert response.reason == "no_token"
    assert response.message == "no access_token for this one"
    assert server.requests == []


@pytest.mark.parametrize("provider", ["waha", "wasend", "evolution"])
async def test_account_scopes_add_an_operator_cap_only_when_it_differs(
    make: Any, provider: str
) -> None:
    limit = PROVIDERS[provider].default_max_rpm
    plain, _ = make(reply(200, {}), provider=provider, max_rpm=limit)
    assert plain.account_scopes("fetch") == [BudgetScope(f"{provider}:acct", limit)]
    capped, _ = make(reply(200, {}), provider=provider, max_rpm=7)
    assert capped.account_scopes("list") == [
        BudgetScope(f"{provider}:acct", limit),
        BudgetScope(f"{provider}:acct:all", 7),
    ]
    configured, _ = make(reply(200, {}), provider=provider, account_max_rpm=limit)
    assert configured.account_scopes("restart") == [BudgetScope(f"{provider}:acct", limit)]
    with pytest.raises(ValueError, match="unknown request kind"):
        plain.account_scopes("delete")


async def test_operator_cap_prefers_the_account_setting(make: Any) -> None:
    adapter, _ = make(reply(200, {}), provider="hypersender", max_rpm=30, account_max_rpm=12)
    assert adapter.operator_cap() == 12
    default, _ = make(reply(200, {}), provider="hypersender", max_rpm=30)
    assert default.operator_cap() is None  # the registry's catalog default is no cap


def test_segment_keeps_an_id_in_one_path_segment() -> None:
    assert segment("a/../b?x#y z") == "a%2F..%2Fb%3Fx%23y%20z"
    assert segment("plain-id") == "plain-id"


def test_streamed_answers_are_not_read_ahead() -> None:
    response = streamed(200, {"a": 1})
    assert not response.is_stream_consumed


# ---- the templates: credential, read_json, post_action -----------------------------------------

OWN = "instance-OWN-token-7b1a"


@pytest.mark.parametrize(
    ("provider", "falls_back"),
    [
        ("waha", True),
        ("wasend", True),
        ("evolution", True),
        ("hypersender", False),
        ("ryzeapi", False),
        ("wawp", False),
    ],
)
async def test_the_secret_fallback_is_one_rule_with_one_switch(
    make: Any, provider: str, falls_back: bool
) -> None:
    adapter, _ = make(reply(200, {}), provider=provider)
    assert adapter.account_fallback is falls_back
    assert adapter.credential(Secret(OWN)).reveal() == OWN  # a handed-in secret always wins
    fallback = adapter.credential(None)
    assert (fallback.reveal() if fallback else None) == (TOKEN if falls_back else None)
    assert adapter.redact(f"x {OWN} y") == "x *** y"  # registered before any request


async def test_read_json_sends_nothing_without_a_secret(make: Any) -> None:
    adapter, server = make(reply(200, {"status": "WORKING"}), provider="hypersender")
    read = await adapter.read_json("/x", None)
    assert server.requests == []
    assert isinstance(read, Observation) and read.reason == "no_token"


async def test_read_json_gives_the_answer_and_its_body_or_a_classified_failure(make: Any) -> None:
    adapter, server = make(reply(200, {"status": "WORKING"}))
    read = await adapter.read_json("/x", None, params={"all": "true"}, expect=dict)
    assert not isinstance(read, Observation)
    answer, data = read
    assert answer.status_code == 200 and data == {"status": "WORKING"}
    assert server.only.headers["x-api-key"] == TOKEN and server.only.url.params["all"] == "true"

    wrong, _ = make(reply(200, [1, 2]))
    shaped = await wrong.read_json("/x", None, expect=dict, missing="no session object")
    assert isinstance(shaped, Observation) and shaped.reason == "bad_body"
    assert shaped.error is not None and shaped.error.startswith("no session object: ")

    failing, _ = make(reply(503, {"message": "down"}))
    failed = await failing.read_json("/x", None)
    assert isinstance(failed, Observation) and failed.reason == "http_503"
    assert failed.error_kind == "http_5xx"


async def test_post_action_lets_the_provider_speak_first_then_the_generic_rules(
    make: Any,
) -> None:
    adapter, _ = make(reply(409, {"message": "running"}), provider="wasend")
    special = await adapter.post_action("/r", None, special=lambda answer: None)
    assert not isinstance(special, HttpAnswer)
    assert special.outcome is ActionOutcome.FAILED and special.reason == "http_409"

    ok, _ = make(reply(200, {"status": "STARTING"}), provider="wasend")
    answer = await ok.post_action("/r", None)
    assert isinstance(answer, HttpAnswer) and answer.status_code == 200

    none, server = make(reply(200, {}), provider="hypersender")
    refused = await none.post_action("/r", None)
    assert server.requests == []
    assert not isinstance(refused, HttpAnswer) and refused.reason == "no_token"


async def test_judged_turns_a_shape_no_check_foresaw_into_bad_body(make: Any) -> None:
    adapter, _ = make(reply(200, {}))
    answer = HttpAnswer(200, httpx.Headers(), b'{"status": 1}', False, 1.0)

    def broken() -> Observation:
        raise KeyError("status")

    observation = adapter.judged(answer, broken)
    assert observation.status is Status.UNREACHABLE and observation.reason == "bad_body"
