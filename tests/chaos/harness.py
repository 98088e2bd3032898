"""The chaos loop: SIGKILL the daemon or a task's shim at random points of
task operations, pulls and content writes; restart; check what must hold.

    chaos = Chaos(daemon, registry_host, seed=7)
    chaos.setup()                               # the base image for containers
    chaos.run(KILL_POINTS, kills=200)           # random kill points, in a loop
    chaos.cleanup()                             # delete everything, then leak checks
    print(chaos.report.summary())               # kill points by kind, violations, time

One kill point: prepare what the operation needs (a container, a created,
running or stopped task, an image to pull, bytes to write), run the operation
in a thread with a client of its own, wait a random delay drawn from the
operation's measured duration, SIGKILL the target, join. Then restart the
daemon if it was the target, let the daemon clean up after a dead shim, and
run every check of :mod:`.invariants`; each broken invariant is recorded as a
:class:`~.invariants.Violation` and the loop goes on. The random generator is
seeded (the seed is in the report), so a run can be replayed with the same
choices (the timing of a loaded machine still varies).

Namespaces are ``<prefix>-t`` (tasks), ``-p`` (pulls), ``-w`` (content writes)
with a random prefix, so container cgroups (``/<namespace>/<id>``) never meet
another run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio
from pycontainerd.client._tasks import Task
from pycontainerd.remotes import Resolver
from pycontainerd.runtime import TASK_PLUGIN
from tests import imagebuild
from tests.integration import leaks
from tests.integration.daemon import DaemonProcess

from . import invariants as inv
from .invariants import Violation

TASK_OPS = ("create", "start", "exec", "kill", "delete")
OPS = (*TASK_OPS, "pull", "write")
IMAGE_REPO = "chaos/layered:1"
OP_TIMEOUT = 90.0
SHIM_CLEANUP_TIMEOUT = 15.0
MAX_CONTAINERS = 5
"""Containers operations act on (the oldest are removed beyond it)."""
BYSTANDERS = 2
GC_ROOT = "containerd.io/gc.root"
WRITE_CHUNK = 256 << 10
FIRST_DURATION = {
    "create": 0.3,
    "start": 0.05,
    "exec": 0.15,
    "kill": 0.1,
    "delete": 0.2,
    "pull": 2.0,
    "write": 0.5,
}
"""Expected seconds per operation before any was measured."""


@attrs.frozen
class KillPoint:
    """SIGKILL ``target`` (``daemon`` or ``shim``) during ``op``."""

    target: str
    op: str

    def __str__(self) -> str:
        return f"{self.target} during {self.op}"


Op = Callable[[Client], None]
"""An operation under test, given a connected client in its namespace."""

DAEMON_POINTS = tuple(KillPoint("daemon", op) for op in OPS)
SHIM_POINTS = tuple(KillPoint("shim", op) for op in TASK_OPS)
KILL_POINTS = DAEMON_POINTS + SHIM_POINTS


@attrs.define
class Report:
    """Kill points by kind (and how many landed while the operation was in
    flight), violations, run time."""

    seed: int
    kills: Counter[str] = attrs.field(factory=Counter)
    in_flight: Counter[str] = attrs.field(factory=Counter)
    violations: list[Violation] = attrs.field(factory=list)
    seconds: float = 0.0
    checked: Counter[str] = attrs.field(factory=Counter)
    """How much the checks looked at (blob files hashed, exits counted, ...)."""

    def summary(self) -> str:
        lines = [
            f"seed {self.seed}: {sum(self.kills.values())} kill points in {self.seconds:.0f} s"
        ]
        for kind in sorted(self.kills):
            lines.append(f"  {kind:<22} {self.kills[kind]:>4}  ({self.in_flight[kind]} in flight)")
        lines.append(
            "checked: " + ", ".join(f"{n} {what}" for what, n in sorted(self.checked.items()))
        )
        lines.append(f"invariant violations: {len(self.violations)}")
        lines += [f"  {v}" for v in self.violations]
        return "\n".join(lines)


def chaos_image() -> imagebuild.BuiltImage:
    """busybox; 1500 small files (slow to apply); 3 MiB of random bytes (slow to
    fetch and hash); a layer changing one file and whiting out a directory."""
    heavy = {f"data/d{i // 100}/f{i}": b"heavy %d\n" % i for i in range(1500)}
    noise = {"blob/noise": random.Random(11).randbytes(3 << 20)}
    top = imagebuild.files_layer({"data/d0/f0": b"changed\n", "data/.wh.d1": b""})
    layers = [
        imagebuild.busybox_layer(),
        imagebuild.files_layer(heavy),
        imagebuild.files_layer(noise),
        top,
    ]
    return imagebuild.build_image(layers)


def push_chaos_image(host: str) -> str:
    """Push :func:`chaos_image` to the registry at ``host``; its reference."""
    ref = f"{host}/{IMAGE_REPO}"

    async def run() -> None:
        async with Resolver(plain_http=True) as resolver:
            await imagebuild.push_image(resolver, ref, chaos_image())

    trio.run(run)
    return ref


class Chaos:
    """Kill points against one daemon (see the module docstring).

    Args:
        daemon: started; killed and restarted here.
        image_ref: the multi-layer image in a local registry (plain http).
        seed: for every random choice.
        on_violation: called with each violation as it is found.
        log: progress lines.
    """

    def __init__(
        self,
        daemon: DaemonProcess,
        image_ref: str,
        seed: int,
        *,
        on_violation: Callable[[Violation], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.d = daemon
        self.image_ref = image_ref
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.on_violation = on_violation
        self.log = log or (lambda line: None)
        prefix = f"chaos-{secrets.token_hex(3)}"
        self.ns_tasks, self.ns_pull, self.ns_write = f"{prefix}-t", f"{prefix}-p", f"{prefix}-w"
        self.fifo_base = daemon.base / "fifo"
        self.durations = dict(FIRST_DURATION)
        self.journal = inv.Journal()
        self.ios: dict[str, list[cio.IO]] = {}
        self.exits_seen: dict[tuple[str, str], int] = {}
        """``(container, exec id) → pid`` of every exit a client saw (``wait`` returned)."""
        self.deleted: set[str] = set()
        """Containers whose task a client deleted (``tasks.delete`` answered)."""
        self.shim_killed: dict[str, int] = {}
        """Containers whose shim was killed → the init pid then (0: not created yet)."""
        self.blobs: list[str] = []
        self.poisoned: set[str] = set()
        """Containers that could not be removed (left to the final cleanup)."""
        self._reported: set[str] = set()
        self._measured_ops: set[str] = set()
        self.bystanders: set[str] = set()
        self.containers: set[str] = set()
        """Every container made (deleted ones too): each has one task at most, ever."""
        """Running tasks no operation targets (:meth:`setup`)."""
        self._gone_checked: set[str] = set()
        self._write: tuple[str, bytes, str] = ("", b"", "")
        self.counter = 0
        self.point = ""
        self._started = time.monotonic()

    # -- plumbing ----------------------------------------------------------------------

    def client(self, namespace: str, timeout: float = OP_TIMEOUT) -> Client:
        return Client(self.d.address, namespace=namespace, timeout=timeout)

    def violation(self, what: str, owner: str) -> None:
        v = Violation(self.point, what, owner)
        self.report.violations.append(v)
        self.log(f"VIOLATION {v}")
        if self.on_violation is not None:
            self.on_violation(v)

    def _new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _delay(self, op: str) -> float:
        """Mostly within the operation's measured duration, sometimes just after."""
        expected = self.durations[op]
        if self.rng.random() < 0.85:
            return self.rng.uniform(0, expected)
        return self.rng.uniform(expected, 1.5 * expected)

    def _measured(self, op: str, seconds: float) -> None:
        if op not in self._measured_ops:  # the first measurement replaces the guess
            self._measured_ops.add(op)
            self.durations[op] = seconds
        self.durations[op] = 0.7 * self.durations[op] + 0.3 * seconds

    def _io(self, cid: str) -> cio.Creator:
        """FIFOs for half the tasks (their directories are checked at the end)."""
        if self.rng.random() < 0.5:
            return cio.null()
        self.fifo_base.mkdir(exist_ok=True)
        return cio.with_streams(None, io.BytesIO(), io.BytesIO(), fifo_dir=str(self.fifo_base))

    def _close_io(self, cid: str) -> None:
        for pio in self.ios.pop(cid, []):
            pio.close()

    def _bundle(self, cid: str) -> Path:
        return self.d.state / TASK_PLUGIN / self.ns_tasks / cid

    def shim_pids(self, cid: str) -> list[int]:
        return list(leaks.shim_processes(f"-bundle\0{self._bundle(cid)}\0"))

    def _restart(self) -> None:
        self.d.start(wait=False)
        try:
            self.d.wait_ready(60)
        except RuntimeError as exc:
            self.violation(f"the daemon did not restart: {str(exc)[-2000:]}", inv.DAEMON)
            raise

    # -- the loop ----------------------------------------------------------------------

    def setup(self, bystanders: int = BYSTANDERS) -> None:
        """Pull the image the task containers run from and start ``bystanders``
        tasks that no operation targets: they must run through every kill."""
        with self.client(self.ns_tasks) as c:
            c.pull(self.image_ref, plain_http=True)
            for _ in range(bystanders):
                cid = self._new_id("b")
                task = c.new_container(cid, image=self.image_ref, args=["sleep", "3600"]).new_task(
                    cio.null()
                )
                task.start()
                self.bystanders.add(cid)
                self.containers.add(cid)

    def run(
        self,
        points: Sequence[KillPoint],
        kills: int,
        budget: float | None = None,
        *,
        cycle: bool = False,
    ) -> None:
        """Run ``kills`` kill points drawn from ``points`` (in turn with ``cycle``),
        stopping early once ``budget`` seconds have passed."""
        deadline = None if budget is None else time.monotonic() + budget
        for n in range(kills):
            if deadline is not None and time.monotonic() > deadline:
                self.log(f"budget of {budget:.0f} s spent after {n} kill points")
                break
            point = points[n % len(points)] if cycle else self.rng.choice(points)
            self.kill_point(point, n)
        self.report.seconds = time.monotonic() - self._started

    def kill_point(self, point: KillPoint, n: int) -> None:
        self.point = f"#{n} {point}"
        prepare = getattr(self, f"_prepare_{point.op}")
        op, cid = prepare()
        expected = self._running_now(exclude=cid if point.target == "shim" else None)
        if point.op in ("kill", "delete") and cid is not None:
            expected.pop(cid, None)
        in_flight, killed, error = self._race(op, point, cid)
        if not killed:
            self.log(f"{self.point}: no shim to kill ({error!r})")
            return
        self.report.kills[str(point)] += 1
        if in_flight:
            self.report.in_flight[str(point)] += 1
        self.log(f"{self.point}: killed {'in flight' if in_flight else 'after'} ({error!r})")
        if point.target == "daemon":
            self._restart()
        elif self.d.proc is None or self.d.proc.poll() is not None:
            self.violation("the daemon exited when a shim was killed", inv.SHIM)
            self._restart()
        try:
            if point.target == "shim" and cid is not None:
                self._after_shim_kill(cid)
            self.check(expected)
            after = getattr(self, f"_after_{point.op}", None)
            if after is not None:
                after()
        except errdefs.ErrdefsError as exc:  # the daemon failed a check's request
            self.violation(f"a check's request failed: {exc!r}", inv.DAEMON)

    def _race(
        self, op: Op, point: KillPoint, cid: str | None
    ) -> tuple[bool, bool, BaseException | None]:
        """Run ``op`` in a thread, kill ``point.target`` a random delay after it
        began; ``(in flight at the kill, killed, the op's error)``."""
        began, done = threading.Event(), threading.Event()
        errors: list[BaseException] = []
        times: list[float] = []
        namespace = {"pull": self.ns_pull, "write": self.ns_write}.get(point.op, self.ns_tasks)

        def runner() -> None:
            try:
                with self.client(namespace) as c:
                    c.version()  # connected: the operation starts now
                    times.append(time.monotonic())
                    began.set()
                    op(c)
                    times.append(time.monotonic())
            except BaseException as exc:
                errors.append(exc)
            finally:
                began.set()
                done.set()

        delay = self._delay(point.op)
        thread = threading.Thread(target=runner, daemon=True)
        thread.start()
        began.wait(OP_TIMEOUT)
        done.wait(delay)
        if point.target == "daemon":
            in_flight = not done.is_set()
            self.d.kill()
            killed = True
        else:
            assert cid is not None
            in_flight, killed = self._kill_shim(cid, done)
        thread.join(OP_TIMEOUT)
        if thread.is_alive():
            self.violation(f"{point.op} did not answer in {OP_TIMEOUT:.0f} s", inv.SHIM)
            thread.join()
        if len(times) == 2:
            self._measured(point.op, times[1] - times[0])
        expected = self.durations[point.op] * 1000
        self.log(f"{self.point}: delay {delay * 1000:.1f} ms, op takes ~{expected:.1f} ms")
        return in_flight, killed, errors[0] if errors else None

    def _kill_shim(self, cid: str, done: threading.Event) -> tuple[bool, bool]:
        """SIGKILL the task's shim once it exists (during create it may not yet)."""
        while True:
            finished = done.is_set()
            pids = self.shim_pids(cid)
            if pids:
                init = self._init_pid(cid)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.shim_killed[cid] = init or self._init_pid(cid)
                return not finished, True
            if finished:
                return False, False
            time.sleep(0.002)

    def _init_pid(self, cid: str) -> int:
        """The container's init pid as runc wrote it in the bundle (0: not yet)."""
        try:
            return int((self._bundle(cid) / "init.pid").read_text())
        except (OSError, ValueError):
            return 0

    def _running_now(self, exclude: str | None) -> dict[str, int]:
        with self.client(self.ns_tasks, 30) as c:
            listed = inv.list_tasks(c)
        return {
            cid: pid
            for cid, (status, pid) in listed.items()
            if status == "running" and cid != exclude and cid not in self.shim_killed
        }

    # -- task operations ---------------------------------------------------------------

    def _tasks_in(self, status: str) -> list[str]:
        with self.client(self.ns_tasks, 30) as c:
            listed = inv.list_tasks(c)
        return sorted(
            cid
            for cid, (s, _) in listed.items()
            if s == status and cid not in self.shim_killed and cid not in self.bystanders
        )

    def _make_container(self) -> str:
        self._retire()
        cid = self._new_id("c")
        self.containers.add(cid)
        with self.client(self.ns_tasks) as c:
            c.new_container(cid, image=self.image_ref, args=["sleep", "3600"])
        return cid

    def _make_task(self, status: str) -> str:
        """A container whose task is ``status`` (created, running, stopped)."""
        found = self._tasks_in(status)
        if found:
            return self.rng.choice(found)
        cid = self._make_container()
        with self.client(self.ns_tasks) as c:
            task = c.load_container(cid).new_task(self._io(cid))
            if task.io is not None:
                self.ios.setdefault(cid, []).append(task.io)
            if status in ("running", "stopped"):
                task.start()
            if status == "stopped":
                task.kill(signal.SIGKILL)
                task.wait()
                self.exits_seen[(cid, "")] = task.pid
        return cid

    def _retire(self) -> None:
        """Delete containers (and their tasks) beyond :data:`MAX_CONTAINERS`."""
        with self.client(self.ns_tasks) as c:
            records = [
                r
                for r in c.containers.list()
                if r.id not in self.poisoned and r.id not in self.bystanders
            ]
            records.sort(key=lambda r: int(r.id[1:]))
            for record in records[: max(0, len(records) - MAX_CONTAINERS + 1)]:
                try:
                    self.remove_container(c, record.id)
                except errdefs.ErrdefsError as exc:
                    self.poisoned.add(record.id)
                    self.violation(
                        f"{self.ns_tasks}: cannot remove container {record.id}: {exc!r}", inv.SHIM
                    )

    def remove_container(self, c: Client, cid: str) -> None:
        """Delete ``cid``'s task (killed first) and the container.

        Raises:
            errdefs.ErrdefsError: a step failed.
        """
        ctr = c.load_container(cid)
        try:
            task = ctr.task()
        except errdefs.NotFound:
            task = None
        if task is not None:
            # a created task is deleted as it is (killing one hangs its wait: findings-chaos.md)
            if task.status().status == "running":
                with contextlib.suppress(errdefs.NotFound):
                    task.kill(signal.SIGKILL, all=True)
                if task.pid:
                    self.exits_seen.setdefault((cid, ""), task.pid)
                task.wait()
            Task(c, cid, None, task.pid).delete()
            self.deleted.add(cid)
        self._close_io(cid)
        ctr.delete()
        for v in inv.gone(self.d, self.ns_tasks, cid):
            self._once(v, inv.SHIM)

    def _prepare_create(self) -> tuple[Op, str]:
        cid = self._make_container()
        creator = self._io(cid)

        def op(c: Client) -> None:
            task = c.load_container(cid).new_task(creator)
            if task.io is not None:
                self.ios.setdefault(cid, []).append(task.io)

        return op, cid

    def _prepare_start(self) -> tuple[Op, str]:
        cid = self._make_task("created")

        def op(c: Client) -> None:
            Task(c, cid, None, 0).start()

        return op, cid

    def _prepare_exec(self) -> tuple[Op, str]:
        cid = self._make_task("running")
        eid = self._new_id("e")
        process = {"args": ["sh", "-c", "sleep 0.2"], "cwd": "/", "env": ["PATH=/bin"]}

        def op(c: Client) -> None:
            proc = Task(c, cid, None, 0).exec(eid, process, cio.null())
            proc.start()
            proc.wait()
            self.exits_seen[(cid, eid)] = proc.pid
            proc.delete()

        return op, cid

    def _prepare_kill(self) -> tuple[Op, str]:
        cid = self._make_task("running")

        def op(c: Client) -> None:
            task = c.load_container(cid).task()
            task.kill(signal.SIGKILL)
            task.wait()
            self.exits_seen[(cid, "")] = task.pid

        return op, cid

    def _prepare_delete(self) -> tuple[Op, str]:
        cid = self._make_task("stopped")

        def op(c: Client) -> None:
            Task(c, cid, None, 0).delete()
            self.deleted.add(cid)

        return op, cid

    def _after_shim_kill(self, cid: str) -> None:
        """containerd's cleanup after a dead shim: the task goes (NotFound), the
        container stays, its process is gone."""
        pid = self.shim_killed.get(cid, 0)
        with self.client(self.ns_tasks, 30) as c:

            def task_gone() -> bool:
                try:
                    c.load_container(cid).task()
                except errdefs.NotFound:
                    return True
                return False

            if not inv.wait_for(task_gone, SHIM_CLEANUP_TIMEOUT, 0.1):
                status = inv.list_tasks(c).get(cid, ("?", 0))
                self.violation(
                    f"{self.ns_tasks}: task {cid} still there {SHIM_CLEANUP_TIMEOUT:.0f} s after "
                    f"its shim was killed (status {status[0]}, pid {status[1]})",
                    inv.SHIM,
                )
            try:
                c.containers.get(cid)
            except errdefs.NotFound:
                self.violation(f"{self.ns_tasks}: container {cid} went with its shim", inv.SHIM)
        if pid and not inv.wait_for(lambda: not inv.pid_alive(pid), 5):
            self.violation(
                f"{self.ns_tasks}: process {pid} of {cid} outlives its killed shim", inv.SHIM
            )

    # -- pulls and content writes ------------------------------------------------------

    def _prepare_pull(self) -> tuple[Op, None]:
        with self.client(self.ns_pull) as c:
            with contextlib.suppress(errdefs.NotFound):
                c.images.delete(self.image_ref)
            if self.rng.random() < 0.5:  # else the next pull resumes what the last one left
                for lease in c.leases.list():
                    c.leases.delete(lease.id)
                c.leases.delete(c.leases.create().id, sync=True)

        def op(c: Client) -> None:
            c.pull(self.image_ref, plain_http=True)

        return op, None

    def _after_pull(self) -> None:
        """The pull the kill interrupted completes now, unpacked."""
        with self.client(self.ns_pull) as c:
            try:
                image = c.pull(self.image_ref, plain_http=True)
                if not image.is_unpacked():
                    self.violation(
                        f"{self.ns_pull}: the pull after the kill is not unpacked", inv.TRANSFER
                    )
            except errdefs.ErrdefsError as exc:
                self.violation(
                    f"{self.ns_pull}: the pull after the kill failed: {exc!r}", inv.TRANSFER
                )

    def _prepare_write(self) -> tuple[Op, None]:
        data = self.rng.randbytes(self.rng.randrange(1 << 20, 6 << 20))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        ref = self._new_id("w")
        self._write = (ref, data, digest)

        def op(c: Client) -> None:
            with c.content.writer(ref, len(data), digest) as w:
                for at in range(0, len(data), WRITE_CHUNK):
                    w.write(data[at : at + WRITE_CHUNK])
                w.commit(len(data), digest, labels={GC_ROOT: _now()})

        return op, None

    def _after_write(self) -> None:
        """The ingest the kill interrupted resumes at its offset and commits its digest."""
        ref, data, digest = self._write
        with self.client(self.ns_write) as c:
            try:
                try:
                    c.content.info(digest)
                except errdefs.NotFound:
                    with c.content.writer(ref, len(data), digest) as w:
                        if not 0 <= w.offset <= len(data):
                            self.violation(
                                f"{ref}: resumed at {w.offset} of {len(data)}", inv.CONTENT
                            )
                            return
                        w.write(data[w.offset :])
                        w.commit(len(data), digest, labels={GC_ROOT: _now()})
                got = b"".join(c.content.read(digest))
                if got != data:
                    self.violation(
                        f"{self.ns_write}: blob {digest} reads back other bytes", inv.CONTENT
                    )
            except errdefs.ErrdefsError as exc:
                self.violation(
                    f"{self.ns_write}: ingest {ref} did not resume: {exc!r}", inv.CONTENT
                )
                with contextlib.suppress(errdefs.ErrdefsError):
                    c.content.abort(ref)
                return
            self.blobs.append(digest)
            while len(self.blobs) > 3:
                with contextlib.suppress(errdefs.NotFound):
                    c.content.delete(self.blobs.pop(0))

    # -- checks --------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        with self.client(self.ns_tasks, 30) as c:
            return [n.name for n in c.namespaces.list() if n.name.startswith(self.ns_tasks[:-1])]

    def check(self, expected_running: dict[str, int]) -> None:
        """Every invariant of :mod:`.invariants`, with the daemon up."""
        namespaces = self.namespaces()
        for v in inv.blobs(self.d, namespaces, self.report.checked):
            self._once(v, inv.CONTENT)
        for ns in namespaces:
            with self.client(ns, 30) as c:
                for v in inv.images(c, self.report.checked):
                    self._once(v, inv.TRANSFER)
                for v in inv.containers(c, self.report.checked):
                    self._once(v, inv.SNAPSHOTS)
        with self.client(self.ns_tasks, 30) as c:
            listed = inv.list_tasks(c)
            for v in inv.tasks(c, listed, expected_running, self.report.checked):
                self._once(v, inv.SHIM)
            self.journal.read(c)
            self.report.checked["journalled exits counted (all checks)"] += sum(
                self.journal.exits.values()
            )
            known = {r.id for r in c.containers.list()}
        for v in self.journal.twice():
            self._once(v, inv.SHIM)
        ns, journal = self.ns_tasks, self.journal
        for cid, (status, pid) in listed.items():
            if status == "stopped" and pid and journal.count(ns, cid, cid, pid) == 0:
                self._once(f"{ns}: task {cid} is stopped, no exit journalled", inv.SHIM)
        for (cid, eid), pid in self.exits_seen.items():
            if pid and (n := journal.count(ns, cid, eid or cid, pid)) != 1:
                self._once(
                    f"{ns}: exit of {cid}/{eid or cid} pid {pid} seen, journalled {n}x", inv.SHIM
                )
        for cid in self.deleted:
            if (n := journal.deleted(ns, cid)) != 1:
                self._once(f"{ns}: task {cid} deleted, /tasks/delete journalled {n}x", inv.SHIM)
        for cid in self.containers - set(listed):
            for v in journal.ended(ns, cid):
                self._once(v, inv.SHIM)
        for cid in known - set(listed) - self._gone_checked:
            self._gone_checked.add(cid)
            for v in inv.gone(self.d, ns, cid):
                self._once(v, inv.SHIM)

    def _once(self, what: str, owner: str) -> None:
        """A violation that later checks would find again: reported once."""
        if what not in self._reported:
            self._reported.add(what)
            self.violation(what, owner)

    # -- the end ----------------------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Delete every task, container, image and blob; then what is left behind
        (mounts, shims, FIFO directories, cgroups) is a violation. Returns the
        violations' descriptions of this step."""
        self.point = "final cleanup"
        before = len(self.report.violations)
        for attempt in (1, 2):
            failed: list[tuple[str, errdefs.ErrdefsError]] = []
            with self.client(self.ns_tasks) as c:
                for record in c.containers.list():
                    try:
                        self.remove_container(c, record.id)
                    except errdefs.ErrdefsError as exc:
                        failed.append((record.id, exc))
            for cid, error in failed:
                self.violation(
                    f"{self.ns_tasks}: cannot remove {cid} (attempt {attempt}): {error!r}",
                    inv.SHIM,
                )
            if not failed:
                break
            self.d.stop()  # what a live daemon could not delete, a restarted one may
            self._restart()
        self.check({})
        for ns in self.namespaces():
            with self.client(ns) as c:
                for image in c.images.list():
                    c.images.delete(image.name)
                for lease in c.leases.list():
                    c.leases.delete(lease.id)
                for info in c.content.walk():
                    c.content.delete(info.digest)
                for status in c.content.list_statuses():
                    c.content.abort(status.ref)
                c.leases.delete(c.leases.create().id, sync=True)
        for pio_list in list(self.ios.values()):
            for pio in pio_list:
                pio.close()
        self.ios.clear()
        inv.wait_for(lambda: not leaks.left_behind(self.d.base), 10, 0.1)
        for x in leaks.left_behind(self.d.base):
            self.violation(f"left behind: {x}", inv.SHIM)
        fifos = os.listdir(self.fifo_base) if self.fifo_base.is_dir() else []
        if fifos:
            self.violation(f"FIFO directories left: {sorted(fifos)}", "client cio (unowned)")
        for group in leaks.task_cgroups():
            if f"/{self.ns_tasks}/" in group:
                self.violation(f"cgroup left: {group}", inv.SHIM)
        for controller in leaks.CGROUP_CONTROLLERS:
            with contextlib.suppress(OSError):
                os.rmdir(Path("/sys/fs/cgroup") / controller / self.ns_tasks)
        self.report.seconds = time.monotonic() - self._started
        return [str(v) for v in self.report.violations[before:]]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
