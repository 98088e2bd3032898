from __future__ import annotations

import pytest

from pycontainerd.api import errdefs
from pycontainerd.sqlite import Migration, check_migrations, pending


def _noop(cur: object) -> None:
    return None


def test_check_migrations_rejects_a_gap() -> None:
    gap = (
        Migration(version=1, description="one", apply=_noop),
        Migration(version=3, description="three", apply=_noop),
    )
    with pytest.raises(errdefs.Internal, match="'three' has version 3, expected 2"):
        check_migrations(gap)


def test_pending_on_an_explicit_list() -> None:
    one = Migration(version=1, description="one", apply=_noop)
    two = Migration(version=2, description="two", apply=_noop)
    assert pending(0, (one, two)) == [one, two]
    assert pending(1, (one, two)) == [two]
    assert pending(0, ()) == []
    with pytest.raises(
        errdefs.FailedPrecondition, match="schema version 3, newer than the version 2"
    ):
        pending(3, (one, two))
