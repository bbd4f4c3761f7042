"""register / get_provider and the Provider protocol."""

from __future__ import annotations

import pytest

import memsession
from memsession import registry


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry copy that the test may change freely."""
    monkeypatch.setattr(registry, "_providers", dict(registry._providers))


def test_registered_provider_is_returned(clean_registry: None) -> None:
    p = memsession.MemoryProvider()
    memsession.register("mine", p)
    assert memsession.get_provider("mine") is p


def test_registering_a_name_twice_is_a_value_error(clean_registry: None) -> None:
    memsession.register("twice", memsession.MemoryProvider())
    with pytest.raises(ValueError, match="twice"):
        memsession.register("twice", memsession.MemoryProvider())


def test_registering_none_is_a_type_error(clean_registry: None) -> None:
    with pytest.raises(TypeError, match="None"):
        memsession.register("nothing", None)  # type: ignore[arg-type]


def test_registering_a_non_provider_is_a_type_error(clean_registry: None) -> None:
    with pytest.raises(TypeError, match="neither a Provider nor a factory"):
        memsession.register("dict", {})  # type: ignore[arg-type]


def test_a_registered_factory_gives_a_new_provider_per_lookup(clean_registry: None) -> None:
    memsession.register("per-manager", memsession.MemoryProvider)
    first, second = memsession.get_provider("per-manager"), memsession.get_provider("per-manager")
    assert isinstance(first, memsession.MemoryProvider) and first is not second


def test_a_factory_returning_a_non_provider_is_a_type_error(clean_registry: None) -> None:
    memsession.register("broken", dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'broken' returned dict, not a Provider"):
        memsession.get_provider("broken")


def test_memory_is_registered_as_a_factory() -> None:
    assert memsession.get_provider("memory") is not memsession.get_provider("memory")


@pytest.mark.parametrize("name", [None, 3, b"memory"])
def test_non_str_names_are_a_type_error(clean_registry: None, name: object) -> None:
    with pytest.raises(TypeError, match="name must be str"):
        memsession.register(name, memsession.MemoryProvider())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be str"):
        memsession.get_provider(name)  # type: ignore[arg-type]


def test_unknown_provider_error_names_it_and_hints_at_an_import() -> None:
    with pytest.raises(memsession.UnknownProviderError) as info:
        memsession.get_provider("redis-cluster")
    assert isinstance(info.value, LookupError)
    assert "'redis-cluster'" in str(info.value) and "(forgotten import?)" in str(info.value)


def test_both_cores_satisfy_the_provider_protocol() -> None:
    from memsession import _core_py

    assert isinstance(_core_py.MemoryProvider(), memsession.Provider)
    assert isinstance(memsession.MemoryProvider(), memsession.Provider)
