"""Every Python code block of the README runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S)


def block_id(code: str) -> str:
    first = next(
        line for line in code.splitlines() if line.strip() and not line.startswith(("import", "from"))
    )
    return first[:40]


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", [b for b in BLOCKS if "def test_" not in b], ids=block_id)
def test_readme_block_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_block"}
    try:
        exec(compile(code, str(README), "exec"), namespace)
    finally:
        for value in namespace.values():
            if type(value).__name__ in ("Manager", "RedisProvider"):
                value.close()  # type: ignore[attr-defined]
    import memsession.registry as registry

    registry._providers.pop("capped", None)  # registered by the Providers block


@pytest.mark.parametrize("code", [b for b in BLOCKS if "def test_" in b], ids=block_id)
def test_readme_test_block_passes(code: str, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_example=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=code.count("def test_"))
