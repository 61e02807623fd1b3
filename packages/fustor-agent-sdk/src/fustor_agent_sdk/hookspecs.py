"""Hook specifications: how a driver package tells the agent which drivers it provides.

A driver package registers one module under the entry-point group ``fustor.agent.plugins``::

    [project.entry-points."fustor.agent.plugins"]
    my_driver = "my_package.hooks"

and that module implements one or both hooks with :data:`fustor_agent_sdk.hookimpl`. Hooks take
no arguments and return driver classes (never instances); all runtime work happens in the
async methods of driver instances.
"""

from __future__ import annotations

from fustor_agent_sdk import hookspec
from fustor_agent_sdk.sender import SenderDriver
from fustor_agent_sdk.source import SourceDriver

__all__ = ["fustor_sender_drivers", "fustor_source_drivers"]


@hookspec
def fustor_source_drivers() -> list[type[SourceDriver]]:  # type: ignore[empty-body]
    """Return the source driver classes this plugin provides.

    Called once when the agent builds its driver registry, before any config is validated.
    Results of all plugins are concatenated; each class's ``name`` is the ``type:`` users
    write in ``sources:``. Two classes with the same ``name`` (from one plugin or two) are an
    error naming both plugins.
    """


@hookspec
def fustor_sender_drivers() -> list[type[SenderDriver]]:  # type: ignore[empty-body]
    """Return the sender driver classes this plugin provides.

    Called once when the agent builds its driver registry. Results of all plugins are
    concatenated; each class's ``name`` is the ``type:`` users write in ``senders:``.
    Duplicate names are an error naming both plugins.
    """
