"""The lifecycle benchmark's client loop, shared by both daemons' client processes.

``_lifecycle_containerd.py`` (gRPC venv) and ``_lifecycle_pycontainerd.py``
(project venv) each provide a :class:`Driver`; :func:`main` runs, in one
process against one daemon:

1. **image** (untimed): the busybox layer written into content under a lease,
   ``Snapshots.Prepare`` → ``Diff.Apply`` → ``Snapshots.Commit`` as its chain ID
   on ``overlayfs``.
2. **sequential**: ``--warmup`` then ``--runs`` lifecycles of ``true``, the calls
   containerd's Go client makes (``LIFECYCLE_STEPS``), each step timed.
3. **concurrent**: ``--concurrency`` threads (one connection each) doing
   ``--concurrent-total`` lifecycles between them; containers per second.
4. **memory**: ``--memory-tasks`` tasks running ``sleep``; RSS, PSS and threads
   of each task's shim, found by its ``-namespace``/``-id`` flags.

Whatever was created is removed in a ``finally`` (tasks killed), the lease
deleted synchronously. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

NAMESPACE = "bench-lifecycle"
SNAPSHOTTER = "overlayfs"
RUNTIME = "io.containerd.runc.v2"
LIFECYCLE_STEPS = [
    "prepare",
    "container_create",
    "mounts",
    "task_create",
    "task_start",
    "task_wait",
    "task_delete",
    "container_delete",
    "snapshot_remove",
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Session(Protocol):
    """One connection's worth of the calls a lifecycle makes (each thread has one)."""

    def prepare(self, key: str, parent: str) -> Any:
        """``Snapshots.Prepare`` under the lease; answers nothing useful."""

    def mounts(self, key: str) -> Any:
        """``Snapshots.Mounts`` of an active snapshot."""

    def create_container(self, cid: str, spec: dict[str, Any], key: str) -> None:
        """``Containers.Create`` with runtime :data:`RUNTIME` and the spec."""

    def create_task(self, cid: str, mounts: Any) -> int:
        """``Tasks.Create`` with these rootfs mounts and no stdio; the pid."""

    def start(self, cid: str) -> int:
        """``Tasks.Start``; the pid."""

    def kill(self, cid: str, signal: int) -> None:
        """``Tasks.Kill`` of the init process."""

    def wait(self, cid: str) -> int:
        """``Tasks.Wait``; the exit status."""

    def delete_task(self, cid: str) -> None:
        """``Tasks.Delete``."""

    def delete_container(self, cid: str) -> None:
        """``Containers.Delete``."""

    def remove_snapshot(self, key: str) -> None:
        """``Snapshots.Remove``."""

    def close(self) -> None:
        """Close the connection (a shared channel stays open)."""


class Driver(Protocol):
    """One daemon: image setup and new sessions."""

    about: dict[str, str]

    def create_lease(self, labels: dict[str, str]) -> str:
        """``Leases.Create``; later calls of the driver and its sessions use it."""

    def delete_lease(self, lease: str, sync: bool) -> None:
        """``Leases.Delete``."""

    def write_blob(self, path: Path, digest: str, size: int, labels: dict[str, str]) -> None:
        """The blob into content, under the lease."""

    def apply(self, layer: dict[str, Any], mounts: Any) -> str:
        """``Diff.Apply``; the applied digest."""

    def commit(self, name: str, key: str) -> None:
        """``Snapshots.Commit``."""

    def session(self) -> Session:
        """A new session (connection) under the driver's lease."""


def now_ns() -> int:
    return time.perf_counter_ns()


def daemon_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def host_cpu_s() -> float:
    """CPU seconds the whole host has been busy (``/proc/stat``: all but idle and iowait),
    over all CPUs: daemons, shims, runc and the containers alike (and anyone else)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """The daemon's and the host's CPU seconds between :meth:`start` and :meth:`per`."""

    def __init__(self, daemon_pid: int) -> None:
        self.pid = daemon_pid
        self.daemon0, self.host0 = daemon_cpu_s(daemon_pid), host_cpu_s()

    def per(self, lifecycles: int) -> dict[str, float]:
        daemon, host = daemon_cpu_s(self.pid) - self.daemon0, host_cpu_s() - self.host0
        return {
            "daemon_cpu_ms_per_lifecycle": round(daemon * 1e3 / lifecycles, 2),
            "host_cpu_ms_per_lifecycle": round(host * 1e3 / lifecycles, 2),
        }


class Tracker:
    """What exists now, for the cleanup; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: set[str] = set()
        self.containers: set[str] = set()
        self.snapshots: set[str] = set()

    def add(self, kind: set[str], name: str) -> None:
        with self.lock:
            kind.add(name)

    def drop(self, kind: set[str], name: str) -> None:
        with self.lock:
            kind.discard(name)


class Bench:
    """The phases against one driver."""

    def __init__(self, driver: Driver, args: argparse.Namespace) -> None:
        self.driver = driver
        self.args = args
        self.spec: dict[str, Any] = json.loads(Path(args.spec).read_text())
        self.parent = ""
        self.live = Tracker()
        self.prefix = f"lc{os.getpid()}"

    def spec_for(self, cid: str, args: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(json.dumps(self.spec))
        spec["process"]["args"] = args
        spec["linux"]["cgroupsPath"] = f"/{NAMESPACE}/{cid}"
        spec["hostname"] = cid
        return spec

    # ---------------------------------------------------------------- phases
    def image(self) -> dict[str, Any]:
        layer = json.loads(Path(self.args.layer).read_text())
        t0 = now_ns()
        labels = {"containerd.io/uncompressed": layer["digest"]}
        self.driver.write_blob(Path(layer["path"]), layer["digest"], layer["size"], labels)
        key = f"{self.prefix}-extract"
        s = self.driver.session()
        try:
            s.prepare(key, "")
            self.live.add(self.live.snapshots, key)
            desc = {"media_type": layer["media_type"], "digest": layer["digest"]}
            applied = self.driver.apply({**desc, "size": layer["size"]}, s.mounts(key))
            if applied != layer["digest"]:
                raise RuntimeError(f"applied {applied}, not the layer's {layer['digest']}")
            self.driver.commit(layer["digest"], key)
            self.live.drop(self.live.snapshots, key)
            self.live.add(self.live.snapshots, layer["digest"])
        finally:
            s.close()
        self.parent = layer["digest"]
        return {"chain_id": self.parent, "setup_ms": round((now_ns() - t0) / 1e6, 1)}

    def start_one(self, s: Session, cid: str, args: list[str], steps: dict[str, int]) -> None:
        t0 = now_ns()
        self.live.add(self.live.snapshots, cid)
        s.prepare(cid, self.parent)
        t1 = now_ns()
        self.live.add(self.live.containers, cid)
        s.create_container(cid, self.spec_for(cid, args), cid)
        t2 = now_ns()
        mounts = s.mounts(cid)
        t3 = now_ns()
        self.live.add(self.live.tasks, cid)
        s.create_task(cid, mounts)
        t4 = now_ns()
        s.start(cid)
        t5 = now_ns()
        steps.update(
            prepare=t1 - t0,
            container_create=t2 - t1,
            mounts=t3 - t2,
            task_create=t4 - t3,
            task_start=t5 - t4,
        )

    def remove_one(self, s: Session, cid: str, steps: dict[str, int]) -> int:
        t5 = now_ns()
        status = s.wait(cid)
        t6 = now_ns()
        s.delete_task(cid)
        self.live.drop(self.live.tasks, cid)
        t7 = now_ns()
        s.delete_container(cid)
        self.live.drop(self.live.containers, cid)
        t8 = now_ns()
        s.remove_snapshot(cid)
        self.live.drop(self.live.snapshots, cid)
        t9 = now_ns()
        steps.update(task_wait=t6 - t5, task_delete=t7 - t6, container_delete=t8 - t7)
        steps["snapshot_remove"] = t9 - t8
        return status

    def lifecycle(self, s: Session, cid: str) -> dict[str, int]:
        steps: dict[str, int] = {}
        t0 = now_ns()
        self.start_one(s, cid, ["true"], steps)
        status = self.remove_one(s, cid, steps)
        steps["total"] = now_ns() - t0
        if status != 0:
            raise RuntimeError(f"{cid}: true exited {status}")
        return steps

    def sequential(self) -> dict[str, Any]:
        s = self.driver.session()
        try:
            for i in range(self.args.warmup):
                self.lifecycle(s, f"{self.prefix}-warm-{i}")
            cpu = CpuMeter(self.args.daemon_pid)
            runs = [self.lifecycle(s, f"{self.prefix}-seq-{i}") for i in range(self.args.runs)]
            used = cpu.per(len(runs))
        finally:
            s.close()
        steps = {k: [r[k] / 1e6 for r in runs] for k in [*LIFECYCLE_STEPS, "total"]}
        return {"samples_ms": steps, **used}

    def concurrent(self) -> dict[str, Any]:
        total, threads = self.args.concurrent_total, self.args.concurrency
        counter = itertools.count()
        lock = threading.Lock()
        totals: list[float] = []
        errors: list[str] = []
        sessions = [self.driver.session() for _ in range(threads)]
        go = threading.Barrier(threads + 1)

        def worker(n: int, s: Session) -> None:
            go.wait()
            while True:
                with lock:
                    i = next(counter)
                if i >= total or errors:
                    return
                try:
                    steps = self.lifecycle(s, f"{self.prefix}-con-{n}-{i}")
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    return
                with lock:
                    totals.append(steps["total"] / 1e6)

        pool = [
            threading.Thread(target=worker, args=(n, s), daemon=True)
            for n, s in enumerate(sessions)
        ]
        for t in pool:
            t.start()
        cpu = CpuMeter(self.args.daemon_pid)
        go.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        wall = time.perf_counter() - t0
        used = cpu.per(total)
        for s in sessions:
            s.close()
        if errors:
            raise RuntimeError(f"{len(errors)} concurrent lifecycles failed: {errors[0]}")
        return {
            "threads": threads,
            "lifecycles": total,
            "wall_s": round(wall, 3),
            "containers_per_s": round(total / wall, 2),
            "samples_ms": totals,
            **used,
        }

    def memory(self) -> dict[str, Any]:
        s = self.driver.session()
        ids = [f"{self.prefix}-mem-{i}" for i in range(self.args.memory_tasks)]
        try:
            for cid in ids:
                self.start_one(s, cid, ["sleep", "1000"], {})
            time.sleep(self.args.memory_settle)
            shims = find_shims(NAMESPACE, ids)
            missing = sorted(set(ids) - set(shims))
            if missing:
                raise RuntimeError(f"no shim process found for {missing}")
            per_shim = [proc_memory(shims[cid]) for cid in ids]
            argv = cmdline(shims[ids[0]])
            for cid in ids:
                s.kill(cid, 9)
                self.remove_one(s, cid, {})
        finally:
            s.close()
        return {"tasks": len(ids), "shims": per_shim, "shim_argv": argv}

    def cleanup(self) -> list[str]:
        """Kill and delete whatever the phases left; the errors met."""
        errors: list[str] = []
        s = self.driver.session()
        try:
            for cid in sorted(self.live.tasks):
                _soft(errors, f"kill {cid}", s.kill, cid, 9)
                _soft(errors, f"wait {cid}", s.wait, cid)
                _soft(errors, f"delete task {cid}", s.delete_task, cid)
            for cid in sorted(self.live.containers):
                _soft(errors, f"delete container {cid}", s.delete_container, cid)
            for key in sorted(self.live.snapshots):
                _soft(errors, f"remove snapshot {key}", s.remove_snapshot, key)
        finally:
            s.close()
        return errors


def _soft(errors: list[str], what: str, fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        errors.append(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")


# --------------------------------------------------------------------------- /proc
def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def find_shims(namespace: str, ids: list[str]) -> dict[str, int]:
    """Long-running shims (``containerd-shim-runc-v2`` or ``pycontainerd.shim``) by id."""
    wanted, found = set(ids), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = cmdline(int(entry))
        is_shim = bool(argv) and (
            os.path.basename(argv[0]).startswith("containerd-shim") or "pycontainerd.shim" in argv
        )
        if not is_shim or "start" in argv or "delete" in argv:
            continue
        opts = {a.lstrip("-"): v for a, v in itertools.pairwise(argv) if a.startswith("-")}
        if opts.get("namespace") == namespace and opts.get("id") in wanted:
            found[opts["id"]] = int(entry)
    return found


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and Threads from ``status``, Pss from ``smaps_rollup``, in KiB; the CPU
    milliseconds the process used so far (a shim: its start, create and start)."""
    out = {"pid": pid}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key.lower()] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Pss", "Pss_Anon", "Pss_File"):
                out[key.lower() + "_kb"] = int(value.split()[0])
    out["rss_kb"] = out.pop("vmrss")
    out["cpu_ms"] = round(daemon_cpu_s(pid) * 1e3)
    return out


# --------------------------------------------------------------------------- main
def main(prog: str, make_driver: Callable[[str], Driver]) -> int:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--address", required=True)
    p.add_argument("--daemon-pid", type=int, required=True)
    p.add_argument("--layer", required=True, help="JSON: path, digest, size, media_type")
    p.add_argument("--spec", required=True, help="the default OCI spec (JSON)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--concurrent-total", type=int, default=100)
    p.add_argument("--memory-tasks", type=int, default=5)
    p.add_argument("--memory-settle", type=float, default=1.0)
    args = p.parse_args()
    driver = make_driver(args.address)
    expire = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
    lease = driver.create_lease({"containerd.io/gc.expire": expire})
    bench = Bench(driver, args)
    result: dict[str, Any] = {"client": driver.about}
    try:
        result["image"] = bench.image()
        result["sequential"] = bench.sequential()
        if args.concurrent_total > 0:
            result["concurrent"] = bench.concurrent()
        if args.memory_tasks > 0:
            result["memory"] = bench.memory()
    finally:
        result["cleanup_errors"] = bench.cleanup()
        driver.delete_lease(lease, sync=True)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit("run _lifecycle_containerd.py or _lifecycle_pycontainerd.py")
