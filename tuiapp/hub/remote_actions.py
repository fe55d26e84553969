"""``tuiapp restart|reconnect NAME… --server URL``: the hub plans and decides, we ask.

The flow and the output of the local command (tuiapp.action_cli), over the hub's API:
the hub's plan is printed (verdict, warnings, what it interrupts); ``--dry-run`` stops
there; otherwise the operator confirms (or ``--yes``) and the hub runs exactly that plan
(``plan_id``): a verdict that changed since is cancelled there, as after the TUI's
dialog. Progress comes from the hub's event stream; the final reports from the run's
answer. The audit log names the operator of the token in ``$TUIAPP_TOKEN`` (or the
hub's own ``$TUIAPP_TOKEN_<HOST>_<PORT>``, tuiapp.hub.client.hub_token_env).

Exit codes as the local command: 0 every target recovered (dry run: every target would
be allowed), 1 declined at the prompt or interrupted, 2 something refused, cancelled,
failed, unknown, not recovered or aborted, 3 usage (no token, unknown instance, a
viewer's token, the hub unreachable, --max missing, no terminal and no --yes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

import httpx

from tuiapp.action_cli import ask_to_confirm, summary_of, verdict_lines
from tuiapp.command_rules import (
    EXIT_DECLINED,
    EXIT_NOT_ALL_RECOVERED,
    EXIT_OK,
    EXIT_USAGE,
    flag_problem,
)
from tuiapp.durations import human_duration
from tuiapp.hub.client import HubClient, HubError, hub_token
from tuiapp.hub.remote_engine import report_from_json, verdict_from_json
from tuiapp.hub.wire import JSONObject, JSONValue
from tuiapp.model import ACTIONS

__all__ = ["run_remote_action"]

RUN_TIMEOUT = 1800.0  # a run answers when verification ends; the hub bounds that


def run_remote_action(
    url: str,
    action: str,
    names: Sequence[str],
    *,
    yes: bool,
    dry_run: bool,
    reason: str | None,
    max_targets: int | None,
    force: bool,
    stdin_isatty: bool,
    input_fn: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    environ: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    prog = f"tuiapp {action}"
    targets = list(dict.fromkeys(names))
    problem = None
    if action not in ACTIONS:
        problem = f"unknown action (one of {', '.join(ACTIONS)})"
    elif not targets:
        problem = "name at least one instance"
    else:
        problem = flag_problem(targets, reason=reason, force=force, max_targets=max_targets)
    if problem is not None:
        print(f"{prog}: {problem}", file=err)
        return EXIT_USAGE
    command = _Remote(
        url,
        action,
        targets,
        yes=yes,
        dry_run=dry_run,
        reason=" ".join(reason.split()) if reason else None,
        force=force,
        max_targets=max_targets,
        stdin_isatty=stdin_isatty,
        input_fn=input_fn,
        out=out,
        err=err,
    )
    try:
        token = hub_token(environ, url=url)
        return asyncio.run(command.main(token, transport, environ))
    except HubError as exc:
        print(f"{prog}: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; the hub carries on with what it started: look with"
            f" tuiapp check --server {url}",
            file=err,
        )
        return EXIT_DECLINED


class _Remote:
    def __init__(
        self,
        url: str,
        action: str,
        targets: list[str],
        *,
        yes: bool,
        dry_run: bool,
        reason: str | None,
        force: bool,
        max_targets: int | None,
        stdin_isatty: bool,
        input_fn: Callable[[str], str],
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.url = url
        self.action = action
        self.targets = targets
        self.yes = yes
        self.dry_run = dry_run
        self.reason = reason
        self.override_reason = reason if force else None
        self.max_targets = max_targets
        self.stdin_isatty = stdin_isatty
        self.input_fn = input_fn
        self.out = out
        self.err = err
        self.prog = f"tuiapp {action}"
        self.operator = ""
        self.last_done = -1

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"{self.prog}: {text}", file=self.err, flush=True)

    async def main(
        self, token: str, transport: httpx.AsyncBaseTransport | None, environ: Mapping[str, str]
    ) -> int:
        async with HubClient(self.url, token, transport=transport, environ=environ) as client:
            answer = await client.actions(
                {
                    "mode": "plan",
                    "action": self.action,
                    "targets": list(self.targets),
                    "reason": self.reason,
                    "override_reason": self.override_reason,
                    "allow_outage": False,
                }
            )
            self.operator = str(answer.get("operator") or "")
            hub = _obj(answer.get("hub"))
            if hub.get("insecure") is True:
                self.warn(f"warning: hub {hub.get('name')} serves plain HTTP (--insecure)")
            plan = _obj(answer.get("plan"))
            verdicts = [_obj(v) for v in _list(plan.get("verdicts"))]
            self.print_verdicts(verdicts)
            allowed = sum(1 for v in verdicts if v.get("allowed") is True)
            refused = len(verdicts) - allowed
            if self.dry_run:
                tally = f"{allowed} of {len(verdicts)} would be allowed"
                if refused:
                    tally += f", {refused} refused"
                self.say(f"dry run: nothing sent ({tally})")
                return EXIT_OK if not refused else EXIT_NOT_ALL_RECOVERED
            if not allowed:
                await self.run(client, plan, progress=False)  # the refusals get audited
                self.say(f"nothing to {self.action}: every target is refused")
                return EXIT_NOT_ALL_RECOVERED
            if not self.yes:
                if not self.stdin_isatty:
                    self.warn("no terminal to confirm on: pass --yes to act without asking")
                    return EXIT_USAGE
                if not self.confirm(allowed, refused):
                    self.say("nothing sent")
                    return EXIT_DECLINED
            reports = await self.run(client, plan, progress=True)
            return self.summary(reports)

    async def run(self, client: HubClient, plan: JSONObject, *, progress: bool) -> list[JSONObject]:
        body: JSONObject = {
            "mode": "run",
            "plan_id": plan.get("plan_id"),
            "max_targets": self.max_targets,
        }
        watcher: asyncio.Task[None] | None = None
        if progress:
            listening = asyncio.Event()
            watcher = asyncio.create_task(self.watch(client, listening))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listening.wait(), 5.0)  # progress is a nicety only
        try:
            answer = await client.actions(body, timeout=RUN_TIMEOUT)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, HubError):
                    await watcher
        reports = [_obj(r) for r in _list(answer.get("reports"))]
        for report in reports:
            name = report.get("name")
            message = report.get("message") or ""
            self.say(f"{name}: {str(report.get('outcome', '')).upper()}: {message}")
            if report.get("next_step"):
                self.say(f"{name}: next: {report['next_step']}")
        return reports

    async def watch(self, client: HubClient, listening: asyncio.Event) -> None:
        """Print this operator's progress on these targets from the event stream."""
        try:
            async for event in client.events():
                if event.event == "hello":
                    listening.set()
                    continue
                data = event.data
                if data.get("operator") != self.operator:
                    continue
                if event.event == "action_progress" and data.get("name") in self.targets:
                    if data.get("stage") in ("sending", "sent", "verifying"):
                        self.say(f"{data.get('name')}: {data.get('message')}")
                elif event.event == "bulk_progress":
                    self.bulk(data)
        except HubError:
            listening.set()

    def bulk(self, data: JSONObject) -> None:
        done, total, running = data.get("done"), data.get("total"), data.get("running")
        if not isinstance(done, int) or not isinstance(total, int) or total <= 1:
            return
        if done == self.last_done:
            return
        self.last_done = done
        eta = data.get("eta_seconds")
        left = ""
        if isinstance(eta, int | float) and eta and done < total:
            left = f", about {human_duration(float(eta))} left"
        self.say(f"progress: {done}/{total} done, {running} running{left}")

    def print_verdicts(self, verdicts: list[JSONObject]) -> None:
        """The local command's lines (tuiapp.action_cli), from the hub's plan."""
        for line in verdict_lines(self.action, [verdict_from_json(v) for v in verdicts]):
            self.say(line)

    def confirm(self, allowed: int, refused: int) -> bool:
        return ask_to_confirm(self.input_fn, self.action, allowed, refused)

    def summary(self, reports: list[JSONObject]) -> int:
        line, code = summary_of([report_from_json(r) for r in reports])
        self.say(line)
        return code


def _obj(value: JSONValue | None) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _list(value: JSONValue | None) -> list[JSONValue]:
    return value if isinstance(value, list) else []
