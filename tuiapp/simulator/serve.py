"""Serve the simulator for real over HTTP with uvicorn: ``run_simulate`` and ``start_in_thread``.

The listening socket is bound here, before uvicorn starts, so port 0 gives a real
port that can be printed and written into a config before the first request, and
connections made meanwhile wait in the kernel's backlog. Deliberate connection
resets are not logged as errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import tomli_w
import uvicorn
from starlette.applications import Starlette

from tuiapp.simulator.apis.base import SimulatedReset
from tuiapp.simulator.app import create_app
from tuiapp.simulator.fleet import SimFleet, build_fleet
from tuiapp.simulator.protocol import CorkedH11Protocol
from tuiapp.simulator.state import Simulator

__all__ = ["RunningSimulator", "run_simulate", "start_in_thread", "write_fleet_config"]

_QUIET_MESSAGES = (
    "ASGI callable returned without completing response",
    "Cancel %s running task(s)",
)


class _DropDeliberateErrors(logging.Filter):
    """Drop uvicorn's error records caused by the simulator's own faults."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (SimulatedReset, asyncio.CancelledError)):
            return False
        return not str(record.msg).startswith(_QUIET_MESSAGES)


_FILTER = _DropDeliberateErrors()


def _install_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


class _Server(uvicorn.Server):
    """uvicorn.Server that reports startup and exits cleanly (status 0) on SIGINT/SIGTERM."""

    def __init__(self, config: uvicorn.Config, started: threading.Event | None = None) -> None:
        super().__init__(config)
        self._started_event = started

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the captured signal after shutdown; a simulator stopped by
        # Ctrl-C or SIGTERM has done its job, so restore the handlers and return.
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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self._started_event is not None:
            self._started_event.set()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _uvicorn_config(app: Starlette, *, configure_logging: bool) -> uvicorn.Config:
    kwargs: dict[str, Any] = {}
    if not configure_logging:
        kwargs["log_config"] = None  # leave logging to the host program (the TUI)
    return uvicorn.Config(
        app,
        http=CorkedH11Protocol,
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
        **kwargs,
    )


@dataclass
class RunningSimulator:
    """A simulator served by uvicorn in a background thread; ``stop()`` shuts it down."""

    url: str
    app: Starlette
    _server: _Server
    _thread: threading.Thread

    @property
    def sim(self) -> Simulator:
        return self.app.state.sim

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and join its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    fleet: SimFleet, host: str = "127.0.0.1", port: int = 0, **app_kwargs: Any
) -> RunningSimulator:
    """Serve ``fleet`` on ``host:port`` (0: a free port) in a daemon thread; returns once up.

    ``app_kwargs`` go to ``create_app`` (clock, boot_seconds, limits, latency).
    uvicorn does not configure logging here, so a TUI in the same process stays clean.
    """
    _install_filter()
    app = create_app(fleet, **app_kwargs)
    sock = _bind(host, port)
    started = threading.Event()
    server = _Server(_uvicorn_config(app, configure_logging=False), started)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="tuiapp-simulator", daemon=True
    )
    thread.start()
    while not started.wait(0.05):
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("the simulator failed to start")
    return RunningSimulator(url=_url(host, sock), app=app, _server=server, _thread=thread)


def write_fleet_config(path: Path, fleet: SimFleet, url: str, *, token_env: bool) -> dict[str, str]:
    """Write the fleet's tuiapp config (mode 0600); returns the environment it needs."""
    config, env = fleet.to_config(url, token_env=token_env)
    path = Path(path)
    # A simulated fleet's cooldowns, history and audit stay beside its config, never in
    # the team's state dir (relative paths resolve against the config's directory).
    state = f"{path.stem}-state"
    config["monitor"] = {
        **config["monitor"],
        "state_dir": state,
        "audit_log": f"{state}/audit.jsonl",
    }
    if token_env:
        note = "# Tokens are read from the environment variables named below (token_env).\n"
    else:
        note = "# The tokens below are simulator-only tokens, not real credentials.\n"
    header = (
        f"# tuiapp config for the simulator at {url}\n"
        f"# (scenario {fleet.scenario}, seed {fleet.seed}, {len(fleet.instances)} instances)\n"
        + note
        + f"# Its state and audit log: {path.parent / state}\n"
    )
    text = header + tomli_w.dumps(config)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
    return env


def run_simulate(
    host: str,
    port: int,
    instances: int,
    seed: int,
    scenario: str,
    write_config: Path | None,
    token_env: bool,
    *,
    out: TextIO | None = None,
    **app_kwargs: Any,
) -> int:
    """``tuiapp simulate``: serve until Ctrl-C or SIGTERM, then exit 0.

    The config is written only once the port is bound (so it holds the real port).
    Returns 3 for a usage error (bad scenario or count, port unavailable, unwritable path).
    """
    out = out or sys.stdout
    err = sys.stderr
    try:
        fleet = build_fleet(instances=instances, seed=seed, scenario=scenario)
    except ValueError as exc:
        print(f"tuiapp simulate: {exc}", file=err)
        return 3
    app = create_app(fleet, **app_kwargs)
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"tuiapp simulate: cannot listen on {host}:{port}: {exc.strerror or exc}", file=err)
        return 3
    url = _url(host, sock)
    env: dict[str, str] = {}
    if write_config is not None:
        try:
            env = write_fleet_config(write_config, fleet, url, token_env=token_env)
        except OSError as exc:
            sock.close()
            print(f"tuiapp simulate: cannot write {write_config}: {exc.strerror or exc}", file=err)
            return 3
    print(
        f"tuiapp simulator: {len(fleet.instances)} instances, scenario {scenario}, seed {seed}",
        file=out,
    )
    if write_config is not None:
        if token_env:
            print(f"config written to {write_config}; set these before running tuiapp:", file=out)
            for name, value in env.items():
                print(f"export {name}={value}", file=out)
        else:
            print(
                f"config written to {write_config} (inline simulator-only tokens, "
                "not real secrets)",
                file=out,
            )
    if write_config is not None:
        state = Path(write_config).parent / f"{Path(write_config).stem}-state"
        print(f"its cooldowns, history and audit log go in {state}/", file=out)
    print(f"base_url of each provider: {url}/<provider>; control API: {url}/_sim/", file=out)
    print(f"listening on {url}  (Ctrl-C to stop)", file=out)
    out.flush()
    _install_filter()
    server = _Server(_uvicorn_config(app, configure_logging=True))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
