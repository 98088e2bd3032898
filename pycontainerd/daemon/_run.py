"""The daemon's life: lock the root, start the plugins under the root
supervisor, serve RPC, and wait for signals.

    SIGTERM / SIGINT   graceful stop: STOPPING=1, close the listener, stop the
                       root supervisor in reverse start order (tasks keep
                       running under their shims).
    SIGUSR1            log the actor tree and every Trio task's await stack.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import signal
from pathlib import Path
from typing import Any

import trio

from pycontainerd.actors.registry import builtins
from pycontainerd.api import errdefs
from pycontainerd.api.methods import METHODS
from pycontainerd.api.rpc import Handler, Method
from pycontainerd.plugin import InitContext, Instance, Registration, load_entry_points, order
from pycontainerd.supervisor import ChildSpec, Supervisor, format_tree, walk_tree
from pycontainerd.wire import Limits, RpcServer, open_unix_listener

from ._config import Config
from ._host import (
    RootLock,
    address_in_use,
    private_dir,
    raise_nofile_limit,
    return_large_buffers,
    sd_notify,
)

log = logging.getLogger("pycontainerd.daemon")

GC_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default is 700)."""


CYCLE_COLLECTION_INTERVAL = 5.0
"""Seconds between collections of the young generations (where a failed
request's cycles are); a full one every :data:`FULL_COLLECTION_EVERY` of them."""
FULL_COLLECTION_EVERY = 12


async def _collect_cycles() -> None:
    """Collect reference cycles on a clock, not only by allocation counts.

    With the start-up heap frozen and the thresholds raised, a full collection
    would otherwise wait for millions of allocations, and what a cycle holds
    (a failed request's frames, a closed connection's buffers) with it: the
    wire fuzzer saw RSS climb to 474 MiB over 100 000 requests. The heap it
    scans is what is not frozen; the young generations, every 5 s, are small.
    """
    for n in itertools.count(1):
        await trio.sleep(CYCLE_COLLECTION_INTERVAL)
        gc.collect(2 if n % FULL_COLLECTION_EVERY == 0 else 1)


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


def task_stacks() -> str:
    """Every Trio task with its await stack, indented by nursery depth."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        lines.append("  " * depth + f"task {task.name}")
        for frame, lineno in task.iter_await_frames():
            code = frame.f_code
            lines.append("  " * depth + f"    {code.co_filename}:{lineno} in {code.co_name}")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    root = trio.lowlevel.current_root_task()
    if root is not None:
        walk(root, 0)
    return "\n".join(lines)


class Daemon:
    """One running pycontainerd."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = Path(config.root)
        self.state = Path(config.state)
        self.instances: dict[tuple[str, str], Instance] = {}
        self.registrations: list[Registration] = []
        self.supervisor = Supervisor("root", [], strategy="rest_for_one", intensity=3, period=30.0)

    def tree(self) -> list[Any]:
        return walk_tree(self.supervisor)

    async def _init_plugins(self) -> None:
        regs = builtins() + load_entry_points()
        disabled = set(self.config.disabled_plugins)
        self.registrations = [r for r in order(regs) if r.uri not in disabled]
        failed_types: dict[str, bool] = {}
        for reg in self.registrations:
            ic = InitContext(
                registration=reg,
                root=self.root / reg.uri,
                state=self.state / reg.uri,
                config={**reg.defaults, **self.config.plugin(reg.uri)},
                daemon_config=self.config,
                start_child=self.supervisor.start_child,
                instances=self.instances,
                registrations=self.registrations,
                tree=self.tree,
            )
            missing = [t for t in reg.requires if t != "*" and failed_types.get(t, False)]
            if missing:
                inst = Instance(
                    error=errdefs.FailedPrecondition(f"required plugin failed: {missing[0]}")
                )
            else:
                inst = await self._init_one(reg, ic)
            self.instances[(reg.type, reg.id)] = inst
            ok = inst.error is None
            failed_types[reg.type] = failed_types.get(reg.type, True) and not ok
            log.info(
                "plugin %s %s",
                reg.uri,
                "loaded" if ok else f"skipped: {inst.error}",
                extra={"plugin": reg.uri},
            )

    async def _init_one(self, reg: Registration, ic: InitContext) -> Instance:
        try:
            ic.root.mkdir(parents=True, exist_ok=True)
            return await reg.init(ic)
        except errdefs.ErrdefsError as exc:
            return Instance(error=exc)
        except Exception as exc:
            log.exception("plugin %s failed to initialise", reg.uri)
            return Instance(error=errdefs.Internal(f"{type(exc).__name__}: {exc}"))

    def router(self) -> dict[str, tuple[Method, Handler]]:
        routes: dict[str, tuple[Method, Handler]] = {}
        for (type_, id_), inst in self.instances.items():
            for name, handler in inst.methods.items():
                method = METHODS.get(name)
                if method is None:
                    raise StartupError(f"plugin {type_}.{id_} serves {name!r}, not in api.METHODS")
                routes[name] = (method, handler)
        return routes

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT.

        Raises:
            StartupError: the root is locked, the address is taken, or a directory
                cannot be created.
        """
        try:
            private_dir(self.root)
            private_dir(self.state)
        except OSError as exc:
            raise StartupError(f"cannot create the root and state directories: {exc}") from None
        lock = RootLock(self.root)
        try:
            lock.acquire()
        except Exception as exc:
            raise StartupError(str(exc)) from None
        try:
            if address_in_use(self.config.rpc.address):
                raise StartupError(
                    f"{self.config.rpc.address} is in use by another server; "
                    "stop it or use --address"
                )
            limit = raise_nofile_limit()
            return_large_buffers()
            log.info("starting pycontainerd", extra={"root": str(self.root), "nofile": limit})
            await self._serve()
        finally:
            lock.release()

    async def _serve(self) -> None:
        rpc = self.config.rpc
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.supervisor.run)
                await self._init_plugins()
                listener = await open_unix_listener(rpc.address, mode=rpc.mode, gid=rpc.gid)
                server = RpcServer(
                    [listener],
                    self.router(),
                    Limits(
                        max_message_size=rpc.max_recv_message_size,
                        partial_frame_budget=rpc.partial_frame_budget,
                        frame_timeout=rpc.frame_timeout,
                    ),
                )
                # The connections live in the daemon's nursery (no client is
                # dropped when the accept loop restarts); the accept loop is the
                # root's last child: a crash restarts it, a plugin's crash
                # (rest_for_one) pauses it, the listener's backlog meanwhile holds
                # new clients.
                await nursery.start(server.serve_connections)
                await self.supervisor.start_child(
                    ChildSpec(id="rpc", start=server.accept, restart="transient", shutdown=5.0)
                )
                # What start-up built lives as long as the daemon: keep the cyclic
                # collector from scanning it again, and let it run less often (a
                # 10 000-blob content.list allocates ~100 000 objects in one go).
                gc.collect()
                gc.freeze()
                gc.set_threshold(GC_THRESHOLD, 20, 20)
                nursery.start_soon(_collect_cycles)
                sd_notify("READY=1")
                log.info("serving", extra={"address": rpc.address, "pid": os.getpid()})
                async for signum in signals:
                    if signum == signal.SIGUSR1:
                        log.info("actor tree:\n%s", format_tree(self.tree()))
                        log.info("trio tasks:\n%s", task_stacks())
                        continue
                    log.info("stopping on %s", signal.Signals(signum).name)
                    break
                sd_notify("STOPPING=1")
                # clients first: no request reaches a plugin that is stopping
                await server.aclose()
                with trio.move_on_after(30):
                    await self.supervisor.stop()
                nursery.cancel_scope.cancel()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rpc.address)
        log.info("stopped")
