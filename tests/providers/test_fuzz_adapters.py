"""Hostile-provider fuzzing: whatever a provider answers, every adapter call classifies it.

For each of the six adapters and each call it offers (fetch, list_instances, restart,
reconnect), hypothesis generates whole exchanges on ``httpx.MockTransport``: any status
code; bodies that are empty, over the 1 MiB cap, not JSON, not UTF-8, nested deeper than
the parser allows, random JSON trees (``st.recursive``), or a provider's documented shapes
with subtrees replaced by random values; unexpected status strings, unicode, nulls; bad,
negative, huge and HTTP-date ``Retry-After``, garbage ``X-RateLimit-*``, bogus
``Content-Encoding``; transport errors raised before or in the middle of a body.

Properties, for every exchange:
- the call returns its type (Observation, ListResult, ActionResponse): nothing escapes;
- the generic answers keep their meaning (401, 404, 429 with a bounded ``retry_at``, 5xx);
- every string in the result is one printable line;
- no planted secret shows anywhere in the result or its repr: the config's token (account
  and instance ``Secret``), and a per-instance credential the body itself carries in the
  provider's token field (``access_token``, ``token``, ``apikey``).

Hypothesis finds a field-specific surprise (a ``connected_at`` beyond year 9999 next to a
valid status) only by luck, so a deterministic sweep also replaces every field of every
documented shape, one at a time and at every depth, by each of a list of odd values.

Deterministic: ``derandomize=True`` and no example database, so CI sees the same examples
(hypothesis also draws constants from the project's loaded modules, so every adapter
module is imported up front).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import email.utils
import enum
import functools
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiapp.catalog import PROVIDER_NAMES, PROVIDERS
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import ActionOutcome, ActionResponse, Observation, Status, iso_utc
from tuiapp.providers.base import MAX_BODY, MAX_RETRY_SECONDS, Adapter
from tuiapp.providers.listing import ListResult
from tuiapp.providers.registry import adapter_class
from tuiapp.secrets import Redactor, Secret

from helpers.provider_helpers import NOW

TOKEN = "fuzz-PLANTED-token-5e0c9a"  # the config's secret: account token and instance secret
BODY_TOKEN = "body-PLANTED-cred-71d4b2"  # an instance credential a list body carries
SECRETS = (TOKEN, BODY_TOKEN)
INSTANCE = InstanceConfig(name="one", account="acct", id="inst-1")
BASE = "http://gateway.test:8080"

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- what a hostile provider can say ---------------------------------------------------------

# Every field name some adapter reads, so that random trees reach the parsers' branches.
KNOWN_KEYS = (
    "status", "state", "name", "id", "instance", "instanceName", "instance_id", "connection",
    "numberJid", "me", "session", "downstream", "sessions", "data", "instances",
    "uniqueSessionId", "sessionName", "connected_at", "connectionStatus", "ownerJid", "owner",
    "disconnectionReasonCode", "token", "apikey", "access_token", "message", "error",
    "response", "success", "count", "code", "base64", "pairingCode", "qrcode", "statusCode",
)  # fmt: skip
STATUS_WORDS = (
    "WORKING", "STARTING", "STOPPED", "FAILED", "SCAN_QR_CODE", "PENDING", "CONNECTED",
    "CREATED", "ERROR", "QR_REQUIRED", "open", "close", "connecting", "connected",
    "disconnected", "loggedout", "refused", "BANNED", "",
)  # fmt: skip
ODD_TEXT = (
    " working ", "WORKING\n", "work\x00ing", "\u202eGNIKROW", "WORKİNG", "ﬃ", "ß", "null",
    "NaN", "\ud800", "a" * 300, "line one\nline two\r\n\tthree", "\x1b[31mred\x1b[0m",
    "http://gateway.test/?access_token=" + TOKEN, "9999-99-99",
)  # fmt: skip
ODD_TIMES = (
    "2024-05-01T10:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "1969-12-31T23:59:59Z", "2024-05-01T10:00:00.999999999Z", 10**400, -(10**400), 2**63,
    2**64 + 1, 1e308, -1e308, 10**18, 0, -1, 1e20,
)  # fmt: skip


def planted(secret: str) -> st.SearchStrategy[str]:
    """``secret`` alone, or inside other text."""
    return st.builds(lambda a, b: f"{a}{secret}{b}", st.text(max_size=8), st.text(max_size=8))


status_strings = st.one_of(
    st.sampled_from(STATUS_WORDS),
    st.sampled_from(STATUS_WORDS).map(str.lower),
    st.sampled_from(STATUS_WORDS).map(lambda s: f" {s.swapcase()}\t"),
)
json_strings = st.one_of(
    status_strings,
    st.sampled_from(ODD_TEXT),
    st.text(max_size=24),
    planted(TOKEN),
    planted(BODY_TOKEN),
)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(ODD_TIMES),
    st.floats(allow_nan=True, allow_infinity=True),
    json_strings,
)
json_keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=12), st.just(TOKEN))
json_trees = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=6)
    ),
    max_leaves=12,
)


def documented_shapes(provider: str, call: str) -> list[Any]:
    """The answers the providers document for one call (mutated below).

    A fetch that may ask twice (Evolution) and a call whose error has its own shape get
    those shapes too.
    """
    waha_session = {
        "name": "inst-1",
        "status": "WORKING",
        "config": {"webhooks": [{"hmac": {"key": "whk"}}]},
        "me": {"id": "5511999999999@c.us", "pushName": "Support"},
    }
    wasend_session = {
        "session": {
            "uniqueSessionId": "inst-1",
            "sessionName": "Support",
            "phoneNumber": "5511999999999",
            "status": "CONNECTED",
            "createdAt": "2024-05-01T10:00:00Z",
        },
        "downstream": {"status": "WORKING"},
    }
    hypersender_item = {
        "id": "inst-1",
        "name": "Support",
        "phone": "5511999999999",
        "status": "WORKING",
        "access_token": BODY_TOKEN,
        "created_at": "2024-05-01T10:00:00Z",
    }
    ryzeapi_list = {
        "success": True,
        "data": [
            {
                "name": "inst-1",
                "connection": {"state": "connected", "numberJid": "55@s.whatsapp.net"},
                "token": BODY_TOKEN,
            }
        ],
    }
    ryzeapi_error = {"success": False, "error": {"message": "instance has no saved session"}}
    evolution_list = [
        {
            "name": "inst-1",
            "connectionStatus": "close",
            "ownerJid": "55@s.whatsapp.net",
            "disconnectionReasonCode": 401,
            "token": BODY_TOKEN,
        },
        {"instance": {"instanceName": "inst-2", "status": "open", "apikey": BODY_TOKEN}},
    ]
    evolution_error = {
        "status": 404,
        "error": "Not Found",
        "response": {"message": ['The "inst-1" instance does not exist']},
    }
    evolution_state = {"instance": {"instanceName": "inst-1", "state": "close"}}
    nest_error = {"statusCode": 404, "message": "Session not found", "error": "Not Found"}
    shapes: dict[tuple[str, str], list[Any]] = {
        ("hypersender", "fetch"): [
            {"instance_id": "inst-1", "connected_at": "2024-05-01T10:00:00Z", "status": "WORKING"}
        ],
        ("hypersender", "list"): [[hypersender_item, {**hypersender_item, "id": 7}]],
        ("hypersender", "restart"): [{"message": "Instance restarted"}],
        ("wawp", "fetch"): [waha_session],
        ("wawp", "restart"): [{**waha_session, "status": "STARTING"}],
        ("wawp", "reconnect"): [{**waha_session, "status": "STARTING"}],
        ("ryzeapi", "fetch"): [ryzeapi_list, ryzeapi_error],
        ("ryzeapi", "list"): [ryzeapi_list, {"instances": ryzeapi_list["data"]}],
        ("ryzeapi", "reconnect"): [
            {"success": True, "message": "Reconnecting", "status": "connecting"},
            ryzeapi_error,
        ],
        ("wasend", "fetch"): [wasend_session, {"data": wasend_session}],
        ("wasend", "list"): [{"sessions": [wasend_session, wasend_session]}],
        ("wasend", "restart"): [wasend_session, {"success": False, "message": "busy"}],
        ("waha", "fetch"): [waha_session, nest_error],
        ("waha", "list"): [[waha_session, {**waha_session, "name": "inst-2"}]],
        ("waha", "restart"): [waha_session, nest_error],
        ("waha", "reconnect"): [waha_session, nest_error],
        ("evolution", "fetch"): [evolution_state, evolution_list, evolution_error],
        ("evolution", "list"): [evolution_list],
        ("evolution", "restart"): [
            evolution_state,
            {"error": True, "message": f"token {BODY_TOKEN} rejected", "token": BODY_TOKEN},
            evolution_error,
        ],
        ("evolution", "reconnect"): [
            {"count": 1},
            {"code": "2@abc", "base64": "data:image/png;base64,AAAA", "pairingCode": "WZYEH1YY"},
            {"qrcode": {"base64": "data:image/png;base64,AAAA"}, "instance": {"state": "close"}},
        ],
    }
    return shapes[(provider, call)]


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _paths(value, (*prefix, index))


def _replaced(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return tree


time_values = st.sampled_from(ODD_TIMES)
status_values = st.one_of(status_strings, st.sampled_from(ODD_TEXT), json_leaves)
id_values = st.one_of(st.sampled_from(ODD_TEXT), planted(TOKEN), json_leaves)


def _leaf_values(key: Any) -> st.SearchStrategy[Any]:
    """Odd values a field of this name is likely to trip on (grammar-aware), or any JSON."""
    name = str(key).lower()
    if name.endswith(("_at", "at", "time")):
        return time_values
    if name in ("status", "state", "connectionstatus", "error", "success"):
        return status_values
    if name in ("id", "name", "instancename", "uniquesessionid", "sessionname", "message"):
        return id_values
    return json_trees


@st.composite
def mutated_shapes(draw: st.DrawFn, provider: str, call: str) -> Any:
    """A documented shape with a few subtrees replaced by odd values or dropped."""
    shapes = documented_shapes(provider, call)
    tree = copy.deepcopy(shapes[draw(st.integers(0, len(shapes) - 1))])
    for _ in range(draw(MUTATION_COUNTS)):
        paths = list(_paths(tree))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        how = draw(MUTATIONS)
        if how == "drop" and path:
            parent = tree
            for step in path[:-1]:
                parent = parent[step]
            del parent[path[-1]]  # a field that went missing
        elif how == "field" and path:
            tree = _replaced(tree, path, draw(_leaf_values(path[-1])))
        else:
            tree = _replaced(tree, path, draw(json_trees))
    return tree


MUTATION_COUNTS = st.sampled_from([1, 1, 1, 2, 2, 3, 0])
MUTATIONS = st.sampled_from(["field", "field", "field", "tree", "drop"])


def _dumps(tree: Any, ascii_only: bool) -> bytes:
    return json.dumps(tree, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")


@st.composite
def bodies(draw: st.DrawFn, provider: str, call: str) -> bytes:
    kind = draw(
        st.sampled_from(
            ["shape"] * 6 + ["tree"] * 3 + ["empty", "bytes", "text", "huge", "deep", "odd"]
        )
    )
    if kind in ("shape", "tree"):
        tree = draw(mutated_shapes(provider, call)) if kind == "shape" else draw(json_trees)
        return _dumps(tree, draw(st.booleans()))
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        text = draw(st.sampled_from(["<html><body>{}</body></html>", "{}", "Error: {}"]))
        return text.format(draw(json_strings)).encode("utf-8", errors="surrogatepass")
    if kind == "huge":  # a valid start, then more than the cap
        head = _dumps(draw(mutated_shapes(provider, call)), True)
        pad = draw(st.sampled_from([b" ", b"x", TOKEN.encode()]))
        return head[:-1] + b', "pad": "' + pad * (MAX_BODY // len(pad) + 10) + b'"}'
    if kind == "deep":
        depth = draw(st.sampled_from([500, 5_000, 200_000]))
        return b"[" * depth + b"]" * depth
    shape = draw(mutated_shapes(provider, call))
    return draw(
        st.sampled_from(
            [
                b"\xef\xbb\xbf" + _dumps(shape, True),  # a UTF-8 BOM
                json.dumps(shape).encode("utf-16"),  # valid JSON, another encoding
                _dumps(shape, True)[:-1],  # cut short
                b'{"status": "\xff\xfeWORKING", "message": "\xc3"}',  # not UTF-8
                b'{"status": NaN, "message": Infinity, "error": -Infinity}',
                b'{"message": "' + TOKEN.encode() + b'"' + b", " * 3000 + b"}",
            ]
        )
    )


def _http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
number_text = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-7200, 7200).map(lambda d: str(int(NOW) + d)),
    st.sampled_from(["", " ", "-0", "1e400", "9" * 400, "0x10", "٣", "null", "1,5", "inf"]),
)
retry_after = st.one_of(
    number_text,
    header_text,
    st.integers(-86_400 * 400, 86_400 * 400).map(lambda d: _http_date(NOW + d)),
    st.sampled_from(
        [
            "Mon, 32 Foo 2024 99:99:99 GMT",
            "Thu, 01 Jan 99999 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Tue, 15 Nov 1994 08:12:31 +9999",
        ]
    ),
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Retry-After"] = draw(retry_after)
    if draw(st.booleans()):
        headers["X-RateLimit-Reset"] = draw(number_text | header_text)
    if draw(st.booleans()):
        headers["X-RateLimit-Remaining"] = draw(number_text | header_text)
    if draw(st.integers(0, 3)) == 0:
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/html", "application/json; charset=utf-16"])
            | header_text
        )
    if draw(st.integers(0, 5)) == 0:
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "deflate", "identity", "xz"]))
    return headers


STATUS_CODES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 429, 500, 502, 503, 504]),
    st.integers(100, 999),
)
# What a transport may raise, and the reason a read then has. Not only httpx's types:
# httpx-aiohttp lets some of aiohttp's own through (see test_hostile_servers.py).
FAILURES: dict[type[Exception], str] = {
    httpx.ConnectError: "connect_error",
    httpx.ConnectTimeout: "timeout",
    httpx.ReadTimeout: "timeout",
    httpx.PoolTimeout: "timeout",
    httpx.ReadError: "reset",
    httpx.WriteError: "reset",
    httpx.RemoteProtocolError: "reset",
    httpx.LocalProtocolError: "protocol_error",
    httpx.DecodingError: "protocol_error",
    httpx.ProxyError: "protocol_error",
    ConnectionResetError: "reset",
    BrokenPipeError: "reset",
    ConnectionRefusedError: "connect_error",
    OSError: "connect_error",
    RuntimeError: "protocol_error",
    ValueError: "protocol_error",
}


@dataclass(frozen=True)
class Answer:
    """One generated answer: a response, or a transport failure before or during its body."""

    status: int
    body: bytes
    headers: dict[str, str]
    fails: type[Exception] | None = None  # raised instead of answering
    fails_mid_body: type[Exception] | None = None  # raised after the first part of the body

    @property
    def plain(self) -> bool:
        """A whole answer whose body the client can read as sent (no failure, no encoding)."""
        return self.fails is None and self.fails_mid_body is None and not self.encoded

    @property
    def encoded(self) -> bool:
        return "Content-Encoding" in self.headers

    def response(self, request: httpx.Request) -> httpx.Response:
        if self.fails is not None:
            raise _failure(self.fails, request)
        stream: httpx.AsyncByteStream = httpx.ByteStream(self.body)
        if self.fails_mid_body is not None:
            stream = _BrokenStream(self.body[: len(self.body) // 2], self.fails_mid_body, request)
        # Raw bytes, as a server sends them (UTF-8 too: httpx decodes whatever comes).
        raw = [(name.encode(), value.encode()) for name, value in self.headers.items()]
        return httpx.Response(self.status, headers=raw, stream=stream)


def _failure(cls: type[Exception], request: httpx.Request) -> Exception:
    message = f"lost {request.url} (token {TOKEN})"
    if issubclass(cls, httpx.RequestError):
        return cls(message, request=request)
    return cls(message)


class _BrokenStream(httpx.AsyncByteStream):
    def __init__(self, head: bytes, cls: type[Exception], request: httpx.Request) -> None:
        self.head, self.cls, self.request = head, cls, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise _failure(self.cls, self.request)


@st.composite
def answers(draw: st.DrawFn, provider: str, call: str) -> Answer:
    headers = draw(header_sets())
    body = draw(bodies(provider, call))
    if headers.get("Content-Encoding") == "gzip" and draw(st.booleans()):
        body = gzip.compress(body)  # sometimes the encoding is real
    failure = draw(st.integers(0, 9))
    return Answer(
        status=draw(STATUS_CODES),
        body=body,
        headers=headers,
        fails=draw(st.sampled_from(list(FAILURES))) if failure == 0 else None,
        fails_mid_body=draw(st.sampled_from(list(FAILURES))) if failure == 1 else None,
    )


@functools.cache
def answer_lists(provider: str, call: str) -> st.SearchStrategy[list[Answer]]:
    """One or two answers (a call may ask twice: Evolution's close details, v1 restart)."""
    return st.lists(answers(provider, call), min_size=1, max_size=2)


# ---- running one exchange --------------------------------------------------------------------

# Every adapter class, imported now: hypothesis draws some values from the constants of
# the local modules loaded so far, so importing them lazily would make examples depend on
# which test ran first.
ADAPTERS = {provider: adapter_class(provider) for provider in PROVIDER_NAMES}
CALLS = [
    (provider, call)
    for provider in PROVIDER_NAMES
    for call in ("fetch", "list", "restart", "reconnect")
    if call == "fetch"
    or (call == "list" and PROVIDERS[provider].has_list)
    or call in PROVIDERS[provider].actions
]


def account(provider: str) -> AccountConfig:
    token = Secret(TOKEN, "env:FUZZ_TOKEN") if PROVIDERS[provider].account_secret else None
    return AccountConfig("acct", provider, BASE, token)


class FakeProvider:
    """One MockTransport client; each call gets the answers it is served and a fresh adapter
    (a fresh redactor: a secret one body registered never hides a leak in the next)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.served: list[Answer] = []
        self.sent: list[Answer] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def handler(self, request: httpx.Request) -> httpx.Response:
        answer = self.served[len(self.sent) % len(self.served)]
        self.sent.append(answer)
        return answer.response(request)

    async def call(self, call: str, served: list[Answer]) -> tuple[Any, list[Answer]]:
        """Run ``call`` against ``served`` (answered in turn, cycling); returns (result, sent)."""
        self.served, self.sent = served, []
        adapter: Adapter = ADAPTERS[self.provider](
            account(self.provider), self.client, timeout=5.0, clock=lambda: NOW, redactor=Redactor()
        )
        secret = Secret(TOKEN, "env:FUZZ_INSTANCE_TOKEN")
        if call == "fetch":
            return await adapter.fetch(INSTANCE, secret), self.sent
        if call == "list":
            return await adapter.list_instances(), self.sent
        return await getattr(adapter, call)(INSTANCE, secret), self.sent

    async def __aenter__(self) -> FakeProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


async def exchange(provider: str, call: str, served: list[Answer]) -> tuple[Any, list[Answer]]:
    async with FakeProvider(provider) as fake:
        return await fake.call(call, served)


# ---- properties ------------------------------------------------------------------------------


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a result: dataclass fields, dict keys and values, enum values."""
    if isinstance(value, enum.Enum):
        yield str(value.value)
    elif isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from strings_in(getattr(value, item.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def assert_clean(result: Any, secrets: tuple[str, ...] = SECRETS) -> None:
    """One printable line per string, and no planted secret in any string or the repr."""
    for text in strings_in(result):
        assert all(ch.isprintable() for ch in text), f"not one printable line: {text!r}"
        assert len(text) <= 600, f"an unbounded string: {text[:80]!r}…"
        for secret in secrets:
            assert secret not in text, f"a planted secret leaked: {text!r}"
    for secret in secrets:
        assert secret not in repr(result)


def secrets_of(provider: str, sent: list[Answer]) -> tuple[str, ...]:
    """The config's token, and BODY_TOKEN where a body named it in the provider's token field
    (elsewhere it is just text: nothing says it is a secret)."""
    fields = ADAPTERS[provider].token_fields
    found: list[str] = []
    for answer in sent:
        text = answer.body.decode("utf-8", errors="replace")
        if fields is not None:
            # The secret is the field's whole value (which may merely contain BODY_TOKEN).
            found += [m.group(1) for m in fields.finditer(text) if BODY_TOKEN in m.group(1)]
    return (TOKEN, *dict.fromkeys(found))


def assert_retry_at(retry_at: float | None) -> None:
    assert retry_at is not None
    assert NOW <= retry_at <= NOW + MAX_RETRY_SECONDS


def assert_observation(obs: Observation, answer: Answer | None) -> None:
    """A classified read; ``answer``: the one that decided it, when it is a plain one."""
    assert isinstance(obs, Observation)
    assert isinstance(obs.status, Status)
    assert obs.observed_at == NOW
    assert obs.latency_ms is None or obs.latency_ms >= 0
    if obs.connected_at is not None:  # a time the UI and check can show
        assert iso_utc(obs.connected_at) is not None
    if obs.retry_at is not None:
        assert_retry_at(obs.retry_at)
    if obs.rate_reset_at is not None:
        assert NOW < obs.rate_reset_at <= NOW + MAX_RETRY_SECONDS
    assert obs.rate_remaining is None or obs.rate_remaining >= 0
    if obs.keep_last:
        assert obs.reason in ("rate_limited", "quota")
    if answer is None or not answer.plain:
        return
    code = answer.status
    if code == 401:
        assert obs.status is Status.AUTH_ERROR, obs
    elif code == 404:
        assert obs.status is Status.NOT_FOUND, obs
    elif code == 429:
        assert obs.keep_last and obs.reason == "rate_limited", obs
        assert_retry_at(obs.retry_at)
    elif 300 <= code < 400:  # Hypersender: Laravel's redirect to its login page (AUTH_ERROR)
        assert obs.status in (Status.UNREACHABLE, Status.AUTH_ERROR), obs
        assert obs.http_status == code, obs
    elif code >= 500 or code < 200:
        assert obs.status is Status.UNREACHABLE and obs.http_status == code, obs
    elif 200 <= code < 300 and not answer.body:
        assert obs.status is Status.UNREACHABLE and obs.reason == "bad_body", obs


def assert_read_failure(obs: Observation, answer: Answer) -> None:
    """A transport failure is UNREACHABLE with the reason its kind of failure names."""
    failure = answer.fails or answer.fails_mid_body
    if failure is not None:
        assert obs.status is Status.UNREACHABLE, obs
        expected = {FAILURES[failure]}
        if answer.fails_mid_body is not None and answer.encoded:
            expected.add("protocol_error")  # the first half may not decode, before the failure
        assert obs.reason in expected, obs


def assert_action(response: ActionResponse, answer: Answer) -> None:
    assert isinstance(response, ActionResponse)
    assert isinstance(response.outcome, ActionOutcome)
    assert response.message, "an action result always says something"
    if answer.fails is not None or answer.fails_mid_body is not None:
        # Sent, and the answer lost: it may have been carried out (exactly once).
        assert response.outcome is ActionOutcome.UNKNOWN, response
        return
    if not answer.plain:
        return
    code = answer.status
    if code == 429:
        assert response.outcome is ActionOutcome.RATE_LIMITED, response
        assert_retry_at(response.retry_at)
    elif code in (502, 503, 504):
        assert response.outcome is ActionOutcome.UNKNOWN, response
    elif code == 401:
        assert response.outcome is ActionOutcome.FAILED, response
    if not 200 <= code < 300:
        assert response.outcome is not ActionOutcome.ACCEPTED, response


@pytest.mark.parametrize(("provider", "call"), CALLS)
@FUZZ
@given(data=st.data())
def test_any_answer_is_classified_and_clean(provider: str, call: str, data: st.DataObject) -> None:
    served = data.draw(answer_lists(provider, call), label="answers")
    result, sent = asyncio.run(exchange(provider, call, served))
    assert_classified(provider, call, result, sent)


def assert_classified(provider: str, call: str, result: Any, sent: list[Answer]) -> None:
    """Every property of the module docstring, for one call and the answers it was sent."""
    assert sent, "the call sent nothing"
    assert_clean(result, secrets_of(provider, sent))
    if call == "fetch":
        # The first answer decides unless it is a readable 2xx (Evolution then asks again).
        first = sent[0]
        # Wawp asks again after a 404/405 (POST info) or a 400/401 (the SDK's credentials).
        retried = provider == "wawp" and len(sent) > 1
        decides = not 200 <= first.status < 300 and not retried
        assert_observation(result, first if decides else None)
        if len(sent) == 1:
            assert_read_failure(result, first)
    elif call == "list":
        assert isinstance(result, ListResult)
        only = sent[0]  # Evolution then reads each listed instance's live state
        assert len(sent) == 1 or (provider == "evolution" and result.failure is None)
        if result.failure is not None:
            assert_observation(result.failure, only)
            assert_read_failure(result.failure, only)
        else:
            assert only.fails is None and only.fails_mid_body is None
            assert 200 <= only.status < 300
        for key, obs in result.observations.items():
            assert isinstance(key, str) and key.strip()
            assert_observation(obs, None)
        assert set(result.names) <= set(result.observations)
    else:
        assert_action(result, sent[-1])


# ---- every field of every documented shape, one odd value at a time ----------------------------

DROP = object()  # the field is missing
SWEEP_VALUES: tuple[Any, ...] = (
    DROP, None, True, 0, -1, 2**63, 10**400, 1e308, float("nan"), "", " ", [], {}, [None],
    {"status": TOKEN}, TOKEN, f"x {TOKEN} y", "WORKING\n", "\u202eGNIKROW", "\x00",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "a" * 3000,
)  # fmt: skip


def single_field_variants(provider: str, call: str) -> Iterator[list[bytes]]:
    """Each documented shape with one field (at any depth, the root too) changed or dropped;
    yields the bodies to serve in turn."""
    for shape in documented_shapes(provider, call):
        # Evolution reads pairing details only after a readable close: serve one first.
        prefix = []
        if provider == "evolution" and call == "fetch" and isinstance(shape, list):
            prefix = [_dumps({"instance": {"instanceName": "inst-1", "state": "close"}}, True)]
        for path in _paths(shape):
            for value in SWEEP_VALUES:
                if value is DROP and not path:
                    continue
                tree = copy.deepcopy(shape)
                if value is DROP:
                    parent = tree
                    for step in path[:-1]:
                        parent = parent[step]
                    del parent[path[-1]]
                else:
                    tree = _replaced(tree, path, copy.deepcopy(value))
                yield [*prefix, _dumps(tree, True)]


@pytest.mark.parametrize(("provider", "call"), CALLS)
def test_every_field_of_every_documented_shape_takes_any_odd_value(
    provider: str, call: str
) -> None:
    """Deterministic and exhaustive for one-field type confusion, at every level of the
    documented shapes: what hypothesis finds only by luck, this finds every time."""
    codes = (200,) if call in ("fetch", "list") else (200, 400)

    async def sweep() -> int:
        count = 0
        async with FakeProvider(provider) as fake:
            for served in single_field_variants(provider, call):
                for code in codes:
                    answers = [Answer(code, body, {}) for body in served]
                    result, sent = await fake.call(call, answers)
                    assert_classified(provider, call, result, sent)
                    count += 1
        return count

    assert asyncio.run(sweep()) > 50


# The field in which each provider's bodies carry instance credentials (``token_fields``).
CREDENTIAL_FIELD = {"hypersender": "access_token", "ryzeapi": "token", "evolution": "token"}


@pytest.mark.parametrize(("provider", "call"), [(p, c) for p, c in CALLS if p in CREDENTIAL_FIELD])
@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_a_credential_in_a_body_never_reaches_the_result(
    provider: str, call: str, data: st.DataObject
) -> None:
    """A body that carries an instance credential in the provider's token field, and
    repeats it where messages come from (message, status, name, error, state): the value
    never shows, whatever the call and the status code."""
    assert ADAPTERS[provider].token_fields is not None
    tree = data.draw(mutated_shapes(provider, call), label="shape")
    echo = data.draw(st.sampled_from(["message", "status", "name", "error", "state"]))
    carrier = {CREDENTIAL_FIELD[provider]: BODY_TOKEN, echo: f"echo {BODY_TOKEN}"}
    body = _dumps({**carrier, "data": [tree], "sessions": [tree], "response": tree}, True)
    if data.draw(st.booleans()):
        body = _dumps([{**carrier, "name": "inst-1"}, tree], True)
    code = data.draw(st.sampled_from([200, 400, 401, 403, 404, 409, 429, 500, 503]))
    result, _ = asyncio.run(exchange(provider, call, [Answer(code, body, {})]))
    assert_clean(result)
