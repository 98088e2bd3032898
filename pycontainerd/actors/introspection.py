"""``version.version``, ``introspection.{plugins,server}`` and ``debug.actors``.

These answer from the daemon's own state at once; none needs an actor hop.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pycontainerd import __version__
from pycontainerd.api import debug as api_debug
from pycontainerd.api import filters
from pycontainerd.api import introspection as api
from pycontainerd.api import version as api_version
from pycontainerd.api.rpc import Call, Wait, done
from pycontainerd.api.types import RpcStatus
from pycontainerd.plugin import Instance, Registration
from pycontainerd.supervisor import ActorInfo

REVISION_ENV = "PYCONTAINERD_REVISION"


def server_uuid(path: Path) -> str:
    """The daemon's persistent uuid, created on first start (as containerd's)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = str(uuid.uuid4())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.replace(path)
    return value


def _pidns() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


class IntrospectionService:
    """What the daemon knows about itself."""

    def __init__(
        self,
        *,
        registrations: Callable[[], list[Registration]],
        instances: Mapping[tuple[str, str], Instance],
        uuid_path: Path,
        tree: Callable[[], list[ActorInfo]],
    ) -> None:
        self._registrations = registrations
        self._instances = instances
        self._uuid = server_uuid(uuid_path)
        self._tree = tree

    def methods(self) -> dict[str, Any]:
        return {
            "version.version": self.version,
            "introspection.plugins": self.plugins,
            "introspection.server": self.server,
            "debug.actors": self.actors,
        }

    async def version(self, call: Call) -> Wait:
        return done(
            api_version.VersionResponse(
                version=__version__, revision=os.environ.get(REVISION_ENV, "")
            )
        )

    def plugin_list(self) -> list[api.Plugin]:
        out: list[api.Plugin] = []
        for reg in self._registrations():
            inst = self._instances.get((reg.type, reg.id))
            if inst is None:
                continue
            err = inst.error
            out.append(
                api.Plugin(
                    type=reg.type,
                    id=reg.id,
                    requires=list(reg.requires),
                    exports=dict(inst.exports),
                    capabilities=list(inst.capabilities),
                    init_err=None if err is None else RpcStatus(code=err.code, message=err.message),
                )
            )
        return out

    async def plugins(self, call: Call) -> Wait:
        req: api.PluginsRequest = call.request
        flt = filters.parse_all(req.filters)
        plugins = [
            p
            for p in self.plugin_list()
            if flt.match(
                filters.adapt(
                    {
                        "type": p.type,
                        "id": p.id,
                        "capabilities": ",".join(p.capabilities),
                        "exports": p.exports,
                    }
                )
            )
        ]
        return done(api.PluginsResponse(plugins=plugins))

    async def server(self, call: Call) -> Wait:
        return done(
            api.ServerResponse(uuid=self._uuid, pid=os.getpid(), pidns=_pidns(), deprecations=[])
        )

    async def actors(self, call: Call) -> Wait:
        return done(api_debug.ActorsResponse(actors=self._tree()))
