"""Drive the real daemon with fuzz cases and check issue 11's invariants.

::

    harness = Harness(base)            # a daemon on base/{root,state}, a probe process
    harness.start()
    worker = harness.worker()
    worker.run(case)                   # one case: send, read replies (or close early)
    harness.violations                 # what broke, with the case that broke it
    harness.stop()

Invariants, checked while cases run:

- the daemon process never exits (a monitor thread polls it; with
  ``restart=True`` an exit is recorded, counted and the daemon restarted);
- every request gets a well-formed response with its msgid, or its connection
  closes (after ``REPLY_WAIT`` the worker sends ``call.cancel``; no response
  ``CANCEL_WAIT`` later is a violation); an error message is at most 64 KiB;
- another client's ``version.version`` (``probe.py``, its own process and
  connection) stays under ``PROBE_LIMIT_MS``;
- the daemon's RSS stays under its idle RSS + ``PARTIAL_FRAME_BUDGET`` + ``RSS_MARGIN``.

Noted as findings, not invariants: replies with code ``Internal`` (an unexpected
exception behind a request), maps with non-str keys sent back (a stock msgpack
client cannot decode them), and cases during which the RSS jumped.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import msgpack

from tests.integration.daemon import DaemonProcess, RawConnection

from .strategies import (
    BLOB,
    BLOB_DIGEST,
    MINIMAL_SPEC,
    REDOS_NAME,
    SPEC_TYPE,
    Case,
    FrameCase,
    Packer,
    RequestCase,
    Truncated,
    summarize,
)

PARTIAL_FRAME_BUDGET = 64 << 20
"""The daemon's global budget for partly received frames (issue 11, wire)."""
RSS_MARGIN = 64 << 20
PROBE_LIMIT_MS = 50.0
"""Issue 11: another client's ``version.version`` stays under 50 ms. Judged so that
it holds on a shared 2-core machine: p99 under it; no sample over it while the load
average is below the core count (above, a sample over it is reported as excused:
the kernel, not the daemon, may have kept the probe waiting); and no sample over
``PROBE_STALL_MS`` ever (no scheduler hiccup lasts that long: a stalled loop)."""
PROBE_STALL_MS = 500.0
CORES = os.cpu_count() or 1
PROBE_INTERVAL = 0.01
REPLY_WAIT = 5.0
"""Seconds before a worker cancels the calls still unanswered."""
LONG_POLL = frozenset({"events.subscribe", "tasks.wait"})
LONG_POLL_WAIT = 0.3
"""Calls that wait for something to happen are cancelled sooner."""
CANCEL_WAIT = 10.0
"""Seconds after ``call.cancel`` before a missing reply is a violation."""
QUIET = 0.2
"""Seconds to listen after frames that leave the stream out of sync."""
HANG = 30.0
"""Seconds without a probe reply before a live daemon counts as hung."""
MAX_ERROR_MESSAGE = 64 << 10
RSS_JUMP = 32 << 20
"""Growth of the daemon's RSS during one case that is noted (with the case)."""
FULL = 20_000
"""Characters of a case's repr kept in a violation (enough to replay it)."""
CODES = frozenset(
    {
        "InvalidArgument",
        "NotFound",
        "AlreadyExists",
        "FailedPrecondition",
        "Unavailable",
        "NotImplemented",
        "Canceled",
        "DeadlineExceeded",
        "ResourceExhausted",
        "Aborted",
        "OutOfRange",
        "DataLoss",
        "Unknown",
        "Internal",
        "PermissionDenied",
    }
)
ONCE = frozenset({"internal", "non-str-key"})
"""Findings recorded once per distinct detail (they repeat with the journal)."""
HARD = frozenset(
    {"daemon-exit", "daemon-hung", "no-reply", "bad-response", "error-too-long", "rss"}
)
"""Violation kinds that break an invariant (``probe-latency`` is judged on the stats)."""

OWNERS = [
    ("wire", ("wire/_server.py", "wire/_codec.py", "daemon/_run.py", "daemon/_config.py")),
    (
        "input",
        (
            "api/convert.py",
            "api/filters.py",
            "metadata/_db.py",
            "sqlite/_database.py",
            "actors/metadata.py",
            "actors/_service.py",
        ),
    ),
    ("shim", ("actors/task_actor.py", "actors/tasks.py", "runtime/", "shim/")),
    (
        "events+defaults",
        (
            "metadata/events.py",
            "actors/events.py",
            "api/events.py",
            "remotes/reference.py",
            "daemon/_host.py",
        ),
    ),
]
_FRAME = re.compile(r'File "[^"]*/pycontainerd/([^"]+)", line (\d+)')


def owner_of(traceback: str, default: str = "?") -> str:
    """The helper owning the deepest pycontainerd frame of ``traceback``."""
    for path, _ in reversed(_FRAME.findall(traceback)):
        for owner, prefixes in OWNERS:
            if any(path.startswith(p) for p in prefixes):
                return owner
    return default


@attrs.define
class Violation:
    kind: str
    detail: str
    case: str
    owner: str = "?"
    at: float = attrs.field(factory=time.monotonic)

    def line(self) -> str:
        return f"[{self.kind}] owner={self.owner}: {self.detail}\n    case: {self.case}"


@attrs.define
class Stats:
    """Counts of one run (thread-safe through ``Harness.lock``)."""

    cases: int = 0
    requests: int = 0
    frames: int = 0
    per_method: Counter[str] = attrs.field(factory=Counter)
    outcomes: Counter[str] = attrs.field(factory=Counter)
    """``code`` (or ``ok``, ``closed``, ``abandoned``) over every request."""
    per_method_outcomes: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    probe: list[float] = attrs.field(factory=list)
    probe_slow: list[tuple[float, float, float]] = attrs.field(factory=list)
    """``(monotonic, ms, load average)`` of each sample over the limit."""
    rss_idle: int = 0
    rss_max: int = 0
    daemon_exits: int = 0
    daemon_hangs: int = 0
    internal: Counter[str] = attrs.field(factory=Counter)

    def probe_failures(self) -> list[str]:
        """Why the probe samples break the latency invariant (see ``PROBE_LIMIT_MS``)."""
        out = []
        summary = self.probe_summary()
        if summary["p99"] >= PROBE_LIMIT_MS:
            out.append(f"p99 {summary['p99']:.1f} ms >= {PROBE_LIMIT_MS:.0f} ms")
        for _, ms, load in self.probe_slow:
            if ms >= PROBE_STALL_MS:
                out.append(f"a {ms:.0f} ms sample (load average {load:.2f})")
            elif load < CORES:
                out.append(f"a {ms:.0f} ms sample at load average {load:.2f} < {CORES} cores")
        return out

    def probe_summary(self) -> dict[str, float]:
        if not self.probe:
            return {"samples": 0, "p50": math.nan, "p99": math.nan, "max": math.nan}
        ordered = sorted(self.probe)
        return {
            "samples": len(ordered),
            "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max": ordered[-1],
        }


class FuzzDaemon(DaemonProcess):
    """The integration suite's daemon, started in a sandbox directory (its cwd)."""

    def __init__(self, base: Path) -> None:
        super().__init__(base, extra_args=["--log-level", "info"])
        self.sandbox = base / "sandbox"
        self.sandbox.mkdir(parents=True, exist_ok=True)

    def start(self, *, wait: bool = True) -> FuzzDaemon:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=log, env=self.env, cwd=self.sandbox
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def rss(self) -> int:
        """VmRSS in bytes (0 if the process is gone)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, AssertionError):
            pass
        return 0


CGROUP_ROOT = Path("/sys/fs/cgroup")


def remove_fuzz_cgroups() -> None:
    """The fuzzer's task cgroups (``<controller>/fz*/<id>``) once their tasks are gone."""
    if not CGROUP_ROOT.is_dir():
        return
    for controller in CGROUP_ROOT.iterdir():
        for ns in controller.glob("fz*"):
            if not ns.is_dir():
                continue
            for leaf in ns.iterdir():
                if leaf.is_dir():
                    with contextlib.suppress(OSError):
                        leaf.rmdir()
            with contextlib.suppress(OSError):
                ns.rmdir()


class Harness:
    """A daemon under fuzz, its probe, its monitor, and what they saw."""

    def __init__(self, base: Path, *, restart: bool = True) -> None:
        self.daemon = FuzzDaemon(base)
        self.packer = Packer(self.daemon.sandbox)
        self.restart = restart
        self.lock = threading.RLock()
        self.stats = Stats()
        self.violations: list[Violation] = []
        self.history: collections.deque[tuple[float, float, str]] = collections.deque(maxlen=20_000)
        self.in_flight: dict[int, tuple[float, Case]] = {}
        self.up = threading.Event()
        self._stop = threading.Event()
        self._probe: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self.started = time.monotonic()
        self._last_probe = time.monotonic()
        self._exit_seen: int | None = None
        self._log_offset = 0
        self._internal_seen: set[tuple[str, str]] = set()
        self.on_violation: list[Any] = []

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self.started = time.monotonic()
        self.daemon.start()
        self._after_start()
        self._probe = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.probe", self.daemon.address, str(PROBE_INTERVAL)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        for target in (self._read_probe, self._monitor):
            t = threading.Thread(target=target, args=(), daemon=True)
            t.start()
            self._threads.append(t)

    def _after_start(self) -> None:
        self.seed_state()
        samples = []
        for _ in range(5):
            samples.append(self.daemon.rss())
            time.sleep(0.05)
        with self.lock:
            self.stats.rss_idle = int(statistics.median(samples))
            self._exit_seen = None
            self._last_probe = time.monotonic()
        self.up.set()

    def stop(self) -> int | None:
        """Stop probe, monitor and daemon; the daemon's exit code (None if already dead)."""
        self._stop.set()
        if self._probe is not None:
            self._probe.kill()
            self._probe.wait(10)
            if self._probe.stdout is not None:
                self._probe.stdout.close()
        for t in self._threads:
            t.join(10)
        rc: int | None = None
        proc = self.daemon.proc
        if proc is not None and proc.poll() is None:
            try:
                rc = self.daemon.stop()
            finally:
                self.daemon.reap()
                remove_fuzz_cgroups()
        else:
            self.daemon.reap()
            remove_fuzz_cgroups()
        return rc

    def seed_state(self) -> None:
        """Objects the pools name, so that random requests reach real ones."""
        calls: list[tuple[str, dict[str, Any]]] = [
            (
                "content.write",
                {
                    "action": "commit",
                    "ref": "seed",
                    "data": BLOB,
                    "total": len(BLOB),
                    "expected": BLOB_DIGEST,
                },
            ),
            (
                "images.create",
                {
                    "image": {
                        "name": "fz/img:1",
                        "target": {
                            "digest": BLOB_DIGEST,
                            "size": len(BLOB),
                            "media_type": "application/octet-stream",
                        },
                    }
                },
            ),
            (
                "images.create",
                {
                    "image": {
                        "name": REDOS_NAME,
                        "target": {
                            "digest": BLOB_DIGEST,
                            "size": len(BLOB),
                            "media_type": "application/octet-stream",
                        },
                    }
                },
            ),
            ("snapshots.prepare", {"key": "k0", "parent": "", "snapshotter": "overlayfs"}),
            ("snapshots.commit", {"name": "base", "key": "k0", "snapshotter": "overlayfs"}),
            ("snapshots.prepare", {"key": "active", "parent": "base", "snapshotter": "overlayfs"}),
            ("leases.create", {"id": "l1"}),
            (
                "containers.create",
                {
                    "container": {
                        "id": "c1",
                        "runtime": {"name": "io.containerd.runc.v2"},
                        "spec": {"type_url": SPEC_TYPE, "value": MINIMAL_SPEC},
                        "snapshotter": "overlayfs",
                        "snapshot_key": "active",
                    }
                },
            ),
        ]
        with RawConnection(self.daemon.address) as conn:
            for method, request in calls:
                with contextlib.suppress(Exception):
                    conn.call(method, request, namespace="fz")

    # -- violations -----------------------------------------------------------

    def record(self, kind: str, detail: str, case: str, owner: str = "?") -> None:
        v = Violation(kind, detail, case, owner)
        with self.lock:
            if kind in ONCE:  # once per method and message
                key = (kind, re.sub(r"\d+", "#", detail)[:100])
                if key in self._internal_seen:
                    return
                self._internal_seen.add(key)
            self.violations.append(v)
        for hook in self.on_violation:
            hook(v)

    def hard_violations(self, since: int = 0) -> list[Violation]:
        with self.lock:
            return [v for v in self.violations[since:] if v.kind in HARD]

    def log_tail(self, size: int = 16_000) -> str:
        """The last ``size`` bytes of the daemon's log."""
        try:
            with self.daemon.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                f.seek(max(0, end - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _in_flight_cases(self) -> str:
        with self.lock:
            found = [summarize(c, FULL) for _, c in self.in_flight.values()]
            if not found and self.history:
                found = [self.history[-1][2]]
        return " | ".join(found) if found else "(none)"

    def check_alive(self) -> bool:
        """Whether the daemon runs; an exit is recorded once (and restarted if asked)."""
        with self.lock:
            proc = self.daemon.proc
            if proc is None or proc.poll() is None:
                return True
            if self._exit_seen == id(proc):
                return False
            self._exit_seen = id(proc)
            self.up.clear()
            self.stats.daemon_exits += 1
        tail = self.log_tail()
        self.record(
            "daemon-exit",
            f"rc={proc.returncode}: {crash_summary(_traceback_part(tail))}; "
            f"log:\n{_indent(_traceback_part(tail))}",
            self._in_flight_cases(),
            owner_of(tail, "wire"),
        )
        if self.restart and not self._stop.is_set():
            self._restart()
        return False

    def _restart(self) -> None:
        self.daemon.reap()
        remove_fuzz_cgroups()
        self.daemon.start()
        self._after_start()

    def _hung(self) -> None:
        with self.lock:
            self.stats.daemon_hangs += 1
            self.up.clear()
            self._exit_seen = id(self.daemon.proc)
        self.record(
            "daemon-hung",
            f"no probe reply for {HANG:.0f}s; log tail:\n{_indent(self.log_tail(2000))}",
            self._in_flight_cases(),
            "wire",
        )
        self.daemon.kill()
        if self.restart:
            self._restart()

    # -- monitor and probe ----------------------------------------------------

    def _monitor(self) -> None:
        rss_flagged: int | None = None
        while not self._stop.wait(0.05):
            if not self.check_alive():
                continue
            rss = self.daemon.rss()
            limit = self.stats.rss_idle + PARTIAL_FRAME_BUDGET + RSS_MARGIN
            with self.lock:
                self.stats.rss_max = max(self.stats.rss_max, rss)
                stale = time.monotonic() - self._last_probe
            if rss > limit and rss_flagged != id(self.daemon.proc):
                rss_flagged = id(self.daemon.proc)
                self.record(
                    "rss",
                    f"RSS {rss >> 20} MiB > idle {self.stats.rss_idle >> 20} MiB + "
                    f"{PARTIAL_FRAME_BUDGET >> 20} + {RSS_MARGIN >> 20} MiB",
                    self._in_flight_cases(),
                    "wire",
                )
            if stale > HANG and self.up.is_set():
                self._hung()

    def _read_probe(self) -> None:
        assert self._probe is not None and self._probe.stdout is not None
        out: IO[str] = self._probe.stdout
        with contextlib.suppress(ValueError, OSError):
            for line in out:
                parts = line.split()
                if len(parts) != 2:
                    continue
                with self.lock:
                    self._last_probe = time.monotonic()
                if parts[1] == "down" or not self.up.is_set():
                    continue
                at, ms = float(parts[0]), float(parts[1])
                with self.lock:
                    self.stats.probe.append(ms)
                    if ms >= PROBE_LIMIT_MS:
                        self.stats.probe_slow.append((at, ms, os.getloadavg()[0]))

    def slow_probe_causes(self, since: float = 0.0) -> list[tuple[float, list[str]]]:
        """Each slow probe sample after ``since`` with the cases that overlapped it."""
        with self.lock:
            slow = [(at, ms) for at, ms, _ in self.stats.probe_slow if at >= since]
            history = list(self.history)
        out = []
        for at, ms in slow:
            begin = at - ms / 1000
            near = [c for s, e, c in history if s <= at and e >= begin]
            out.append((ms, near[-3:]))
        return out

    # -- workers --------------------------------------------------------------

    def worker(self) -> Worker:
        return Worker(self)


_EXC_LINE = re.compile(
    r"^[\s|+]*((?:[A-Za-z_][\w.]*)(?:Error|Exception|Canceled|Exhausted|Group|Exit)\b.*)$"
)


def crash_summary(traceback: str) -> str:
    """``<exception line> at <deepest pycontainerd file:line>`` of a traceback."""
    lines = [m.group(1) for line in traceback.splitlines() if (m := _EXC_LINE.match(line))]
    frames = _FRAME.findall(traceback)
    where = f" at {frames[-1][0]}:{frames[-1][1]}" if frames else ""
    return (lines[-1][:300] if lines else "no traceback in the log") + where


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _traceback_part(log: str) -> str:
    """The last traceback of a log (or its last lines)."""
    at = log.rfind("Traceback (most recent call last)")
    part = log[at:] if at >= 0 else log
    return part[-4000:]


class Worker:
    """One client: runs cases on a connection it keeps while the stream is in sync."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.conn: RawConnection | None = None
        self.msgid = 0
        self.ident = id(self)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _next_msgid(self) -> int:
        self.msgid = self.msgid + 1 if self.msgid < 2**32 - 2 else 1
        return self.msgid

    def _connect(self) -> RawConnection:
        if self.conn is None:
            deadline = time.monotonic() + 60
            while True:
                self.h.up.wait(60)
                try:
                    self.conn = RawConnection(self.h.daemon.address, timeout=REPLY_WAIT)
                    # a stock client's strict_map_key=True fails on int keys: that is
                    # noted per message (_non_str_key), the stream is still read
                    self.conn.unpacker = msgpack.Unpacker(
                        raw=False, timestamp=3, strict_map_key=False
                    )
                    break
                except OSError:
                    self.h.check_alive()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        return self.conn

    @contextlib.contextmanager
    def _tracked(self, case: Case) -> Iterator[None]:
        start = time.monotonic()
        rss = self.h.daemon.rss()
        with self.h.lock:
            self.h.in_flight[self.ident] = (start, case)
        try:
            yield
        finally:
            grown = self.h.daemon.rss() - rss
            with self.h.lock:
                self.h.in_flight.pop(self.ident, None)
                self.h.history.append((start, time.monotonic(), summarize(case)))
            if grown > RSS_JUMP:
                self.h.record(
                    "rss-jump",
                    f"RSS grew {grown >> 20} MiB during this case (or one beside it)",
                    summarize(case, FULL),
                    "wire",
                )

    def run(self, case: Case) -> None:
        summary = summarize(case, FULL)
        with self._tracked(case):
            try:
                if isinstance(case, RequestCase):
                    self._run_requests(case, summary)
                else:
                    self._run_frames(case, summary)
            except OSError:
                self.close()  # the daemon closed first (or died: the check below says)
        with self.h.lock:
            self.h.stats.cases += 1
        self.h.check_alive()

    # -- requests -------------------------------------------------------------

    def _run_requests(self, case: RequestCase, summary: str) -> None:
        conn = self._connect()
        frames: list[bytes] = []
        pending: Counter[int] = Counter()
        names: dict[int, str] = {}
        for call in case.calls:
            msgid = call.msgid if call.msgid is not None else self._next_msgid()
            frames.append(self.h.packer.pack([0, msgid, call.method, call.params()]))
            pending[msgid] += 1
            names[msgid] = str(call.method)
        with self.h.lock:
            self.h.stats.requests += len(case.calls)
            self.h.stats.per_method.update(str(c.method) for c in case.calls)
        self._send_and_read(conn, frames, pending, names, case.close, summary)

    def _send_and_read(
        self,
        conn: RawConnection,
        frames: list[bytes],
        pending: Counter[int],
        names: dict[int, str],
        close: str,
        summary: str,
        *,
        in_sync: bool = True,
    ) -> None:
        if close == "mid_frame" and frames:
            last = frames[-1]
            frames = [*frames[:-1], last[: max(1, len(last) // 2)]]
        if close in ("after_send", "mid_frame"):
            with contextlib.suppress(OSError):
                conn.sock.sendall(b"".join(frames))
            self.close()
            self._count(pending, names, "abandoned")
            return
        try:
            conn.sock.sendall(b"".join(frames))
        except OSError:
            self.close()
            self._count(pending, names, "closed")
            return
        if close == "cancel":
            cancels = [self.h.packer.pack([2, "call.cancel", [m]]) for m in pending]
            with contextlib.suppress(OSError):
                conn.sock.sendall(b"".join(cancels))
        if close == "half_close":
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
        open_ = self._read(conn, pending, names, summary, in_sync=in_sync)
        if not open_ or close == "half_close" or not in_sync:
            self.close()

    def _count(self, pending: Counter[int], names: dict[int, str], outcome: str) -> None:
        with self.h.lock:
            for msgid, n in pending.items():
                if n > 0:
                    self.h.stats.outcomes[outcome] += n
                    self.h.stats.per_method_outcomes[(names.get(msgid, "?"), outcome)] += n

    def _read(
        self,
        conn: RawConnection,
        pending: Counter[int],
        names: dict[int, str],
        summary: str,
        *,
        in_sync: bool,
    ) -> bool:
        """Read until every pending msgid is answered; False if the connection closed.

        A call unanswered after its wait (``REPLY_WAIT``, ``LONG_POLL_WAIT``) is
        cancelled; unanswered ``CANCEL_WAIT`` later, it is a violation.
        """
        conn.sock.settimeout(0.05)
        start = time.monotonic()
        due = {
            m: start + (LONG_POLL_WAIT if names.get(m) in LONG_POLL else REPLY_WAIT)
            for m in pending
        }
        cancelled: set[int] = set()
        quiet_until = None if in_sync else start + QUIET
        try:
            while True:
                try:
                    for msg in conn.unpacker:
                        self._reply(msg, pending, names, summary, in_sync=in_sync)
                except (ValueError, msgpack.UnpackException) as exc:
                    self.h.record("bad-response", f"not msgpack from the daemon: {exc}", summary)
                    return False
                left = +pending
                now = time.monotonic()
                if not left and (quiet_until is None or now > quiet_until):
                    return True
                late = [m for m in left if m not in cancelled and now > due[m]]
                if late:
                    cancelled.update(late)
                    frames = [self.h.packer.pack([2, "call.cancel", [m]]) for m in late]
                    with contextlib.suppress(OSError):
                        conn.sock.sendall(b"".join(frames))
                stuck = [m for m in left if now > due[m] + CANCEL_WAIT]
                if stuck:
                    if in_sync:
                        what = ", ".join(f"{m} ({names.get(m, '?')})" for m in stuck)
                        self.h.record(
                            "no-reply",
                            f"no response to msgid {what}, nor to call.cancel "
                            f"{CANCEL_WAIT:.0f}s later; the connection stays open",
                            summary,
                            "wire",
                        )
                    self._count(left, names, "noreply")
                    return False
                try:
                    data = conn.sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    self._count(left, names, "closed")
                    return False
                conn.unpacker.feed(data)
        except OSError:
            self._count(+pending, names, "closed")
            return False

    def _reply(
        self,
        msg: Any,
        pending: Counter[int],
        names: dict[int, str],
        summary: str,
        *,
        in_sync: bool = True,
    ) -> None:
        if _non_str_key(msg):
            self.h.record(
                "non-str-key",
                f"a map with a non-str key in {summarize(msg, 300)} (stock msgpack clients, "
                "strict_map_key=True by default, cannot decode it)",
                summary,
                "events+defaults" if "stream.item" in str(msg[:2]) else "input",
            )
        if isinstance(msg, list) and len(msg) == 3 and msg[0] == 2 and msg[1] == "stream.item":
            params = msg[2]
            ok = isinstance(params, list) and len(params) == 2
            if not ok or (in_sync and params[0] not in pending):
                self.h.record("bad-response", f"stream.item for no call: {msg!r:.300}", summary)
            return
        if not (isinstance(msg, list) and len(msg) == 4 and msg[0] == 1):
            self.h.record("bad-response", f"not a response: {summarize(msg, 300)}", summary)
            return
        msgid, error = msg[1], msg[2]
        if not isinstance(msgid, int):
            self.h.record("bad-response", f"msgid {summarize(msgid, 100)}", summary)
            return
        if pending[msgid] <= 0:
            if in_sync:  # out of sync, the daemon may have read requests we did not count
                self.h.record("bad-response", f"response to msgid {msgid!r} never sent", summary)
            return
        pending[msgid] -= 1
        method = names.get(msgid, "?")
        outcome = "ok"
        if error is not None:
            if not (
                isinstance(error, dict)
                and error.get("code") in CODES
                and isinstance(error.get("message"), str)
            ):
                self.h.record("bad-response", f"malformed error {summarize(error, 300)}", summary)
                outcome = "malformed"
            else:
                outcome = error["code"]
                size = len(error["message"].encode())
                if size > MAX_ERROR_MESSAGE:
                    self.h.record(
                        "error-too-long",
                        f"{method}: {outcome} message of {size} bytes "
                        f"(> {MAX_ERROR_MESSAGE}): {error['message'][:200]!r}",
                        summary,
                        "wire",
                    )
                if outcome == "Internal":
                    with self.h.lock:
                        self.h.stats.internal[method] += 1
                    self.h.record(
                        "internal",
                        f"{method}: {outcome} {error['message'][:300]!r}",
                        summary,
                        owner_of(self.h.log_tail()),
                    )
        with self.h.lock:
            self.h.stats.outcomes[outcome] += 1
            self.h.stats.per_method_outcomes[(method, outcome)] += 1

    # -- frames ---------------------------------------------------------------

    def _run_frames(self, case: FrameCase, summary: str) -> None:
        self.close()  # frames may break the stream: a connection of their own
        conn = self._connect()
        frames: list[bytes] = []
        pending: Counter[int] = Counter()
        names: dict[int, str] = {}
        in_sync = True
        for frame in case.frames:
            if isinstance(frame, bytes | Truncated):
                in_sync = False
                frames.append(frame if isinstance(frame, bytes) else self.h.packer.pack(frame))
                continue
            try:
                frames.append(self.h.packer.pack(frame))
            except (TypeError, ValueError, OverflowError):
                continue  # not packable (msgpack's nesting limit, ...): not sent
            if in_sync and _is_request(frame):
                pending[frame[1]] += 1
                names[frame[1]] = str(frame[2])[:40] if isinstance(frame[2], str) else "<frame>"
        if in_sync:
            sentinel = self._next_msgid() + (1 << 31)
            while sentinel in pending:
                sentinel += 1
            sentinel %= 2**32
            frames.append(self.h.packer.pack([0, sentinel, "version.version", [{}]]))
            pending[sentinel] += 1
            names[sentinel] = "<sentinel>"
        with self.h.lock:
            self.h.stats.frames += len(frames)
        self._send_and_read(conn, frames, pending, names, case.close, summary, in_sync=in_sync)


def _non_str_key(obj: Any, budget: int = 10_000) -> bool:
    """Whether a map in ``obj`` (its first ``budget`` values) has a key that is not a str."""
    stack = [obj]
    while stack and budget > 0:
        budget -= 1
        value = stack.pop()
        if isinstance(value, dict):
            if any(not isinstance(k, str) for k in value):
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _is_request(frame: Any) -> bool:
    return (
        isinstance(frame, list)
        and len(frame) == 4
        and frame[0] == 0
        and not isinstance(frame[0], bool)
        and isinstance(frame[1], int)
        and not isinstance(frame[1], bool)
        and 0 <= frame[1] < 2**32
    )


def report(h: Harness, elapsed: float) -> str:
    """A plain-text summary of a run."""
    s = h.stats
    probe = s.probe_summary()
    lines = [
        f"cases {s.cases}, requests {s.requests}, raw frames {s.frames}, "
        f"in {elapsed:.0f}s ({s.requests / max(elapsed, 1e-9):.0f} requests/s)",
        f"daemon exits {s.daemon_exits}, hangs {s.daemon_hangs}",
        f"probe version.version: {probe['samples']:.0f} samples, p50 {probe['p50']:.2f} ms, "
        f"p99 {probe['p99']:.2f} ms, max {probe['max']:.2f} ms, "
        f">= {PROBE_LIMIT_MS:.0f} ms: {len(s.probe_slow)} "
        f"({sum(load >= CORES for _, _, load in s.probe_slow)} at load >= {CORES} cores); "
        f"invariant: {'; '.join(s.probe_failures()) or 'held'}",
        f"RSS idle {s.rss_idle / 2**20:.1f} MiB, max {s.rss_max / 2**20:.1f} MiB "
        f"(limit idle + {(PARTIAL_FRAME_BUDGET + RSS_MARGIN) >> 20} MiB)",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in s.outcomes.most_common()),
        "per method: " + ", ".join(f"{k} {v}" for k, v in sorted(s.per_method.items())),
        "Internal by method: "
        + (", ".join(f"{k} {v}" for k, v in s.internal.most_common()) or "none"),
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    kinds = Counter(v.kind for v in h.violations)
    lines.append("violations: " + (", ".join(f"{k} {n}" for k, n in kinds.items()) or "none"))
    return "\n".join(lines)
