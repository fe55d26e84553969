"""Bulk actions: a staged run over several targets.

Refused targets are listed and skipped (each gets its ``refused`` audit line); the
rest run ``BULK_SLOTS`` (2) at a time, a slot freeing when its target ends; the first
target that ends ``failed``, ``unknown`` or ``not_recovered`` stops the run: targets in
progress finish, targets not started become ``aborted``, as after ``engine.abort()``.
Progress goes out as ``BulkProgressed`` (done, total, running, an ETA from the
targets finished so far).

Each target is ``ActionRunner._run`` with the bulk's outage rule: a bulk on an
account in an outage is refused unless ``allow_outage``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from tuiapp.actions import ActionRunner
from tuiapp.events import BulkProgressed
from tuiapp.guards import Verdict, clean_text
from tuiapp.model import ActionReport
from tuiapp.vocabulary import Outcome

__all__ = ["BULK_SLOTS", "run_bulk"]

log = logging.getLogger(__name__)

BULK_SLOTS = 2  # targets of a bulk action in progress at once
_STOPS_BULK = frozenset({Outcome.FAILED, Outcome.UNKNOWN, Outcome.NOT_RECOVERED})


async def run_bulk(
    engine: ActionRunner,
    names: Iterable[str],
    action: str,
    *,
    reason: str | None = None,
    override_reason: str | None = None,
    allow_outage: bool = False,
    expected: Mapping[str, Verdict] | None = None,
) -> list[ActionReport]:
    """A bulk: refused listed and skipped, 2 at a time, stop at the first failure.

    Reports come back in the order of ``names``. A target stops the run when it ends
    ``failed``, ``unknown`` or ``not_recovered``; targets in progress then finish,
    targets not started become ``aborted`` (as after ``abort()``).
    """
    if engine._abort_event is not None:
        raise RuntimeError("a bulk action is already running on this engine")
    targets = list(dict.fromkeys(names))
    expected = expected or {}
    bulk_outage = not allow_outage
    reports: dict[str, ActionReport] = {}
    queue: deque[str] = deque()
    now = engine.clock()
    data, problem = engine._snapshot()
    for name in targets:
        verdict = engine._assess(
            name,
            action,
            data=data,
            now=now,
            override_reason=clean_text(override_reason),
            bulk_outage=bulk_outage,
            state_problem=problem,
        )
        if verdict.allowed:
            queue.append(name)
            continue
        attempt = engine._attempt(name, action, reason, override_reason)
        before = expected.get(name, verdict)
        if not before.allowed:  # refused when it was planned: refused for that reason
            reports[name] = await engine.trail.refused(attempt, before.refusal or "refused")
            continue
        reports[name] = await engine.trail.declined(attempt, before, verdict)

    total = len(targets)
    engine._aborted = False
    engine._abort_event = abort_event = asyncio.Event()
    running: dict[asyncio.Task[ActionReport], tuple[str, float]] = {}
    durations: list[float] = []
    stop_reason: str | None = None

    def progress() -> None:
        left = len(queue) + len(running)
        if left == 0:
            eta: float | None = 0.0
        else:
            per_target = sum(durations) / len(durations) if durations else engine.verify_window / 2
            eta = per_target * math.ceil(left / BULK_SLOTS)
        engine._emit(BulkProgressed(len(reports), total, len(running), eta))

    abort_waiter = asyncio.ensure_future(abort_event.wait())
    try:
        progress()
        while queue or running:
            while queue and len(running) < BULK_SLOTS and stop_reason is None:
                name = queue.popleft()
                task = asyncio.ensure_future(
                    engine._run(
                        name,
                        action,
                        reason,
                        override_reason,
                        expected.get(name),
                        bulk_outage=bulk_outage,
                    )
                )
                running[task] = (name, engine.clock())
                progress()
            if stop_reason is not None:
                for name in queue:
                    reports[name] = await _aborted_report(engine, name, action, reason, stop_reason)
                queue.clear()
                progress()
                if not running:
                    break
            waiters: set[asyncio.Future[Any]] = set(running)
            if not abort_waiter.done():
                waiters.add(abort_waiter)
            finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is abort_waiter:
                    stop_reason = stop_reason or "aborted by the operator"
                    continue
                name, started = running.pop(task)  # type: ignore[arg-type]
                try:
                    report = task.result()
                except Exception as exc:
                    log.exception("bulk target %s failed", name)
                    report = ActionReport(
                        name,
                        action,
                        "",
                        Outcome.FAILED,
                        f"internal error ({type(exc).__name__})",
                    )
                reports[name] = report
                durations.append(engine.clock() - started)
                if report.outcome in _STOPS_BULK:
                    stop_reason = stop_reason or f"{name} ended {report.outcome}"
            if engine._aborted:
                stop_reason = stop_reason or "aborted by the operator"
            progress()
    finally:
        abort_waiter.cancel()
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        engine._abort_event = None
    return [reports[name] for name in targets]


async def _aborted_report(
    engine: ActionRunner, name: str, action: str, reason: str | None, why: str
) -> ActionReport:
    attempt = engine._attempt(name, action, reason, None)
    message = f"not started: {why}"
    note = await engine.trail.note(attempt, Outcome.ABORTED, message=message)
    return engine.trail.finish(
        ActionReport(name, action, attempt.action_id, Outcome.ABORTED, message + note)
    )
