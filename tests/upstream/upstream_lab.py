"""The upstream lab: real Evolution API and WAHA servers on 127.0.0.1, started by the
scripts in ``../shared/upstream`` (or ``$TUIAPP_UPSTREAM_DIR``), and small clients for
their own APIs (create, delete, log out instances; psql on Evolution's database).

Everything here talks to loopback only. Waiting for a real server's state is the one
place the tier cannot avoid: ``wait_until`` polls a condition with a bounded deadline
(and says what it waited for when the deadline passes); nothing sleeps to synchronise.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

__all__ = [
    "DIR_ENV",
    "REQUIRE_ENV",
    "EvolutionLab",
    "LabUnavailable",
    "Server",
    "WahaLab",
    "free_port",
    "lab_dir",
    "start_server",
    "stop_server",
    "unavailable_reason",
    "wait_until",
]

DIR_ENV = "TUIAPP_UPSTREAM_DIR"
# "1": a lab that cannot start fails the tier instead of skipping it (CI sets it when the
# machine has what the lab needs, so that a broken lab cannot hide behind a skip).
REQUIRE_ENV = "TUIAPP_UPSTREAM_REQUIRE"
REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"evolution": "evolution.sh", "waha": "waha.sh"}
START_TIMEOUT = 900.0  # a first build: Evolution ~1 min, WAHA 2-3 min; a cached start ~3 s
STOP_TIMEOUT = 60.0
_READY = re.compile(r"^READY (?P<product>\S+) (?P<version>\S+) on (?P<url>http://127\.0\.0\.1:\d+)")
_FIELD = re.compile(r"(\w+)=(\S+)")

T = TypeVar("T")


class LabUnavailable(Exception):
    """The lab cannot run here; the message is one line saying why."""


def lab_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$TUIAPP_UPSTREAM_DIR``, else ``../shared/upstream`` beside the repository."""
    configured = environ.get(DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return REPO_ROOT.parent / "shared" / "upstream"


def _node_major() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)", out.strip())
    return int(match.group(1)) if match else None


def unavailable_reason(directory: Path) -> str | None:
    """Why the lab cannot start here (one line), or None when it may try.

    Only what can be told without running anything: the scripts check the rest
    themselves (packages, ports) and fail with one line, which the caller reports.
    """
    if not all((directory / script).is_file() for script in SCRIPTS.values()):
        return f"no evolution.sh/waha.sh in {directory} (set ${DIR_ENV} to the upstream lab)"
    if not Path("/etc/debian_version").is_file():
        return "the upstream lab needs Debian (no /etc/debian_version)"
    major = _node_major()
    if major is None:
        return "node (>= 20) is not installed"
    if major < 20:
        return f"node >= 20 is required (found v{major})"
    if shutil.which("npm") is None:
        return "npm is not installed"
    if os.geteuid() != 0 and shutil.which("apt-get") is None:
        return "not root and no apt-get: the lab cannot install postgresql/make/g++"
    return None


def free_port() -> int:
    """A loopback port nothing listens on right now (the scripts refuse a busy one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One running upstream server, as its READY line describes it."""

    kind: str
    script: Path
    port: int
    url: str
    product: str
    version: str
    key: str
    fields: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0  # the script's whole run: a build when there was one

    @property
    def startup(self) -> str:
        return self.fields.get("startup", "?")

    @property
    def built(self) -> bool:
        return "build" in self.fields

    def describe(self) -> str:
        what = f"built in {self.fields['build']}, " if self.built else ""
        return f"{self.product} {self.version} ({what}ready in {self.wall_seconds:.1f} s)"


def parse_ready(line: str) -> dict[str, str] | None:
    """The fields of a ``READY ...`` line, or None when ``line`` is not one."""
    match = _READY.match(line.strip())
    if match is None:
        return None
    found = dict(_FIELD.findall(line))
    found.update(match.groupdict())
    return found


def start_server(
    kind: str, directory: Path, *, env: Mapping[str, str] | None = None, port: int | None = None
) -> Server:
    """Start (building if needed) one server; LabUnavailable with the script's line on failure."""
    reason = unavailable_reason(directory)
    if reason is not None:
        raise LabUnavailable(reason)
    script = directory / SCRIPTS[kind]
    port = port or free_port()
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", str(script), "start", str(port)],
            cwd=directory,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(script), "stop", str(port)], capture_output=True, check=False)
        raise LabUnavailable(
            f"{script.name} start did not finish in {START_TIMEOUT:.0f} s"
        ) from None
    wall = time.monotonic() - started
    ready = next((f for f in map(parse_ready, done.stdout.splitlines()) if f is not None), None)
    if done.returncode != 0 or ready is None:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {done.returncode}, no READY line"
        raise LabUnavailable(why)
    return Server(
        kind=kind,
        script=script,
        port=port,
        url=ready["url"],
        product=ready["product"],
        version=ready["version"],
        key=ready.get("key", ""),
        fields=ready,
        wall_seconds=wall,
    )


def stop_server(server: Server) -> None:
    subprocess.run(
        ["bash", str(server.script), "stop", str(server.port)],
        capture_output=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )


def wait_until(
    probe: Callable[[], T | None], *, what: str, timeout: float = 20.0, interval: float = 0.2
) -> T:
    """Poll ``probe`` until it returns something other than None/False; fail after ``timeout``.

    For a real server's state only (an instance disappearing, a session starting):
    the bounded deadline is the synchronisation, the interval just spaces the polls.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"the upstream server never reached: {what} ({timeout:g} s)")
        time.sleep(interval)


class EvolutionLab:
    """Evolution API's own instance API, for setting up what a test needs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, headers={"apikey": server.key}, timeout=30.0)
        self.created: dict[str, str] = {}  # name -> its per-instance token (a secret)

    def close(self) -> None:
        self.http.close()

    def create(self, name: str, *, token: str | None = None, qrcode: bool = False) -> str:
        """Create an instance through ``POST /instance/create``; returns its token.

        Without ``qrcode`` the server opens no WhatsApp socket: the instance stays
        ``close`` and costs no CPU (a connecting one retries without backoff offline).
        """
        body: dict[str, Any] = {"instanceName": name, "integration": "WHATSAPP-BAILEYS"}
        if token is not None:
            body["token"] = token
        if qrcode:
            body["qrcode"] = True
        answer = self.http.post("/instance/create", json=body)
        assert answer.status_code in (200, 201), answer.text[:300]
        hash_ = answer.json()["hash"]
        self.created[name] = hash_
        return hash_

    def delete(self, name: str, *, wait: bool = True) -> None:
        """``DELETE /instance/delete/{name}``; with ``wait``, until it reads 404."""
        self.http.delete(f"/instance/delete/{name}")
        if wait:
            wait_until(
                lambda: self.http.get(f"/instance/connectionState/{name}").status_code == 404,
                what=f"instance {name} gone (404)",
            )

    def state(self, name: str) -> str | None:
        answer = self.http.get(f"/instance/connectionState/{name}")
        if answer.status_code != 200:
            return None
        return answer.json().get("instance", {}).get("state")

    def stored(self) -> dict[str, str]:
        """name -> the stored ``connectionStatus`` that ``fetchInstances`` reports."""
        return {
            i["name"]: i["connectionStatus"]
            for i in self.http.get("/instance/fetchInstances").json()
        }

    def psql(self, sql: str) -> str:
        done = subprocess.run(
            ["bash", str(self.server.script), "psql", str(self.server.port), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-500:]
        return done.stdout

    def store_status(self, names: list[str], status: str) -> None:
        """Make the stored ``connectionStatus`` say ``status`` (the live state is untouched)."""
        quoted = ", ".join("'" + n.replace("'", "''") + "'" for n in names)
        out = self.psql(
            f'UPDATE "Instance" SET "connectionStatus" = \'{status}\' WHERE name IN ({quoted})'
        )
        assert f"UPDATE {len(names)}" in out, out


class WahaLab:
    """WAHA Core's own session API (Core serves only the session ``default``)."""

    SESSION = "default"

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.url, headers={"X-Api-Key": server.key}, timeout=60.0
        )

    def close(self) -> None:
        self.http.close()

    def status(self) -> str | None:
        answer = self.http.get(f"/api/sessions/{self.SESSION}")
        return answer.json().get("status") if answer.status_code == 200 else None

    def ensure_exists(self) -> None:
        """After a delete, Core's create brings the session back only with ``start``."""
        if self.http.get(f"/api/sessions/{self.SESSION}").status_code == 404:
            answer = self.http.post("/api/sessions", json={"name": self.SESSION, "start": True})
            assert answer.status_code in (200, 201), answer.text[:300]

    def stopped(self) -> None:
        """The session exists and is STOPPED (``stop`` is idempotent and returns when done)."""
        self.ensure_exists()
        answer = self.http.post(f"/api/sessions/{self.SESSION}/stop")
        assert answer.status_code in (200, 201), answer.text[:300]
        wait_until(lambda: self.status() == "STOPPED", what="session default STOPPED")

    def running(self) -> None:
        """The session exists and runs (offline NOWEB stays STARTING)."""
        self.ensure_exists()
        if self.status() == "STOPPED":
            answer = self.http.post(f"/api/sessions/{self.SESSION}/start")
            assert answer.status_code in (200, 201), answer.text[:300]
        wait_until(
            lambda: self.status() in ("STARTING", "SCAN_QR_CODE", "FAILED"),
            what="session default running",
        )

    def delete(self) -> None:
        answer = self.http.delete(f"/api/sessions/{self.SESSION}")
        assert answer.status_code in (200, 204), answer.text[:300]
        wait_until(
            lambda: self.http.get(f"/api/sessions/{self.SESSION}").status_code == 404,
            what="session default removed (404)",
        )
