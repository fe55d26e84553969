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
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.durations import rough_duration
from tuiapp.model import Status, iso_utc
from tuiapp.providers.text import one_line
from tuiapp.secrets import GLOBAL_REDACTOR

if TYPE_CHECKING:
    from tuiapp.poller import Row

__all__ = [
    "check_exit_code",
    "render_json",
    "render_prometheus",
    "render_table",
    "run_check",
    "sweep",
]

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


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
        return "not polled (rate budget or no answer)" if row.status is Status.UNKNOWN else None
    text = row.obs.error or row.last_error
    return one_line(GLOBAL_REDACTOR.redact(text)) if text else None


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


def render_json(rows: Sequence[Row], now: float) -> str:
    summary = Counter(row.status.value for row in rows)
    payload = {
        "checked_at": iso_utc(now),
        "summary": {
            status.value: summary[status.value] for status in Status if summary[status.value]
        },
        "instances": [_record(row) for row in _ordered(rows)],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(rows: Sequence[Row]) -> str:
    lines = [
        "# HELP tuiapp_instance_up 1 when the instance is WORKING.",
        "# TYPE tuiapp_instance_up gauge",
    ]
    ordered = sorted(rows, key=lambda r: r.instance.name)

    def labels(row: Row, **extra: str) -> str:
        pairs = {
            "name": row.instance.name,
            "account": row.instance.account,
            "provider": row.account.provider,
            **extra,
        }
        return ",".join(f'{key}="{_label(value)}"' for key, value in pairs.items())

    for row in ordered:
        lines.append(f"tuiapp_instance_up{{{labels(row)}}} {int(row.status is Status.WORKING)}")
    lines += [
        "# HELP tuiapp_instance_status 1 for the instance's current normalized status.",
        "# TYPE tuiapp_instance_status gauge",
    ]
    for row in ordered:
        lines.append(f"tuiapp_instance_status{{{labels(row, status=row.status.value)}}} 1")
    lines += [
        "# HELP tuiapp_check_latency_seconds Latency of the last status read.",
        "# TYPE tuiapp_check_latency_seconds gauge",
    ]
    for row in ordered:
        if row.obs is not None and row.obs.latency_ms is not None:
            seconds = row.obs.latency_ms / 1000.0
            lines.append(f"tuiapp_check_latency_seconds{{{labels(row)}}} {seconds:.4f}")
    return "\n".join(lines)


def render_table(rows: Sequence[Row], now: float) -> str:
    header = ("STATUS", "NAME", "ACCOUNT", "PROVIDER", "SINCE", "LATENCY", "NOTE")
    body: list[tuple[str, ...]] = []
    for row in _ordered(rows):
        record = _record(row)
        since = ""
        if row.since is not None and row.since_exact:
            since = rough_duration(now - row.since)
        elif row.since is not None and now - row.since >= 1:
            # only a lower bound: first seen by tuiapp
            since = f"≥ {rough_duration(now - row.since)}"
        latency = f"{record['latency_ms']:.0f}ms" if record["latency_ms"] is not None else ""
        notes = []
        if row.instance.muted:
            notes.append("muted")
        if record["expected"]:
            notes.append("expected")
        if record["error"]:
            notes.append(record["error"])
        elif record["reason"]:
            notes.append(record["reason"])
        body.append(
            (
                f"{row.status.glyph} {row.status.value}",
                row.instance.name,
                row.instance.account,
                row.account.provider,
                since,
                latency,
                one_line("; ".join(notes), 80),
            )
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    out = []
    for line in [header, *body]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    summary = Counter(row.status.value for row in rows)
    out.append("")
    out.append(
        f"{len(rows)} instances: "
        + ", ".join(
            f"{status.value} {summary[status.value]}" for status in Status if summary[status.value]
        )
    )
    return "\n".join(out)


async def sweep(
    fleet: FleetConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
) -> list[Row]:
    """One sweep of the whole fleet on the poller's machinery; returns its rows."""
    from tuiapp.runtime import open_check

    async with open_check(fleet, transport=transport, clock=clock) as runtime:
        await runtime.poller.sweep_once()
        return list(runtime.poller.rows.values())


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
    rows = asyncio.run(sweep(selected, transport=transport, clock=clock))
    now = clock()
    if fmt == "json":
        text = render_json(rows, now)
    elif fmt == "prometheus":
        text = render_prometheus(rows)
    else:
        text = render_table(rows, now)
    try:
        print(GLOBAL_REDACTOR.redact(text), file=out)
        out.flush()
    except BrokenPipeError:  # `tuiapp check | head`: the reader left; the verdict still stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return check_exit_code(rows)
