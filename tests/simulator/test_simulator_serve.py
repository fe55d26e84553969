"""The simulator over a real socket: uvicorn in a thread, and `python -m tuiapp.simulator`."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tuiapp.simulator import build_fleet
from tuiapp.simulator.serve import start_in_thread, write_fleet_config

REPO = Path(__file__).resolve().parents[2]


def test_start_in_thread_serves_a_health_and_stops() -> None:
    fleet = build_fleet(12, scenario="calm")
    running = start_in_thread(fleet, port=0, latency=False)
    try:
        assert running.url.startswith("http://127.0.0.1:")
        inst = next(i for i in fleet.instances if i.provider == "hypersender")
        token = fleet.accounts[inst.account].token
        with httpx.Client(base_url=running.base_url("hypersender"), timeout=5) as client:
            r = client.get(f"/{inst.id}/health", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["status"] == "WORKING"
        assert running.sim.requests(instance=inst.name)[0]["status"] == 200
        # a reset fault really drops the connection
        running.sim.force(inst.name, fault="reset")
        with (
            httpx.Client(base_url=running.base_url("hypersender"), timeout=5) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.get(f"/{inst.id}/health", headers={"Authorization": f"Bearer {token}"})
        # a trickled body arrives one byte at a time over the socket too
        running.sim.force(inst.name, fault="trickle", interval=30.0)
        with (
            httpx.Client(base_url=running.base_url("hypersender"), timeout=5) as client,
            client.stream(
                "GET", f"/{inst.id}/health", headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            assert response.status_code == 200
            assert next(response.iter_raw()) == b"{"
    finally:
        running.stop()
    assert not running._thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url + "/_sim/instances", timeout=2)


def test_written_config_is_private_and_loads(tmp_path: Path) -> None:
    fleet = build_fleet(12)
    path = tmp_path / "fleet.toml"
    path.write_text("old")
    os.chmod(path, 0o644)
    env = write_fleet_config(path, fleet, "http://127.0.0.1:1234", token_env=False)
    assert env == {}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "simulator-only tokens" in text
    config = tomllib.loads(text)
    assert config["accounts"]["hs-prod"]["base_url"] == "http://127.0.0.1:1234/hypersender"


def test_simulate_process_writes_config_after_binding_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuiapp.simulator",
            "--port",
            "0",
            "--instances",
            "12",
            "--write-config",
            str(path),
            "--token-env",
            "--no-latency",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # the URL line comes last, once the config is written
            lines.append(line)
            if line.startswith("listening on "):
                break
        url = lines[-1].split()[2]
        config = tomllib.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert config["accounts"]["waha-eu"]["base_url"] == f"{url}/waha"
        exports = dict(
            x.removeprefix("export ").strip().split("=", 1)
            for x in lines
            if x.startswith("export ")
        )
        token = exports[config["accounts"]["waha-eu"]["token_env"]]
        assert token not in path.read_text()
        name = next(i["id"] for i in config["instances"] if i["account"] == "waha-eu")
        r = httpx.get(f"{url}/waha/api/sessions/{name}", headers={"X-Api-Key": token}, timeout=5)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
