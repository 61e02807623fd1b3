"""Driver discovery through the entry-point group and pluggy."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from agent_helpers import entry_point

from fustor_agent.plugins import load_registry, make_plugin_manager
from fustor_agent_sdk import ENTRY_POINT_GROUP
from fustor_core import PluginError


def test_third_party_package_is_discovered_from_its_installed_metadata():
    # The test-only package is installed by the hatch workspace, not registered by hand:
    # its entry point comes from the installed distribution's metadata.
    eps = [
        ep
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.name == "fustor-driver-testonly"
    ]
    assert [ep.value for ep in eps] == ["fustor_driver_testonly.hooks"]
    registry = load_registry(eps)
    assert set(registry.sources) == {"static", "counter"}
    assert set(registry.senders) == {"slowfile"}
    assert registry.origin[("source", "static")] == "fustor-driver-testonly"
    (info,) = registry.plugins
    assert (info.distribution, info.version) == ("fustor-driver-testonly", "1.0.0")


def test_echo_sender_is_registered_through_its_entry_point():
    eps = [
        ep
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.name == "fustor-sender-echo"
    ]
    assert "echo" in load_registry(eps).senders


def test_duplicate_driver_name_names_both_plugins():
    with pytest.raises(PluginError) as info:
        load_registry(
            [
                entry_point("testonly", "fustor_driver_testonly.hooks"),
                entry_point("copycat", "fustor_driver_testonly.duplicate"),
            ]
        )
    message = str(info.value)
    assert "source driver 'static' is provided twice" in message
    assert "'testonly'" in message and "'copycat'" in message


def test_a_duplicate_driver_name_leaves_the_first_plugin_listed_when_failures_are_collected():
    """``fustor-agent plugins`` collects failures: the clash is one of them, and the drivers
    that did load are still listed (it printed nothing on stdout before)."""
    failures: list[str] = []
    registry = load_registry(
        [
            entry_point("testonly", "fustor_driver_testonly.hooks"),
            entry_point("copycat", "fustor_driver_testonly.duplicate"),
        ],
        failures=failures,
    )
    assert failures == [
        "source driver 'static' is provided twice: by plugin 'testonly' and by plugin 'copycat'"
    ]
    assert set(registry.sources) == {"static", "counter"}
    assert registry.origin[("source", "static")] == "testonly"
    assert set(registry.senders) == {"slowfile"}


def test_every_failing_plugin_is_reported_at_once():
    with pytest.raises(PluginError) as info:
        make_plugin_manager(
            [
                entry_point("broken-one", "fustor_no_such_package.hooks"),
                entry_point("testonly", "fustor_driver_testonly.hooks"),
                entry_point("broken-two", "fustor_driver_testonly.no_such_module"),
            ]
        )
    message = str(info.value)
    assert message.startswith("2 driver plugin(s) failed to load")
    assert "broken-one (broken-one = fustor_no_such_package.hooks): ModuleNotFoundError" in message
    assert "broken-two (broken-two = fustor_driver_testonly.no_such_module)" in message


def test_a_misspelled_hook_fails_at_load(tmp_path, monkeypatch):
    (tmp_path / "fustor_typo_plugin.py").write_text(
        "from fustor_agent_sdk import hookimpl\n"
        "@hookimpl\n"
        "def fustor_source_driver():\n"
        "    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        make_plugin_manager([entry_point("typo", "fustor_typo_plugin")])
    # Named by its plugin name (the distribution), not a module repr; the hooks it could
    # have meant are listed.
    assert str(info.value) == (
        "1 driver plugin(s) failed to load: typo: implements an unknown hook "
        "'fustor_source_driver' (this agent's: fustor_sender_drivers, fustor_source_drivers)"
    )
    failures: list[str] = []
    make_plugin_manager(
        [
            entry_point("typo", "fustor_typo_plugin"),
            entry_point("echo", "fustor_sender_echo.hooks"),
        ],
        failures,
    )
    assert failures == [str(info.value).split(": ", 1)[1]]  # `plugins` lists it, and the rest


def test_a_hook_returning_a_non_driver_is_refused(tmp_path, monkeypatch):
    (tmp_path / "fustor_junk_plugin.py").write_text(
        "from fustor_agent_sdk import hookimpl\n"
        "@hookimpl\n"
        "def fustor_sender_drivers():\n"
        "    return [object]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="not a named SenderDriver subclass"):
        load_registry([entry_point("junk", "fustor_junk_plugin")])


def test_each_plugin_manager_is_fresh():
    first, _ = make_plugin_manager([entry_point("testonly", "fustor_driver_testonly.hooks")])
    second, _ = make_plugin_manager([])
    assert first is not second
    assert second.hook.fustor_source_drivers() == []
