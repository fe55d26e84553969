"""End to end over a real socket: `tuiapp simulate` as a process, `tuiapp check` against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    config = tmp_path / "fleet.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuiapp", "simulate", "--port", "0", "--scenario", "incident",
         "--seed", "7", "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        # The config is written only once the port is bound: wait for the line that says so.
        for line in proc.stdout:
            if "config written" in line:
                break
        else:
            pytest.fail("simulate exited before writing its config")
        yield config, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUIAPP_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "tuiapp", "check", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_check_json_against_a_real_simulator_shows_the_incident(simulator) -> None:
    config, proc = simulator
    assert config.stat().st_mode & 0o077 == 0, "the written config holds tokens: 0600"
    started = time.monotonic()
    result = _check(config, "--json")
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    payload = json.loads(result.stdout)
    statuses = Counter(item["status"] for item in payload["instances"])
    assert len(payload["instances"]) == 40
    assert statuses["SCAN_QR_CODE"] == 2
    assert statuses["UNREACHABLE"] >= 3  # one account's provider is down
    assert statuses["FAILED"] >= 2
    assert statuses["WORKING"] >= 20
    banned = [item for item in payload["instances"] if item["reason"] == "banned"]
    assert len(banned) == 1 and banned[0]["provider"] == "evolution"
    down = {item["account"] for item in payload["instances"] if item["status"] == "UNREACHABLE"}
    assert len(down) == 1
    text = config.read_text()
    for item in payload["instances"]:
        assert item["error"] is None or "\n" not in item["error"]
    # No token from the config reaches the output.
    tokens = [line.split("=", 1)[1].strip().strip('"') for line in text.splitlines()
              if line.startswith("token =")]  # fmt: skip
    assert tokens
    for token in tokens:
        assert token not in result.stdout and token not in result.stderr
    assert proc.poll() is None, "the simulator is still serving"


def test_check_table_and_prometheus_against_a_real_simulator(simulator) -> None:
    config, _ = simulator
    table = _check(config)
    assert table.returncode == 2
    assert "SCAN_QR_CODE" in table.stdout and "40 instances" in table.stdout
    prom = _check(config, "--prometheus")
    assert prom.returncode == 2
    assert prom.stdout.count("tuiapp_instance_up{") == 40
