"""`tuiapp restart|reconnect NAME…`: the action engine for runbooks (README.md, "Commands").

The same guard rails, shared state and audit log as the TUI. Each target is read
once, its verdict and warnings printed; ``--dry-run`` stops there. Without ``--yes``
the command asks on the terminal; with no terminal and no ``--yes`` it refuses
without reading stdin. More than 5 targets also need ``--max N`` (N >= targets),
dry runs included, so a dry run that passes predicts the real run. ``--force``
needs ``--reason`` and lifts only cooldown and the loop breaker (audited).

Exit codes:
    0  every target recovered (``--dry-run``: every target would be allowed)
    1  nothing was done because the operator said no at the prompt, or interrupted
    2  some target was refused, cancelled, failed, ended unknown, did not recover or
       was aborted (``--dry-run``: some target would be refused)
    3  usage: unknown instance, --force without --reason, --max missing or too small,
       no terminal to confirm on and no --yes, a state_dir or audit log that cannot be used
"""

from __future__ import annotations

import asyncio
import difflib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TextIO

import httpx

from tuiapp.audit import AuditError, current_operator
from tuiapp.clock import Clock
from tuiapp.command_rules import (
    EXIT_DECLINED,
    EXIT_NOT_ALL_RECOVERED,
    EXIT_OK,
    EXIT_USAGE,
    MAX_WITHOUT_FLAG,
    flag_problem,
)
from tuiapp.config import FleetConfig
from tuiapp.durations import human_duration
from tuiapp.engine import ActionEngine, ActionReport, Verdict
from tuiapp.events import ActionFinished, ActionProgressed, BulkProgressed
from tuiapp.filelock import StateError
from tuiapp.model import ACTIONS
from tuiapp.poller import Poller
from tuiapp.runtime import open_runtime
from tuiapp.vocabulary import Outcome, Stage, outcome_text

__all__ = [
    "EXIT_DECLINED",
    "EXIT_NOT_ALL_RECOVERED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MAX_WITHOUT_FLAG",
    "run_action_command",
]


def run_action_command(
    action: str,
    names: Sequence[str],
    *,
    fleet: FleetConfig,
    yes: bool,
    dry_run: bool,
    reason: str | None,
    max_targets: int | None,
    force: bool,
    operator: str | None,
    stdin_isatty: bool,
    input_fn: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Run ``tuiapp restart|reconnect`` and return its exit code (see the module docstring)."""
    prog = f"tuiapp {action}"
    if action not in ACTIONS:
        print(f"{prog}: unknown action (one of {', '.join(ACTIONS)})", file=err)
        return EXIT_USAGE
    targets = list(dict.fromkeys(names))
    if not targets:
        print(f"{prog}: name at least one instance", file=err)
        return EXIT_USAGE
    problem = _usage_problem(targets, fleet, reason=reason, force=force, max_targets=max_targets)
    if problem is not None:
        print(f"{prog}: {problem}", file=err)
        return EXIT_USAGE
    command = _Command(
        action,
        targets,
        fleet=fleet,
        yes=yes,
        dry_run=dry_run,
        reason=" ".join(reason.split()) if reason else None,
        force=force,
        operator=current_operator(operator, environ),
        environ=environ,
        stdin_isatty=stdin_isatty,
        input_fn=input_fn,
        out=out,
        err=err,
        transport=transport,
        clock=clock,
        sleep=sleep,
    )
    try:
        return asyncio.run(command.main())
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; an action in flight is logged as unknown, look at it",
            file=err,
        )
        return EXIT_DECLINED


def _usage_problem(
    targets: list[str],
    fleet: FleetConfig,
    *,
    reason: str | None,
    force: bool,
    max_targets: int | None,
) -> str | None:
    """The one-line usage error, or None; checked before anything is read or sent."""
    known = [inst.name for inst in fleet.instances]
    unknown = [name for name in targets if name not in set(known)]
    if unknown:
        where = f" in {fleet.path}" if fleet.path is not None else ""
        listed = ", ".join(repr(name) for name in unknown)
        hint = difflib.get_close_matches(unknown[0], known, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        noun = "instance" if len(unknown) == 1 else "instances"
        return f"unknown {noun} {listed}{where}{more}"
    return flag_problem(targets, reason=reason, force=force, max_targets=max_targets)


class _Command:
    """One invocation: reads, verdicts, confirmation, the run, the summary."""

    def __init__(
        self,
        action: str,
        targets: list[str],
        *,
        fleet: FleetConfig,
        yes: bool,
        dry_run: bool,
        reason: str | None,
        force: bool,
        operator: str,
        environ: Mapping[str, str],
        stdin_isatty: bool,
        input_fn: Callable[[str], str],
        out: TextIO,
        err: TextIO,
        transport: httpx.AsyncBaseTransport | None,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.action = action
        self.targets = targets
        self.fleet = fleet
        self.yes = yes
        self.dry_run = dry_run
        self.reason = reason
        self.override_reason = reason if force else None
        self.operator = operator
        self.environ = environ
        self.stdin_isatty = stdin_isatty
        self.input_fn = input_fn
        self.out = out
        self.err = err
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.prog = f"tuiapp {action}"
        self.last_done = -1

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"{self.prog}: {text}", file=self.err, flush=True)

    async def main(self) -> int:
        async with open_runtime(
            self.fleet,
            operator=self.operator,
            transport=self.transport,
            clock=self.clock,
            sleep=self.sleep,
            environ=self.environ,
        ) as runtime:
            engine = runtime.engine
            try:
                for report in await engine.arecover_interrupted():
                    self.warn(f"{report.name}: {report.message}")
            except (StateError, AuditError) as exc:
                self.warn(f"{exc}; nothing sent")
                return EXIT_USAGE
            return await self.act(engine, runtime.poller)

    async def act(self, engine: ActionEngine, poller: Poller) -> int:
        await self.read_targets(poller)
        # The plan is what the run below executes: a dry run prints exactly it.
        plan = engine.plan(
            self.targets, self.action, reason=self.reason, override_reason=self.override_reason
        )
        self.print_verdicts(list(plan.verdicts))
        allowed, refused = len(plan.allowed), len(plan.refused)
        if self.dry_run:
            tally = f"{allowed} of {len(plan.verdicts)} would be allowed"
            if refused:
                tally += f", {refused} refused"
            self.say(f"dry run: nothing sent ({tally})")
            return EXIT_OK if not refused else EXIT_NOT_ALL_RECOVERED
        if not allowed:
            await engine.run_plan(plan)  # every decided attempt is audited: one line each
            self.say(f"nothing to {self.action}: every target is refused")
            return EXIT_NOT_ALL_RECOVERED
        if not self.yes:
            if not self.stdin_isatty:
                self.warn("no terminal to confirm on: pass --yes to act without asking")
                return EXIT_USAGE
            if not self.confirm(allowed, refused):
                self.say("nothing sent")
                return EXIT_DECLINED
        engine.subscribe(self.on_event)
        return self.summary(await engine.run_plan(plan))

    async def read_targets(self, poller: Poller) -> None:
        """One fresh read of every target (bounded by the fleet's concurrency)."""
        gate = asyncio.Semaphore(max(1, self.fleet.monitor.concurrency))

        async def read(name: str) -> None:
            async with gate:
                await poller.read_now(name, purpose="action")

        await asyncio.gather(*(read(name) for name in self.targets))

    def print_verdicts(self, verdicts: list[Verdict]) -> None:
        for line in verdict_lines(self.action, verdicts):
            self.say(line)

    def confirm(self, allowed: int, refused: int) -> bool:
        return ask_to_confirm(self.input_fn, self.action, allowed, refused)

    def on_event(self, event: object) -> None:
        if isinstance(event, ActionProgressed):
            if event.stage in (Stage.SENDING, Stage.SENT, Stage.VERIFYING):
                self.say(f"{event.name}: {event.message}")
        elif isinstance(event, ActionFinished):
            report = event.report
            self.say(f"{report.name}: {outcome_text(report.outcome).upper()}: {report.message}")
            if report.next_step:
                self.say(f"{report.name}: next: {report.next_step}")
        elif isinstance(event, BulkProgressed) and event.total > 1:
            if event.done == self.last_done:
                return  # print progress when a target ends, not on every start
            self.last_done = event.done
            eta = ""
            if event.eta_seconds and event.done < event.total:
                eta = f", about {human_duration(event.eta_seconds)} left"
            self.say(f"progress: {event.done}/{event.total} done, {event.running} running{eta}")

    def summary(self, reports: list[ActionReport]) -> int:
        line, code = summary_of(reports)
        self.say(line)
        return code


# ---- what the local and the --server commands print and ask alike ------------------------


def verdict_lines(action: str, verdicts: Sequence[Verdict]) -> list[str]:
    """One line per target (allowed or REFUSED and why), then its warnings, note, interrupts."""
    width = max((len(v.name) for v in verdicts), default=0)
    lines: list[str] = []
    for v in verdicts:
        verdict = "allowed" if v.allowed else f"REFUSED: {v.refusal}"
        lines.append(f"{v.name:<{width}}  {v.status!s:<12}  {action} {verdict}")
        pad = " " * (width + 2)
        lines += [f"{pad}warning: {warning}" for warning in v.warnings]
        if v.by:
            lines.append(f"{pad}note: {v.by}")
        if v.allowed:
            lines.append(f"{pad}interrupts: {v.interrupts}")
    return lines


def ask_to_confirm(input_fn: Callable[[str], str], action: str, allowed: int, refused: int) -> bool:
    """``action N instances (M refused, skipped)? [y/N]``; anything but y/yes declines."""
    noun = "instance" if allowed == 1 else "instances"
    skipped = f" ({refused} refused, skipped)" if refused else ""
    try:
        answer = input_fn(f"{action} {allowed} {noun}{skipped}? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def summary_of(reports: Sequence[ActionReport]) -> tuple[str, int]:
    """The closing line (outcomes counted, in words) and the exit code."""
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.outcome] = counts.get(report.outcome, 0) + 1
    line = ", ".join(f"{n} {outcome_text(outcome)}" for outcome, n in counts.items())
    recovered = bool(reports) and all(r.outcome == Outcome.RECOVERED for r in reports)
    return line, EXIT_OK if recovered else EXIT_NOT_ALL_RECOVERED
