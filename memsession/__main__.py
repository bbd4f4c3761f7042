"""Command line: `python -m memsession demo`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import memsession


def _lifetime(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m memsession", description=__doc__)
    parser.add_argument("--version", action="version", version=memsession.__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve a small site that shows sessions at work")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0 picks one)")
    demo.add_argument(
        "--max-lifetime",
        type=_lifetime,
        default=300.0,
        metavar="SECONDS",
        help="idle seconds before a session expires (300); try 20 to watch one run out",
    )
    demo.add_argument(
        "--snapshot",
        metavar="FILE",
        help="keep sessions across restarts in FILE (loaded on start, saved on exit and every interval)",
    )
    demo.add_argument(
        "--snapshot-interval",
        type=_lifetime,
        metavar="SECONDS",
        help="also save the snapshot every SECONDS (with --snapshot)",
    )
    args = parser.parse_args(argv)
    if args.snapshot_interval is not None and args.snapshot is None:
        parser.error("--snapshot-interval needs --snapshot FILE")

    from .demo import serve

    print(f"memsession {memsession.__version__}, {memsession.IMPLEMENTATION} core")
    return serve(
        args.host,
        args.port,
        max_lifetime=args.max_lifetime,
        snapshot=args.snapshot,
        snapshot_interval=args.snapshot_interval,
    )


if __name__ == "__main__":
    sys.exit(main())
