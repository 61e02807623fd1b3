"""The plugin manager and driver collection, shared by the agent and the testing kit so that
both find, check and reject drivers alike."""

from __future__ import annotations

import inspect
from typing import Literal

import pluggy

from fustor_agent_sdk import PROJECT_NAME, SenderDriver, SourceDriver, hookspecs
from fustor_core import PluginError

__all__ = ["Kind", "collect_drivers", "new_plugin_manager"]

Kind = Literal["source", "sender"]


def new_plugin_manager() -> pluggy.PluginManager:
    """An empty plugin manager of the ``fustor`` project with the SDK's hookspecs."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def collect_drivers(manager: pluggy.PluginManager, kind: Kind) -> dict[str, tuple[type, str]]:
    """``type:`` name -> (driver class, name of the plugin providing it), for ``kind``.

    Raises :class:`fustor_core.PluginError` when a plugin's hook fails, returns something
    that is not a named :class:`SourceDriver` / :class:`SenderDriver` subclass, or a driver
    name is provided twice (by two plugins or by one).
    """
    hooks = manager.hook
    hook = hooks.fustor_source_drivers if kind == "source" else hooks.fustor_sender_drivers
    base: type = SourceDriver if kind == "source" else SenderDriver
    found: dict[str, tuple[type, str]] = {}
    for impl in hook.get_hookimpls():
        plugin = impl.plugin_name
        try:
            classes = impl.function() or []
        except Exception as exc:
            raise PluginError(f"plugin {plugin!r}: {kind} driver hook failed: {exc}") from exc
        for cls in classes:
            name = getattr(cls, "name", None)
            if not (inspect.isclass(cls) and issubclass(cls, base)) or not isinstance(name, str):
                raise PluginError(
                    f"plugin {plugin!r} returned {cls!r}, which is not a named "
                    f"{base.__name__} subclass"
                )
            if name in found:
                raise PluginError(
                    f"{kind} driver {name!r} is provided twice: by plugin "
                    f"{found[name][1]!r} and by plugin {plugin!r}"
                )
            found[name] = (cls, plugin)
    return found
