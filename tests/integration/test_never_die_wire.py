"""Issue 11, the wire: nothing a peer does on its connection ends the daemon.

Findings 1 (a client closing before its reply), 2 (``meta.timeout = NaN``), the
64 KiB bound on error messages, and finding 7's wire half (a global budget for
partly received frames, a deadline for finishing a started frame), each with
the real daemon as a subprocess and a client built from ``socket`` and
``msgpack`` only.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from .daemon import DaemonProcess, RawConnection, RemoteError

KiB = 1 << 10
MiB = 1 << 20


def _status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` size (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * KiB
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def _served(daemon: DaemonProcess, within: float = 5.0) -> float:
    """Seconds a fresh client waits for ``version.version``; fails if the daemon died."""
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, f"daemon exited {daemon.proc.returncode}:\n{daemon.log()}"
    start = time.monotonic()
    with RawConnection(daemon.address, timeout=within) as c:
        assert c.call("version.version", {})["version"]
    return time.monotonic() - start


def _error(conn: RawConnection, msgid: int) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        conn.response(msgid)
    return info.value


def _closed_by_daemon(sock: socket.socket, within: float) -> tuple[bool, list[Any]]:
    """Whether the daemon closes ``sock`` within ``within`` seconds, and what it sent first."""
    sock.settimeout(within)
    unpacker = msgpack.Unpacker(raw=False)
    try:
        while True:
            data = sock.recv(1 << 16)
            if not data:
                return True, list(unpacker)
            unpacker.feed(data)
    except TimeoutError:
        return False, list(unpacker)
    except ConnectionResetError:
        return True, list(unpacker)


@contextlib.contextmanager
def _configured(base: Path, rpc: str) -> Iterator[DaemonProcess]:
    (base / "config.toml").write_text("version = 2\n[rpc]\n" + rpc)
    proc = DaemonProcess(base).start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()
        proc.reap()


# -- finding 1: a client that closes before reading its reply ------------------


@pytest.mark.parametrize("method", ["version.version", "introspection.plugins", "debug.actors"])
def test_clients_closing_before_their_reply_never_end_the_daemon(
    daemon: DaemonProcess, method: str
) -> None:
    request = msgpack.packb([0, 1, method, [{}]])
    for i in range(200):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(daemon.address)
            sock.sendall(request)
        if i % 50 == 49:
            _served(daemon)
    time.sleep(0.2)
    _served(daemon)
    assert daemon.stop() == 0


def test_a_client_closing_mid_stream_of_requests_leaves_others_served(
    daemon: DaemonProcess,
) -> None:
    # many answered-inline requests in one burst, then close without reading any
    burst = b"".join(
        msgpack.packb([0, n, "debug.actors" if n % 2 else "version.version", [{}]])
        for n in range(1, 500)
    )
    with RawConnection(daemon.address) as other:
        for _ in range(20):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(daemon.address)
                sock.sendall(burst)
            assert other.call("version.version", {})["version"]
    _served(daemon)


# -- finding 2: meta.timeout ------------------------------------------------------


@pytest.mark.parametrize(
    "timeout",
    [math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, 1e308, 2**64 - 1, "10", True, [1], {}],
    ids=repr,
)
def test_a_timeout_that_is_not_finite_and_positive_is_invalid_argument(
    daemon: DaemonProcess, timeout: Any
) -> None:
    with RawConnection(daemon.address) as c:
        msgid = c.send_request("version.version", {}, {"timeout": timeout})
        err = _error(c, msgid)
        assert err.code == "InvalidArgument", err.message
        assert "meta.timeout" in str(err.message)
        # the same connection goes on
        assert c.call("version.version", {})["version"]
    _served(daemon)


def test_a_finite_positive_timeout_still_works(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        for timeout in (0.001, 1, 30.5, 86400):
            msgid = c.send_request("version.version", {}, {"timeout": timeout})
            assert c.response(msgid)["version"]


# -- error messages are at most 64 KiB -------------------------------------------


def test_an_error_message_is_at_most_64_kib_whatever_the_request(daemon: DaemonProcess) -> None:
    huge = "x" * (10 * MiB)
    with RawConnection(daemon.address, timeout=30) as c:
        cases = [
            # the method name is echoed in NotImplemented
            c.send_request(huge, {}),
            # the namespace is echoed by the identifier check
            c.send_request("containers.list", {}, {"namespace": huge}),
            # a map key is part of the field path of a type error
            c.send_request("namespaces.create", {"namespace": {"name": "n", "labels": {huge: 1}}}),
        ]
        errors = [_error(c, msgid) for msgid in cases]
        for err in errors:
            assert isinstance(err.message, str)
            assert len(err.message.encode()) <= 64 * KiB, (err.code, len(err.message))
            assert err.code in ("NotImplemented", "InvalidArgument")
        assert errors[0].code == "NotImplemented"
        message = str(errors[0].message)
        assert message.startswith("unknown method 'xxx")
        assert message.endswith("(truncated)")
        assert c.call("version.version", {})["version"]


# -- finding 7, the wire half: partly received frames ----------------------------


def _unfinished_frame(size: int) -> bytes:
    """A content.write request just under the 16 MiB cap, of which ``size`` bytes get sent."""
    frame = msgpack.packb(
        [0, 7, "content.write", [{"ref": "r", "data": b"\1" * (16 * MiB - 4 * KiB)}, {}]],
        use_bin_type=True,
    )
    assert isinstance(frame, bytes) and len(frame) > size
    return frame[:size]


def test_thirty_unfinished_15_mib_frames_keep_the_daemon_small_and_serving(
    daemon: DaemonProcess,
) -> None:
    _served(daemon)
    idle = _status(daemon.pid, "VmRSS")
    payload = _unfinished_frame(15 * MiB)
    socks: list[socket.socket] = []
    closed = 0
    try:
        for _ in range(30):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(sock)
            sock.settimeout(30)
            sock.connect(daemon.address)
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                closed += 1
        time.sleep(0.5)
        # others are served while the unfinished frames are held
        assert _served(daemon) < 2.0
        peak = _status(daemon.pid, "VmHWM")
        rss = _status(daemon.pid, "VmRSS")
    finally:
        for sock in socks:
            sock.close()
    print(
        f"idle RSS {idle / MiB:.1f} MiB, after 30 x 15 MiB: RSS {rss / MiB:.1f} MiB, "
        f"peak {peak / MiB:.1f} MiB; {closed} connections closed by the budget"
    )
    # the default budget for partial frames is 64 MiB; 64 MiB more for the rest
    assert peak - idle <= 128 * MiB, (idle, rss, peak)
    assert closed >= 20
    _served(daemon)


def test_the_connection_that_would_exceed_the_budget_is_closed(base: Path) -> None:
    with _configured(base, f"partial_frame_budget = {4 * MiB}\n") as daemon:
        first = RawConnection(daemon.address, timeout=10)
        frame = msgpack.packb(
            [0, 1, "version.version", [{"pad": b"\0" * (3 * MiB)}]], use_bin_type=True
        )
        first.sock.sendall(frame[: 3 * MiB])  # 3 of 4 MiB held
        time.sleep(0.3)
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second.connect(daemon.address)
        other = msgpack.packb([0, 9, "version.version", [{"pad": b"\0" * (2 * MiB)}]])
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            second.sendall(other[: 2 * MiB])
        closed, sent = _closed_by_daemon(second, within=10)
        second.close()
        assert closed
        # its request is answered with the reason before the close
        assert [m[:2] for m in sent] == [[1, 9]]
        assert sent[0][2]["code"] == "ResourceExhausted"
        assert "partial" in sent[0][2]["message"]
        # the first one, within the budget, finishes its frame and is answered
        first.sock.sendall(frame[3 * MiB :])
        assert first.response(1)["version"]
        first.close()
        _served(daemon)


def test_a_started_frame_not_finished_in_time_closes_its_connection(base: Path) -> None:
    with _configured(base, "frame_timeout = 1.5\n") as daemon:
        idle = RawConnection(daemon.address)
        steady = RawConnection(daemon.address)
        frame = msgpack.packb([0, 3, "version.version", [{"pad": "y" * 1000}]])
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.connect(daemon.address)
        slow.sendall(frame[:500])
        trickle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        trickle.connect(daemon.address)
        start = time.monotonic()
        # a trickle makes progress, yet does not finish its frame in time
        closed_at = None
        for i in range(100):
            try:
                trickle.sendall(frame[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - start
                break
            time.sleep(0.1)
            # while frames are pending, a connection finishing its frames is served
            if i % 5 == 0:
                assert steady.call("version.version", {})["version"]
        trickle.close()
        assert closed_at is not None and closed_at < 6, closed_at
        closed, sent = _closed_by_daemon(slow, within=5)
        slow.close()
        assert closed
        assert [(m[1], m[2]["code"]) for m in sent] == [(3, "DeadlineExceeded")]
        # a connection that sent nothing is no started frame: it stays, however long
        assert idle.call("version.version", {})["version"]
        assert steady.call("version.version", {})["version"]
        idle.close()
        steady.close()
        _served(daemon)


def test_frame_limits_are_checked_in_the_config(base: Path) -> None:
    for rpc, message in [
        ("frame_timeout = 0\n", "frame_timeout: expected a finite number above 0"),
        ("frame_timeout = nan\n", "frame_timeout: expected a finite number above 0"),
        ("partial_frame_budget = -1\n", "partial_frame_budget: expected a finite number above 0"),
    ]:
        (base / "config.toml").write_text("version = 2\n[rpc]\n" + rpc)
        proc = DaemonProcess(base).start(wait=False)
        assert proc.proc is not None
        assert proc.proc.wait(20) != 0
        assert message in proc.log()
        proc.log_path.unlink()


# -- the accept loop under the root supervisor -------------------------------------


def test_the_accept_loop_is_a_child_of_the_root_and_stops_first(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        actors = {a["path"]: a for a in c.call("debug.actors", {})["actors"]}
    assert actors["root/rpc"]["status"] == "running"
    assert list(actors)[-1] == "root/rpc"  # started last, so stopped first
    # open connections (one idle, one in the middle of a frame) do not hold up SIGTERM
    idle = RawConnection(daemon.address)
    busy = RawConnection(daemon.address)
    busy.sock.sendall(_unfinished_frame(1 * MiB))
    start = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - start < 10
    assert idle.sock.recv(1) == b""
    idle.close()
    busy.close()


def test_a_frame_that_expands_when_decoded_is_refused_while_it_decodes(
    daemon: DaemonProcess,
) -> None:
    """msgpack spends one byte on an empty array that Python spends 56 on: a
    16 MiB frame of nested empty arrays decoded to 1.1 GiB in 3 s of the event
    loop, and 4 MiB of small ints to +32..47 MiB. Each is now refused as it
    decodes, with ResourceExhausted to its msgid."""
    _served(daemon)
    idle = _status(daemon.pid, "VmRSS")
    Path(f"/proc/{daemon.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    empties: list[list[int]] = [[] for _ in range(65535)]
    frames = {
        7: [0, 7, "content.list", [{"filters": [empties] * 250}]],
        8: [0, 8, "content.list", [{"filters": [0] * (4 << 20)}]],
    }
    for msgid, msg in frames.items():
        with RawConnection(daemon.address, timeout=30) as c:
            start = time.monotonic()
            # refused as soon as it decodes too much: the daemon may close first
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                c.sock.sendall(msgpack.packb(msg))
            err = _error(c, msgid)
            assert err.code == "ResourceExhausted", err
            took = time.monotonic() - start
            assert took < 2.0, took
    peak = _status(daemon.pid, "VmHWM")
    print(f"expanding frames: idle RSS {idle / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB")
    assert peak - idle <= 64 * MiB, (idle, peak)
    _served(daemon)
