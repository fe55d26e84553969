"""The simulator's command-line options: one parser shape for ``tuiapp simulate`` and
``python -m tuiapp.simulator`` (which only adds the developer flags), plus the argument
types ``tuiapp``'s other subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_simulate_arguments", "port", "positive_int", "scenario", "simulator_options"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def scenario(text: str) -> str:
    from tuiapp.simulator.scenarios import SCENARIOS  # the simulator loads only when asked

    if text not in SCENARIOS:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {text!r} (one of {', '.join(SCENARIOS)})"
        )
    return text


def add_simulate_arguments(parser: argparse.ArgumentParser, *, developer: bool = False) -> None:
    """The simulate flags; ``developer`` shows the ones tests and benchmarks use."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=port, default=0, help="port to listen on (default: a free one)"
    )
    parser.add_argument("--instances", type=positive_int, default=40, help="fleet size (40)")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same fleet (7)")
    parser.add_argument(
        "--scenario",
        type=scenario,
        default="incident",
        help="calm, incident (default), flapping, ratelimit or chaos",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help="write a fleet config pointing at the simulator, once the port is bound "
        "(its state and audit log go in PATH's directory, never the team's)",
    )
    parser.add_argument(
        "--token-env",
        action="store_true",
        help="with --write-config: name env variables instead of inline tokens",
    )
    hidden = None if developer else argparse.SUPPRESS
    parser.add_argument(
        "--boot-seconds", type=float, default=4.0, help=hidden or "seconds a restart boots (4)"
    )
    parser.add_argument(
        "--no-limits", action="store_true", help=hidden or "switch the rate limits off"
    )
    parser.add_argument(
        "--no-latency", action="store_true", help=hidden or "answer without added latency"
    )


def simulator_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``run_simulate`` takes from the developer flags."""
    return {
        "boot_seconds": args.boot_seconds,
        "limits": not args.no_limits,
        "latency": not args.no_latency,
    }
