"""A local registry with the chaos image, a daemon per test, a seed and a time budget.

``PYCONTAINERD_CHAOS_SEED`` replays a run's random choices (the seed is
printed and named in every failure); ``PYCONTAINERD_CHAOS_BUDGET`` is the
wall-clock budget of the whole chaos suite in seconds (default
:data:`BUDGET`), shared out between its tests, which stop drawing kill points
once their share is spent.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import REGISTRY_BIN, RegistryProcess
from tests.requirements import require

from .harness import push_chaos_image

BUDGET = 420.0
"""Seconds for the whole suite: ≤ 10 minutes on 2 cores, with room for setup."""
TESTS = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("chaos tests run as root (they run the daemon, runc, mounts)")


@pytest.fixture(scope="session")
def seed() -> int:
    value = int(os.environ.get("PYCONTAINERD_CHAOS_SEED") or random.randrange(1 << 32))
    print(f"\nchaos seed: {value} (PYCONTAINERD_CHAOS_SEED={value} replays it)")
    return value


@pytest.fixture(scope="session")
def _deadline() -> float:
    budget = float(os.environ.get("PYCONTAINERD_CHAOS_BUDGET") or BUDGET)
    return time.monotonic() + budget


@pytest.fixture
def budget(_deadline: float) -> float:
    """This test's share of what is left of the suite's budget."""
    return max(0.0, (_deadline - time.monotonic()) / TESTS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chaos", numbered=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def image_ref(workdir: Path) -> Iterator[str]:
    """The multi-layer chaos image in a local ``docker-registry``."""
    require(REGISTRY_BIN, "docker-registry")
    (workdir / "registry").mkdir()
    registry = RegistryProcess(workdir / "registry")
    try:
        yield push_chaos_image(registry.host)
    finally:
        registry.close()


@pytest.fixture
def daemon(workdir: Path, request: pytest.FixtureRequest) -> Iterator[DaemonProcess]:
    base = workdir / f"d{len(list(workdir.iterdir()))}"
    base.mkdir()
    proc = DaemonProcess(base).start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()
        proc.reap()
