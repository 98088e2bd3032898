"""containerd's content test suite on the namespaced metadata store, including
the cross-namespace cases (shared and isolated content)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.content import LocalStore
from pycontainerd.metadata import ContentStore, Database, DirectRunner
from pycontainerd.metadata.tables import namespaces
from tests.unit.content import conformance


@pytest.fixture
def fixture(tmp_path: Path) -> Iterator[conformance.Fixture]:
    db = Database.open(tmp_path / "meta.db")
    runner = DirectRunner(db)
    backend = LocalStore(tmp_path / "content")
    store = ContentStore(runner, backend, "testsuite")

    def isolated(ns: str) -> ContentStore:
        return ContentStore(runner, backend, ns, shared=False)

    def label(ns: str, labels: dict[str, str]) -> None:
        runner.update(lambda tx: namespaces.update(tx, ns, labels, None))

    yield conformance.Fixture(
        store=store, namespaced=store.with_namespace, isolated=isolated, label_namespace=label
    )
    db.close()


@pytest.mark.parametrize("case", list(conformance.CASES) + list(conformance.NAMESPACE_CASES))
def test_metadata_store(case: str, fixture: conformance.Fixture) -> None:
    cases = {**conformance.CASES, **conformance.NAMESPACE_CASES}
    cases[case](fixture)
