"""Hostile and broken clients: clear errors, and the daemon keeps serving everyone else."""

from __future__ import annotations

import resource
import socket
from typing import Any

import msgpack
import pytest

from .daemon import DaemonProcess, RawConnection, RemoteError


def _still_serving(d: DaemonProcess) -> None:
    with RawConnection(d.address) as c:
        assert c.call("version.version", {})["version"]


def _raw(d: DaemonProcess, data: bytes) -> list[Any]:
    """Send ``data``, return what the daemon answers until it closes or goes quiet."""
    with RawConnection(d.address, timeout=3) as c:
        c.sock.sendall(data)
        out: list[Any] = []
        try:
            for msg in c.messages():
                out.append(msg)
        except TimeoutError:
            pass
        return out


def test_bytes_that_are_not_msgpack_close_only_that_connection(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as bystander:
        answers = _raw(daemon, b"\xc1\xc1\xc1 GET / HTTP/1.1\r\n\r\n")
        assert all(m[0] == 1 and m[2]["code"] == "InvalidArgument" for m in answers)
        assert bystander.call("version.version", {})["version"]
    _still_serving(daemon)


@pytest.mark.parametrize(
    "envelope",
    [
        "hello",
        42,
        {"method": "version.version"},
        [0, 1, "version.version"],
        [7, 1, "version.version", [{}]],
        [0, -1, "version.version", [{}]],
        [0, "one", "version.version", [{}]],
        [0, 1, 12, [{}]],
        [0, 1, "version.version", {"not": "a list"}],
        [0, 1, "version.version", [{}, {"namespace": 5}]],
        [0, 1, "version.version", [{}, {}, {}]],
        [1, 1, None, None],
    ],
)
def test_malformed_envelopes_get_an_error_or_a_close(daemon: DaemonProcess, envelope: Any) -> None:
    answers = _raw(daemon, msgpack.packb(envelope))
    for msg in answers:
        assert msg[0] == 1 and msg[2]["code"] == "InvalidArgument", msg
    _still_serving(daemon)


def test_method_name_as_bin_is_accepted(daemon: DaemonProcess) -> None:
    answers = _raw(daemon, msgpack.packb([0, 9, b"version.version", [{}]], use_bin_type=True))
    assert answers[0][:3] == [1, 9, None]


def test_frame_over_the_limit_is_refused(daemon: DaemonProcess) -> None:
    big = msgpack.packb(
        [
            0,
            5,
            "events.publish",
            [{"topic": "/x/y", "event": {"b": b"x" * (17 << 20)}}, {"namespace": "ns"}],
        ]
    )
    try:
        answers = _raw(daemon, big)
    except (BrokenPipeError, ConnectionResetError):
        answers = []
    for msg in answers:
        assert msg[0] == 1 and msg[2]["code"] in ("InvalidArgument", "ResourceExhausted")
    _still_serving(daemon)


def test_unknown_method_is_not_implemented(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c, pytest.raises(RemoteError) as err:
        c.call("containers.teleport", {})
    assert err.value.code == "NotImplemented"


def test_unknown_notification_is_ignored(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        c.send([2, "no.such.notification", [1, 2]])
        assert c.call("version.version", {})["version"]


def test_wrong_field_type_is_invalid_argument_naming_the_field(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        with pytest.raises(RemoteError) as err:
            c.call("namespaces.create", {"namespace": {"name": "ok", "labels": {"a": 1}}})
        assert err.value.code == "InvalidArgument"
        assert "namespace.labels" in (err.value.message or "")
        with pytest.raises(RemoteError) as err:
            c.call("namespaces.get", {"name": 12})
        assert "name" in (err.value.message or "")
        with pytest.raises(RemoteError) as err:
            c.call("events.subscribe", {"since": "false"})
        assert "since" in (err.value.message or "")


def test_missing_namespace_is_failed_precondition(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c, pytest.raises(RemoteError) as err:
        c.call("events.publish", {"topic": "/a/b", "event": {}})
    assert err.value.code == "FailedPrecondition"
    assert "namespace is required" in (err.value.message or "")


def test_invalid_namespace_identifier_is_invalid_argument(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c, pytest.raises(RemoteError) as err:
        c.call("events.publish", {"topic": "/a/b", "event": {}}, namespace="../etc")
    assert err.value.code == "InvalidArgument"


def test_invalid_topic_is_invalid_argument(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c, pytest.raises(RemoteError) as err:
        c.call("events.publish", {"topic": "no-slash", "event": {}}, namespace="ns")
    assert err.value.code == "InvalidArgument"


def test_client_disconnecting_mid_request_is_harmless(daemon: DaemonProcess) -> None:
    frame = msgpack.packb([0, 1, "namespaces.create", [{"namespace": {"name": "half"}}]])
    for cut in (1, len(frame) // 2, len(frame) - 1):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.address)
        s.sendall(frame[:cut])
        s.close()
    with RawConnection(daemon.address) as c:
        msgid = c.send_request("events.subscribe", {})
        assert msgid == 1
    with RawConnection(daemon.address) as c:
        with pytest.raises(RemoteError):
            c.call("namespaces.get", {"name": "half"})
        assert c.call("version.version", {})


def test_a_thousand_idle_connections(daemon: DaemonProcess) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = []
    try:
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX)
            s.connect(daemon.address)
            idle.append(s)
        _still_serving(daemon)
        with RawConnection(daemon.address) as c:
            c.call("namespaces.create", {"namespace": {"name": "busy"}})
            assert c.call("namespaces.get", {"name": "busy"})
    finally:
        for s in idle:
            s.close()
    _still_serving(daemon)


def test_subscriber_that_never_reads_is_ended_and_publishers_never_stall(
    daemon: DaemonProcess,
) -> None:
    lazy = RawConnection(daemon.address, timeout=30)
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub = lazy.send_request("events.subscribe", {"filters": ['topic=="/flood/e"']})
    payload = "p" * 4096
    with RawConnection(daemon.address, timeout=30) as pub:
        pub.call("version.version", {})
        for i in range(3000):
            pub.call("events.publish", {"topic": "/flood/e", "event": {"i": i, "p": payload}}, "ns")
        # The publisher got every reply; the lazy subscriber now reads: its items, then the end.
    end = None
    count = 0
    for msg in lazy.messages():
        if msg[0] == 2:
            count += 1
        elif msg[0] == 1 and msg[1] == sub:
            end = msg
            break
    lazy.close()
    assert end is not None and end[2]["code"] == "ResourceExhausted"
    assert count < 3000
    _still_serving(daemon)
