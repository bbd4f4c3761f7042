"""`python -m benchmarks`: memsession next to its peers, side by side in one process."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from .redisbench import start_redis
from .runner import Progress
from .suite import report, run, run_e2e


def parse(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time memsession next to its peers and floors, round-robin in one process, "
        "and print the medians, the ratios and the performance bars. Run it from a checkout.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="also draw a bar chart into FILE.png (needs matplotlib)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a performance bar is missed")
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="only the end-to-end groups: uvicorn + Starlette and gunicorn + Flask under wrk, "
        "each session store against a plain-dict floor (no Redis; part of the full run too)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        nargs="?",
        const="",
        help="Redis for the Redis groups (default: a private redis-server if one is installed; "
        "--redis without a URL: a private one, an error when none can be started)",
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run, print the table, write the files asked for; 1 if --check and a bar is missed."""
    args = parse(argv)
    if args.e2e:
        return _finish(args, run_e2e(args.quick, Progress()))
    url, server = start_redis(args.redis)
    if url is None and args.redis is not None:
        print("python -m benchmarks: --redis: no redis-server could be started", file=sys.stderr)
        return 2
    try:
        results = run(args.quick, Progress(), url)
    finally:
        if server is not None:
            server.stop()
    return _finish(args, results)


def _finish(args: argparse.Namespace, results: dict[str, Any]) -> int:
    """Print the table, write the files asked for; 1 if --check and a bar is missed."""
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.plot:
        from .chart import plot

        plot(results, args.plot)
    sys.stdout.flush()
    missed = [b for b in results["bars"] if b["met"] is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
