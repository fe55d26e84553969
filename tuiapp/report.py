"""`tuiapp check`: one sweep of the fleet, printed as a table, JSON or Prometheus text.

Exit codes follow the monitoring-plugin (Nagios) convention:
0 every non-muted instance WORKING (or in its expected status); 1 some STARTING or
PENDING and nothing worse; 2 any other bad status, UNREACHABLE included; 3 an
instance still UNKNOWN after the sweep with nothing critical (config and usage
errors are 3 too, raised before we get here).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

import httpx

from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.durations import rough_duration
from tuiapp.metrics import FleetFacts, render_text
from tuiapp.model import Status, iso_utc
from tuiapp.providers.text import one_line
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.tracker import snapshot_outages

__all__ = [
    "CheckResult",
    "check_exit_code",
    "note_words",
    "render_json",
    "render_prometheus",
    "render_table",
    "run_check",
    "sweep",
]

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
VERDICTS = {
    EXIT_OK: "OK",
    EXIT_WARNING: "WARNING",
    EXIT_CRITICAL: "CRITICAL",
    EXIT_UNKNOWN: "UNKNOWN",
}
NOT_POLLED = "not polled (rate budget or no answer)"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One sweep's rows, the account-wide outages it found, and when it ended."""

    rows: Sequence[Row]
    outages: Mapping[str, str]  # account -> the outage message (tracker.py's rule)
    checked_at: float

    @property
    def exit_code(self) -> int:
        return check_exit_code(self.rows)

    @property
    def complete(self) -> bool:
        """Every instance answered or was accounted for (nothing left unread)."""
        return all(row.obs is not None for row in self.rows)


def _effective(row: Row) -> Status:
    """The status check judges: an expected status counts as fine."""
    if row.instance.expect is not None and row.status == row.instance.expect:
        return Status.WORKING
    return row.status


def check_exit_code(rows: Iterable[Row]) -> int:
    statuses = [_effective(row) for row in rows if not row.instance.muted]
    if any(s.is_bad and not s.is_transient for s in statuses):
        return EXIT_CRITICAL
    if any(s is Status.UNKNOWN for s in statuses):
        return EXIT_UNKNOWN
    if any(s.is_transient for s in statuses):
        return EXIT_WARNING
    return EXIT_OK


def _error(row: Row) -> str | None:
    if row.obs is None:
        return NOT_POLLED if row.status is Status.UNKNOWN else None
    text = row.obs.error or row.last_error
    return one_line(GLOBAL_REDACTOR.redact(text)) if text else None


def note_words(row: Row) -> str:
    """The NOTE column: what the TUI's note says, in words (``logged out``, ``http 503``).

    The full error text stays in ``--json``'s ``error``; class names never reach here.
    """
    notes: list[str] = []
    if row.instance.muted:
        notes.append("muted")
    if row.instance.expect is not None and row.status == row.instance.expect:
        notes.append("expected")
    if row.obs is None:
        if row.status is Status.UNKNOWN:
            notes.append(NOT_POLLED)
    elif row.status.is_bad or row.obs.keep_last:
        if row.obs.reason:
            notes.append(str(row.obs.reason).replace("_", " "))
        elif row.obs.error_kind is not None:
            notes.append(str(row.obs.error_kind).replace("_", " "))
    return "; ".join(notes)


def _record(row: Row) -> dict[str, Any]:
    obs = row.obs
    return {
        "name": row.instance.name,
        "account": row.instance.account,
        "provider": row.account.provider,
        "id": row.instance.id,
        "status": row.status.value,
        "raw_status": obs.raw_status if obs else None,
        "reason": obs.reason if obs else None,
        "latency_ms": round(obs.latency_ms, 1) if obs and obs.latency_ms is not None else None,
        # Only a known start time: a first-seen lower bound would read as exact here.
        "since": iso_utc(row.since) if row.since_exact else None,
        "error": _error(row),
        "expected": row.instance.expect is not None and row.status == row.instance.expect,
        "muted": row.instance.muted,
    }


def _ordered(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-_effective(r).severity, r.instance.name))


def _worst_first() -> list[Status]:
    return sorted(Status, key=lambda s: (-s.severity, list(Status).index(s)))


def _summary(rows: Sequence[Row]) -> dict[str, int]:
    """Instances per status, worst status first."""
    counts = Counter(row.status for row in rows)
    return {status.value: counts[status] for status in _worst_first() if counts[status]}


def render_json(result: CheckResult) -> str:
    code = result.exit_code
    payload = {
        "checked_at": iso_utc(result.checked_at),
        "verdict": VERDICTS[code],
        "exit_code": code,
        "summary": _summary(result.rows),
        "outages": [
            {"account": account, "message": message}
            for account, message in sorted(result.outages.items())
        ],
        "instances": [_record(row) for row in _ordered(result.rows)],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def render_prometheus(result: CheckResult) -> str:
    """Text for node_exporter's textfile collector: every state as a 0/1 series per
    instance, plus ``tuiapp_check_success`` and ``tuiapp_check_timestamp_seconds``."""
    facts = FleetFacts(
        rows=result.rows,
        outages=result.outages,
        timestamp=result.checked_at,
        success=result.complete,
        exit_code=result.exit_code,
    )
    return render_text(facts).rstrip("\n")


def _since_text(row: Row, now: float) -> str:
    if row.since is None:
        return ""
    if row.since_exact:
        return rough_duration(now - row.since)
    if now - row.since >= 1:
        return f"≥ {rough_duration(now - row.since)}"  # only a lower bound: first seen by tuiapp
    return "first seen"  # no earlier reading in the state dir


def render_table(result: CheckResult) -> str:
    now = result.checked_at
    header = ("STATUS", "NAME", "ACCOUNT", "PROVIDER", "SINCE", "LATENCY", "NOTE")
    body: list[tuple[str, ...]] = []
    for row in _ordered(result.rows):
        obs = row.obs
        latency = f"{obs.latency_ms:.0f}ms" if obs and obs.latency_ms is not None else ""
        body.append(
            (
                f"{row.status.glyph} {row.status.value}",
                row.instance.name,
                row.instance.account,
                row.account.provider,
                _since_text(row, now),
                latency,
                one_line(note_words(row), 80),
            )
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    out = []
    for line in [header, *body]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    out.append("")
    summary = ", ".join(f"{status} {count}" for status, count in _summary(result.rows).items())
    out.append(f"{len(result.rows)} instances: {summary}")
    for account, message in sorted(result.outages.items()):
        named = message if message.startswith(account) else f"{account}: {message}"
        out.append(f"OUTAGE {named}")
    out.append(f"verdict: {VERDICTS[result.exit_code]} (exit {result.exit_code})")
    return "\n".join(out)


async def sweep(
    fleet: FleetConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
) -> CheckResult:
    """One sweep of the whole fleet on the poller's machinery."""
    from tuiapp.runtime import open_check

    async with open_check(fleet, transport=transport, clock=clock) as runtime:
        await runtime.poller.sweep_once()
        return CheckResult(
            rows=list(runtime.poller.rows.values()),
            outages={
                **snapshot_outages(runtime.poller.rows.values()),
                **runtime.poller.tracker.outages,
            },
            checked_at=clock(),
        )


def select_tags(fleet: FleetConfig, tags: Sequence[str]) -> FleetConfig:
    if not tags:
        return fleet
    wanted = set(tags)
    instances = tuple(inst for inst in fleet.instances if wanted & set(inst.tags))
    return replace(fleet, instances=instances)


def run_check(
    fleet: FleetConfig,
    *,
    fmt: str = "table",
    tags: Sequence[str] = (),
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    selected = select_tags(fleet, tags)
    if tags and not selected.instances:
        print(f"tuiapp: no instance has tag {', '.join(tags)}", file=sys.stderr)
        return EXIT_UNKNOWN
    result = asyncio.run(sweep(selected, transport=transport, clock=clock))
    if fmt == "json":
        text = render_json(result)
    elif fmt == "prometheus":
        text = render_prometheus(result)
    else:
        text = render_table(result)
    try:
        print(GLOBAL_REDACTOR.redact(text), file=out)
        out.flush()
    except BrokenPipeError:  # `tuiapp check | head`: the reader left; the verdict still stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return result.exit_code
