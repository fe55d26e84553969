"""The action flow: r / c from any screen to a worker running the engine's plan.

    ActionRequested -> targets (marked rows, else the cursor row)
        -> [override: ReasonScreen asks why, listing what a reason would lift]
        -> engine.plan: every verdict, the bulk outage hold included
        -> nothing allowed: say why, send nothing (one target: its refusal audited)
        -> ConfirmScreen -> a worker in the "actions" group: engine.run_plan
           (a confirmed bulk's skipped targets audited as refused; a cancel audits nothing)

A refusal is audited only when the operator pressed a key that would have acted on
that target alone, or confirmed a bulk that skipped it: previewing a bulk and
cancelling it is not an attempt on anything. ``R`` / ``C`` with nothing a reason
could lift say so and open nothing.

The UI, the CLI (``--dry-run`` prints the same plan) and any other view share the
engine's one planner; this module only shows the plan and asks. The worker's own
progress comes back as engine events (the bridge); this module keeps the bookkeeping
the app needs when a worker ends (its targets, whether a bulk run is still going).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from textual.worker import Worker

from tuiapp.engine_api import RemotePlanner
from tuiapp.events import BulkProgressed
from tuiapp.guards import ActionPlan, Verdict
from tuiapp.secrets import redact
from tuiapp.ui.bridge import other_action_text
from tuiapp.ui.dialogs import ConfirmPlan, ConfirmScreen, ReasonScreen, Target
from tuiapp.ui.event_log import LogEntry
from tuiapp.ui.shell import Shell
from tuiapp.vocabulary import outcome_text

__all__ = ["ActionFlow"]

log = logging.getLogger("tuiapp.ui")


class ActionFlow:
    """Plan, reason, confirmation and the run, for one app (``Shell``)."""

    def __init__(self, app: Shell) -> None:
        self.app = app
        self._bulk: BulkProgressed | None = None  # the latest progress while a bulk runs
        self._bulk_at = 0.0  # when it came (the ETA counts down from there)
        self.bulk_running = False
        self._worker_targets: dict[str, tuple[str, ...]] = {}  # worker name -> its targets

    def targets(self) -> list[str]:
        """The marked rows (hidden ones included) in grid order, else the selected row."""
        model = self.app.model
        marked = model.marked_in_order()
        if marked:
            return marked
        return [model.cursor] if model.cursor is not None else []

    def request(self, names: list[str] | None, action: str, *, override: bool = False) -> None:
        """r / c (and the palette, and the detail view): the plan, then the dialog."""
        app = self.app
        if app.read_only:
            app.notify("Read-only mode: actions are off.", severity="warning")
            return
        targets = list(names) if names is not None else self.targets()
        if not targets:
            app.notify("No instance selected.", severity="warning")
            return
        if not override:
            self._plan(targets, action, None)
            return
        # What a reason would be asked to lift: the refusals without one, and the
        # accounts whose outage holds a bulk (listed once each, not per target).
        self._with_plan(
            targets, action, lambda plan: self._ask_reason(plan, targets, action), allow_outage=True
        )

    def _with_plan(
        self,
        targets: list[str],
        action: str,
        then: Callable[[ActionPlan], None],
        *,
        reason: str | None = None,
        override_reason: str | None = None,
        allow_outage: bool = False,
    ) -> None:
        """``then(plan)``: the local engine plans at once; a hub is asked in a worker
        (refused at once while it is out of reach: nothing sent, nothing queued)."""
        app = self.app
        engine = app.engine
        if not isinstance(engine, RemotePlanner):
            then(
                engine.plan(
                    targets,
                    action,
                    reason=reason,
                    override_reason=override_reason,
                    allow_outage=allow_outage,
                )
            )
            return
        planner = engine

        async def ask() -> None:
            try:
                plan = await planner.aplan(
                    targets,
                    action,
                    reason=reason,
                    override_reason=override_reason,
                    allow_outage=allow_outage,
                )
            except Exception as exc:  # the hub's refusal or its absence: one line
                app.notify(
                    f"{action} not sent: {redact(str(exc))}",
                    title="Nothing sent",
                    severity="warning",
                    markup=False,
                    timeout=10,
                )
                return
            then(plan)
            app.refresh_view()

        app.run_worker(ask(), name=f"plan {action}", group="plan", exit_on_error=False)

    def _ask_reason(self, plan: ActionPlan, targets: list[str], action: str) -> None:
        """The override's reason screen, listing what a reason would lift."""
        app = self.app
        noun = targets[0] if len(targets) == 1 else f"{len(targets)} instances"
        if not plan.outage_accounts and not any(v.overridable for v in plan.refused):
            self._nothing_to_override(plan, noun)
            return
        refusals = [f"{v.name}: {v.refusal}" for v in plan.refused]
        refusals += [
            f"{account}: account-wide outage (a bulk action needs the override)"
            for account in plan.outage_accounts
        ]

        def with_reason(reason: str | None) -> None:
            if reason:
                self._plan(targets, action, reason)
            else:
                app.notify("No override: nothing sent.")

        app.push_screen(
            ReasonScreen(f"Override for {action} of {noun}", refusals, app.clock), with_reason
        )

    def _nothing_to_override(self, plan: ActionPlan, noun: str) -> None:
        """R (or C) where no cooldown, loop breaker or outage hold stands in the way."""
        key = {"restart": "r", "reconnect": "c"}[plan.action]
        if plan.refused:
            first = plan.refused[0]
            why = f"{first.name} is refused for a reason an override cannot lift: {first.refusal}"
        else:
            why = f"{noun} {'is' if len(plan.verdicts) == 1 else 'are'} not refused"
        self.app.notify(
            f"Nothing to override: {why}. Use {key} to {plan.action}.",
            title="Nothing to override",
            severity="warning",
            markup=False,
        )

    def _plan(self, targets: list[str], action: str, override_reason: str | None) -> None:
        """The engine's plan, shown: refusals audited at once, the rest confirmed."""
        self._with_plan(
            targets,
            action,
            lambda plan: self._show_plan(plan, action),
            reason=override_reason,
            override_reason=override_reason,
            allow_outage=bool(override_reason),
        )

    def _show_plan(self, plan: ActionPlan, action: str) -> None:
        app = self.app
        allowed = tuple(self._target(verdict) for verdict in plan.allowed)
        skipped = tuple(self._target(verdict) for verdict in plan.refused)
        if not allowed:
            if not plan.bulk:  # the key would have acted on this target alone: audited
                self._record_refusals(plan)
            self._refused(skipped, action)
            return
        confirm = ConfirmPlan(plan, targets=allowed, skipped=skipped)
        app.push_screen(ConfirmScreen(confirm, app.clock), lambda ok: self._confirmed(confirm, ok))

    def _target(self, verdict: Verdict) -> Target:
        """One verdict as the dialog lists it."""
        account = self.app.poller.rows[verdict.name].account
        return Target(
            name=verdict.name,
            account=account.name,
            provider=account.provider,
            status=verdict.status,
            verdict=verdict,
            hidden=not self.app.model.is_shown(verdict.name),
        )

    def _record_refusals(self, plan: ActionPlan) -> None:
        """Every decided attempt gets its audit line: the engine writes each refusal (no send)."""
        self.app.run_worker(
            self.app.engine.record_refusals(plan),
            name=f"audit refusals of {plan.action}",
            group="actions",
            exit_on_error=False,
        )

    def _refused(self, skipped: tuple[Target, ...], action: str) -> None:
        """Nothing to send: say why (the first reason, and how to override if one can)."""
        app = self.app
        first = skipped[0].verdict
        hint = f" (shift+{action[0]} overrides it with a reason)" if first.overridable else ""
        if len(skipped) == 1:
            other = other_action_text(app, first.name, action)  # the event log says it too
            if " is refused too: " in other:
                # The provider lacks this action and the other one is refused for the row's
                # own trouble (a QR scan, a ban): that trouble is what a toast must show first.
                trouble = other.split(" is refused too: ", 1)[1]
                message = f"{first.name}: {trouble} ({first.refusal}; {other[2:].split(' is ')[0]}"
                message += " cannot help either)"
            else:
                message = f"{action} {first.name} refused: {first.refusal}{hint}{other}"
        else:
            message = (
                f"{action} refused for all {len(skipped)} targets; nothing sent. "
                f"First: {first.name}: {first.refusal}{hint}"
            )
        app.notify(message, title="Nothing sent", severity="warning", markup=False, timeout=10)

    def _confirmed(self, confirm: ConfirmPlan, ok: bool | None) -> None:
        """Confirmed: one worker runs what the plan allowed (its refusals are audited)."""
        app = self.app
        action = confirm.action
        if not ok:
            app.notify(f"{action.capitalize()} cancelled: nothing sent.")
            return
        app.model.marks.clear()
        if confirm.skipped:  # a confirmed bulk skips these: now their refusals are audited
            self._record_refusals(confirm.plan)
        plan = confirm.plan.allowed_only()
        app.model.keep_position(plan.targets)  # the next row comes under the cursor (k9s)
        if plan.bulk:
            self.bulk_running = True
            self._bulk = None
            name = f"bulk {action} of {len(plan.verdicts)}"
        else:
            target = plan.targets[0]
            app.notes.progressed(target, action, "sending", "", app.clock())
            name = f"{action} {target}"
        app.run_worker(
            app.engine.run_plan(plan),
            name=self._worker_name(name, plan.targets),
            group="actions",
            exit_on_error=False,
        )
        app.refresh_view()

    def _worker_name(self, base: str, targets: tuple[str, ...]) -> str:
        """A unique worker name, remembered with its targets (for failures, see ``failed``)."""
        name = base
        suffix = 1
        while name in self._worker_targets:
            suffix += 1
            name = f"{base} #{suffix}"
        self._worker_targets[name] = targets
        return name

    async def recover_interrupted(self) -> None:
        """Actions a killed tuiapp sent without hearing back: reported as unknown."""
        app = self.app
        try:
            for report in await app.engine.arecover_interrupted():
                text = redact(
                    f"{report.action} {report.name}: {outcome_text(report.outcome)} "
                    f"({report.message}); "
                    "the instance stays in cooldown"
                )
                app.log_entries([LogEntry(app.clock(), text, "note--bad")])
                app.notify(text, title="Interrupted action", severity="warning", markup=False)
        except Exception as exc:  # a broken audit log or state must not keep the grid away
            log.debug("recover_interrupted failed", exc_info=True)
            app.notify(
                f"Could not check for interrupted actions: {redact(str(exc))}",
                severity="warning",
                markup=False,
            )

    # ---- while it runs, and when an action worker ends ---------------------------------

    def bulk_progressed(self, event: BulkProgressed) -> None:
        """The engine's latest progress of the running bulk action (the status line)."""
        self._bulk = event
        self._bulk_at = self.app.clock()

    @property
    def bulk(self) -> BulkProgressed | None:
        """The latest progress, its ETA counted down to now (the tick repaints it)."""
        event = self._bulk
        if event is None or not event.eta_seconds:
            return event
        eta = max(0.0, event.eta_seconds - (self.app.clock() - self._bulk_at))
        return replace(event, eta_seconds=eta)

    def succeeded(self, worker: Worker[object]) -> None:
        """An action worker returned: forget its targets; is a bulk run still going?"""
        self._worker_targets.pop(worker.name, None)
        self.bulk_running = any(
            w.group == "actions" and w.name.startswith("bulk") and not w.is_finished
            for w in self.app.workers
        )
        if not self.bulk_running:
            self._bulk = None

    def failed(self, worker_name: str, error: str) -> None:
        """An action worker raised: its targets still in flight end as unknown."""
        app = self.app
        self.bulk_running = False
        now = app.clock()
        for name in self._worker_targets.pop(worker_name, ()):
            if app.notes.in_flight(name):  # no report will come: say what we know
                note = app.notes.notes[name]
                app.notes.finished(name, note.action, "unknown", error, now)

    def abort_bulk(self) -> None:
        app = self.app
        if not self.bulk_running:
            app.notify("No bulk action is running.")
            return
        app.engine.abort()
        app.notify("Aborting: targets that have not started will not be sent.", severity="warning")
