"""Argument parsing and the subcommands; the work itself lives in the modules each calls.

Every error a user can cause ends as one line on stderr and exit code 3, never a
traceback: argparse's own usage errors included.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tuiapp import __version__, gcpause
from tuiapp.command_rules import EXIT_USAGE
from tuiapp.simulate_options import (
    add_simulate_arguments,
    positive_int,
    scenario,
    simulator_options,
)

if TYPE_CHECKING:
    from tuiapp.config import FleetConfig

__all__ = ["EXIT_USAGE", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 3 (monitoring-plugin convention)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tuiapp",
        description="Terminal fleet monitor for WhatsApp gateway instances.",
        epilog="Try it without an account: tuiapp demo",
    )
    parser.add_argument("--version", action="version", version=f"tuiapp {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        help="fleet config (default: $TUIAPP_CONFIG, else the user config dir's tuiapp/fleet.toml)",
    )
    parser.add_argument("--read-only", action="store_true", help="monitor only: no actions")
    parser.add_argument("--problems", action="store_true", help="start showing only problem rows")
    parser.add_argument(
        "--operator", help="name recorded in the audit log (default $SUDO_USER, $USER)"
    )
    parser.add_argument(
        "--server",
        dest="hub_url",
        metavar="URL",
        action="append",
        help="attach the TUI to this team hub (tuiapp serve); repeat it to attach to several"
        " hubs at once, each owning its accounts, in one grid. The token comes from"
        " $TUIAPP_TOKEN, or for one hub from $TUIAPP_TOKEN_<HOST>_<PORT>"
        " (e.g. TUIAPP_TOKEN_HUB_B_EXAMPLE_COM_8765); never from the command line",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="run the TUI against the built-in simulator (no account needed)"
    )
    demo.add_argument("--instances", type=positive_int, default=40, help="fleet size (40)")
    demo.add_argument("--seed", type=int, default=7, help="same seed, same fleet (7)")
    demo.add_argument(
        "--scenario",
        type=scenario,
        default="incident",
        help="calm, incident (default), flapping, ratelimit or chaos",
    )
    demo.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="no actions"
    )
    demo.add_argument(
        "--problems", action="store_true", default=argparse.SUPPRESS, help="problem rows only"
    )
    demo.add_argument("--operator", default=argparse.SUPPRESS, help="name for the audit log")

    check = sub.add_parser(
        "check", help="one sweep of the fleet; exit 0/1/2/3 like a monitoring plugin"
    )
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    fmt = check.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--prometheus", action="store_true", help="print Prometheus text format")
    check.add_argument(
        "--tag",
        action="append",
        default=[],
        help="only instances with this tag (repeatable: any of them)",
    )
    _add_server_flag(check)

    for action in ("restart", "reconnect"):
        act = sub.add_parser(
            action, help=f"{action} instances with the TUI's guard rails and audit"
        )
        act.add_argument("names", nargs="+", metavar="NAME")
        act.add_argument("--config", type=Path, default=argparse.SUPPRESS)
        act.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        act.add_argument("--dry-run", action="store_true", help="print the verdicts, send nothing")
        act.add_argument("--reason", help="why (recorded in the audit log)")
        act.add_argument(
            "--max",
            type=positive_int,
            dest="max_targets",
            help="required above 5 targets: the most you mean to act on",
        )
        act.add_argument(
            "--force",
            action="store_true",
            help="override cooldown and loop breaker (needs --reason)",
        )
        act.add_argument("--operator", default=argparse.SUPPRESS)
        _add_server_flag(act)

    serve = sub.add_parser(
        "serve", help="the team hub: one engine for the team, an HTTP API and /metrics"
    )
    serve.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    serve.add_argument(
        "--listen",
        default="127.0.0.1:8765",
        metavar="HOST:PORT",
        help="where to listen (127.0.0.1:8765); beyond loopback needs TLS or --insecure",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP beyond loopback (every client then shows it)",
    )
    serve.add_argument("--tls-cert", type=Path, metavar="FILE", help="TLS certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, metavar="FILE", help="TLS private key (PEM)")
    serve.add_argument("--name", help="the hub's name in /fleet and /metrics (the host name)")
    serve.add_argument(
        "--event-buffer",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="events kept for clients that resume after a reconnect (10000)",
    )

    pair = sub.add_parser(
        "pair", help="show the login QR of a SCAN_QR_CODE instance and wait for WORKING"
    )
    pair.add_argument("name", metavar="NAME")
    pair.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    pair.add_argument(
        "--code", metavar="PHONE", help="ask for a pairing code for this E.164 number instead"
    )
    pair.add_argument(
        "--timeout",
        type=positive_int,
        default=300,
        help="seconds to wait for WORKING (300); then exit 2",
    )
    pair.add_argument("--operator", default=argparse.SUPPRESS)

    init = sub.add_parser("init", help="write a commented starter config")
    init.add_argument("path", nargs="?", type=Path)
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    sim = sub.add_parser("simulate", help="run the provider simulator alone")
    add_simulate_arguments(sim)
    return parser


class _OneServer(argparse.Action):
    """``--server`` of ``check``, ``restart`` and ``reconnect``: one hub (only the TUI
    takes several); given twice it is a usage error, never the last one silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error("--server names one hub here (only the TUI takes several)")
        setattr(namespace, self.dest, values)


def _add_server_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        action=_OneServer,
        help="ask this team hub (tuiapp serve) instead: one hub (the TUI alone takes"
        " several); the token comes from $TUIAPP_TOKEN_<HOST>_<PORT>, else $TUIAPP_TOKEN",
    )


def _config_path(args: argparse.Namespace) -> Path:
    from tuiapp.config import default_config_path

    return args.config if args.config is not None else default_config_path(os.environ)


def _load(args: argparse.Namespace) -> FleetConfig:
    from tuiapp.config import load_config

    return load_config(_config_path(args))


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "init":
        from tuiapp.config_init import write_starter_config

        path = args.path if args.path is not None else _config_path(args)
        write_starter_config(path, force=args.force)
        print(f"wrote {path}")
        print(f"next: set the token variables it names, then run: tuiapp check --config {path}")
        return 0
    if command == "simulate":
        from tuiapp.simulator.serve import run_simulate

        return run_simulate(
            args.host,
            args.port,
            args.instances,
            args.seed,
            args.scenario,
            args.write_config,
            args.token_env,
            **simulator_options(args),
        )
    if command == "demo":
        from tuiapp.demo import run_demo

        return run_demo(
            instances=args.instances,
            seed=args.seed,
            scenario=args.scenario,
            read_only=args.read_only,
            problems_only=args.problems,
            operator=args.operator,
        )
    if command == "serve":
        from tuiapp.hub.serve import ServeOptions, UsageError, run_serve

        options = ServeOptions(
            listen=args.listen,
            insecure=args.insecure,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            name=args.name,
            event_buffer=args.event_buffer,
        )
        try:
            return run_serve(_load(args), options)
        except UsageError as exc:
            raise _UsageError(str(exc)) from None
    if command == "check" and args.server:
        from tuiapp.hub.remote_check import run_remote_check

        return run_remote_check(
            args.server,
            fmt="json" if args.json else "prometheus" if args.prometheus else "table",
            tags=args.tag,
        )
    if command == "check":
        from tuiapp.check_imports import import_check

        run_check = import_check()  # as ``_import_ui``, and without httpx's own CLI
        return run_check(
            _load(args),
            fmt="json" if args.json else "prometheus" if args.prometheus else "table",
            tags=args.tag,
        )
    if command in ("restart", "reconnect"):
        from tuiapp.action_cli import run_action_command
        from tuiapp.command_rules import flag_problem

        problem = flag_problem(
            args.names, reason=args.reason, force=args.force, max_targets=args.max_targets
        )
        if problem is not None:  # before the config is read: the flags are wrong either way
            raise _UsageError(problem)
        if args.server:
            from tuiapp.hub.remote_actions import run_remote_action

            if args.operator:
                raise _UsageError(
                    "--operator does not go with --server: the hub names the"
                    " operator from the token"
                )
            return run_remote_action(
                args.server,
                command,
                args.names,
                yes=args.yes,
                dry_run=args.dry_run,
                reason=args.reason,
                max_targets=args.max_targets,
                force=args.force,
                stdin_isatty=sys.stdin is not None and sys.stdin.isatty(),
            )
        return run_action_command(
            command,
            args.names,
            fleet=_load(args),
            yes=args.yes,
            dry_run=args.dry_run,
            reason=args.reason,
            max_targets=args.max_targets,
            force=args.force,
            operator=args.operator,
            stdin_isatty=sys.stdin is not None and sys.stdin.isatty(),
        )
    if command == "pair":
        from tuiapp.pair_cli import run_pair

        return run_pair(
            _load(args), args.name, phone=args.code, timeout=args.timeout, operator=args.operator
        )
    run_tui = _import_ui()
    if args.hub_url:
        if args.operator:
            raise _UsageError(
                "--operator does not go with --server: the hub names the operator from the token"
            )
        return _run_remote_tui(args)
    return run_tui(
        _load(args),
        read_only=args.read_only,
        problems_only=args.problems,
        operator=args.operator,
    )


class _UsageError(Exception):
    pass


def _import_ui() -> Callable[..., int]:
    """The UI's modules, imported with the cyclic collector off and what they made
    frozen: they live as long as the process, and the collections their hundreds of
    classes would set off walk the whole heap again and again for nothing (~8 % of the
    imports' time, a tenth of a second before the first frame)."""
    with gcpause.paused(freeze=True):
        from tuiapp.ui.run import run_tui
    return run_tui


def _run_remote_tui(args: argparse.Namespace) -> int:
    """``tuiapp --server URL [--server URL2 …]``: the TUI on one hub's runtime, or on
    several hubs' (tuiapp.hub.remote_multi); the first snapshots are read here, at once."""
    import asyncio

    from tuiapp.hub.client import HubError, hub_token, hub_url
    from tuiapp.hub.remote_attach import RemoteRuntime, connect
    from tuiapp.hub.remote_multi import MultiRuntime, attach, fetch_fleets
    from tuiapp.ui.run import run_tui

    runtime: RemoteRuntime | MultiRuntime
    try:
        urls = [hub_url(url) for url in args.hub_url]
        twice = next((url for i, url in enumerate(urls) if url in urls[:i]), None)
        if twice is not None:
            raise HubError(f"--server {twice} is given twice")
        tokens = [hub_token(url=url) for url in urls]
        firsts = asyncio.run(fetch_fleets(urls, tokens))
        if len(urls) == 1:
            first, received_at = firsts[0]
            runtime = connect(
                urls[0], tokens[0], first, read_only=args.read_only, received_at=received_at
            )
            insecure = [runtime.hub_name] if runtime.insecure else []
        else:
            runtime = attach(urls, tokens, firsts, read_only=args.read_only)
            insecure = [
                label
                for label, hub in zip(runtime.labels, runtime.hubs, strict=True)
                if hub.insecure
            ]
    except HubError as exc:
        print(f"tuiapp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in insecure:
        print(f"tuiapp: warning: hub {name} serves plain HTTP (--insecure)", file=sys.stderr)
    return run_tui(
        runtime.fleet,
        read_only=runtime.read_only,
        problems_only=args.problems,
        operator=runtime.engine.operator or None,
        backend=runtime,
        clock=runtime.clock,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit code."""
    from tuiapp.malloc_tuning import return_big_buffers

    return_big_buffers()  # first: a big config's text must not raise glibc's threshold
    from tuiapp.config import ConfigError
    from tuiapp.debuglog import install_crash_handler, setup_debug_log
    from tuiapp.secrets import GLOBAL_REDACTOR

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "demo") and argv is None:  # the TUI, from a terminal
        from tuiapp.ui import terminal_watch  # stdlib only: cheap this early

        terminal_watch.early_watch()
    log_path = setup_debug_log()
    install_crash_handler()
    try:
        code = _run(args)
    except (ConfigError, _UsageError) as exc:
        print(f"tuiapp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file the user named cannot be read or written
        print(f"tuiapp: {GLOBAL_REDACTOR.redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # ctrl+c, or the terminal lost during start-up
        return 129 if "tuiapp.ui.terminal_watch" in sys.modules and _terminal_lost() else 130
    except Exception as exc:  # never a traceback on the terminal: one line, details in the log
        logging.getLogger("tuiapp.crash").error("command failed", exc_info=exc)
        where = f" (details in {log_path})" if log_path else ""
        text = GLOBAL_REDACTOR.redact(f"{type(exc).__name__}: {exc}").splitlines()
        print(
            f"tuiapp: internal error: {text[0] if text else type(exc).__name__}{where}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    _end_if_terminal_lost(code)
    if args.command == "check" and argv is None:
        _end_now(code)
    return code


def _end_now(code: int) -> NoReturn:
    """The console script's ``check`` is done and its report written: end without the
    interpreter's teardown, which would free every row of the sweep one by one (0.7 s
    at 100,000 instances) for nobody. Output and the debug log are flushed first; no
    thread or file is left with work (the sweep awaited its history save)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to write
            pass
    logging.shutdown()
    os._exit(code)


def _terminal_lost() -> bool:
    from tuiapp.ui import terminal_watch

    return terminal_watch.was_lost()


def _end_if_terminal_lost(code: int) -> None:
    """After a terminal loss, the command has cleaned up (audit, state, simulator): end
    now, without the interpreter's teardown, which nobody is waiting for."""
    if "tuiapp.ui.terminal_watch" not in sys.modules:
        return
    from tuiapp.ui import terminal_watch

    if terminal_watch.was_lost():
        logging.shutdown()
        os._exit(code)
