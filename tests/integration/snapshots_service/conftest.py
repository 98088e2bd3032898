"""Fixtures of the snapshots service tests: scratch directories that are
unmounted and removed even on failure, and containerd's umask 0."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import mount
from tests.integration.snapshots.fstest import mount_points_under


def unmount_below(base: Path) -> None:
    """Detach every mount at or below ``base``, deepest first."""
    for point in mount_points_under(base):
        mount.unmount_all(point, mount.MNT_DETACH)


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short temporary directory (sockets need short paths), unmounted and removed after."""
    path = Path(tempfile.mkdtemp(prefix="pcds-"))
    try:
        yield path
    finally:
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)
