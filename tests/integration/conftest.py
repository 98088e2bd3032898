from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon import DaemonProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("integration tests run as root (they mount, run runc, own /run paths)")


FIFO_DIR = Path("/run/pycontainerd/fifo")
CGROUP_CONTROLLERS = ("memory", "pids", "freezer", "cpu,cpuacct", "devices")


def _task_cgroups() -> set[str]:
    """Container cgroups (``<controller>/<namespace>/<id>``, the default spec's path)."""
    found: set[str] = set()
    for controller in CGROUP_CONTROLLERS:
        root = Path("/sys/fs/cgroup") / controller
        if not root.is_dir():
            continue
        for ns in root.iterdir():
            if ns.is_dir():
                found.update(str(leaf) for leaf in ns.iterdir() if leaf.is_dir())
    return found


def _left_behind(base: Path) -> list[str]:
    """Mounts, shim processes and runc containers of this test session still there."""
    marker = str(base)
    found = [
        f"mount {line.split()[1]}"
        for line in Path("/proc/mounts").read_text().splitlines()
        if f" {marker}/" in line
    ]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"pycontainerd.shim" in cmdline and marker.encode() in cmdline:
            found.append(f"shim {pid}: {cmdline.decode(errors='replace').strip()[:160]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole suite: no mount, shim process, FIFO directory or container
    cgroup of it remains."""
    base = tmp_path_factory.getbasetemp()
    fifos = set(os.listdir(FIFO_DIR)) if FIFO_DIR.is_dir() else set()
    cgroups = _task_cgroups()
    yield
    deadline = time.monotonic() + 10
    while (left := _left_behind(base)) and time.monotonic() < deadline:
        time.sleep(0.1)  # a shim told to shut down exits a moment after its reply
    new_fifos = (set(os.listdir(FIFO_DIR)) if FIFO_DIR.is_dir() else set()) - fifos
    assert left == [], f"the suite left these behind: {left}"
    assert new_fifos == set(), f"the suite left FIFO directories: {sorted(new_fifos)}"
    new_cgroups = _task_cgroups() - cgroups
    assert new_cgroups == set(), f"the suite left container cgroups: {sorted(new_cgroups)}"


@pytest.fixture
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes: keep the base short.
    path = Path(tmp_path_factory.mktemp("pcd", numbered=True))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(base: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(base).start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()
    proc.reap()
