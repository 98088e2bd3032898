"""A job's lease and its workers, on a metadata database of the test's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from pycontainerd import transfer
from pycontainerd.api import errdefs
from pycontainerd.api.transfer import Progress
from pycontainerd.metadata import gc, tables
from pycontainerd.transfer._job import extract_key, open_workers


def _leases(stores: transfer.Stores) -> list[tables.leases.LeaseRecord]:
    return stores.runner.view(lambda q: tables.leases.list(q, "unit"))


async def test_a_job_holds_a_24h_lease_of_its_own_and_deletes_it(stores: transfer.Stores) -> None:
    items: list[Progress] = []

    async def progress(item: Progress) -> None:
        items.append(item)

    with pytest.raises(errdefs.DataLoss):
        async with transfer.open_job(stores, progress=progress) as job:
            [rec] = _leases(stores)
            assert rec.id == job.lease
            expire = datetime.fromisoformat(rec.labels[gc.EXPIRE_LABEL])
            left = expire - datetime.now(UTC)
            assert timedelta(hours=23) < left <= transfer.LEASE_EXPIRY
            await job.report("step", "thing", progress=1, total=2)
            raise errdefs.DataLoss("the job failed")
    assert _leases(stores) == []
    assert items == [Progress(event="step", name="thing", progress=1, total=2)]


async def test_a_job_under_the_callers_lease_keeps_it(stores: transfer.Stores) -> None:
    stores.runner.update(lambda tx: tables.leases.create(tx, "unit", "mine", {}))
    async with transfer.open_job(stores, lease="mine") as job:
        assert job.lease == "mine"
        assert job.content.lease == "mine"
    assert [r.id for r in _leases(stores)] == ["mine"]
    with pytest.raises(errdefs.NotFound):
        async with transfer.open_job(stores, lease="absent"):
            pass


async def test_a_cancelled_job_still_deletes_its_lease(stores: transfer.Stores) -> None:
    with trio.move_on_after(0.05):
        async with transfer.open_job(stores):
            await trio.sleep_forever()
    assert _leases(stores) == []


async def test_workers_fail_with_the_first_domain_error() -> None:
    async def fail() -> None:
        raise errdefs.FailedPrecondition("bad digest")

    with pytest.raises(errdefs.FailedPrecondition, match="bad digest"):
        async with open_workers() as nursery:
            nursery.start_soon(trio.sleep_forever)
            nursery.start_soon(fail)


def test_extract_keys_are_unique_and_name_the_chain() -> None:
    chain = "sha256:" + "c" * 64
    a, b = extract_key(chain), extract_key(chain)
    assert a != b
    assert a.startswith("extract-") and a.endswith(f" {chain}")
