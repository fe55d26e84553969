"""Worker failures, in one place: logged once, shown once, told to the part that owns them.

Background work runs in named Textual worker groups with ``exit_on_error=False``:
"poller" (the polling loop), "actions" (a plan's run, audited refusals), "startup"
(interrupted actions at start-up), "pairing" (a pairing session's first QR). When one
raises, ``failure_of`` turns its state change into one ``WorkFailed`` message: the
traceback (frames, no locals) goes to the debug log, the message carries a redacted
one-line error. ``WorkerFailures.report`` then shows it as one error toast, and: a
dead poller makes the polling line say polling STOPPED for good (``Polling.failed``);
a failed action worker's targets still in flight end as ``unknown``
(``ActionFlow.failed``).
"""

from __future__ import annotations

import logging

from textual.worker import Worker, WorkerState

from tuiapp.secrets import redact
from tuiapp.ui.action_flow import ActionFlow
from tuiapp.ui.messages import WorkFailed
from tuiapp.ui.polling import Polling
from tuiapp.ui.shell import Shell

__all__ = ["WorkerFailures", "failure_of"]

log = logging.getLogger("tuiapp.ui")


def failure_of(event: Worker.StateChanged) -> WorkFailed | None:
    """The ``WorkFailed`` of a worker that just raised (logged here), else None."""
    if event.state != WorkerState.ERROR:
        return None
    worker = event.worker
    error = worker.error
    text = redact(f"{type(error).__name__}: {error}") if error else "unknown error"
    if error is not None:  # the traceback (frames, no locals) goes to the debug log
        log.error("worker %s (%s) failed", worker.name, worker.group, exc_info=error)
    return WorkFailed(worker.group, worker.name, text)


class WorkerFailures:
    """Shows each ``WorkFailed`` and tells the polling line or the action flow."""

    def __init__(self, app: Shell, *, actions: ActionFlow, polling: Polling) -> None:
        self.app = app
        self.actions = actions
        self.polling = polling

    def report(self, message: WorkFailed) -> None:
        app = self.app
        if message.group == "poller":
            self.polling.failed = message.error
            app.notify(
                f"Polling stopped: {message.error}",
                title="Poller failed",
                severity="error",
                markup=False,
                timeout=30,
            )
        else:
            app.notify(
                f"{message.what} failed: {message.error}",
                title="Action failed",
                severity="error",
                markup=False,
                timeout=15,
            )
        if message.group == "actions":
            self.actions.failed(message.what, message.error)
            app.refresh_view()
        else:
            app.refresh_view(rows=())
