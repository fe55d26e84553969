"""contrib/prometheus checked by promtool, and a real Prometheus scraping a real hub.

Prometheus and promtool come from Debian's ``prometheus`` package (.ci/run installs it);
without them these tests skip with one line. The Prometheus started here listens on
127.0.0.1 with its storage in a temporary directory, scrapes the hub every second with
a viewer's token, and loads the shipped alert rules.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TOKENS, HubProc, wait_ready

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).exists(), reason="promtool not installed (Debian package prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(), reason="prometheus not installed (Debian package prometheus)"
)


def _promtool(*args: str, cwd: Path = CONTRIB) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_the_scrape_config_passes_promtool(tmp_path: Path) -> None:
    # The shipped file names /etc/prometheus/...; promtool wants those files to exist.
    text = (CONTRIB / "prometheus.yml").read_text()
    assert "/etc/prometheus/tuiapp-hub.token" in text
    (tmp_path / "tuiapp-hub.token").write_text("a-token\n")
    (tmp_path / "tuiapp-hub-ca.pem").write_text("")
    shutil.copy(CONTRIB / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(text.replace("/etc/prometheus/", f"{tmp_path}/"))
    checked = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prometheus(hub: HubProc, tmp_path: Path) -> Iterator[str]:
    token = tmp_path / "token"
    token.write_text(TOKENS["bob"])
    token.chmod(0o600)
    shutil.copy(CONTRIB / "alerts.yml", tmp_path / "alerts.yml")
    target = hub.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - alerts.yml\n"
        "scrape_configs:\n  - job_name: tuiapp-hub\n"
        "    authorization:\n      type: Bearer\n"
        f"      credentials_file: {token}\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _until(what: str, check: Any, deadline: float = 45.0) -> Any:
    """Ask ``check()`` until it returns something truthy (Prometheus scrapes on its own
    schedule: this waits for that condition, bounded, and says which one failed)."""
    end = time.monotonic() + deadline
    while True:
        try:
            result = check()
        except (httpx.HTTPError, ValueError):  # not up yet, or a starting server's non-JSON
            result = None
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"Prometheus never got there: {what}")
        time.sleep(0.25)


@needs_prometheus
async def test_prometheus_scrapes_the_hub_and_promql_finds_the_failed_instances(
    hub: HubProc, prometheus: str
) -> None:
    fleet = await wait_ready(hub)

    def query(expr: str) -> list[dict[str, Any]] | None:
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        data = answer.json()
        return data["data"]["result"] if data.get("status") == "success" else None

    up = _until("the hub is scraped", lambda: query('up{job="tuiapp-hub"} == 1'))
    assert up[0]["metric"]["job"] == "tuiapp-hub"
    failed = _until(
        "failed instances", lambda: query('tuiapp_instance_status{state="FAILED"} == 1')
    )
    found = {series["metric"]["name"] for series in failed}
    fleet = await wait_ready(hub)
    steady = {r["name"] for r in fleet["rows"] if r["status"] == "FAILED" and not r["flapping"]}
    flapping = {r["name"] for r in fleet["rows"] if r["flapping"]}
    assert steady and steady <= found
    assert found - steady <= flapping
    outage = query("tuiapp_account_outage == 1") or []
    assert {s["metric"]["account"] for s in outage} == {o["account"] for o in fleet["outages"]}
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert [g["name"] for g in rules] == ["tuiapp-hub"]
    evaluated = _until(
        "the alert rules evaluated",
        lambda: all(
            r.get("health") == "ok"
            for r in httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"][
                0
            ]["rules"]
        ),
    )
    assert evaluated
