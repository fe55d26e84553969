"""Record what real Evolution API and WAHA servers answer to every call tuiapp's adapters make.

    .venv/bin/python tests/upstream/record.py     # starts both lab servers, stops them after
    .venv/bin/python tests/upstream/record.py --evolution http://127.0.0.1:18080 \\
        --waha http://127.0.0.1:13000 [--key upstream-test-key]     # servers already running

Each scenario puts a server into a state through its own API (instances named ``rec-*``
are created and deleted on the Evolution server; WAHA's ``default`` session is started,
stopped and deleted), runs one adapter call through a recording transport, and also
records the probes an upstream-true adapter may send for that call (every listed
instance's ``connectionState``, and its ``fetchInstances?instanceName=`` record), so
that a replay can serve whichever calls the adapters make.

Written to ``tests/fixtures/upstream/<provider>-<scenario>.json``: status codes, the
headers that matter (content type, rate limits), bodies. Secrets are replaced by
placeholders: the server key ``<API_KEY>``, a wrong key ``<WRONG_KEY>``, per-instance
tokens ``<INSTANCE_TOKEN>``; ids and times that change on every run are kept (they are
not secrets), so two recordings differ in them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from upstream_lab import (  # noqa: E402
    EvolutionLab,
    LabUnavailable,
    Server,
    WahaLab,
    lab_dir,
    start_server,
    stop_server,
    wait_until,
)

from tuiapp.config import AccountConfig, InstanceConfig  # noqa: E402
from tuiapp.providers.base import Adapter  # noqa: E402
from tuiapp.providers.evolution import EvolutionAdapter  # noqa: E402
from tuiapp.providers.waha import WahaAdapter  # noqa: E402
from tuiapp.secrets import Redactor, Secret  # noqa: E402

OUT = HERE.parents[1] / "tests" / "fixtures" / "upstream"
WRONG_KEY = "wrong-key-recorded-0000"
KEPT_HEADERS = ("content-type", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining")
KEPT_PREFIXES = ("x-ratelimit-",)
AUTH_HEADERS = ("apikey", "x-api-key", "authorization")
PLACEHOLDERS = {"api": "<API_KEY>", "wrong": "<WRONG_KEY>", "instance": "<INSTANCE_TOKEN>"}


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    auth: dict[str, str]
    status: int
    headers: dict[str, str]
    body: bytes
    probe: bool


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """A transport that forwards to the real server and keeps every exchange."""

    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)
    probing: bool = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])  # as sent (maybe gzip)
        await response.aclose()
        decoded = httpx.Response(response.status_code, headers=response.headers, content=raw)
        body = decoded.read()
        headers = {
            k.lower(): v
            for k, v in response.headers.items()
            if k.lower() in KEPT_HEADERS or k.lower().startswith(KEPT_PREFIXES)
        }
        auth = {k.lower(): v for k, v in request.headers.items() if k.lower() in AUTH_HEADERS}
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                dict(parse_qsl(request.url.query.decode())),
                auth,
                response.status_code,
                headers,
                body,
                self.probing,
            )
        )
        dropped = ("content-encoding", "content-length", "transfer-encoding")
        plain = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
        return httpx.Response(response.status_code, headers=plain, content=body)


class Session:
    """One scenario: a recording client, adapters on it, and the file it becomes."""

    def __init__(self, provider: str, server: Server, secrets: dict[str, str]) -> None:
        self.provider = provider
        self.server = server
        self.secrets = secrets  # value -> placeholder
        self.recorder = Recorder()
        self.client = httpx.AsyncClient(transport=self.recorder)

    def adapter(self, key: str | None = None) -> Adapter:
        cls = EvolutionAdapter if self.provider == "evolution" else WahaAdapter
        account = AccountConfig(
            self.provider, self.provider, self.server.url, Secret(key or self.server.key)
        )
        return cls(account, self.client, timeout=15, redactor=Redactor())

    async def probe(self, method: str, path: str, key: str | None = None, **params: str) -> None:
        """A call the adapter did not make but an upstream-true one may: recorded too."""
        header = "apikey" if self.provider == "evolution" else "X-Api-Key"
        self.recorder.probing = True
        try:
            await self.client.request(
                method,
                f"{self.server.url}{path}",
                headers={header: key or self.server.key},
                params=params or None,
            )
        finally:
            self.recorder.probing = False

    async def probe_listed(self) -> None:
        """Every listed Evolution instance's live state and its single-instance record."""
        names: list[str] = []
        for ex in self.recorder.exchanges:
            if ex.path == "/instance/fetchInstances" and not ex.query and ex.status == 200:
                names += [i["name"] for i in json.loads(ex.body) if isinstance(i, dict)]
        done = {
            (ex.method, ex.path, tuple(sorted(ex.query.items()))) for ex in self.recorder.exchanges
        }
        for name in dict.fromkeys(names):
            state = ("GET", f"/instance/connectionState/{name}", ())
            if state not in done:
                await self.probe("GET", state[1])
            record = ("GET", "/instance/fetchInstances", (("instanceName", name),))
            if record not in done:
                await self.probe("GET", "/instance/fetchInstances", instanceName=name)

    def scrub(self, text: str) -> str:
        for value, placeholder in sorted(self.secrets.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(value, placeholder)
        return text

    def write(self, scenario: str, description: str, call: dict[str, Any]) -> Path:
        exchanges = []
        for ex in self.recorder.exchanges:
            text = self.scrub(ex.body.decode("utf-8", errors="replace"))
            response: dict[str, Any] = {"status": ex.status, "headers": ex.headers}
            try:
                response["json"] = json.loads(text) if text else None
            except ValueError:
                response["text"] = text
            exchanges.append(
                {
                    "request": {
                        "method": ex.method,
                        "path": self.scrub(ex.path),
                        "query": {k: self.scrub(v) for k, v in ex.query.items()},
                        "auth": {k: self.scrub(v) for k, v in ex.auth.items()},
                    },
                    "response": response,
                    "probe": ex.probe,
                }
            )
        payload = {
            "recorded_with": "tests/upstream/record.py",
            "server": {"product": self.server.product, "version": self.server.version},
            "provider": self.provider,
            "scenario": scenario,
            "description": description,
            "call": {k: self.scrub(v) if isinstance(v, str) else v for k, v in call.items()},
            "exchanges": exchanges,
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
        for value in self.secrets:
            assert value not in text, "a secret survived scrubbing"
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.provider}-{scenario}.json"
        path.write_text(text)
        return path

    async def close(self) -> None:
        await self.client.aclose()


def _inst(name: str) -> InstanceConfig:
    return InstanceConfig(name=name, account="rec", id=name)


Scenario = Callable[[Session], Awaitable[dict[str, Any]]]


async def record_evolution(server: Server) -> list[Path]:
    lab = EvolutionLab(server)
    secrets = {server.key: PLACEHOLDERS["api"], WRONG_KEY: PLACEHOLDERS["wrong"]}
    written: list[Path] = []
    for name in [n for n in lab.stored() if n.startswith("rec-")]:
        lab.delete(name)
    for name in ("rec-one", "rec-open", "rec-close"):
        token = lab.create(name, token=f"rec-token-{name}-5f0c9e")
        secrets[token] = PLACEHOLDERS["instance"]
    lab.store_status(["rec-open"], "open")

    async def run(scenario: str, description: str, body: Scenario) -> None:
        session = Session("evolution", server, secrets)
        try:
            call = await body(session)
            assert session.recorder.exchanges, f"{scenario}: the adapters sent nothing"
            written.append(session.write(scenario, description, call))
        finally:
            await session.close()

    async def fetch_close(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(_inst("rec-one"), None)
        return {"adapter": "fetch", "instance": "rec-one", "key": server.key}

    async def fetch_stored_open(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(_inst("rec-open"), None)
        await s.probe("GET", "/instance/fetchInstances", instanceName="rec-open")
        return {"adapter": "fetch", "instance": "rec-open", "key": server.key}

    async def list_stored_open(s: Session) -> dict[str, Any]:
        listed = await s.adapter().list_instances()
        print(f"list-stored-open: {listed}", file=sys.stderr)
        await s.probe_listed()
        return {"adapter": "list_instances", "instance": None, "key": server.key}

    async def restart_close(s: Session) -> dict[str, Any]:
        await s.adapter().restart(_inst("rec-one"), None)
        await s.probe("PUT", "/instance/restart/rec-one")  # v1's verb: 404 "Cannot PUT" in 2.x
        return {"adapter": "restart", "instance": "rec-one", "key": server.key}

    async def reconnect_close(s: Session) -> dict[str, Any]:
        await s.adapter().reconnect(_inst("rec-close"), None)
        return {"adapter": "reconnect", "instance": "rec-close", "key": server.key}

    async def fetch_deleted(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(_inst("rec-gone"), None)
        await s.adapter().restart(_inst("rec-gone"), None)
        await s.adapter().reconnect(_inst("rec-gone"), None)
        await s.probe("GET", "/instance/fetchInstances", instanceName="rec-gone")
        return {"adapter": "fetch", "instance": "rec-gone", "key": server.key}

    async def wrong_key(s: Session) -> dict[str, Any]:
        await s.adapter(WRONG_KEY).fetch(_inst("rec-one"), None)
        await s.adapter(WRONG_KEY).list_instances()
        await s.adapter(WRONG_KEY).restart(_inst("rec-one"), None)
        return {"adapter": "fetch", "instance": "rec-one", "key": WRONG_KEY}

    async def instance_token(s: Session) -> dict[str, Any]:
        token = next(
            v for v, p in secrets.items() if p == PLACEHOLDERS["instance"] and "rec-one" in v
        )
        await s.adapter(token).fetch(_inst("rec-one"), None)
        return {"adapter": "fetch", "instance": "rec-one", "key": token}

    await run("fetch-close", "a closed, never paired instance (stored and live close)", fetch_close)
    await run(
        "fetch-stored-open",
        "stored connectionStatus 'open' (set with psql) while the live state is 'close'",
        fetch_stored_open,
    )
    await run(
        "list-stored-open",
        "the list with one instance stored 'open' while live 'close'; probes: every "
        "listed instance's connectionState and fetchInstances?instanceName",
        list_stored_open,
    )
    await run("restart-close", "restart of a closed instance: 200 {error: true}", restart_close)
    await run(
        "reconnect-close", "connect of a closed instance offline: {count: 0}", reconnect_close
    )
    lab.delete("rec-close")  # it is connecting now: stop its retries
    lab.create("rec-gone")
    lab.delete("rec-gone")
    wait_until(lambda: "rec-gone" not in lab.stored(), what="rec-gone gone from the list")
    await run("fetch-deleted", "an instance deleted through the API: every call 404", fetch_deleted)
    await run("wrong-key", "a wrong apikey: 401 on every call", wrong_key)
    await run(
        "instance-token",
        "the instance's own token as the key (Evolution accepts it for that instance)",
        instance_token,
    )
    for name in ("rec-one", "rec-open"):
        lab.delete(name)
    lab.close()
    return written


async def record_waha(server: Server) -> list[Path]:
    lab = WahaLab(server)
    secrets = {server.key: PLACEHOLDERS["api"], WRONG_KEY: PLACEHOLDERS["wrong"]}
    default = _inst("default")
    written: list[Path] = []

    async def run(
        scenario: str, description: str, setup: Callable[[], None], body: Scenario
    ) -> None:
        setup()
        session = Session("waha", server, secrets)
        try:
            call = await body(session)
            assert session.recorder.exchanges, f"{scenario}: the adapters sent nothing"
            written.append(session.write(scenario, description, call))
        finally:
            await session.close()

    async def fetch_list(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(default, None)
        await s.adapter().list_instances()
        return {"adapter": "fetch", "instance": "default", "key": server.key}

    async def start(s: Session) -> dict[str, Any]:
        await s.adapter().reconnect(default, None)
        return {"adapter": "reconnect", "instance": "default", "key": server.key}

    async def restart(s: Session) -> dict[str, Any]:
        await s.adapter().restart(default, None)
        return {"adapter": "restart", "instance": "default", "key": server.key}

    async def deleted(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(default, None)
        await s.adapter().list_instances()
        await s.adapter().restart(default, None)
        await s.adapter().reconnect(default, None)
        return {"adapter": "fetch", "instance": "default", "key": server.key}

    async def other(s: Session) -> dict[str, Any]:
        await s.adapter().fetch(_inst("sales"), None)
        await s.adapter().restart(_inst("sales"), None)
        await s.adapter().reconnect(_inst("sales"), None)
        return {"adapter": "fetch", "instance": "sales", "key": server.key}

    async def wrong_key(s: Session) -> dict[str, Any]:
        await s.adapter(WRONG_KEY).fetch(default, None)
        return {"adapter": "fetch", "instance": "default", "key": WRONG_KEY}

    await run("stopped", "the session stopped: fetch and list (?all=true)", lab.stopped, fetch_list)
    await run("start-stopped", "start of a stopped session: 201 STARTING", lab.stopped, start)
    await run("running", "the session started (offline it stays STARTING)", lab.running, fetch_list)
    await run(
        "start-running", "start of a running session: 422 already started", lab.running, start
    )
    await run("restart-running", "restart of a running session: 201", lab.running, restart)
    await run(
        "restart-stopped", "restart of a stopped session: 201 (starts it)", lab.stopped, restart
    )
    await run(
        "deleted",
        "the session deleted: 404 and an empty list",
        lambda: (lab.stopped(), lab.delete()),
        deleted,
    )
    await run("other-session", "a name WAHA Core does not serve", lab.stopped, other)
    await run(
        "wrong-key", "a wrong X-Api-Key: Core 2024.10.8 does not check it", lab.stopped, wrong_key
    )
    lab.stopped()
    lab.close()
    return written


async def main_async(args: argparse.Namespace) -> int:
    started: list[Server] = []
    try:
        servers: dict[str, Server] = {}
        for kind, url in (("evolution", args.evolution), ("waha", args.waha)):
            if url:
                servers[kind] = Server(
                    kind,
                    lab_dir() / f"{kind}.sh",
                    int(url.rsplit(":", 1)[1]),
                    url.rstrip("/"),
                    *_identify(kind, url),
                    key=args.key,
                )
            else:
                env = (
                    {"LOOPBACK_ONLY_DELAY_MS": "1000"}
                    if kind == "evolution"
                    else {"WAHA_ENGINE": "NOWEB"}
                )
                server = start_server(kind, lab_dir(), env=env)
                started.append(server)
                servers[kind] = server
            print(f"{kind}: {servers[kind].url}", file=sys.stderr)
        written = await record_evolution(servers["evolution"]) + await record_waha(servers["waha"])
    except LabUnavailable as exc:
        print(f"record.py: the upstream lab cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in started:
            stop_server(server)
    for path in written:
        print(path.relative_to(HERE.parents[1]))
    return 0


def _identify(kind: str, url: str) -> tuple[str, str]:
    if kind == "evolution":
        info = httpx.get(url).json()
        return "evolution-api", str(info.get("version", "?"))
    return "waha", str(httpx.get(f"{url}/api/version").json().get("version", "?"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evolution", help="URL of a running Evolution API (default: start one)")
    parser.add_argument("--waha", help="URL of a running WAHA (default: start one)")
    parser.add_argument("--key", default="upstream-test-key", help="the servers' API key")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
