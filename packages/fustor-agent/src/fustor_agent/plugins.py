"""Driver discovery: the entry-point group, pluggy, and the registry of driver classes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from fustor_agent_sdk import ENTRY_POINT_GROUP, SenderDriver, SourceDriver
from fustor_agent_sdk.plugins import Kind, collect_drivers, new_plugin_manager
from fustor_core import PluginError

__all__ = ["DriverRegistry", "PluginInfo", "build_registry", "load_registry", "make_plugin_manager"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One registered hooks module and the distribution that ships it."""

    name: str
    distribution: str
    version: str
    module: str


@dataclass(slots=True)
class DriverRegistry:
    sources: dict[str, type[SourceDriver]] = field(default_factory=dict)
    senders: dict[str, type[SenderDriver]] = field(default_factory=dict)
    origin: dict[tuple[Kind, str], str] = field(default_factory=dict)
    """(kind, driver name) → the plugin (distribution) that provides it."""
    plugins: list[PluginInfo] = field(default_factory=list)

    def names(self, kind: Kind) -> str:
        found = sorted(self.sources if kind == "source" else self.senders)
        return ", ".join(found) if found else "none installed"


def _describe(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else (ep.name, "?")


def make_plugin_manager(
    plugin_entry_points: Iterable[EntryPoint] | None = None,
    failures: list[str] | None = None,
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """A fresh plugin manager with every plugin of the entry-point group registered.

    ``plugin_entry_points`` replaces discovery (tests inject their own). Every plugin that
    fails to import is collected, and all of them are reported in one :class:`PluginError`;
    given ``failures``, they are appended there instead (one line each) and the others
    load (``fustor-agent plugins`` lists what works and what does not).
    """
    pm = new_plugin_manager()
    eps = (
        list(entry_points(group=ENTRY_POINT_GROUP))
        if plugin_entry_points is None
        else list(plugin_entry_points)
    )
    infos: list[PluginInfo] = []
    broken: list[str] = []
    for ep in eps:
        dist, version = _describe(ep)
        try:
            module = ep.load()
            pm.register(module, name=dist if pm.get_plugin(dist) is None else f"{dist}:{ep.name}")
        except Exception as exc:
            broken.append(f"{dist} ({ep.name} = {ep.value}): {type(exc).__name__}: {exc}")
            continue
        infos.append(PluginInfo(ep.name, dist, version, ep.value))
    broken += _unknown_hooks(pm, infos)
    if failures is not None:
        failures.extend(broken)
    elif broken:
        raise PluginError(f"{len(broken)} driver plugin(s) failed to load: " + "; ".join(broken))
    return pm, infos


def _unknown_hooks(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> list[str]:
    """One line per plugin implementing a hook this agent does not define (a misspelt
    ``fustor_..._driver``); such a plugin is unregistered and left out of ``infos``."""
    known = sorted(n for n, c in vars(pm.hook).items() if not n.startswith("_") and c.has_spec())
    lines = []
    for name, caller in list(vars(pm.hook).items()):
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or pm.get_plugin(impl.plugin_name) is None:
                continue
            pm.unregister(name=impl.plugin_name)
            lines.append(
                f"{impl.plugin_name}: implements an unknown hook {name!r} "
                f"(this agent's: {', '.join(known)})"
            )
            infos[:] = [
                i
                for i in infos
                if impl.plugin_name not in (i.distribution, f"{i.distribution}:{i.name}")
            ]
    return lines


def build_registry(
    pm: pluggy.PluginManager, infos: list[PluginInfo], failures: list[str] | None = None
) -> DriverRegistry:
    """The driver classes by name; a name provided twice is a :class:`PluginError` (appended
    to ``failures`` instead when given, the second provider's drivers left out)."""
    registry = DriverRegistry(plugins=infos)
    for name, (source, plugin) in collect_drivers(pm, "source", failures).items():
        registry.sources[name] = source
        registry.origin[("source", name)] = plugin
    for name, (sender, plugin) in collect_drivers(pm, "sender", failures).items():
        registry.senders[name] = sender
        registry.origin[("sender", name)] = plugin
    logger.debug(
        "drivers: sources=%s senders=%s", registry.names("source"), registry.names("sender")
    )
    return registry


def load_registry(
    plugin_entry_points: Iterable[EntryPoint] | None = None, failures: list[str] | None = None
) -> DriverRegistry:
    """The registry of every installed plugin (:func:`make_plugin_manager`, then
    :func:`build_registry`); raises :class:`PluginError` unless ``failures`` collects them."""
    return build_registry(*make_plugin_manager(plugin_entry_points, failures), failures)
