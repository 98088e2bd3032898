"""containerd's content test suite on the local store (with in-memory labels, as
containerd runs it with ``NewLabeledStore``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycontainerd.content import LocalStore, MemoryLabelStore

from . import conformance


@pytest.mark.parametrize("case", list(conformance.CASES))
def test_local_store(case: str, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "content", MemoryLabelStore())
    conformance.CASES[case](conformance.Fixture(store=store))
