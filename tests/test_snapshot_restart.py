"""The demo as a real process keeps its sessions across restarts in a snapshot file."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from memsession import _core_py

from .redis_server import eventually, free_port
from .webserver import Browser


class Demo:
    """`python -m memsession demo --snapshot FILE` as a child process, its output kept in files."""

    def __init__(self, folder: Path, interval: Optional[float] = None) -> None:
        self.state = folder / "state"  # the snapshot's folder holds nothing else
        self.logs = folder / "logs"
        self.state.mkdir()
        self.logs.mkdir()
        self.snapshot = self.state / "sessions.snap"
        self.interval = interval
        self.port = free_port()  # the same port on every start, as a restarted server has
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.runs = 0

    def start(self) -> None:
        """Start the server and wait until it listens."""
        assert self.proc is None
        self.runs += 1
        args = [sys.executable, "-m", "memsession", "demo", "--port", str(self.port)]
        args += ["--snapshot", str(self.snapshot)]
        if self.interval is not None:
            args += ["--snapshot-interval", str(self.interval)]
        with open(self._log("out"), "wb") as out, open(self._log("err"), "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err)
        proc = self.proc
        eventually(lambda: proc.poll() is not None or "demo on http" in self._read("out"), "the demo listens")
        if proc.poll() is not None:
            self.proc = None
            raise AssertionError(f"the demo exited with {proc.returncode}: {self.stderr}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send signum, wait for the process to end; return its exit status."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        proc.send_signal(signum)
        return proc.wait(15)

    def close(self) -> None:
        """Kill the server if it still runs."""
        if self.proc is not None:
            self.stop(signal.SIGKILL)

    @property
    def stderr(self) -> str:
        """What the current (or last) run wrote to stderr."""
        return self._read("err")

    def _log(self, kind: str) -> Path:
        return self.logs / f"run-{self.runs}.{kind}"

    def _read(self, kind: str) -> str:
        return self._log(kind).read_text(errors="replace")


@pytest.fixture
def make_demo(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    """Builds a Demo over a snapshot in tmp_path; a server still running after the test is killed."""
    made: list[Demo] = []

    def make(interval: Optional[float] = None) -> Demo:
        demo = Demo(tmp_path, interval)
        made.append(demo)
        return demo

    yield make
    for demo in made:
        demo.close()


def field(page: str, name: str) -> str:
    match = re.search(rf'<dd id="{name}"[^>]*>(.*?)</dd>', page)
    assert match, name
    return match.group(1)


def seen(browser: Browser) -> tuple[str, str]:
    """(user, count) as the home page shows them to browser."""
    status, _, page = browser.request("/")
    assert status == 200
    return field(page, "user"), field(page, "count")


def log_in_and_count(browser: Browser) -> str:
    """Log in as ann, press the count button once; return the session cookie."""
    browser.request("/login", data=b"user=ann")
    _, _, page = browser.request("/count", data=b"")
    assert (field(page, "user"), field(page, "count")) == ("ann", "1")
    cookie = browser.cookie("memsession")
    assert cookie is not None
    return cookie


def sessions_in(blob: bytes, scratch: Path) -> dict[str, dict[str, Any]]:
    """{sid: data} of the snapshot bytes blob."""
    scratch.write_bytes(blob)
    store = _core_py.MemoryProvider()
    store.load(scratch)
    return {s.sid: dict(s) for s in store.sessions()}


def assert_clean_exit(code: int, demo: Demo) -> None:
    # The demo's SIGTERM handler ends it through SystemExit (128 + 15), after the last save.
    assert code in (0, 128 + signal.SIGTERM), demo.stderr
    assert "Traceback" not in demo.stderr


def test_after_sigterm_a_restart_finds_the_same_cookie_logged_in_with_the_same_count(
    make_demo: Callable[..., Demo],
) -> None:
    demo = make_demo()
    demo.start()
    browser = Browser(demo.base)
    cookie = log_in_and_count(browser)
    assert not demo.snapshot.exists()  # no interval: only the stop saves
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)
    assert demo.snapshot.stat().st_mode & 0o777 == 0o600
    assert os.listdir(demo.state) == [demo.snapshot.name]

    demo.start()
    assert seen(browser) == ("ann", "1")
    assert browser.cookie("memsession") == cookie
    _, _, page = browser.request("/count", data=b"")
    assert field(page, "count") == "2"  # the session goes on where it was
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)


def test_after_kill_9_the_last_periodic_snapshot_comes_back_and_later_writes_are_lost(
    make_demo: Callable[..., Demo], tmp_path: Path
) -> None:
    demo = make_demo(interval=0.2)
    demo.start()
    browser = Browser(demo.base)
    cookie = log_in_and_count(browser)
    scratch = tmp_path / "scratch.snap"
    last: dict[str, Any] = {"stat": None, "blob": b""}

    def saved_with(count: int) -> bool:
        # A new file appears with each save: look inside only when its stat changed.
        try:
            st = demo.snapshot.stat()
        except FileNotFoundError:
            return False
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == last["stat"]:
            return False
        blob = demo.snapshot.read_bytes()
        last.update(stat=key, blob=blob)
        return sessions_in(blob, scratch).get(cookie) == {"user": "ann", "count": count}

    eventually(lambda: saved_with(1), "a periodic save holds the login and count 1")
    saved = last["blob"]
    _, _, page = browser.request("/count", data=b"")
    assert field(page, "count") == "2"
    assert demo.stop(signal.SIGKILL) == -signal.SIGKILL  # no handler, no exit hooks: no last save
    at_kill = demo.snapshot.read_bytes()
    assert [p for p in os.listdir(demo.state) if not p.startswith(".memsession-")] == [demo.snapshot.name]

    demo.start()
    user, count = seen(browser)
    assert user == "ann"
    if at_kill == saved:
        # The usual case: the kill came within the 0.2 s after the save seen, so the
        # state of that save came back and the press after it was lost.
        assert count == "1"
    else:
        # A save landed between the press and the kill: what it holds came back.
        assert count == str(sessions_in(at_kill, scratch)[cookie]["count"])
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_a_damaged_snapshot_on_start_is_kept_aside_and_the_server_starts_empty(
    make_demo: Callable[..., Demo], tmp_path: Path, damage: str
) -> None:
    demo = make_demo()
    demo.start()
    browser = Browser(demo.base)
    old_cookie = log_in_and_count(browser)
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)
    whole = demo.snapshot.read_bytes()
    assert old_cookie in sessions_in(whole, tmp_path / "scratch.snap")
    if damage == "random bytes":
        bad, reason = random.Random(5).randbytes(len(whole)), "is not a memsession snapshot"
    else:
        bad, reason = whole[:-5], "is truncated"  # cut in the trailer
    demo.snapshot.write_bytes(bad)

    demo.start()
    assert browser.cookie("memsession") == old_cookie
    assert seen(browser) == ("not logged in", "0")  # the old cookie finds nothing
    (aside,) = demo.state.glob(demo.snapshot.name + ".damaged-*")
    assert aside.read_bytes() == bad
    assert not demo.snapshot.exists()
    stderr = demo.stderr
    assert reason in stderr and str(demo.snapshot) in stderr and aside.name in stderr

    # It serves on, and the next save writes the file normally, leaving the damaged one alone.
    browser.request("/login", data=b"user=bob")
    new_cookie = browser.cookie("memsession")
    assert new_cookie is not None and new_cookie != old_cookie
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)
    assert sessions_in(demo.snapshot.read_bytes(), tmp_path / "scratch.snap") == {new_cookie: {"user": "bob"}}
    assert aside.read_bytes() == bad
    assert sorted(os.listdir(demo.state)) == sorted([demo.snapshot.name, aside.name])

    demo.start()
    assert seen(browser) == ("bob", "0")
    assert_clean_exit(demo.stop(signal.SIGTERM), demo)


def test_a_manager_that_is_never_closed_saves_its_snapshot_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "sessions.snap"
    script = (
        "import sys\n"
        "from memsession import Manager\n"
        "from memsession.testing import start_session\n"
        "manager = Manager('memory', 'sid', 100, snapshot=sys.argv[1])\n"
        "print(start_session(manager, user='ann').cookie_value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert sessions_in(path.read_bytes(), tmp_path / "scratch.snap") == {done.stdout.strip(): {"user": "ann"}}
