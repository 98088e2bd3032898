from __future__ import annotations

import os
import shutil
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
