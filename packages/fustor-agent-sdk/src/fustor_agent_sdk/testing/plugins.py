"""Plugin managers for tests: the SDK's hookspecs, explicit registration, no autoload."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from fustor_agent_sdk import ENTRY_POINT_GROUP
from fustor_agent_sdk.plugins import collect_drivers, new_plugin_manager
from fustor_agent_sdk.sender import SenderDriver
from fustor_agent_sdk.source import SourceDriver

__all__ = [
    "entry_point_hooks",
    "make_plugin_manager",
    "sender_drivers",
    "source_drivers",
]


def make_plugin_manager(*hook_modules: ModuleType | object) -> pluggy.PluginManager:
    """A plugin manager with the SDK's hookspecs and exactly ``hook_modules`` registered.

    Entry points are never loaded, so what a test sees does not depend on what else happens
    to be installed. ``check_pending()`` makes a misspelled hook name fail here.
    """
    manager = new_plugin_manager()
    for module in hook_modules:
        manager.register(module)
    manager.check_pending()
    return manager


def source_drivers(manager: pluggy.PluginManager) -> dict[str, type[SourceDriver]]:
    """``type:`` name -> class of every source driver the registered plugins provide; a name
    provided twice is a :class:`fustor_core.PluginError`, as in the agent."""
    return {name: cls for name, (cls, _) in collect_drivers(manager, "source").items()}


def sender_drivers(manager: pluggy.PluginManager) -> dict[str, type[SenderDriver]]:
    """``type:`` name -> class of every sender driver the registered plugins provide; a name
    provided twice is a :class:`fustor_core.PluginError`, as in the agent."""
    return {name: cls for name, (cls, _) in collect_drivers(manager, "sender").items()}


def entry_point_hooks(name: str) -> ModuleType:
    """Load the hooks module registered as ``name`` in the ``fustor.agent.plugins`` group.

    This is how a driver package proves its entry point resolves after ``pip install``.
    """
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        available = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise LookupError(f"no {ENTRY_POINT_GROUP!r} entry point {name!r}; installed: {available}")
    module = next(iter(found)).load()
    assert isinstance(module, ModuleType), f"entry point {name!r} must name a module"
    return module
