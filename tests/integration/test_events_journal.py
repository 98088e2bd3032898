"""The durable events journal: sequence, since replay, exactly once across SIGKILL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from .daemon import DaemonProcess, RawConnection, RemoteError


def _collect(address: str, request: dict[str, Any], count: int) -> list[dict[str, Any]]:
    with RawConnection(address) as c:
        msgid = c.send_request("events.subscribe", request)
        items: list[dict[str, Any]] = []
        for msg in c.messages():
            if msg[0] == 2 and msg[1] == "stream.item" and msg[2][0] == msgid:
                items.append(msg[2][1])
                if len(items) == count:
                    return items
            elif msg[0] == 1 and msg[1] == msgid:
                raise RemoteError(msg[2])
    return items


def test_publish_assigns_increasing_sequences(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        for i in range(5):
            c.call("events.publish", {"topic": "/test/step", "event": {"i": i}}, namespace="ns")
    items = _collect(daemon.address, {"filters": ['topic=="/test/step"'], "since": 0}, 5)
    assert [e["event"]["i"] for e in items] == [0, 1, 2, 3, 4]
    seqs = [e["sequence"] for e in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(e["namespace"] == "ns" for e in items)


def test_namespace_events_are_journalled_with_the_change(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        c.call("namespaces.create", {"namespace": {"name": "evns", "labels": {"a": "b"}}})
        c.call("namespaces.delete", {"name": "evns"})
    items = _collect(daemon.address, {"filters": ['event.name=="evns"'], "since": 0}, 2)
    assert [e["topic"] for e in items] == ["/namespaces/create", "/namespaces/delete"]
    assert items[0]["event"] == {"name": "evns", "labels": {"a": "b"}}


def test_live_subscriber_sees_events_after_subscribing(daemon: DaemonProcess) -> None:
    got: list[dict[str, Any]] = []
    ready = threading.Event()

    def subscriber() -> None:
        with RawConnection(daemon.address) as c:
            msgid = c.send_request("events.subscribe", {"filters": ['topic~="/live/"']})
            ready.set()
            for msg in c.messages():
                if msg[0] == 2 and msg[2][0] == msgid:
                    got.append(msg[2][1])
                    if len(got) == 3:
                        return

    t = threading.Thread(target=subscriber)
    t.start()
    ready.wait(5)
    with RawConnection(daemon.address) as c:
        # The subscription may not be registered yet when its request was sent:
        # publish until the subscriber has all three of one batch.
        for batch in range(50):
            for i in range(3):
                c.call("events.publish", {"topic": "/live/x", "event": {"b": batch, "i": i}}, "ns")
            t.join(0.1)
            if not t.is_alive():
                break
    t.join(5)
    assert len(got) == 3
    assert [e["event"]["i"] for e in got] == [0, 1, 2]


def test_sigkill_between_publish_and_delivery_loses_and_duplicates_nothing(
    daemon: DaemonProcess,
) -> None:
    seen: list[int] = []
    last = 0
    with RawConnection(daemon.address) as c:
        for i in range(10):
            c.call("events.publish", {"topic": "/chaos/e", "event": {"i": i}}, namespace="ns")
    first = _collect(daemon.address, {"filters": ['topic=="/chaos/e"'], "since": 0}, 4)
    seen += [e["event"]["i"] for e in first]
    last = first[-1]["sequence"]
    # Publish more, and kill -9 right after the replies: delivery never happened.
    with RawConnection(daemon.address) as c:
        for i in range(10, 20):
            c.call("events.publish", {"topic": "/chaos/e", "event": {"i": i}}, namespace="ns")
    daemon.kill()
    daemon.start()
    rest = _collect(daemon.address, {"filters": ['topic=="/chaos/e"'], "since": last}, 16)
    seen += [e["event"]["i"] for e in rest]
    assert seen == list(range(20))
    # And the daemon keeps numbering after the restart.
    with RawConnection(daemon.address) as c:
        c.call("events.publish", {"topic": "/chaos/after", "event": {}}, namespace="ns")
    after = _collect(daemon.address, {"filters": ['topic=="/chaos/after"'], "since": 0}, 1)
    assert after[0]["sequence"] > rest[-1]["sequence"]


def test_since_older_than_trim_point_is_failed_precondition(base: Any) -> None:
    d = DaemonProcess(base)
    d.config_path.write_text(
        'version = 2\n[plugins."io.containerd.event.v1.exchange"]\n'
        "  max_events = 5\n  trim_interval_seconds = 0.2\n"
    )
    d.start()
    try:
        with RawConnection(d.address) as c:
            for i in range(20):
                c.call("events.publish", {"topic": "/trim/e", "event": {"i": i}}, namespace="ns")
        # Wait for the trimmer, then ask for something it removed.
        import time

        deadline = time.monotonic() + 10
        while True:
            try:
                _collect(d.address, {"since": 1}, 1)
            except RemoteError as err:
                assert err.code == "FailedPrecondition"
                assert "oldest" in (err.message or "")
                break
            assert time.monotonic() < deadline, "journal never trimmed"
            time.sleep(0.1)
        kept = _collect(d.address, {"filters": ['topic=="/trim/e"'], "since": 0}, 5)
        assert [e["event"]["i"] for e in kept] == [15, 16, 17, 18, 19]
    finally:
        d.stop()


def test_subscribe_with_bad_filter_is_invalid_argument(daemon: DaemonProcess) -> None:
    with pytest.raises(RemoteError) as err:
        _collect(daemon.address, {"filters": ["name==foo,"]}, 1)
    assert err.value.code == "InvalidArgument"
