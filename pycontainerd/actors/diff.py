"""The ``diff.*`` service: the walking differ in worker threads.

A diff holds no state between calls, so there is no actor per call: each
request runs :class:`~pycontainerd.diff.WalkingDiffer` in a worker thread under
the daemon's IO limiter, against the call's namespaced content (and its
lease, for the blob ``diff.diff`` writes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from pycontainerd.api import diff as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.diff import ContentAccess, WalkingDiffer
from pycontainerd.supervisor import io_limiter

StoreFactory = Callable[[str, "str | None"], ContentAccess]
"""``(namespace, lease)`` → that namespace's content store."""


class DiffService:
    """containerd's Diff service."""

    def __init__(self, differ: WalkingDiffer, store: StoreFactory) -> None:
        self._differ = differ
        self._store = store

    def methods(self) -> dict[str, Any]:
        return {"diff.apply": self.apply, "diff.diff": self.diff}

    async def apply(self, call: Call) -> Wait:
        req: api.ApplyRequest = call.request
        store = self._store(call.namespace, call.meta.lease)

        async def wait() -> api.ApplyResponse:
            applied = await trio.to_thread.run_sync(
                self._differ.apply, req.diff, req.mounts, store, limiter=io_limiter()
            )
            return api.ApplyResponse(applied=applied)

        return wait

    async def diff(self, call: Call) -> Wait:
        req: api.DiffRequest = call.request
        store = self._store(call.namespace, call.meta.lease)
        epoch = None if req.source_date_epoch is None else int(req.source_date_epoch.timestamp())

        def run() -> Any:
            return self._differ.compare(
                req.left,
                req.right,
                store,
                media_type=req.media_type,
                ref=req.ref,
                labels=req.labels,
                source_date_epoch=epoch,
            )

        async def wait() -> api.DiffResponse:
            desc = await trio.to_thread.run_sync(run, limiter=io_limiter())
            return api.DiffResponse(diff=desc)

        return wait
