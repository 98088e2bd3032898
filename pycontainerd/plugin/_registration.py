"""What a plugin declares, what its ``init`` receives, and what it returns.

A plugin is a :class:`Registration`: ``type`` and ``id`` (containerd's names,
e.g. ``io.containerd.metadata.v1`` / ``sqlite``), the plugin *types* it
``requires`` (``"*"`` = every other plugin), and an async ``init`` that gets an
:class:`InitContext` and returns an :class:`Instance`. An instance carries the
actors to start under the root supervisor (as child specs, started in plugin
order so that ``rest_for_one`` follows dependencies), the RPC methods it
serves, and a ``value`` that dependent plugins fetch with
:meth:`InitContext.get`.

Built-in plugins are an explicit list in the daemon; third-party ones come from
the ``pycontainerd.plugins`` entry-point group, each entry point naming a
``Registration`` (or a list of them). Nothing registers by import side effect.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.rpc import Handler

log = logging.getLogger("pycontainerd.plugin")

T = TypeVar("T")


class PluginError(errdefs.FailedPrecondition):
    """A plugin could not be initialised; recorded as its ``init_err``."""


class ChildStarter(Protocol):
    """Starts a child under the root supervisor and returns its ref."""

    async def __call__(self, spec: Any) -> Any: ...


@attrs.define(kw_only=True)
class InitContext:
    """What ``Registration.init`` receives (containerd's ``plugin.InitContext``)."""

    registration: Registration
    root: Path
    """``<root>/<type>.<id>``: the plugin's own directory under the daemon root."""
    state: Path
    """``<state>/<type>.<id>``: the plugin's own directory under the state dir."""
    config: Mapping[str, Any]
    """The plugin's ``[plugins."<type>.<id>"]`` section of the daemon config."""
    daemon_config: Any
    start_child: ChildStarter
    """Start an actor (a ``ChildSpec``) under the root supervisor now."""
    instances: Mapping[tuple[str, str], Instance]
    """Every plugin initialised so far (and, later, all of them)."""
    registrations: Sequence[Registration]
    """Every registration, in start order."""
    tree: Callable[[], list[Any]]
    """The live actor tree (``supervisor.walk_tree`` of the root)."""

    def get(self, type: str, id: str, cls: type[T]) -> T:
        """The ``value`` of an initialised plugin this one requires.

        Raises:
            PluginError: the plugin is missing, failed, or its value is not a ``cls``.
        """
        inst = self.instances.get((type, id))
        if inst is None or inst.error is not None:
            raise PluginError(f"plugin {type}.{id} is not available")
        if not isinstance(inst.value, cls):
            raise PluginError(f"plugin {type}.{id} does not provide {cls.__name__}")
        return inst.value


@attrs.define(kw_only=True)
class Instance:
    """The result of initialising one plugin."""

    value: Any = None
    methods: dict[str, Handler] = attrs.field(factory=dict)
    """RPC handlers by method name (``"namespaces.create"``)."""
    exports: dict[str, str] = attrs.field(factory=dict)
    capabilities: list[str] = attrs.field(factory=list)
    error: errdefs.ErrdefsError | None = None
    """Set when ``init`` failed: the daemon records it and goes on."""


InitFn = Callable[[InitContext], Awaitable[Instance]]


@attrs.frozen(kw_only=True)
class Registration:
    """One plugin: containerd's ``plugin.Registration``."""

    type: str
    id: str
    init: InitFn
    requires: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    """The plugin's config keys and their defaults (``pycontainerd config default``)."""

    @property
    def uri(self) -> str:
        return f"{self.type}.{self.id}"


def load_entry_points(group: str = "pycontainerd.plugins") -> list[Registration]:
    """Registrations published by installed distributions under ``group``.

    A broken entry point is logged and skipped: third-party code never stops the
    daemon from starting.
    """
    found: list[Registration] = []
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception:
            log.exception("cannot load plugin entry point %s", ep.name)
            continue
        items = obj if isinstance(obj, list | tuple) else [obj]
        for item in items:
            if isinstance(item, Registration):
                found.append(item)
            else:
                log.error("entry point %s is not a Registration: %r", ep.name, item)
    return found
