"""Metrics and OOM notifications from the container's cgroups (v1 and v2).

The cgroup of the init process is read from ``/proc/<pid>/cgroup``; metrics
are returned as a map shaped like containerd's ``cgroups/v1`` ``Metrics``
(``pids``, ``cpu.usage``, ``memory.usage``...) or, on a unified hierarchy,
``cgroups/v2`` (``memory.usage``, ``cpu.usage_usec``...), with the type in
the ``type_url`` beside it, as the shim's ``stats`` answers an ``Any``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ._rpc import log

TYPE_CHECKING = False  # typing costs the shim 1 MiB of RSS: imported for mypy only
if TYPE_CHECKING:
    from typing import Any

CGROUP_ROOT = "/sys/fs/cgroup"
V1_TYPE_URL = "io.containerd.cgroups.v1.Metrics"
V2_TYPE_URL = "io.containerd.cgroups.v2.Metrics"


def cgroup_paths(pid: int) -> dict[str, str]:
    """Controller -> directory of ``pid``'s cgroups (``""`` = the unified hierarchy)."""
    paths: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                paths[""] = os.path.join(CGROUP_ROOT, "unified", path.lstrip("/"))
                if not os.path.isdir(paths[""]) or os.path.exists(
                    os.path.join(CGROUP_ROOT, "cgroup.controllers")
                ):
                    paths[""] = os.path.join(CGROUP_ROOT, path.lstrip("/"))
                continue
            for name in controllers.split(","):
                for mount in (controllers, name):
                    d = os.path.join(CGROUP_ROOT, mount, path.lstrip("/"))
                    if os.path.isdir(d):
                        paths[name] = d
                        break
    return paths


def _read_int(directory: str, name: str) -> int:
    try:
        with open(os.path.join(directory, name)) as f:
            text = f.read().strip()
    except OSError:
        return 0
    if text == "max":
        return 0
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def _read_kv(directory: str, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(os.path.join(directory, name)) as f:
            for line in f:
                key, _, value = line.partition(" ")
                try:
                    out[key] = int(value)
                except ValueError:
                    continue
    except OSError:
        pass
    return out


def _v1_metrics(paths: dict[str, str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if "pids" in paths:
        d = paths["pids"]
        metrics["pids"] = {
            "current": _read_int(d, "pids.current"),
            "limit": _read_int(d, "pids.max"),
        }
    if "cpuacct" in paths:
        d = paths["cpuacct"]
        stat = _read_kv(d, "cpuacct.stat")
        tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        try:
            with open(os.path.join(d, "cpuacct.usage_percpu")) as f:
                per_cpu = [int(v) for v in f.read().split()]
        except (OSError, ValueError):
            per_cpu = []
        usage = {
            "total": _read_int(d, "cpuacct.usage"),
            "kernel": stat.get("system", 0) * tick,
            "user": stat.get("user", 0) * tick,
            "per_cpu": per_cpu,
        }
        cpu_stat = _read_kv(paths.get("cpu", d), "cpu.stat")
        metrics["cpu"] = {
            "usage": usage,
            "throttling": {
                "periods": cpu_stat.get("nr_periods", 0),
                "throttled_periods": cpu_stat.get("nr_throttled", 0),
                "throttled_time": cpu_stat.get("throttled_time", 0),
            },
        }
    if "memory" in paths:
        d = paths["memory"]
        stat = _read_kv(d, "memory.stat")

        def entry(prefix: str) -> dict[str, int]:
            return {
                "usage": _read_int(d, f"{prefix}.usage_in_bytes"),
                "max": _read_int(d, f"{prefix}.max_usage_in_bytes"),
                "failcnt": _read_int(d, f"{prefix}.failcnt"),
                "limit": _read_int(d, f"{prefix}.limit_in_bytes"),
            }

        memory: dict[str, Any] = {k: v for k, v in stat.items() if not k.startswith("total_")}
        memory.update({k: v for k, v in stat.items() if k.startswith("total_")})
        memory["usage"] = entry("memory")
        memory["swap"] = entry("memory.memsw")
        memory["kernel"] = entry("memory.kmem")
        metrics["memory"] = memory
    return metrics


def _v2_metrics(d: str) -> dict[str, Any]:
    cpu = _read_kv(d, "cpu.stat")
    memory: dict[str, Any] = dict(_read_kv(d, "memory.stat"))
    memory["usage"] = _read_int(d, "memory.current")
    memory["usage_limit"] = _read_int(d, "memory.max")
    memory["swap_usage"] = _read_int(d, "memory.swap.current")
    return {
        "pids": {"current": _read_int(d, "pids.current"), "limit": _read_int(d, "pids.max")},
        "cpu": {
            "usage_usec": cpu.get("usage_usec", 0),
            "user_usec": cpu.get("user_usec", 0),
            "system_usec": cpu.get("system_usec", 0),
            "nr_periods": cpu.get("nr_periods", 0),
            "nr_throttled": cpu.get("nr_throttled", 0),
            "throttled_usec": cpu.get("throttled_usec", 0),
        },
        "memory": memory,
    }


def stats(pid: int) -> dict[str, Any]:
    """The metrics of ``pid``'s cgroups as ``{"type_url", "value"}``.

    Raises:
        OSError: the process is gone.
    """
    paths = cgroup_paths(pid)
    if "memory" in paths or "cpuacct" in paths or "pids" in paths:
        return {"type_url": V1_TYPE_URL, "value": _v1_metrics(paths)}
    return {"type_url": V2_TYPE_URL, "value": _v2_metrics(paths.get("", CGROUP_ROOT))}


def watch_oom(pid: int, on_oom: Callable[[], None]) -> None:
    """Call ``on_oom`` from a thread each time the v1 memory cgroup of ``pid`` hits OOM.

    Uses ``cgroup.event_control`` with an eventfd on ``memory.oom_control``;
    the watch ends when the cgroup is removed. Without a v1 memory cgroup,
    nothing is watched.
    """
    try:
        d = cgroup_paths(pid).get("memory")
        if d is None:
            return
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        ofd = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        with open(os.path.join(d, "cgroup.event_control"), "w") as f:
            f.write(f"{efd} {ofd}")
    except OSError as exc:
        log(f"no OOM notifications for pid {pid}: {exc}")
        return

    def run() -> None:
        try:
            while True:
                os.eventfd_read(efd)
                if not os.path.isdir(d):
                    return  # the cgroup was removed: that is the last event
                on_oom()
        except OSError:
            return
        finally:
            os.close(efd)
            os.close(ofd)

    threading.Thread(target=run, daemon=True).start()


def container_cgroups(cgroups_path: str) -> list[str]:
    """The existing directories of ``cgroups_path`` (an OCI ``linux.cgroupsPath``)
    in every hierarchy: each v1 controller's, or the unified one's."""
    rel = cgroups_path.strip("/")
    if not rel:
        return []
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        candidates = [os.path.join(CGROUP_ROOT, rel)]
    else:
        try:
            mounts = sorted(os.listdir(CGROUP_ROOT))
        except OSError:
            return []
        candidates = [os.path.join(CGROUP_ROOT, m, rel) for m in mounts]
    found: dict[str, str] = {}
    for d in candidates:  # cpu and cpuacct may be links to cpu,cpuacct
        if os.path.isdir(d):
            found.setdefault(os.path.realpath(d), d)
    return sorted(found.values())


def _procs(directory: str) -> list[int]:
    pids: list[int] = []
    for dirpath, _, _ in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids += [int(line) for line in f if line.strip()]
        except (OSError, ValueError):
            continue
    return pids


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


def remove_cgroups(cgroups_path: str, timeout: float = 2.0) -> list[str]:
    """Kill what is left in a container's cgroups and remove them (the cleanup after
    a dead shim, when ``runc delete --force`` has no state to do it); what stays.

    Frozen cgroups are thawed first (a frozen process does not die of SIGKILL).
    """
    import signal
    import time

    dirs = container_cgroups(cgroups_path)
    for d in dirs:
        _write(os.path.join(d, "freezer.state"), "THAWED")
        _write(os.path.join(d, "cgroup.freeze"), "0")
    deadline = time.monotonic() + timeout
    while True:
        pids = sorted({pid for d in dirs for pid in _procs(d)})
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for d in dirs:
        for dirpath, _, _ in os.walk(d, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                continue
    return [d for d in dirs if os.path.isdir(d)]
