"""``tuiapp serve``: the team hub under uvicorn (README.md "Team hub", docs/hub-api.md).

The rules before anything listens: at least one [[operators]] entry with its token;
``--listen`` beyond loopback needs ``--tls-cert`` and ``--tls-key`` unless ``--insecure``
(and then the hub says ``insecure`` everywhere). The socket is bound here, so port 0
works and the real address is logged (``"msg": "listening"``, with ``url``) before the
first request. SIGINT / SIGTERM stop it gracefully: the streams end with a ``shutdown``
event, polling stops, actions in flight are cancelled and audited ``unknown`` (their
instances held in cooldown), exactly as when the TUI quits; exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from tuiapp.config_types import FleetConfig
from tuiapp.hub.auth import Authenticator
from tuiapp.hub.logs import setup_json_logging
from tuiapp.hub.routes import create_app
from tuiapp.hub.service import HubService

__all__ = [
    "DEFAULT_LISTEN",
    "ServeOptions",
    "UsageError",
    "is_loopback",
    "parse_listen",
    "run_serve",
]

log = logging.getLogger("tuiapp.hub")

DEFAULT_LISTEN = "127.0.0.1:8765"
UNFREEZE_SECONDS = 3600.0  # this often the next full collection walks everything again


class UsageError(Exception):
    """A bad option: one line, exit code 3."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    listen: str = DEFAULT_LISTEN
    insecure: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    name: str | None = None
    event_buffer: int = 10_000


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if number > 65535:
        raise UsageError(f"--listen {text!r}: port {number} is out of range")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(options: ServeOptions) -> tuple[str, int, bool]:
    """(host, port, insecure) once the rules hold, else UsageError."""
    host, port = parse_listen(options.listen)
    if (options.tls_cert is None) != (options.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for flag, path in (("--tls-cert", options.tls_cert), ("--tls-key", options.tls_key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
    tls = options.tls_cert is not None
    if not tls and not is_loopback(host) and not options.insecure:
        raise UsageError(
            f"--listen {options.listen}: beyond loopback the hub needs --tls-cert and"
            " --tls-key (or --insecure, which every client will then show)"
        )
    if options.event_buffer < 1:
        raise UsageError("--event-buffer must be >= 1")
    return host, port, not tls and not is_loopback(host)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--listen {host}:{port}: cannot listen ({exc.strerror})") from None
    return sock


class _HubServer(uvicorn.Server):
    """uvicorn, but the hub stops first (so that endless event streams end), and a
    SIGINT / SIGTERM is a normal end (exit 0), not re-raised."""

    def __init__(self, config: uvicorn.Config, service: HubService) -> None:
        super().__init__(config)
        self.service = service

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("stopping")
        await self.service.stop()
        await super().shutdown(sockets)


@contextlib.contextmanager
def frozen_survivors(loop: asyncio.AbstractEventLoop) -> Generator[None, None, None]:
    """Keep full garbage collections short: right after each one, everything alive is
    frozen (``gc.freeze``), so the next walks only what survived since.

    What a full collection leaves is alive by definition, so no garbage is frozen; the
    hub's long-lived objects (rows, their reads, the event ring) then cost no pause. Each
    ``UNFREEZE_SECONDS`` the frozen objects go back, so that a cycle that formed around
    a frozen object since is still collected (one longer collection an hour).
    """

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            loop.call_soon_threadsafe(gc.freeze)  # not inside the collector's callback

    def unfreeze() -> None:
        gc.unfreeze()
        nonlocal timer
        timer = loop.call_later(UNFREEZE_SECONDS, unfreeze)

    callback: Callable[[str, dict[str, int]], None] = after
    gc.callbacks.append(callback)
    timer = loop.call_later(UNFREEZE_SECONDS, unfreeze)
    try:
        yield
    finally:
        timer.cancel()
        gc.callbacks.remove(callback)


def run_serve(fleet: FleetConfig, options: ServeOptions) -> int:
    """Serve the hub until SIGINT / SIGTERM; returns the exit code (0)."""
    host, port, insecure = _check(options)
    auth = Authenticator.from_fleet(fleet)  # ConfigError: one line, exit 3
    setup_json_logging()
    sock = _bind(host, port)
    scheme = "https" if options.tls_cert is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{sock.getsockname()[1]}"
    name = options.name or socket.gethostname()
    return asyncio.run(_serve(fleet, options, auth, sock, url, name, insecure))


async def _serve(
    fleet: FleetConfig,
    options: ServeOptions,
    auth: Authenticator,
    sock: socket.socket,
    url: str,
    name: str,
    insecure: bool,
) -> int:
    service = HubService(
        fleet, name=name, insecure=insecure, event_buffer=options.event_buffer, freeze_gc=True
    )
    app = create_app(service, auth)
    config = uvicorn.Config(
        app,
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
        ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key else None,
    )
    server = _HubServer(config, service)
    await service.start()
    log.info(
        "listening",
        extra={
            "url": url,
            "hub": name,
            "insecure": insecure,
            "operators": list(auth.names),
            "instances": len(fleet.instances),
            "accounts": len(fleet.accounts),
        },
    )
    if insecure:
        log.warning("plain HTTP beyond loopback (--insecure): tokens travel unencrypted")
    try:
        with frozen_survivors(asyncio.get_running_loop()):
            await server.serve(sockets=[sock])
    finally:
        await service.stop()
        sock.close()
    return 0
