"""After the send: the provider's answer, the verification reads, the outcome and its cooldown.

``Verifier.after_send`` takes the answer to one restart or reconnect:

* accepted, or no answer: an ``accepted``/``unknown`` audit line, then reads until
  WORKING within ``verify_window`` (``recovered``), else ``not_recovered`` with the
  next step; the cooldown runs to the later of ``stabilize`` and the end of
  verification;
* refused, failed or rate limited by the provider: the action did not happen, a
  ``failed`` line with the next step, and the cooldown is ``stabilize`` only.

A task cancelled after the send (tuiapp quitting) gets an ``unknown`` line and keeps
the full cooldown (``close_interrupted``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tuiapp import guards
from tuiapp.action_trail import ActionTrail, Attempt
from tuiapp.clock import Clock, Sleep
from tuiapp.config import MonitorConfig
from tuiapp.durations import human_duration
from tuiapp.model import ActionOutcome, ActionReport, ActionResponse, Observation, Status
from tuiapp.vocabulary import Outcome, Stage

if TYPE_CHECKING:
    from tuiapp.poller import Poller

__all__ = ["VERIFY_INTERVAL", "Verifier"]

VERIFY_INTERVAL = 5.0  # seconds between verification reads (the poller's budgets still apply)


class Verifier:
    """Turns the answer to a sent action into its final report (see the module docstring)."""

    def __init__(
        self,
        trail: ActionTrail,
        poller: Poller,
        monitor: MonitorConfig,
        *,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.trail = trail
        self.poller = poller
        self.stabilize = monitor.stabilize
        self.verify_window = monitor.verify_window
        self.clock = clock
        self.sleep = sleep

    async def after_send(
        self, attempt: Attempt, response: ActionResponse, sent_at: float
    ) -> ActionReport:
        """The report of a sent action: verified when the provider took it, else failed."""
        if response.outcome in (ActionOutcome.ACCEPTED, ActionOutcome.UNKNOWN):
            return await self._taken(attempt, response, sent_at)
        return await self._turned_down(attempt, response, sent_at)

    async def _taken(
        self, attempt: Attempt, response: ActionResponse, sent_at: float
    ) -> ActionReport:
        action = attempt.action
        accepted = response.outcome == ActionOutcome.ACCEPTED
        outcome = Outcome.ACCEPTED if accepted else Outcome.UNKNOWN
        audit_note = await self.trail.note(
            attempt,
            outcome,
            http_status=response.http_status,
            latency_ms=_round(response.latency_ms),
            message=response.message or outcome,
        )
        await self.trail.update_record(attempt, outcome)
        if accepted:
            self.trail.step(attempt, Stage.SENT, f"{action} accepted{_response_detail(response)}")
        else:
            self.trail.step(
                attempt,
                Stage.SENT,
                f"no answer to the {action} ({response.message}); verification decides",
            )
        return await self._verify(attempt, response, sent_at, audit_note)

    async def _turned_down(
        self, attempt: Attempt, response: ActionResponse, sent_at: float
    ) -> ActionReport:
        """The provider said no (refused, failed, rate limited): the action did not happen."""
        action = attempt.action
        why = response.reason
        if response.outcome == ActionOutcome.RATE_LIMITED:
            why = "rate_limited"
        message = response.message or f"the provider refused the {action}"
        if response.outcome == ActionOutcome.RATE_LIMITED and response.retry_at is not None:
            wait = human_duration(response.retry_at - self.clock())
            message += f"; not carried out, retry after {wait}"
        next_step = guards.next_step(response.status, attempt.row.obs, why)
        audit_note = await self.trail.note(
            attempt,
            Outcome.FAILED,
            http_status=response.http_status,
            latency_ms=_round(response.latency_ms),
            message=f"{message}; next: {next_step}",
        )
        await self.trail.update_record(attempt, Outcome.FAILED, sent_at + self.stabilize)
        return self.trail.finish(
            ActionReport(
                attempt.name,
                action,
                attempt.action_id,
                Outcome.FAILED,
                message + audit_note,
                next_step,
                response.http_status,
            )
        )

    async def _verify(
        self, attempt: Attempt, response: ActionResponse, sent_at: float, audit_note: str
    ) -> ActionReport:
        """Reads until WORKING within verify_window: recovered, else not_recovered + next step."""
        action = attempt.action
        # The reads are the fast polling after an action: each updates the row, and they
        # spend the action share of the budget. A poller boost on top would spend the same
        # budget twice and starve them.
        self.trail.step(
            attempt,
            Stage.VERIFYING,
            f"waiting up to {human_duration(self.verify_window)} for WORKING",
        )
        try:
            last, recovered_at = await self._read_until_working(
                attempt.name, sent_at + self.verify_window
            )
        except asyncio.CancelledError:  # tuiapp is quitting mid-verification: say so
            await self.close_interrupted(attempt, sent_at)
            raise
        cooldown = max(sent_at + self.stabilize, self.clock())
        prefix = ""
        if response.outcome == ActionOutcome.UNKNOWN:
            prefix = f"no answer to the {action} ({response.message}); "
        next_step: str | None = None
        if recovered_at is not None:
            outcome = Outcome.RECOVERED
            message = f"{prefix}WORKING {human_duration(recovered_at - sent_at)} after the {action}"
            line = message
        else:
            status = last.status if last is not None else attempt.row.status
            outcome, next_step = Outcome.NOT_RECOVERED, guards.next_step(status, last)
            waited = human_duration(self.verify_window)
            message = f"{prefix}still {status} {waited} after the {action}"
            line = f"{message}; next: {next_step}"
        note = await self.trail.note(attempt, outcome, message=line)
        await self.trail.update_record(attempt, outcome, cooldown)
        return self.trail.finish(
            ActionReport(
                attempt.name,
                action,
                attempt.action_id,
                outcome,
                message + audit_note + note,
                next_step,
                response.http_status,
            )
        )

    async def _read_until_working(
        self, name: str, deadline: float
    ) -> tuple[Observation | None, float | None]:
        """Fresh reads until WORKING or ``deadline``: the last read, and when WORKING came."""
        last: Observation | None = None
        while True:
            now = self.clock()
            if now >= deadline:
                return last, None
            await self.sleep(min(VERIFY_INTERVAL, deadline - now))
            try:
                obs = await self.poller.read_now(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue
            if obs.keep_last:
                continue
            last = obs
            if obs.status == Status.WORKING:
                return last, self.clock()

    async def close_interrupted(self, attempt: Attempt, sent_at: float) -> None:
        """The task was cancelled after sending (tuiapp quitting): say so, keep the cooldown."""
        await self.trail.note(
            attempt,
            Outcome.UNKNOWN,
            message=f"tuiapp stopped while the {attempt.action} was in flight",
        )
        await self.trail.update_record(
            attempt, Outcome.UNKNOWN, sent_at + max(self.stabilize, self.verify_window)
        )


def _response_detail(response: ActionResponse) -> str:
    parts = []
    if response.http_status is not None:
        parts.append(f"HTTP {response.http_status}")
    if response.latency_ms is not None:
        parts.append(f"{response.latency_ms:.0f} ms")
    return f" ({', '.join(parts)})" if parts else ""


def _round(latency_ms: float | None) -> float | None:
    return None if latency_ms is None else round(latency_ms, 1)
