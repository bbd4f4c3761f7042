"""The demo site, clicked through with a cookie-jar client."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

from memsession import Manager
from memsession.demo import make_app

from .webserver import Browser, serving


def field(page: str, name: str) -> str:
    match = re.search(rf'<dd id="{name}"[^>]*>(.*?)</dd>', page)
    assert match, name
    return match.group(1)


def test_demo_counts_logs_in_with_a_new_id_and_logs_out(provider: Any) -> None:
    with Manager(provider, "memsession", 300, absolute_lifetime=3600) as manager:
        with serving(make_app(manager)) as base:
            browser = Browser(base)
            _, headers, page = browser.request("/")
            assert field(page, "count") == "0" and "none yet" in field(page, "sid")
            assert headers.get_all("Set-Cookie") is None

            _, _, page = browser.request("/count", data=b"")
            assert field(page, "count") == "1"
            first = browser.cookie("memsession")
            assert first is not None and first[:8] in field(page, "sid")
            assert field(page, "left").startswith("5:00<small> idle before it expires")
            assert 'data-seconds="300"' in page

            _, _, page = browser.request("/login", data=b"user=%3Cb%3Eann")
            second = browser.cookie("memsession")
            assert second is not None and second != first
            assert field(page, "user") == "&lt;b&gt;ann"
            assert field(page, "count") == "1"

            _, _, page = browser.request("/count", data=b"")
            assert field(page, "count") == "2"

            _, _, page = browser.request("/logout", data=b"")
            assert field(page, "count") == "0" and field(page, "user") == "not logged in"
            assert browser.cookie("memsession") is None
            assert len(provider) == 0

            assert browser.request("/nowhere")[0] == 404


def test_demo_command_serves_the_page() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "memsession", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            url = first_url(proc)
            status, _, page = Browser(url).request("/")
            assert status == 200 and "memsession demo" in page
        finally:
            proc.terminate()


def first_url(proc: "subprocess.Popen[str]") -> str:
    """The address the demo prints when it starts."""
    assert proc.stdout is not None
    for _ in range(5):
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", proc.stdout.readline())
        if match:
            return match.group(1)
    raise AssertionError("the demo did not print its address")


def test_demo_page_fits_a_phone_screen(provider: Any) -> None:
    with Manager(provider, "memsession", 300) as manager, serving(make_app(manager)) as base:
        _, _, page = Browser(base).request("/")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_demo_countdown_is_the_shorter_of_idle_and_absolute_time_left(provider: Any, clock: Any) -> None:
    with Manager(provider, "memsession", 300, absolute_lifetime=3600) as manager:
        with serving(make_app(manager)) as base:
            browser = Browser(base)
            for _ in range(14):  # in use for 3,500 s: 100 s of absolute lifetime left
                browser.request("/count", data=b"")
                clock.advance(250)
            _, _, page = browser.request("/count", data=b"")
    assert 'data-seconds="100"' in page
    assert field(page, "left").startswith("1:40<small> before it ends")


def test_demo_on_a_taken_port_says_so_and_suggests_another(tmp_path: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "memsession", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_command_takes_a_max_lifetime() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "memsession", "demo", "--port", "0", "--max-lifetime", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            browser = Browser(first_url(proc))
            _, _, page = browser.request("/count", data=b"")
            assert 'data-seconds="20"' in page and field(page, "left").startswith("0:20")
        finally:
            proc.terminate()


def test_demo_command_refuses_a_lifetime_that_is_not_positive() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "memsession", "demo", "--max-lifetime", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--max-lifetime" in done.stderr and "positive" in done.stderr
