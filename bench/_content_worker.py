"""The content benchmark's phases, shared by both per-daemon clients (stdlib only).

A client script (``_content_containerd.py`` under the gRPC venv,
``_content_pycontainerd.py`` under the project venv) implements :class:`Driver`
for its daemon's API and hands it to :func:`main`; the phases below then time
both daemons the same way. Each phase is one client process, one connection
(plus what the driver's client opens per ingest), and prints one JSON line.

Phases (argv):

    write --blob FILE --runs N --warmup W --blobs-dir DIR --daemon-pid PID
        W untimed runs, then N timed ones. Per run: a lease, the blob written
        and committed (expected digest and size) under it, timed; then the
        lease deleted synchronously, so the daemon's garbage collector removes
        the blob before the next run. The blob's file under DIR must be absent
        before each run and after its GC.
    read --blob FILE --runs N --warmup W --daemon-pid PID
        The blob committed once (``containerd.io/gc.root``), then read back W
        times untimed and N times timed; the bytes are hashed after the clock
        stops, every run.
    list --count C --calls K --daemon-pid PID
        C distinct small blobs committed in their own namespace (timed: the
        ingest), then K timed calls of the list method, decoded into the
        client library's objects and undecoded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

GC_ROOT = "containerd.io/gc.root"
NAMESPACE = "bench"
LIST_NAMESPACE = "bench-list"
SMALL_SIZE = 512
"""Bytes per blob of the ``list`` phase (a manifest or config is about this size)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Driver(Protocol):
    """One daemon's content API, as the phases need it."""

    def write_leased(self, ref: str, blob: bytes, digest: str) -> None:
        """Create a lease, write ``blob`` under it and commit with ``digest``."""

    def release(self) -> None:
        """Delete the lease :meth:`write_leased` made, collecting garbage before returning."""

    def put(self, ref: str, blob: bytes, digest: str, labels: dict[str, str]) -> None:
        """Write and commit ``blob`` with ``labels``, untimed."""

    def read(self, digest: str) -> list[bytes]:
        """The blob's bytes, in the chunks the daemon sends."""

    def ingest_many(self, blobs: list[tuple[bytes, str]], labels: dict[str, str]) -> None:
        """Commit every ``(data, digest)`` in :data:`LIST_NAMESPACE`, as fast as the API allows."""

    def list_decoded(self) -> int:
        """List :data:`LIST_NAMESPACE`'s blobs into the client library's objects; their count."""

    def list_raw(self) -> int:
        """The same list without decoding into objects; the bytes or entries received."""


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Meter:
    """Wall time, daemon CPU and this process's CPU over one timed section."""

    def __init__(self, daemon_pid: int) -> None:
        self.daemon_pid = daemon_pid
        self.daemon0 = cpu_s(daemon_pid)
        self.client0 = time.process_time()
        self.t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        return {
            "wall_s": round(wall, 4),
            "daemon_cpu_s": round(cpu_s(self.daemon_pid) - self.daemon0, 3),
            "client_cpu_s": round(time.process_time() - self.client0, 3),
        }


def small_blobs(count: int) -> list[tuple[bytes, str]]:
    """``count`` distinct blobs of :data:`SMALL_SIZE` bytes, the same in every process."""
    out = []
    for i in range(count):
        head = f'{{"bench":"content.list","i":{i}}}'.encode()
        data = head + b" " * (SMALL_SIZE - len(head))
        out.append((data, sha256(data)))
    return out


def phase_write(driver: Driver, args: argparse.Namespace, blob: bytes) -> dict[str, object]:
    digest = sha256(blob)
    path = Path(args.blobs_dir) / "sha256" / digest.removeprefix("sha256:")
    runs: list[dict[str, float]] = []
    for i in range(args.warmup + args.runs):
        if path.exists():
            raise RuntimeError(f"{path} exists before write run {i}: the daemon kept it")
        meter = Meter(args.daemon_pid)
        driver.write_leased(f"bench-write-{os.getpid()}-{i}", blob, digest)
        run = meter.stop()
        if not path.exists():
            raise RuntimeError(f"{path} missing after commit of run {i}")
        t0 = time.perf_counter()
        driver.release()
        run["gc_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        if path.exists():
            raise RuntimeError(f"{path} still exists after the lease of run {i} was deleted")
        if i >= args.warmup:
            runs.append(run)
    return {"size_bytes": len(blob), "runs": runs}


def phase_read(driver: Driver, args: argparse.Namespace, blob: bytes) -> dict[str, object]:
    digest = sha256(blob)
    driver.put(f"bench-read-{os.getpid()}", blob, digest, {GC_ROOT: rfc3339_now()})
    runs: list[dict[str, float]] = []
    chunk_sizes: set[int] = set()
    for i in range(args.warmup + args.runs):
        meter = Meter(args.daemon_pid)
        chunks = driver.read(digest)
        run = meter.stop()
        h = hashlib.sha256()
        for c in chunks:
            h.update(c)
        if "sha256:" + h.hexdigest() != digest:
            raise RuntimeError(f"read run {i}: the bytes read back do not hash to {digest}")
        chunk_sizes.update(len(c) for c in chunks[:-1])
        run["chunks"] = len(chunks)
        if i >= args.warmup:
            runs.append(run)
        del chunks
    return {"size_bytes": len(blob), "chunk_bytes": sorted(chunk_sizes), "runs": runs}


def phase_list(driver: Driver, args: argparse.Namespace) -> dict[str, object]:
    blobs = small_blobs(args.count)
    meter = Meter(args.daemon_pid)
    driver.ingest_many(blobs, {GC_ROOT: rfc3339_now()})
    ingest = meter.stop()
    ingest["blobs_per_s"] = round(args.count / ingest["wall_s"], 1)
    samples: dict[str, list[float]] = {"decoded_ms": [], "raw_ms": []}
    raw_units = 0
    for i in range(args.calls + 1):  # the first call of each kind is a warm-up
        t0 = time.perf_counter()
        n = driver.list_decoded()
        t1 = time.perf_counter()
        if n != args.count:
            raise RuntimeError(f"list returned {n} blobs, expected {args.count}")
        raw_units = driver.list_raw()
        t2 = time.perf_counter()
        if i:
            samples["decoded_ms"].append(round((t1 - t0) * 1e3, 3))
            samples["raw_ms"].append(round((t2 - t1) * 1e3, 3))
    return {"count": args.count, "ingest": ingest, "raw_units": raw_units, **samples}


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line of every content client script."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--address", required=True, help="the daemon's Unix socket")
    p.add_argument("--daemon-pid", type=int, required=True, help="for its CPU time")
    sub = p.add_subparsers(dest="phase", required=True)
    w = sub.add_parser("write", help="timed leased writes of the blob, GC in between")
    w.add_argument("--blob", required=True)
    w.add_argument("--runs", type=int, default=3)
    w.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    w.add_argument("--blobs-dir", required=True, help="the daemon's blobs/ directory")
    r = sub.add_parser("read", help="timed reads of the blob")
    r.add_argument("--blob", required=True)
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    lst = sub.add_parser("list", help="ingest small blobs, then timed lists")
    lst.add_argument("--count", type=int, default=10_000)
    lst.add_argument("--calls", type=int, default=7)
    return p


def main(prog: str, connect: Callable[[str], Driver], argv: list[str] | None = None) -> int:
    """Run one phase against the daemon at ``--address``; print its JSON result."""
    args = parser(prog).parse_args(argv)
    driver = connect(args.address)
    if args.phase == "list":
        result = phase_list(driver, args)
    else:
        blob = Path(args.blob).read_bytes()
        if args.phase == "write":
            result = phase_write(driver, args, blob)
        else:
            result = phase_read(driver, args, blob)
    result["client"] = dict(getattr(driver, "about", {}))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0
