"""containerd's snapshotter suite against overlayfs, native and btrfs, with real mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conformance import CASES, check_snapshotter
from .conftest import MakeSnapshotter


@pytest.mark.usefixtures("umask0")
@pytest.mark.parametrize("case", list(CASES))
def test_snapshotter_suite(
    case: str, backend: str, make_snapshotter: tuple[MakeSnapshotter, Path], scratch: Path
) -> None:
    make, base = make_snapshotter
    work = scratch / "work"
    work.mkdir()
    sn = make(base / "root")
    check_snapshotter(backend, sn, work, case)
