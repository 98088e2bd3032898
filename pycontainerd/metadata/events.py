"""The durable event journal (DESIGN "Events").

containerd's events are fire-and-forget. Here every event is first appended to
the ``events`` table — in the same transaction as the change it describes — and
gets a ``sequence``: assigned by sqlite, monotonic from 1, never reused, even
after trimming (``AUTOINCREMENT`` keeps its high-water mark). A subscriber that
remembers the last sequence it saw resumes after it with :func:`read_after`::

    sequence   1   2   3 | 4   5   6   7   8     head() == 8
               trimmed   | held                  oldest() == 4
                         trim point == 3

    since=0 → 4..8   since=3 → 4..8   since=5 → 6..8   since=8 → nothing yet
    since=2 → FailedPrecondition (trimmed)          since=9 → OutOfRange (beyond the head)

Trimming (:func:`trim`, by age and by count) only ever removes a prefix of the
journal, and remembers the highest sequence it removed (the trim point) in
``journal_meta``, so :func:`check_since` can tell a subscriber that asks for
events already gone. A ``since`` beyond the head is refused as well: the
subscriber saw sequences this journal never assigned, so it was reset (its
database removed) since then.

Sizes. :func:`publish` and :func:`forward` take a ``max_size`` for the
encoded payload (a client's event: ``api.events.MAX_EVENT_SIZE``), and
:func:`read_after` pages by bytes as well as by count, so a replay holds one
page of events in memory however large the journal is.

Deduplication: ``publish(..., dedup_key=k)`` journals nothing when an event
with key ``k`` is still held (the task actor's exits, keyed by namespace,
container, exec id, pid and exit time). Keys leave with their events when the
journal is trimmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias, overload

import attrs

from pycontainerd import sqlite
from pycontainerd.api import errdefs, identifiers
from pycontainerd.sqlite import Queryable

from . import _schema
from ._schema import quote


@attrs.frozen(kw_only=True)
class EventRecord:
    """One journalled event: containerd's envelope plus its ``sequence``."""

    sequence: int
    timestamp: datetime
    namespace: str
    topic: str
    event: dict[str, Any]
    size: int = 0
    """The payload's encoded size in bytes (what a queue of records is bounded by)."""


Transaction: TypeAlias = sqlite.Transaction[EventRecord]
"""A metadata write transaction: what it publishes is journalled here."""


def validate_topic(topic: str) -> None:
    """Check containerd's topic rule: ``/`` then ``/``-separated identifiers.

    Raises:
        errdefs.InvalidArgument: the topic is empty, relative, or has a
            component that is not an identifier.
    """
    if not isinstance(topic, str) or not topic:
        raise errdefs.InvalidArgument("topic: must not be empty")
    if topic[0] != "/":
        raise errdefs.InvalidArgument(f"topic {quote(topic)}: must start with '/'")
    if len(topic) == 1:
        raise errdefs.InvalidArgument(f"topic {quote(topic)}: must have at least one component")
    for component in topic[1:].split("/"):
        try:
            identifiers.validate(component)
        except errdefs.InvalidArgument as exc:
            raise errdefs.InvalidArgument(
                f"topic {quote(topic)}: component {quote(component)}: {exc.message}"
            ) from None


def _validate_namespace(namespace: str) -> None:
    try:
        identifiers.validate(namespace)
    except errdefs.InvalidArgument as exc:
        raise errdefs.InvalidArgument(f"namespace: {exc.message}") from None


_INSERT = (
    "INSERT INTO events (timestamp, namespace, topic, event, dedup_key) VALUES (?, ?, ?, ?, ?)"
)


def check_client_event(topic: str, event: Mapping[str, Any], max_size: int) -> None:
    """What a client's event must be before it is packed, checked without
    allocating: every map keyed by strings (as the protobuf messages and JSON
    documents events stand for: another key type would be journalled and then
    break every subscriber's stream, stock msgpack decoders refusing non-string
    keys), and no more than ``max_size`` bytes by a lower bound of its encoded
    size (a refused 16 MiB event is never copied). Linear in the payload.

    Raises:
        errdefs.InvalidArgument: a map key that is not a string.
        errdefs.ResourceExhausted: certainly more than ``max_size`` bytes encoded.
    """
    size = 0
    stack: list[Any] = [event]
    while stack:
        value = stack.pop()
        size += 1
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise errdefs.InvalidArgument(
                        f"event on {quote(topic)}: map keys must be strings, "
                        f"not {type(key).__name__}"
                    )
                size += len(key)
                stack.append(item)
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, str | bytes):
            size += len(value)
    if size > max_size:
        raise errdefs.ResourceExhausted(
            f"event on {quote(topic)}: at least {size} bytes encoded, "
            f"more than the limit of {max_size} bytes"
        )


def _append(
    tx: Transaction,
    timestamp: datetime,
    namespace: str,
    topic: str,
    event: Mapping[str, Any],
    dedup_key: str | None,
    max_size: int | None,
) -> EventRecord:
    if not isinstance(event, Mapping):
        raise errdefs.InvalidArgument(f"event: must be a map, not {type(event).__name__}")
    if max_size is not None:
        check_client_event(topic, event, max_size)
    payload = dict(event)
    packed = _schema.pack_event(payload)
    if max_size is not None and len(packed) > max_size:
        raise errdefs.ResourceExhausted(
            f"event on {quote(topic)}: {len(packed)} bytes encoded, "
            f"more than the limit of {max_size} bytes"
        )
    cur = tx.execute(
        _INSERT,
        (_schema.to_micros(timestamp), namespace, topic, packed, dedup_key),
    )
    sequence = cur.lastrowid
    assert sequence is not None
    rec = EventRecord(
        sequence=sequence,
        timestamp=timestamp,
        namespace=namespace,
        topic=topic,
        event=payload,
        size=len(packed),
    )
    tx.published.append(rec)
    return rec


@overload
def publish(
    tx: Transaction,
    namespace: str,
    topic: str,
    event: Mapping[str, Any],
    *,
    dedup_key: None = None,
    max_size: int | None = None,
) -> EventRecord: ...


@overload
def publish(
    tx: Transaction,
    namespace: str,
    topic: str,
    event: Mapping[str, Any],
    *,
    dedup_key: str,
    max_size: int | None = None,
) -> EventRecord | None: ...


def publish(
    tx: Transaction,
    namespace: str,
    topic: str,
    event: Mapping[str, Any],
    *,
    dedup_key: str | None = None,
    max_size: int | None = None,
) -> EventRecord | None:
    """Journal an event in ``tx``, stamped now (UTC).

    Args:
        tx: the transaction of the change the event describes.
        namespace: the envelope's namespace (an identifier).
        topic: e.g. ``"/namespaces/create"``.
        event: the payload map (msgpack-encodable).
        dedup_key: when given and an event with this key is still held,
            nothing is journalled.
        max_size: the largest payload accepted, in bytes encoded
            (``api.events.MAX_EVENT_SIZE`` for a client's event); ``None``: no limit.

    Returns:
        The record with its sequence (also appended to ``tx.published``), or
        ``None`` when ``dedup_key`` was already held.

    Raises:
        errdefs.InvalidArgument: bad namespace, topic or payload.
        errdefs.ResourceExhausted: the payload is larger than ``max_size``.
    """
    _validate_namespace(namespace)
    validate_topic(topic)
    if (
        dedup_key is not None
        and tx.execute("SELECT 1 FROM events WHERE dedup_key = ?", (dedup_key,)).fetchone()
    ):
        return None
    return _append(tx, datetime.now(UTC), namespace, topic, event, dedup_key, max_size)


def _is_zero(timestamp: datetime | None) -> bool:
    if timestamp is None:
        return True
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    # Go's zero time (year 1) and protobuf's zero Timestamp (the Unix epoch).
    return timestamp.year == 1 or timestamp == _schema.EPOCH


def forward(
    tx: Transaction,
    namespace: str,
    topic: str,
    timestamp: datetime | None,
    event: Mapping[str, Any],
    *,
    max_size: int | None = None,
) -> EventRecord:
    """Journal an event built elsewhere (containerd's ``Forward``, used by shims).

    Args:
        tx: the transaction to journal in.
        namespace: the envelope's namespace (an identifier).
        topic: the envelope's topic.
        timestamp: the envelope's timestamp, kept as is (naive is taken as UTC).
        event: the payload map.
        max_size: the largest payload accepted, in bytes encoded; ``None``: no limit.

    Returns:
        The record with its sequence (also appended to ``tx.published``).

    Raises:
        errdefs.InvalidArgument: bad namespace or topic, zero timestamp, or a
            payload msgpack cannot carry.
        errdefs.ResourceExhausted: the payload is larger than ``max_size``.
    """
    _validate_namespace(namespace)
    validate_topic(topic)
    if _is_zero(timestamp):
        raise errdefs.InvalidArgument("timestamp: must be set on a forwarded event")
    assert timestamp is not None
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return _append(tx, timestamp.astimezone(UTC), namespace, topic, event, None, max_size)


def _record(row: tuple[int, int, str, str, bytes]) -> EventRecord:
    sequence, micros, namespace, topic, payload = row
    return EventRecord(
        sequence=sequence,
        timestamp=_schema.from_micros(micros),
        namespace=namespace,
        topic=topic,
        event=_schema.unpack_event(payload),
        size=len(payload),
    )


_READ_AFTER = (
    "SELECT sequence, timestamp, namespace, topic, event FROM events"
    " WHERE sequence > ? ORDER BY sequence LIMIT ?"
)


def read_after(
    q: Queryable, since: int, limit: int, *, max_bytes: int | None = None
) -> list[EventRecord]:
    """Held events with a sequence above ``since``, in sequence order: one page.

    A page ends after ``limit`` events, or after the event that brings the
    encoded payloads and topics read to ``max_bytes`` (so it holds at least
    one event, however large); the next page starts after its last sequence.

    Raises:
        errdefs.InvalidArgument: ``limit`` or ``max_bytes`` is not positive.
    """
    if limit <= 0:
        raise errdefs.InvalidArgument(f"limit: must be positive, got {limit}")
    if max_bytes is not None and max_bytes <= 0:
        raise errdefs.InvalidArgument(f"max_bytes: must be positive, got {max_bytes}")
    page: list[EventRecord] = []
    size = 0
    cur = q.execute(_READ_AFTER, (since, limit))
    try:
        for row in cur:
            page.append(_record(row))
            size += len(row[3]) + len(row[4])
            if max_bytes is not None and size >= max_bytes:
                break
    finally:
        cur.close()  # ends the statement (and its read snapshot) when the page is full
    return page


def head(q: Queryable) -> int:
    """The last sequence assigned (0 if none ever was), trimmed or not."""
    row = q.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


def oldest(q: Queryable) -> int:
    """The oldest sequence still held (0 if the journal holds none)."""
    row = q.execute("SELECT MIN(sequence) FROM events").fetchone()
    return int(row[0]) if row[0] is not None else 0


def trim_point(q: Queryable) -> int:
    """The highest sequence trimming has removed (0 if none)."""
    row = q.execute("SELECT value FROM journal_meta WHERE key = 'trimmed_through'").fetchone()
    return int(row[0])


def check_since(q: Queryable, since: int) -> None:
    """Check that the events after ``since`` are all still held.

    ``since`` is the last sequence a subscriber has seen; 0 means "from the
    oldest held" and is always accepted, the head means "nothing to replay".

    Raises:
        errdefs.InvalidArgument: ``since`` is negative.
        errdefs.OutOfRange: ``since`` is beyond the head: this journal never
            assigned it (it was reset); the message names the head.
        errdefs.FailedPrecondition: events after ``since`` were trimmed; the
            message names the oldest sequence still held.
    """
    if since < 0:
        raise errdefs.InvalidArgument(f"since: must be >= 0, got {since}")
    if since == 0:
        return
    last = head(q)
    if since > last:
        raise errdefs.OutOfRange(
            f"since {since}: beyond the journal head {last} (the journal was reset, or "
            f"the sequence was never assigned): resubscribe with since=0 or since<={last}"
        )
    trimmed = trim_point(q)
    if since >= trimmed:
        return
    first = oldest(q)
    held = (
        f"the oldest event still held is sequence {first}"
        if first
        else f"no event is held (the last sequence assigned is {head(q)})"
    )
    raise errdefs.FailedPrecondition(
        f"since {since}: events up to sequence {trimmed} were trimmed from the journal; "
        f"{held}: resubscribe with since=0 (from the oldest held) or since>={trimmed}"
    )


def trim(
    tx: Transaction,
    *,
    max_age: float | None,
    max_events: int | None,
    now: datetime | None = None,
) -> int:
    """Remove the oldest events beyond the age and count limits.

    Only a prefix of the journal is removed: by count, all but the newest
    ``max_events``; by age, every event before the first one stamped within
    ``max_age`` seconds of ``now`` (a forwarded event with an old timestamp
    goes when the events before it go). The trim point is remembered.

    Args:
        tx: the transaction to trim in.
        max_age: seconds; ``None`` for no age limit.
        max_events: how many events to keep at most; ``None`` for no limit.
        now: the time ages are counted from (default: now, UTC).

    Returns:
        How many events were removed.

    Raises:
        errdefs.InvalidArgument: a negative limit.
    """
    cut = 0
    if max_events is not None:
        if max_events < 0:
            raise errdefs.InvalidArgument(f"max_events: must be >= 0, got {max_events}")
        row = tx.execute(
            "SELECT sequence FROM events ORDER BY sequence DESC LIMIT 1 OFFSET ?",
            (max_events,),
        ).fetchone()
        if row:
            cut = int(row[0])
    if max_age is not None:
        if max_age < 0:
            raise errdefs.InvalidArgument(f"max_age: must be >= 0, got {max_age}")
        cutoff = _schema.to_micros(now or datetime.now(UTC)) - round(max_age * 1_000_000)
        row = tx.execute(
            "SELECT sequence FROM events WHERE timestamp >= ? ORDER BY sequence LIMIT 1",
            (cutoff,),
        ).fetchone()
        # The first young event stays, and all after it; none young: all go.
        cut = max(cut, int(row[0]) - 1 if row else head(tx))
    last = tx.execute("SELECT MAX(sequence) FROM events WHERE sequence <= ?", (cut,)).fetchone()[0]
    if last is None:
        return 0
    removed = tx.execute("DELETE FROM events WHERE sequence <= ?", (cut,)).rowcount
    tx.execute(
        "UPDATE journal_meta SET value = MAX(value, ?) WHERE key = 'trimmed_through'",
        (int(last),),
    )
    return removed
