"""The stores the transfer unit tests run on: sqlite metadata and a local
content store in the test's directory, no snapshotter loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import transfer
from pycontainerd.api import errdefs
from pycontainerd.content import LocalStore
from pycontainerd.diff import WalkingDiffer
from pycontainerd.metadata import ContentStore, Database, DirectRunner, NamespacedSnapshotter


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[transfer.Stores]:
    db = Database.open(tmp_path / "meta.db")
    runner = DirectRunner(db)
    backend = LocalStore(tmp_path / "content")

    def content(lease: str | None) -> ContentStore:
        return ContentStore(runner, backend, "unit", lease=lease)

    def snapshotter(name: str, lease: str | None) -> NamespacedSnapshotter:
        raise errdefs.InvalidArgument(f"snapshotter not loaded: {name}")

    yield transfer.Stores(
        namespace="unit",
        runner=runner,
        content=content,
        snapshotter=snapshotter,
        differ=WalkingDiffer(tmp_path / "tmp"),
    )
    db.close()
