"""Issue 11, the event journal: bounded replay memory, a per-event size limit,
and ``since`` beyond the journal head (the daemon as a subprocess)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .daemon import DaemonProcess, RawConnection, RemoteError

MiB = 1 << 20
EVENT_LIMIT = MiB
"""The documented limit on a published event's payload (msgpack-encoded)."""


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _head(address: str) -> int:
    """The journal head: the sequence of a probe event just published."""
    with RawConnection(address) as c:
        c.call("events.publish", {"topic": "/probe/head", "event": {}}, namespace="ns")
        msgid = c.send_request(
            "events.subscribe", {"filters": ['topic=="/probe/head"'], "since": 0}
        )
        last = 0
        c.sock.settimeout(2)
        try:
            for msg in c.messages():
                if msg[0] == 2 and msg[2][0] == msgid:
                    last = msg[2][1]["sequence"]
                elif msg[0] == 1 and msg[1] == msgid:
                    raise RemoteError(msg[2])
        except TimeoutError:
            pass
        return last


def _subscribe(address: str, request: dict[str, Any], count: int, timeout: float) -> list[Any]:
    """The first ``count`` items of a subscription; RemoteError if it is refused."""
    with RawConnection(address, timeout=timeout) as c:
        msgid = c.send_request("events.subscribe", request)
        items: list[Any] = []
        for msg in c.messages():
            if msg[0] == 2 and msg[1] == "stream.item" and msg[2][0] == msgid:
                items.append(msg[2][1])
                if len(items) == count:
                    break
            elif msg[0] == 1 and msg[1] == msgid:
                raise RemoteError(msg[2])
        return items


def test_replaying_big_events_costs_bounded_memory(daemon: DaemonProcess) -> None:
    """A since=0 subscriber over 160 events of nearly 1 MiB: the daemon read
    512 records at once (+160 MiB at least); now a page is at most 4 MiB."""
    count = 160
    blob = os.urandom(EVENT_LIMIT - 4096)
    with RawConnection(daemon.address, timeout=60) as c:
        for i in range(count):
            c.call("events.publish", {"topic": "/big/e", "event": {"i": i, "blob": blob}}, "ns")
    time.sleep(0.5)
    rss_before = _status_kib(daemon.pid, "VmRSS")
    Path(f"/proc/{daemon.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    items = _subscribe(daemon.address, {"filters": ['topic=="/big/e"'], "since": 0}, count, 60)
    peak = _status_kib(daemon.pid, "VmHWM")
    assert [e["event"]["i"] for e in items] == list(range(count))
    assert all(e["event"]["blob"] == blob for e in items)
    growth_mib = (peak - rss_before) / 1024
    print(
        f"replay of {count} x ~1 MiB events: RSS {rss_before / 1024:.0f} MiB, +{growth_mib:.1f} MiB"
    )
    assert growth_mib < 64, f"replay grew the daemon by {growth_mib:.0f} MiB"


def test_publish_over_the_event_limit_is_resource_exhausted(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        with pytest.raises(RemoteError) as err:
            c.call("events.publish", {"topic": "/big/e", "event": {"b": b"x" * EVENT_LIMIT}}, "ns")
        assert err.value.code == "ResourceExhausted"
        assert "1048576" in str(err.value.message)
        with pytest.raises(RemoteError) as err:
            env = {"namespace": "ns", "topic": "/big/f", "event": {"b": b"x" * EVENT_LIMIT}}
            c.call("events.forward", {"envelope": {**env, "timestamp": datetime.now(UTC)}})
        assert err.value.code == "ResourceExhausted"
        # Just under the limit is fine, and the daemon serves on.
        c.call(
            "events.publish", {"topic": "/big/e", "event": {"b": b"x" * (EVENT_LIMIT - 64)}}, "ns"
        )
        assert c.call("version.version", {})["version"]
    items = _subscribe(daemon.address, {"filters": ['topic~="^/big/"'], "since": 0}, 1, 10)
    assert len(items[0]["event"]["b"]) == EVENT_LIMIT - 64


def test_since_beyond_the_head_is_out_of_range(daemon: DaemonProcess) -> None:
    head = _head(daemon.address)
    assert head >= 1
    with pytest.raises(RemoteError) as err:
        _subscribe(daemon.address, {"since": head + 1000}, 1, timeout=5)
    assert err.value.code == "OutOfRange"
    message = str(err.value.message)
    assert str(head) in message and str(head + 1000) in message
    # since == head: nothing to replay, then live.
    with RawConnection(daemon.address, timeout=10) as c:
        msgid = c.send_request(
            "events.subscribe", {"filters": ['topic=="/after/head"'], "since": head}
        )
        with RawConnection(daemon.address) as p:
            p.call("events.publish", {"topic": "/after/head", "event": {"n": 1}}, "ns")
        for msg in c.messages():
            if msg[0] == 1 and msg[1] == msgid:
                raise RemoteError(msg[2])
            if msg[0] == 2 and msg[2][0] == msgid:
                assert msg[2][1]["sequence"] == head + 1
                assert msg[2][1]["event"] == {"n": 1}
                break


def test_a_subscriber_can_tell_the_journal_was_reset(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        for i in range(20):
            c.call("events.publish", {"topic": "/reset/e", "event": {"i": i}}, "ns")
    old_head = _head(daemon.address)
    daemon.stop()
    db = daemon.root / "io.containerd.metadata.v1.sqlite"
    for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
        (db / name).unlink(missing_ok=True)
    daemon.start()
    with pytest.raises(RemoteError) as err:
        _subscribe(daemon.address, {"since": old_head}, 1, timeout=5)
    assert err.value.code == "OutOfRange"
    assert "head" in str(err.value.message)


def test_a_live_subscriber_that_stops_reading_holds_bounded_memory(
    daemon: DaemonProcess,
) -> None:
    """Its queue counted records only (1024 of up to 1 MiB each); now it is
    also bounded in bytes, and the subscriber is ended with ResourceExhausted."""
    count = 100
    blob = os.urandom(EVENT_LIMIT - 4096)
    with RawConnection(daemon.address, timeout=60) as sub:
        msgid = sub.send_request("events.subscribe", {"filters": ['topic=="/slow/e"']})
        with RawConnection(daemon.address) as c:  # registered once a probe is seen
            for _ in range(100):
                c.call("events.publish", {"topic": "/slow/e", "event": {"probe": True}}, "ns")
                sub.sock.settimeout(0.1)
                try:
                    if next(sub.messages(), None) is not None:
                        break
                except TimeoutError:
                    continue
            sub.sock.settimeout(60)
            time.sleep(0.5)
            rss_before = _status_kib(daemon.pid, "VmRSS")
            Path(f"/proc/{daemon.pid}/clear_refs").write_text("5")
            for i in range(count):
                c.call(
                    "events.publish", {"topic": "/slow/e", "event": {"i": i, "blob": blob}}, "ns"
                )
            peak = _status_kib(daemon.pid, "VmHWM")
        growth_mib = (peak - rss_before) / 1024
        print(f"{count} x ~1 MiB events to a stalled subscriber: +{growth_mib:.1f} MiB")
        ended = None
        for msg in sub.messages():
            if msg[0] == 1 and msg[1] == msgid:
                ended = msg[2]
                break
        assert ended is not None and ended["code"] == "ResourceExhausted", ended
        assert "since" in ended["message"]
    assert growth_mib < 64, f"a stalled subscriber grew the daemon by {growth_mib:.0f} MiB"


def test_an_event_with_non_string_keys_is_refused(daemon: DaemonProcess) -> None:
    """One client's event keyed by an int was journalled and then broke every
    replaying subscriber's stream (stock msgpack decoders refuse int keys)."""
    bad: list[dict[Any, Any]] = [{1243: "x"}, {"a": [{"b": {2: "y"}}]}, {"k": {b"bin": 1}}]
    with RawConnection(daemon.address) as c:
        c.call("events.publish", {"topic": "/keys/ok", "event": {"a": [{"b": 1}]}}, "ns")
        for event in bad:
            with pytest.raises(RemoteError) as err:
                c.call("events.publish", {"topic": "/keys/bad", "event": event}, "ns")
            assert err.value.code == "InvalidArgument"
            assert "str" in str(err.value.message)
    # a stock decoder (strict map keys) reads the whole replay
    head = _head(daemon.address)
    items = _subscribe(daemon.address, {"since": 0}, head, timeout=10)
    assert [e["topic"] for e in items].count("/keys/ok") == 1
    assert "/keys/bad" not in [e["topic"] for e in items]


def test_refused_big_events_are_freed(daemon: DaemonProcess) -> None:
    """A refused 15 MiB event stayed alive in a reference cycle (its error's
    traceback): 15 of them took the daemon from 50 to 571 MiB."""
    blob = b"x" * (15 * MiB)
    rss_before = _status_kib(daemon.pid, "VmRSS")
    for _ in range(12):
        with RawConnection(daemon.address, timeout=30) as c:
            with pytest.raises(RemoteError) as err:
                c.call("events.publish", {"topic": "/big/refused", "event": {"b": blob}}, "ns")
            assert err.value.code == "ResourceExhausted"
    time.sleep(0.5)
    growth_mib = (_status_kib(daemon.pid, "VmRSS") - rss_before) / 1024
    print(f"12 refused 15 MiB events: RSS +{growth_mib:.1f} MiB")
    assert growth_mib < 64
