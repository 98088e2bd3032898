"""Order registrations so that every plugin starts after the types it requires."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pycontainerd.api import errdefs

from ._registration import Registration


def order(registrations: Iterable[Registration]) -> list[Registration]:
    """A start order honouring ``requires`` (containerd's ``Registry.Graph``).

    Among plugins free to start, the order they were given is kept. ``"*"``
    requires every other plugin.

    Raises:
        errdefs.InvalidArgument: two registrations share ``type.id``, or the
            requirements form a cycle.
    """
    regs = list(registrations)
    seen: set[str] = set()
    for reg in regs:
        if reg.uri in seen:
            raise errdefs.InvalidArgument(f"plugin {reg.uri} registered twice")
        seen.add(reg.uri)

    def deps(reg: Registration) -> list[Registration]:
        if "*" in reg.requires:
            return [r for r in regs if r is not reg and "*" not in r.requires]
        return [r for r in regs if r.type in reg.requires and r is not reg]

    out: list[Registration] = []
    state: dict[str, str] = {}

    def visit(reg: Registration, path: Sequence[str]) -> None:
        mark = state.get(reg.uri)
        if mark == "done":
            return
        if mark == "visiting":
            cycle = " -> ".join([*path, reg.uri])
            raise errdefs.InvalidArgument(f"plugin dependency cycle: {cycle}")
        state[reg.uri] = "visiting"
        for dep in deps(reg):
            visit(dep, [*path, reg.uri])
        state[reg.uri] = "done"
        out.append(reg)

    for reg in regs:
        visit(reg, [])
    return out
