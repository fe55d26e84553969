"""`tuiapp check`: one sweep of the fleet, printed as a table, JSON or Prometheus text.

Exit codes follow the monitoring-plugin (Nagios) convention:
0 every non-muted instance WORKING (or in its expected status); 1 some STARTING or
PENDING and nothing worse; 2 any other bad status, UNREACHABLE included; 3 an
instance still UNKNOWN after the sweep with nothing critical (config and usage
errors are 3 too, raised before we get here).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import TYPE_CHECKING, TextIO

from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.durations import rough_duration
from tuiapp.model import Status, iso_utc
from tuiapp.providers.text import one_line
from tuiapp.report_json import columns_json
from tuiapp.report_records import NOT_POLLED, RECORD_KEYS, ordered, record_columns
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.tracker import list_outage_message, snapshot_outages

if TYPE_CHECKING:
    import httpx

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


@dataclass(frozen=True, slots=True, repr=False)
class CheckResult:
    """One sweep's rows, the account-wide outages it found, and when it ended."""

    rows: Sequence[Row]
    outages: Mapping[str, str]  # account -> the outage message (tracker.py's rule)
    checked_at: float
    unknown_accounts: frozenset[str] = frozenset()  # a list call failed, no rows: CRITICAL

    def __repr__(self) -> str:
        # Counts only: asyncio.run may repr the task that returned this (Python 3.11's
        # signal.getsignal formats its handler), and 100,000 rows took seconds to repr.
        return (
            f"<CheckResult rows={len(self.rows)} outages={len(self.outages)}"
            f" checked_at={iso_utc(self.checked_at)}>"
        )

    @property
    def exit_code(self) -> int:
        return EXIT_CRITICAL if self.unknown_accounts else check_exit_code(self.rows)

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
    rows = rows if isinstance(rows, Sequence) else list(rows)
    # ``_effective`` of every non-muted row; most have no ``expect``: their status as it is
    statuses = {
        row.status for row in rows if row.instance.expect is None and not row.instance.muted
    }
    statuses.update(
        _effective(row)
        for row in rows
        if row.instance.expect is not None and not row.instance.muted
    )
    if any(s.is_bad and not s.is_transient for s in statuses):
        return EXIT_CRITICAL
    if Status.UNKNOWN in statuses:
        return EXIT_UNKNOWN
    if any(s.is_transient for s in statuses):
        return EXIT_WARNING
    return EXIT_OK


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


_STATUS = attrgetter("status")


def _worst_first() -> list[Status]:
    return sorted(Status, key=lambda s: (-s.severity, list(Status).index(s)))


def _summary(rows: Sequence[Row]) -> dict[str, int]:
    """Instances per status, worst status first."""
    counts = Counter(map(_STATUS, rows))
    return {status.value: counts[status] for status in _worst_first() if counts[status]}


def render_json(
    result: CheckResult, redact: Callable[[str], str] | None = None, *, code: int | None = None
) -> str:
    """The report as ``json.dumps(payload, indent=2, ensure_ascii=False)`` writes it.

    The same text, byte for byte, without the pure-Python encoder that ``indent`` means
    (2.6 s of CPU for 100,000 instances): the head goes through ``json.dumps``, the
    instances' records through ``report_json.columns_json``.

    ``redact``: masks secrets in the text (``check`` passes the global redactor's). The
    head is redacted as text, the records' strings before they are encoded (each
    distinct one once: a third of the text to scan, and a secret JSON would escape is
    still recognised).
    """
    if code is None:  # ``check`` passes the one it returns: one pass over the rows, not two
        code = result.exit_code
    head = {
        "checked_at": iso_utc(result.checked_at),
        "verdict": VERDICTS[code],
        "exit_code": code,
        "summary": _summary(result.rows),
        "outages": [
            {"account": account, "message": message}
            for account, message in sorted(result.outages.items())
        ],
        "instances": [],
    }
    text = json.dumps(head, indent=2, ensure_ascii=False)
    if redact is not None:
        text = redact(text)
    rows = ordered(result.rows)
    if not rows:
        return text
    empty = '"instances": []\n}'
    if not text.endswith(empty):  # "instances" is the head's last key: never happens
        raise AssertionError("the report's head does not end with its instances")
    body = columns_json(RECORD_KEYS, record_columns(rows), redact)
    return text[: -len(empty)] + '"instances": [\n    ' + body + "\n  ]\n}"


def render_prometheus(result: CheckResult) -> str:
    """Text for node_exporter's textfile collector: every state as a 0/1 series per
    instance, plus ``tuiapp_check_success`` and ``tuiapp_check_timestamp_seconds``."""
    from tuiapp.metrics import FleetFacts, render_text  # prometheus-client: only for this

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
    for row in ordered(result.rows):
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
    out.append(f"{len(result.rows)} instances: {summary}" if summary else "0 instances")
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
        tracker = runtime.poller.tracker
        unknown = {  # a list call failed and no row says so: every instance there unknown
            account: list_outage_message(account, why)
            for account, why in tracker.list_failures.items()
            if not tracker.account_rows.get(account)
        }
        return CheckResult(
            rows=list(runtime.poller.rows.values()),
            outages={
                **unknown,
                **snapshot_outages(runtime.poller.rows.values()),
                **tracker.outages,
            },
            checked_at=clock(),
            unknown_accounts=frozenset(unknown),
        )


def select_tags(fleet: FleetConfig, tags: Sequence[str]) -> FleetConfig:
    if not tags:
        return fleet
    wanted = set(tags)
    instances = tuple(inst for inst in fleet.instances if wanted & set(inst.tags))
    return replace(fleet, instances=instances)


# check's young-generation threshold: one sweep allocates a few objects per instance that
# all live until exit, and at the default (700) the collector runs thousands of times over
# them (a sixth of the CPU at 100,000 instances). Cycles are still collected.
CHECK_GC_THRESHOLD = 50_000
# ... and the older generations' (young collections between two of the middle generation,
# middle between two full ones): at the defaults (10) every ten young collections walk the
# rows that survived them again, and a full collection walks all of them, for garbage that
# died young if at all (a tenth of the CPU at 100,000 instances; 50 million allocations
# before the first middle collection).
CHECK_GC_OLD_THRESHOLD = 1_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect garbage less often for one sweep and its report; the thresholds after as before.

    On the way out every object the collector tracks is moved to its oldest generation
    (``gc.freeze`` then ``gc.unfreeze``: no scan): with the young threshold back at its
    default, the next allocation would otherwise start a collection of everything the
    sweep made (a full one, 0.2 s at 100,000 instances) just before the process ends.
    Cycles among them are collected by the next full collection, as any old object's
    (where something else froze objects for good already, these stay frozen with them).
    """
    before = gc.get_threshold()
    gc.set_threshold(
        max(before[0], CHECK_GC_THRESHOLD),
        *(max(old, CHECK_GC_OLD_THRESHOLD) for old in before[1:]),
    )
    try:
        yield
    finally:
        frozen = gc.get_freeze_count()  # objects another part froze for good stay frozen
        gc.freeze()
        if not frozen:
            gc.unfreeze()
        gc.set_threshold(*before)


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
    with _fewer_collections():
        result = asyncio.run(sweep(selected, transport=transport, clock=clock))
        code = result.exit_code
        if fmt == "json":
            text = render_json(result, redact=GLOBAL_REDACTOR.redact, code=code)
        elif fmt == "prometheus":
            text = GLOBAL_REDACTOR.redact(render_prometheus(result))
        else:
            text = GLOBAL_REDACTOR.redact(render_table(result))
    try:
        print(text, file=out)
        out.flush()
    except BrokenPipeError:  # `tuiapp check | head`: the reader left; the verdict still stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code
