"""``python -m tuiapp.simulator``: the simulator alone, with ``tuiapp simulate``'s flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuiapp.simulator.fleet import SCENARIOS
from tuiapp.simulator.serve import run_simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuiapp.simulator", description="Serve the simulated provider fleet."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", choices=SCENARIOS, default="incident")
    parser.add_argument("--write-config", type=Path, default=None, metavar="PATH")
    parser.add_argument(
        "--token-env", action="store_true", help="name tokens by environment variables"
    )
    parser.add_argument("--boot-seconds", type=float, default=4.0)
    parser.add_argument("--no-limits", action="store_true", help="switch rate limits off")
    parser.add_argument("--no-latency", action="store_true", help="answer without added latency")
    args = parser.parse_args(argv)
    return run_simulate(
        args.host,
        args.port,
        args.instances,
        args.seed,
        args.scenario,
        args.write_config,
        args.token_env,
        boot_seconds=args.boot_seconds,
        limits=not args.no_limits,
        latency=not args.no_latency,
    )


if __name__ == "__main__":
    sys.exit(main())
