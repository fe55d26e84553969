"""``python -m tuiapp.simulator``: the simulator alone, with ``tuiapp simulate``'s flags."""

from __future__ import annotations

import argparse
import sys

from tuiapp.simulate_options import add_simulate_arguments, simulator_options
from tuiapp.simulator.serve import run_simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuiapp.simulator", description="Serve the simulated provider fleet."
    )
    add_simulate_arguments(parser, developer=True)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
