"""What a test (or a chaos run) may leave behind on the host, found from outside.

Mounts under a directory, shim processes naming it on their command line,
FIFO directories under :data:`FIFO_DIR` and container cgroups
(``<controller>/<namespace>/<id>``, the default spec's path). The integration
suite's session check (``conftest.py``) and the chaos suite (``tests/chaos``)
both use these.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FIFO_DIR = Path("/run/pycontainerd/fifo")
CGROUP_CONTROLLERS = ("memory", "pids", "freezer", "cpu,cpuacct", "devices")


def task_cgroups() -> set[str]:
    """Container cgroups (``<controller>/<namespace>/<id>``, the default spec's path)."""
    found: set[str] = set()
    for controller in CGROUP_CONTROLLERS:
        root = Path("/sys/fs/cgroup") / controller
        if not root.is_dir():
            continue
        for ns in root.iterdir():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed meanwhile
                found.update(str(leaf) for leaf in ns.iterdir() if leaf.is_dir())
    return found


def fifo_dirs() -> set[str]:
    """The FIFO directories clients made (``cio``) and have not removed."""
    return set(os.listdir(FIFO_DIR)) if FIFO_DIR.is_dir() else set()


def shim_processes(marker: str) -> dict[int, str]:
    """Shim processes whose command line contains ``marker``: pid → command line."""
    found: dict[int, str] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pycontainerd.shim" in cmdline and marker.encode() in cmdline:
            found[int(pid)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def mounts_under(directory: str | Path) -> list[str]:
    """Mount points below ``directory``."""
    marker = f" {directory}/"
    return [
        line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if marker in line
    ]


def left_behind(base: str | Path) -> list[str]:
    """Mounts below ``base`` and shim processes naming it."""
    found = [f"mount {target}" for target in mounts_under(base)]
    found += [f"shim {pid}: {cmd[:160]}" for pid, cmd in shim_processes(str(base)).items()]
    return found
