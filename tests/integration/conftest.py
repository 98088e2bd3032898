from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon import DaemonProcess
from .leaks import fifo_dirs, left_behind, task_cgroups


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("integration tests run as root (they mount, run runc, own /run paths)")


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole suite: no mount, shim process, FIFO directory or container
    cgroup of it remains."""
    base = tmp_path_factory.getbasetemp()
    fifos = fifo_dirs()
    cgroups = task_cgroups()
    yield
    deadline = time.monotonic() + 10
    while (left := left_behind(base)) and time.monotonic() < deadline:
        time.sleep(0.1)  # a shim told to shut down exits a moment after its reply
    new_fifos = fifo_dirs() - fifos
    assert left == [], f"the suite left these behind: {left}"
    assert new_fifos == set(), f"the suite left FIFO directories: {sorted(new_fifos)}"
    new_cgroups = task_cgroups() - cgroups
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
