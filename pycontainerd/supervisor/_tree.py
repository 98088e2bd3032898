"""The live tree, as ``debug.actors`` and SIGUSR1 show it."""

from __future__ import annotations

import trio

from pycontainerd.api.debug import ActorInfo

from ._ref import ActorRef
from ._supervisor import Supervisor


def walk_tree(sup: Supervisor, *, restarts: int = 0) -> list[ActorInfo]:
    """Every node under ``sup`` (itself first), depth first in start order."""
    now = trio.current_time()
    out = [
        ActorInfo(
            path=sup.path,
            kind=type(sup).__name__,
            restarts=restarts,
            age_seconds=max(0.0, now - sup.started_at),
        )
    ]
    for child in sup.children():
        value = child.value
        age = 0.0 if child.started_at is None else max(0.0, now - child.started_at)
        if isinstance(value, Supervisor):
            out.extend(walk_tree(value, restarts=child.restarts))
        elif isinstance(value, ActorRef):
            stats = value.statistics()
            out.append(
                ActorInfo(
                    path=child.path,
                    kind=type(value.actor).__name__ if value.actor is not None else "actor",
                    mailbox_depth=stats.depth,
                    mailbox_capacity=stats.capacity,
                    peak_depth=stats.peak_depth,
                    restarts=child.restarts,
                    age_seconds=age,
                    status=child.status,
                )
            )
        else:
            out.append(
                ActorInfo(
                    path=child.path,
                    kind="task",
                    restarts=child.restarts,
                    age_seconds=age,
                    status=child.status,
                )
            )
    return out


def format_tree(infos: list[ActorInfo]) -> str:
    """One indented line per node, for logs."""
    lines = []
    for info in infos:
        depth = info.path.count("/")
        mailbox = (
            f" mailbox={info.mailbox_depth}/{info.mailbox_capacity} peak={info.peak_depth}"
            if info.mailbox_capacity
            else ""
        )
        lines.append(
            f"{'  ' * depth}{info.path} [{info.kind}]{mailbox} "
            f"restarts={info.restarts} age={info.age_seconds:.1f}s {info.status}"
        )
    return "\n".join(lines)
