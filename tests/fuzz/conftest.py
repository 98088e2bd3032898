from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from .harness import Harness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A daemon under fuzz (restarted if it exits), its probe and monitor."""
    if os.geteuid() != 0:
        pytest.fail("the fuzzer runs the real daemon as root (it mounts, runs runc)")
    # Unix socket paths are limited to 108 bytes: keep the base short.
    base = tmp_path_factory.mktemp("fz", numbered=True)
    h = Harness(base)
    h.start()
    yield h
    h.stop()
    shutil.rmtree(base, ignore_errors=True)
