"""Snapshots: one save and one load of a store of one-key sessions ({"user_id": 1}), the compiled core.

`python -m benchmarks.snapshot` times both on 1,000,000 sessions (`--quick`:
100,000), round-robin like every group, and prints the medians, the time
per session and the size of the file. snapshot_group() is a runner Group
like the others, for `python -m benchmarks` to append to its groups.

The store is built once; every save writes over the same file (the rename
included), every load goes into a new, empty store of the same core. The
file lives in a temporary folder that cleanup() removes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .runner import Candidate, Group, Progress, format_seconds, run_group
from .store import cores, make_ids, memory_store

__all__ = ["SnapshotGroup", "report", "rounds", "sessions", "snapshot_group"]

Run = Callable[[], object]


def sessions(quick: bool) -> int:
    """Sessions in the store: a million, or a tenth for a smoke run."""
    return 100_000 if quick else 1_000_000


def rounds(quick: bool) -> int:
    """Timed runs of each candidate (a full save and load take seconds each)."""
    return 3 if quick else 5


@dataclass
class SnapshotGroup(Group):
    """The save and the load of one store; one operation is a whole save or load."""

    sessions: int = 0
    file_bytes: Optional[int] = None  # the snapshot's size, once saved


def snapshot_group(n: int) -> SnapshotGroup:
    """Save n one-key sessions to a file, and load them into an empty store, with the first core here."""
    label, cls = cores()[0]
    state: dict[str, Any] = {}

    def path() -> str:
        if "folder" not in state:
            state["folder"] = tempfile.mkdtemp(prefix="memsession-bench-snapshot-")
        return os.path.join(state["folder"], "sessions.snap")

    def full_store() -> Any:
        if "store" not in state:
            state["store"] = memory_store(cls, make_ids(n, seed=9))
        return state["store"]

    def prep_save() -> Run:
        store, target = full_store(), path()

        def run() -> None:
            if store.save(target) != n:
                raise AssertionError("the save missed sessions")

        return run

    def prep_load() -> Run:
        target = path()
        if not os.path.exists(target):
            full_store().save(target)
        group.file_bytes = os.path.getsize(target)
        empty = cls()  # kept by run, so the loaded store is freed outside the timing

        def run() -> None:
            if empty.load(target) != n:
                raise AssertionError("the load missed sessions")

        return run

    def cleanup() -> None:
        state.pop("store", None)
        folder = state.pop("folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    group = SnapshotGroup(
        "snapshot",
        f"snapshot of {n:,} one-key sessions, {label}: one save, one load",
        [Candidate(f"{label} save", prep_save), Candidate(f"{label} load", prep_load)],
        1,
        cleanup=cleanup,
        sessions=n,
    )
    return group


def report(group: SnapshotGroup) -> str:
    """The medians as text: the whole save and load, per session, and the file's size."""
    lines = [group.title]
    for c in group.candidates:
        seconds = group.median(c.name)
        per = format_seconds(seconds / group.sessions)
        lines.append(f"  {c.name:<44} {seconds:8.3f} s  ({per} per session)")
    if group.file_bytes is not None:
        size = group.file_bytes
        lines.append(f"  file: {size / 1e6:.1f} MB, {size / group.sessions:.0f} bytes per session")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Time the group, print the report."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.snapshot",
        description="Time saving and loading a snapshot of one-key sessions with the compiled core.",
    )
    parser.add_argument("--quick", action="store_true", help="100,000 sessions and 3 rounds (a smoke run)")
    parser.add_argument("--sessions", type=int, metavar="N", help="this many sessions instead")
    args = parser.parse_args(argv)
    n = args.sessions if args.sessions is not None else sessions(args.quick)
    if n < 1:
        parser.error("--sessions must be at least 1")
    group = snapshot_group(n)
    progress = Progress()
    try:
        run_group(group, rounds(args.quick), progress)
    finally:
        assert group.cleanup is not None
        group.cleanup()
        progress.done()
    print(report(group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
