from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, events

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(tmp_path / "meta.db")
    yield db
    db.close()


def _publish(db: Database, count: int, topic: str = "/test/step") -> list[int]:
    with db.transaction() as tx:
        recs = [events.publish(tx, "default", topic, {"i": i}) for i in range(count)]
    return [r.sequence for r in recs]


def _forward_at(db: Database, *stamps: datetime) -> list[int]:
    with db.transaction() as tx:
        recs = [events.forward(tx, "default", "/test/at", when, {}) for when in stamps]
    return [r.sequence for r in recs]


def _held(db: Database) -> list[int]:
    return [r.sequence for r in events.read_after(db, 0, 1000)]


def test_empty_journal(db: Database) -> None:
    assert events.head(db) == 0
    assert events.oldest(db) == 0
    assert events.trim_point(db) == 0
    assert events.read_after(db, 0, 10) == []


def test_publish_assigns_sequences_from_one(db: Database) -> None:
    before = datetime.now(UTC)
    with db.transaction() as tx:
        rec = events.publish(tx, "ns", "/tasks/exec-added", {"container_id": "c", "exec_id": "e"})
    assert rec.sequence == 1
    assert rec.namespace == "ns"
    assert rec.topic == "/tasks/exec-added"
    assert rec.event == {"container_id": "c", "exec_id": "e"}
    assert rec.timestamp.tzinfo is UTC
    assert before <= rec.timestamp <= datetime.now(UTC)
    assert tx.published == [rec]
    assert events.read_after(db, 0, 10) == [rec]
    assert _publish(db, 3) == [2, 3, 4]
    assert events.head(db) == 4
    assert events.oldest(db) == 1


def test_sequences_stay_monotonic_across_reopen(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "meta.db")
    assert _publish(db, 2) == [1, 2]
    db.close()
    db = Database.open(tmp_path / "meta.db")
    assert _publish(db, 2) == [3, 4]
    assert _held(db) == [1, 2, 3, 4]
    db.close()


def test_a_rolled_back_event_is_never_seen_and_leaves_no_gap(db: Database) -> None:
    with pytest.raises(ValueError, match="abort"), db.transaction() as tx:
        events.publish(tx, "ns", "/test/x", {})
        raise ValueError("abort")
    assert events.head(db) == 0
    assert _publish(db, 1) == [1]


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("", "topic: must not be empty"),
        ("tasks/exit", "must start with '/'"),
        ("/", "must have at least one component"),
        ("/tasks//exit", 'component ""'),
        ("/tasks/-exit", 'component "-exit"'),
        ("/tasks/exit/", 'component ""'),
        ("/tasks/ex it", 'component "ex it"'),
    ],
)
def test_publish_rejects_invalid_topics(db: Database, topic: str, message: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=message), db.transaction() as tx:
        events.publish(tx, "ns", topic, {})
    assert events.head(db) == 0


def test_validate_topic_accepts_containerd_topics() -> None:
    for topic in ["/tasks/exit", "/tasks/exec-added", "/snapshot/prepare", "/a.b/c_d"]:
        events.validate_topic(topic)


def test_publish_rejects_an_invalid_namespace(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"^namespace: "), db.transaction() as tx:
        events.publish(tx, "not/valid", "/test/x", {})
    with pytest.raises(errdefs.InvalidArgument, match=r"^namespace: "), db.transaction() as tx:
        events.publish(tx, "", "/test/x", {})


def test_publish_rejects_payloads_that_are_not_encodable_maps(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="must be a map"), db.transaction() as tx:
        events.publish(tx, "ns", "/test/x", ["not", "a", "map"])  # type: ignore[call-overload]
    with pytest.raises(errdefs.InvalidArgument, match="cannot be encoded"), db.transaction() as tx:
        events.publish(tx, "ns", "/test/x", {"naive": datetime(2024, 1, 1)})
    assert events.head(db) == 0


def test_payload_round_trips_through_the_journal(db: Database) -> None:
    exited = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    event = {"container_id": "c1", "pid": 7, "exit_status": 0, "exited_at": exited, "b": b"\x01"}
    with db.transaction() as tx:
        events.publish(tx, "ns", "/tasks/exit", event)
    (rec,) = events.read_after(db, 0, 1)
    assert rec.event == event


def test_forward_keeps_the_envelope_timestamp(db: Database) -> None:
    with db.transaction() as tx:
        rec = events.forward(tx, "ns", "/tasks/oom", T0, {"container_id": "c"})
    assert rec.timestamp == T0
    (held,) = events.read_after(db, 0, 1)
    assert held == rec
    assert held.timestamp == T0


def test_forward_takes_a_naive_timestamp_as_utc(db: Database) -> None:
    with db.transaction() as tx:
        rec = events.forward(tx, "ns", "/tasks/oom", datetime(2024, 5, 1, 12, 0, 0), {})
    assert rec.timestamp == T0
    assert events.read_after(db, 0, 1)[0].timestamp == T0


@pytest.mark.parametrize(
    "stamp", [None, datetime(1970, 1, 1, tzinfo=UTC), datetime(1, 1, 1), datetime(1970, 1, 1)]
)
def test_forward_requires_a_non_zero_timestamp(db: Database, stamp: datetime | None) -> None:
    with (
        pytest.raises(errdefs.InvalidArgument, match="timestamp: must be set"),
        db.transaction() as tx,
    ):
        events.forward(tx, "ns", "/tasks/oom", stamp, {})
    assert events.head(db) == 0


def test_forward_validates_namespace_and_topic(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"^namespace: "), db.transaction() as tx:
        events.forward(tx, "-ns", "/tasks/oom", T0, {})
    with (
        pytest.raises(errdefs.InvalidArgument, match="must start with '/'"),
        db.transaction() as tx,
    ):
        events.forward(tx, "ns", "tasks/oom", T0, {})


def test_read_after_pages_in_sequence_order(db: Database) -> None:
    _publish(db, 10)
    assert [r.sequence for r in events.read_after(db, 0, 4)] == [1, 2, 3, 4]
    assert [r.sequence for r in events.read_after(db, 4, 4)] == [5, 6, 7, 8]
    assert [r.sequence for r in events.read_after(db, 8, 4)] == [9, 10]
    assert events.read_after(db, 10, 4) == []
    assert events.read_after(db, 99, 4) == []
    assert [r.event["i"] for r in events.read_after(db, 7, 100)] == [7, 8, 9]


def test_read_after_pages_by_bytes_with_at_least_one_event(db: Database) -> None:
    with db.transaction() as tx:
        for i in range(6):
            events.publish(tx, "default", "/big/e", {"i": i, "b": b"x" * 1000})
    # Each event is ~1 KiB: a page ends with the event that reaches max_bytes.
    assert [r.sequence for r in events.read_after(db, 0, 100, max_bytes=2500)] == [1, 2, 3]
    assert [r.sequence for r in events.read_after(db, 3, 100, max_bytes=1)] == [4]
    assert [r.sequence for r in events.read_after(db, 4, 100, max_bytes=10**6)] == [5, 6]
    with pytest.raises(errdefs.InvalidArgument):
        events.read_after(db, 0, 10, max_bytes=0)
    # A page that ended early leaves no statement open: a write can start.
    _publish(db, 1)


def test_an_event_over_max_size_is_resource_exhausted(db: Database) -> None:
    with db.transaction() as tx:
        events.publish(tx, "default", "/big/e", {"b": b"x" * 90}, max_size=100)
    too_big = pytest.raises(errdefs.ResourceExhausted, match="more than the limit of 100 bytes")
    with too_big, db.transaction() as tx:
        events.publish(tx, "default", "/big/e", {"b": b"x" * 100}, max_size=100)
    with pytest.raises(errdefs.ResourceExhausted), db.transaction() as tx:
        events.forward(tx, "default", "/big/f", T0, {"b": b"x" * 100}, max_size=100)
    assert [r.sequence for r in events.read_after(db, 0, 10)] == [1]


def test_a_clients_event_is_keyed_by_strings(db: Database) -> None:
    for event in ({"a": [{"b": {2: "y"}}]}, {"k": {b"bin": 1}}, {"t": ({3: 0},)}):
        refused = pytest.raises(errdefs.InvalidArgument, match="keys must be strings")
        with refused, db.transaction() as tx:
            events.publish(tx, "default", "/keys/e", event, max_size=1000)
    with db.transaction() as tx:
        events.publish(tx, "default", "/keys/e", {"a": [{"b": {"c": 1}}]}, max_size=1000)
    assert [r.topic for r in events.read_after(db, 0, 10)] == ["/keys/e"]


def test_read_after_rejects_a_non_positive_limit(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="limit"):
        events.read_after(db, 0, 0)


def test_trim_by_count_keeps_the_newest(db: Database) -> None:
    _publish(db, 10)
    with db.transaction() as tx:
        assert events.trim(tx, max_age=None, max_events=3) == 7
    assert _held(db) == [8, 9, 10]
    assert events.oldest(db) == 8
    assert events.trim_point(db) == 7
    assert events.head(db) == 10
    with db.transaction() as tx:
        assert events.trim(tx, max_age=None, max_events=3) == 0
    assert events.trim_point(db) == 7


def test_trim_without_limits_removes_nothing(db: Database) -> None:
    _publish(db, 3)
    with db.transaction() as tx:
        assert events.trim(tx, max_age=None, max_events=None) == 0
    assert _held(db) == [1, 2, 3]
    assert events.trim_point(db) == 0


def test_trim_by_age_removes_the_old_prefix(db: Database) -> None:
    _forward_at(db, T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), T0)
    with db.transaction() as tx:
        removed = events.trim(tx, max_age=15, max_events=None, now=T0 + timedelta(seconds=30))
    # 1 and 2 are older than 15 s; 3 is young, so 4 (old, but after 3) stays with it
    assert removed == 2
    assert _held(db) == [3, 4]
    assert events.trim_point(db) == 2


def test_trim_by_age_can_empty_the_journal_without_reusing_sequences(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "meta.db")
    _forward_at(db, T0, T0)
    with db.transaction() as tx:
        assert events.trim(tx, max_age=1, max_events=None, now=T0 + timedelta(hours=1)) == 2
    assert _held(db) == []
    assert events.oldest(db) == 0
    assert events.head(db) == 2
    assert events.trim_point(db) == 2
    db.close()
    db = Database.open(tmp_path / "meta.db")
    assert events.head(db) == 2
    assert _publish(db, 1) == [3]
    db.close()


def test_trim_applies_the_stricter_of_both_limits(db: Database) -> None:
    _forward_at(db, *(T0 + timedelta(seconds=s) for s in range(6)))
    with db.transaction() as tx:
        removed = events.trim(tx, max_age=10, max_events=2, now=T0 + timedelta(seconds=6))
    assert removed == 4
    assert _held(db) == [5, 6]
    with db.transaction() as tx:
        removed = events.trim(tx, max_age=0.5, max_events=10, now=T0 + timedelta(seconds=5.2))
    assert removed == 1
    assert _held(db) == [6]


def test_trim_rejects_negative_limits(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="max_events"), db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=-1)
    with pytest.raises(errdefs.InvalidArgument, match="max_age"), db.transaction() as tx:
        events.trim(tx, max_age=-1.0, max_events=None)


def test_sequences_stay_monotonic_after_trim(db: Database) -> None:
    _publish(db, 5)
    with db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=0)
    assert _held(db) == []
    assert _publish(db, 2) == [6, 7]
    assert events.oldest(db) == 6


def test_check_since_accepts_what_is_still_held(db: Database) -> None:
    _publish(db, 10)
    with db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=4)
    assert events.trim_point(db) == 6
    for since in [0, 6, 7, 10]:
        events.check_since(db, since)


def test_since_beyond_the_head_is_out_of_range_naming_the_head(db: Database) -> None:
    _publish(db, 10)
    with pytest.raises(errdefs.OutOfRange) as exc_info:
        events.check_since(db, 11)
    assert str(exc_info.value).startswith("since 11: beyond the journal head 10")


def test_since_after_a_reset_journal_is_out_of_range(db: Database) -> None:
    with pytest.raises(errdefs.OutOfRange, match="beyond the journal head 0"):
        events.check_since(db, 5)


def test_since_older_than_the_trim_point_names_the_oldest_held(db: Database) -> None:
    _publish(db, 10)
    with db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=4)
    with pytest.raises(errdefs.FailedPrecondition) as exc_info:
        events.check_since(db, 5)
    message = str(exc_info.value)
    assert message.startswith("since 5: events up to sequence 6 were trimmed from the journal")
    assert "the oldest event still held is sequence 7" in message
    assert "since=0" in message


def test_since_older_than_the_trim_point_of_an_emptied_journal(db: Database) -> None:
    _publish(db, 3)
    with db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=0)
    events.check_since(db, 0)
    events.check_since(db, 3)
    with pytest.raises(errdefs.FailedPrecondition) as exc_info:
        events.check_since(db, 2)
    assert "no event is held (the last sequence assigned is 3)" in str(exc_info.value)


def test_check_since_rejects_a_negative_since(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="since"):
        events.check_since(db, -1)


def test_dedup_key_journals_an_event_once(db: Database) -> None:
    exit_key = "default/c1/c1/4242/2024-05-01T12:00:00Z"
    with db.transaction() as tx:
        first = events.publish(tx, "default", "/tasks/exit", {"pid": 4242}, dedup_key=exit_key)
        again = events.publish(tx, "default", "/tasks/exit", {"pid": 4242}, dedup_key=exit_key)
    assert first is not None
    assert first.sequence == 1
    assert again is None
    assert tx.published == [first]
    with db.transaction() as tx:
        assert events.publish(tx, "default", "/tasks/exit", {}, dedup_key=exit_key) is None
        other = events.publish(tx, "default", "/tasks/exit", {}, dedup_key="other")
    assert tx.published == [other]
    # a rejected duplicate consumes no sequence
    assert other is not None
    assert other.sequence == 2
    assert _publish(db, 1) == [3]


def test_dedup_key_of_a_rolled_back_event_is_free_again(db: Database) -> None:
    with pytest.raises(ValueError, match="abort"), db.transaction() as tx:
        events.publish(tx, "ns", "/tasks/exit", {}, dedup_key="k")
        raise ValueError("abort")
    with db.transaction() as tx:
        rec = events.publish(tx, "ns", "/tasks/exit", {}, dedup_key="k")
    assert rec is not None
    assert rec.sequence == 1


def test_dedup_keys_leave_with_trimmed_events(db: Database) -> None:
    with db.transaction() as tx:
        events.publish(tx, "ns", "/tasks/exit", {}, dedup_key="k")
    with db.transaction() as tx:
        events.trim(tx, max_age=None, max_events=0)
    with db.transaction() as tx:
        rec = events.publish(tx, "ns", "/tasks/exit", {}, dedup_key="k")
    assert rec is not None
    assert rec.sequence == 2
