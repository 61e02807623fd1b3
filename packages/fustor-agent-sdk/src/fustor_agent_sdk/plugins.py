"""The plugin manager and driver collection, shared by the agent and the testing kit so that
both find, check and reject drivers alike."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal, TypeVar, overload

import pluggy
from pluggy import HookCaller

from fustor_agent_sdk import PROJECT_NAME, SenderDriver, SourceDriver, hookspecs
from fustor_core import PluginError

__all__ = ["Kind", "collect_drivers", "new_plugin_manager"]

Kind = Literal["source", "sender"]
D = TypeVar("D", SourceDriver, SenderDriver)


def new_plugin_manager() -> pluggy.PluginManager:
    """An empty plugin manager of the ``fustor`` project with the SDK's hookspecs."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


@overload
def collect_drivers(
    manager: pluggy.PluginManager, kind: Literal["source"], failures: list[str] | None = None
) -> dict[str, tuple[type[SourceDriver], str]]: ...


@overload
def collect_drivers(
    manager: pluggy.PluginManager, kind: Literal["sender"], failures: list[str] | None = None
) -> dict[str, tuple[type[SenderDriver], str]]: ...


def collect_drivers(
    manager: pluggy.PluginManager, kind: Kind, failures: list[str] | None = None
) -> dict[str, tuple[type[SourceDriver], str]] | dict[str, tuple[type[SenderDriver], str]]:
    """``type:`` name -> (driver class, name of the plugin providing it), for ``kind``.

    Raises :class:`fustor_core.PluginError` when a plugin's hook fails, returns something
    other than a list of named :class:`SourceDriver` / :class:`SenderDriver` subclasses, or a
    driver name is provided twice (by two plugins or by one). With ``failures``, each such
    error is appended to it instead and that plugin's drivers of ``kind`` are left out (the
    others are still collected).
    """
    if kind == "source":
        return _collect(manager.hook.fustor_source_drivers, SourceDriver, kind, failures)
    return _collect(manager.hook.fustor_sender_drivers, SenderDriver, kind, failures)


def _collect(
    hook: HookCaller, base: type[D], kind: Kind, failures: list[str] | None
) -> dict[str, tuple[type[D], str]]:
    found: dict[str, tuple[type[D], str]] = {}
    for impl in hook.get_hookimpls():
        try:
            found.update(_drivers_of(impl.plugin_name, impl.function, base, kind, found))
        except PluginError as exc:
            if failures is None:
                raise
            failures.append(str(exc))
    return found


def _drivers_of(
    plugin: str,
    hook: Callable[[], object],
    base: type[D],
    kind: Kind,
    found: dict[str, tuple[type[D], str]],
) -> dict[str, tuple[type[D], str]]:
    """The drivers one plugin's hook returns, checked (names clashing with ``found`` too)."""
    try:
        classes = hook()
    except Exception as exc:
        raise PluginError(f"plugin {plugin!r}: {kind} driver hook failed: {exc}") from exc
    if classes is None:
        return {}
    if not isinstance(classes, list | tuple):
        raise PluginError(
            f"plugin {plugin!r}: {kind} driver hook returned {classes!r}, "
            f"not a list of {base.__name__} subclasses"
        )
    mine: dict[str, tuple[type[D], str]] = {}
    for cls in classes:
        name = getattr(cls, "name", None)
        if (
            not (inspect.isclass(cls) and issubclass(cls, base))
            or not isinstance(name, str)
            or not name.strip()
        ):
            raise PluginError(
                f"plugin {plugin!r} returned {cls!r}, which is not a named {base.__name__} subclass"
            )
        if (earlier := found.get(name) or mine.get(name)) is not None:
            raise PluginError(
                f"{kind} driver {name!r} is provided twice: by plugin "
                f"{earlier[1]!r} and by plugin {plugin!r}"
            )
        mine[name] = (cls, plugin)
    return mine
