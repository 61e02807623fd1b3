"""The testing kit finds and checks drivers as the agent does (one shared implementation)."""

from __future__ import annotations

import pytest

from fustor_agent.plugins import build_registry
from fustor_agent_sdk import SourceDriver, hookimpl
from fustor_agent_sdk.testing.plugins import make_plugin_manager, source_drivers
from fustor_core import PluginError


class Dup(SourceDriver):
    name = "dup"


class FirstHooks:
    @hookimpl
    def fustor_source_drivers(self) -> list[type]:
        return [Dup]


class SecondHooks:
    @hookimpl
    def fustor_source_drivers(self) -> list[type]:
        return [Dup]


class NotADriverHooks:
    @hookimpl
    def fustor_source_drivers(self) -> list[type]:
        return [dict]


class BareClassHooks:
    @hookimpl
    def fustor_source_drivers(self) -> type:
        return Dup  # the class itself, not a list of classes


def test_a_hook_that_returns_no_list_is_refused_alike() -> None:
    manager = make_plugin_manager(BareClassHooks())
    with pytest.raises(PluginError, match=r"returned <class .*Dup'>, not a list") as kit:
        source_drivers(manager)
    with pytest.raises(PluginError) as host:
        build_registry(manager, [])
    assert str(kit.value) == str(host.value)


def test_a_driver_name_provided_twice_is_an_error_in_the_kit_as_in_the_agent() -> None:
    manager = make_plugin_manager(FirstHooks(), SecondHooks())
    with pytest.raises(PluginError, match="source driver 'dup' is provided twice") as kit:
        source_drivers(manager)
    with pytest.raises(PluginError) as host:
        build_registry(manager, [])
    assert str(kit.value) == str(host.value)


def test_a_class_that_is_not_a_driver_is_refused_alike() -> None:
    manager = make_plugin_manager(NotADriverHooks())
    with pytest.raises(PluginError, match="not a named SourceDriver subclass"):
        source_drivers(manager)
    with pytest.raises(PluginError, match="not a named SourceDriver subclass"):
        build_registry(manager, [])


def test_one_driver_is_found_by_both() -> None:
    manager = make_plugin_manager(FirstHooks())
    assert source_drivers(manager) == {"dup": Dup}
    assert build_registry(manager, []).sources == {"dup": Dup}


class BlankNameHooks:
    @hookimpl
    def fustor_source_drivers(self) -> list[type]:
        return [type("Blank", (Dup,), {"name": " "})]


def test_a_driver_with_a_blank_name_is_refused() -> None:
    """``type: ""`` would otherwise validate (helper 19)."""
    with pytest.raises(PluginError, match="not a named SourceDriver subclass"):
        build_registry(make_plugin_manager(BlankNameHooks()), [])
