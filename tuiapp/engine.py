"""The engine API: what a view (the TUI, the CLI, a future hub client) asks of tuiapp.

``ActionEngine`` is the one object a view talks to; a remote client can offer the same
methods unchanged. It builds on ``tuiapp.actions.ActionRunner`` (one target: guard
rails, exactly-once sending, verification, audit) and adds:

    plan()          the verdict of every target of one request (tuiapp.guards: refused
                    with why and the next step, or allowed with warnings), with a bulk's
                    outage hold; what ``--dry-run`` prints and ``run_plan()`` executes.
    run_plan()      carry a plan out: ``run`` for one target, ``run_bulk`` for several.
    record_refusals()  the ``refused`` audit lines of a plan's refused targets, once
                    the operator decided (never for a cancelled preview).
    verdict(s)()    the guard rails' word on targets now, without a plan.
    run()           one target (``ActionRunner.run``).
    run_bulk()      tuiapp.bulk: refused targets listed and skipped, the rest 2 at a
                    time, the first failure or non-recovery stops the run; ``abort()``
                    turns what has not started into ``aborted``.
    recover_interrupted()   tuiapp.recovery, once at start: ``sent`` audit lines
                    without an outcome are reported ``unknown``, the instance in cooldown.
    subscribe()     the typed event stream (tuiapp.events: ActionProgressed,
                    ActionFinished, BulkProgressed).
    snapshot()      the fleet as the views show it (``FleetSnapshot``): rows, outages,
                    the network state; plain frozen data a hub can serve as it is.
    in_flight       the names with an action running in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from tuiapp import bulk, recovery
from tuiapp.actions import LOCK_SLACK, VERIFY_INTERVAL, ActionRunner
from tuiapp.bulk import BULK_SLOTS
from tuiapp.events import ActionFinished, EngineEvent
from tuiapp.guards import ActionPlan, Verdict, clean_text
from tuiapp.model import ActionReport
from tuiapp.offload import run_blocking
from tuiapp.snapshot import FleetSnapshot, fleet_snapshot

__all__ = [
    "BULK_SLOTS",
    "LOCK_SLACK",
    "VERIFY_INTERVAL",
    "ActionEngine",
    "ActionPlan",
    "ActionReport",
    "FleetSnapshot",
    "Verdict",
]


class ActionEngine(ActionRunner):
    """The engine API every view uses; see the module docstring.

    Subscribers get ``ActionProgressed`` (stage sending, sent, verifying, done),
    ``ActionFinished`` and ``BulkProgressed`` synchronously on the engine's loop.
    """

    # ---- events and the fleet ------------------------------------------------------------

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> None:
        """``callback(event)`` for every event, synchronously on the engine's loop."""
        self._subscribers.append(callback)

    def snapshot(self) -> FleetSnapshot:
        """The fleet now, as every view shows it (rows, outages, network state)."""
        return fleet_snapshot(
            self.poller.tracker, self.fleet, now=self.clock(), in_flight=self.in_flight
        )

    # ---- verdicts and plans ----------------------------------------------------------------

    def verdict(self, name: str, action: str, *, override_reason: str | None = None) -> Verdict:
        """The guard-rail verdict for ``action`` on ``name`` now (KeyError: no such row)."""
        return self.verdicts([name], action, override_reason=override_reason)[0]

    def verdicts(
        self, names: Iterable[str], action: str, *, override_reason: str | None = None
    ) -> list[Verdict]:
        """Verdicts for several targets from one read of the shared state."""
        data, problem = self._snapshot()
        now = self.clock()
        reason = clean_text(override_reason)
        return [
            self._assess(
                name, action, data=data, now=now, override_reason=reason, state_problem=problem
            )
            for name in names
        ]

    def plan(
        self,
        targets: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> ActionPlan:
        """The verdict of every target as ``run_plan`` will act on it (KeyError: no such row).

        One read of the shared state. A bulk on an account in an outage is held (each of
        its targets refused) unless ``allow_outage``; a single target only warns.
        """
        names = list(dict.fromkeys(targets))
        bulk = len(names) > 1
        data, problem = self._snapshot()
        now = self.clock()
        cleaned = clean_text(override_reason)
        verdicts = tuple(
            self._assess(
                name,
                action,
                data=data,
                now=now,
                override_reason=cleaned,
                bulk_outage=bulk and not allow_outage,
                state_problem=problem,
            )
            for name in names
        )
        outages = self.poller.outage_accounts() if bulk else set()
        held = sorted({self.poller.rows[n].account.name for n in names} & outages)
        return ActionPlan(
            action=action,
            verdicts=verdicts,
            reason=clean_text(reason),
            override_reason=cleaned,
            allow_outage=allow_outage,
            outage_accounts=tuple(held),
        )

    async def run_plan(self, plan: ActionPlan) -> list[ActionReport]:
        """Carry out ``plan``: reports in the plan's order (never raises; see ``run``).

        A target the plan refused is refused with the plan's reason (one ``refused``
        audit line, nothing sent), even if it would be allowed by now. Nothing allowed:
        only those lines. One target: ``run``. Several: ``run_bulk`` over all of them.
        """
        if not plan.allowed:
            return await self.record_refusals(plan)
        if not plan.bulk:
            verdict = plan.verdicts[0]
            report = await self.run(
                verdict.name,
                plan.action,
                reason=plan.reason,
                override_reason=plan.override_reason,
                expected=verdict,
            )
            return [report]
        return await self.run_bulk(
            plan.targets,
            plan.action,
            reason=plan.reason,
            override_reason=plan.override_reason,
            allow_outage=plan.allow_outage,
            expected={v.name: v for v in plan.verdicts},
        )

    async def record_refusals(self, plan: ActionPlan) -> list[ActionReport]:
        """One ``refused`` audit line (and ActionFinished) per target the plan refused.

        For a view that asks before it acts: it writes these once the operator decided
        (confirmed a bulk that skips them, or pressed a key that would have acted on a
        refused target alone), then runs ``run_plan(plan.allowed_only())``. A preview
        that is cancelled writes nothing: it was not an attempt.
        """
        return [
            await self.run(
                verdict.name,
                plan.action,
                reason=plan.reason,
                override_reason=plan.override_reason,
                expected=verdict,
            )
            for verdict in plan.refused
        ]

    # ---- crash recovery ------------------------------------------------------------------

    def recover_interrupted(self) -> list[ActionReport]:
        """``sent`` lines without an outcome (tuiapp was killed after sending) -> ``unknown``.

        Call once at start. Each is written to the audit log as ``unknown`` (so it is
        reported once), and its instance is held in cooldown until the end of the longest
        verification it could have had. An action another live process is still running
        is left alone. This blocks on the state lock: on an event loop, await
        ``arecover_interrupted`` instead.
        """
        reports = self._recover()
        for report in reports:
            self._emit(ActionFinished(report))
        return reports

    async def arecover_interrupted(self) -> list[ActionReport]:
        """``recover_interrupted`` with its lock wait and file I/O in a worker thread."""
        reports = await run_blocking(lambda _cancel: self._recover())
        for report in reports:
            self._emit(ActionFinished(report))
        return reports

    def _recover(self) -> list[ActionReport]:
        return recovery.recover(
            self.audit,
            self.state,
            now=self.clock(),
            lock_ttl=self.lock_ttl,
            hold=max(self.stabilize, self.verify_window),
        )

    # ---- bulk (tuiapp.bulk) ---------------------------------------------------------------

    async def run_bulk(
        self,
        names: Iterable[str],
        action: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
        expected: Mapping[str, Verdict] | None = None,
    ) -> list[ActionReport]:
        """A bulk: refused listed and skipped, 2 at a time, stop at the first failure.

        Reports come back in the order of ``names``; see ``tuiapp.bulk``.
        """
        return await bulk.run_bulk(
            self,
            names,
            action,
            reason=reason,
            override_reason=override_reason,
            allow_outage=allow_outage,
            expected=expected,
        )

    def abort(self) -> None:
        """Stop a bulk action: targets not started become ``aborted``; running ones finish."""
        self._aborted = True
        if self._abort_event is not None:
            self._abort_event.set()
