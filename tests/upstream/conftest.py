"""The upstream tier: real Evolution API 2.3.6 and WAHA Core 2024.10.8 on loopback.

Each server starts once per run (session fixtures) through the lab's own scripts and
stops at the end. When the lab cannot start here, every test of the tier skips with
one line saying why; with ``TUIAPP_UPSTREAM_REQUIRE=1`` (CI on a machine that has
node) that is a failure instead. The tier's time is printed in the terminal summary.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from upstream_fleet import EvoFleet, Fleet
from upstream_lab import (
    REQUIRE_ENV,
    EvolutionLab,
    LabUnavailable,
    Server,
    WahaLab,
    lab_dir,
    start_server,
    stop_server,
)

# Evolution's sockets retry without backoff offline; 1000 ms keeps a connecting instance
# at a few % CPU (README "quirks"). Instances created without a QR never connect at all.
EVOLUTION_ENV = {"LOOPBACK_ONLY_DELAY_MS": "1000"}
WAHA_ENV = {"WAHA_ENGINE": "NOWEB"}


@dataclass
class _Tier:
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    servers: list[Server] = field(default_factory=list)
    skip_reason: str | None = None
    first_start: float | None = None


_TIER = _Tier()
LAB_SKIP = "upstream lab unavailable: "


def lab_unavailable(reason: str) -> NoReturn:
    """Skip (or, when required, fail) with one line; one call site, so pytest folds them."""
    message = f"{LAB_SKIP}{reason}"
    _TIER.skip_reason = message
    if os.environ.get(REQUIRE_ENV, "") == "1":
        pytest.fail(f"{message} (and {REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


def _start(kind: str, env: dict[str, str]) -> Server:
    try:
        server = start_server(kind, lab_dir(), env=env)
    except LabUnavailable as exc:
        lab_unavailable(str(exc))
    _TIER.servers.append(server)
    return server


@pytest.fixture(scope="session")
def evolution_server() -> Iterator[Server]:
    server = _start("evolution", EVOLUTION_ENV)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def waha_server() -> Iterator[Server]:
    server = _start("waha", WAHA_ENV)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def evo(evolution_server: Server) -> Iterator[EvolutionLab]:
    lab = EvolutionLab(evolution_server)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def waha(waha_server: Server) -> Iterator[WahaLab]:
    lab = WahaLab(waha_server)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def evo_fleet(evo: EvolutionLab) -> EvoFleet:
    """The Evolution instances the CLI and TUI tests share (created once, see EvoFleet)."""
    return EvoFleet.create(evo, run=uuid.uuid4().hex[:6])


@pytest.fixture(scope="session")
def evo_fifty(evo: EvolutionLab, evo_fleet: EvoFleet) -> list[str]:
    """50 instances on one account, every one stored ``open`` while live ``close``."""
    return evo_fleet.create_fifty(evo)


@pytest.fixture
def fleet(
    tmp_path: Path, evolution_server: Server, waha_server: Server, evo_fleet: EvoFleet
) -> Fleet:
    return Fleet(tmp_path, evolution_server, waha_server, evo_fleet)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every "lab unavailable" skip reported at one place, so that even ``-rs`` folds
    them into one line (pytest would name each test's own line)."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and LAB_SKIP in str(longrepr[2]):
        where = os.path.relpath(__file__, item.config.rootpath)
        report.longrepr = (where, lab_unavailable.__code__.co_firstlineno, longrepr[2])
    return report


# ---- the tier's time in the test output ---------------------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "upstream" not in report.keywords:
        return
    if _TIER.first_start is None:
        _TIER.first_start = time.monotonic()
    _TIER.seconds += report.duration
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _TIER.outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TIER.outcomes:
        return
    counts = ", ".join(f"{n} {what}" for what, n in sorted(_TIER.outcomes.items()))
    line = f"upstream tier: {counts} in {_TIER.seconds:.1f} s"
    if _TIER.servers:
        line += "; " + ", ".join(s.describe() for s in _TIER.servers)
    if _TIER.skip_reason and not _TIER.servers:
        line = f"upstream tier: skipped ({_TIER.skip_reason.removeprefix(LAB_SKIP)})"
    terminalreporter.write_line(line)
