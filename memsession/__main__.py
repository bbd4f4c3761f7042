"""Command line: `python -m memsession demo` and `python -m memsession bench`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import memsession


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m memsession", description=__doc__)
    parser.add_argument("--version", action="version", version=memsession.__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve a small site that shows sessions at work")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0 picks one)")
    bench = commands.add_parser("bench", help="time memsession next to its peers and print the ratios")
    bench.add_argument("--quick", action="store_true", help="small sizes and few rounds (a smoke run)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png", help="also draw a bar chart (needs matplotlib)")
    bench.add_argument("--check", action="store_true", help="exit 1 when a performance bar is missed")
    bench.add_argument(
        "--redis",
        metavar="URL",
        help="Redis for the Redis group (default: a private redis-server if installed)",
    )
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import serve

        print(f"memsession {memsession.__version__}, {memsession.IMPLEMENTATION} core")
        serve(args.host, args.port)
        return 0
    from .bench import main as bench_main

    return bench_main(args.quick, args.json, args.plot, args.check, args.redis)


if __name__ == "__main__":
    sys.exit(main())
