"""Content store benchmark: pycontainerd against Debian's containerd, in one run, as root.

Starts both daemons side by side on temporary directories, generates one random
blob (256 MiB by default) once for both, and measures each the same way, each
phase in a fresh client process holding one connection:

- **write**: the blob written through the client in 1 MiB chunks and committed
  with its expected digest and size, under a lease (containerd: a pipelined
  ``Content.Write`` bidi stream, stat → writes → commit; pycontainerd:
  ``client.content.writer``, 16 requests in flight). After each run the lease
  is deleted synchronously, so the daemon's GC removes the blob and the next
  run really writes; the blob's file is checked absent before each run.
  MB/s (1 MB = 10^6 bytes), best and median of ``--runs`` after ``--warmup``
  untimed runs (the first run pays for the processes' fresh heaps).
- **read**: the blob committed once (``containerd.io/gc.root``) and read back
  (containerd: ``Content.Read`` with its default chunking; pycontainerd:
  ``client.content.read``, 1 MiB items). The bytes are hashed and compared
  after the clock stops, for both daemons alike: the figure is transfer only.
  The blob is in the page cache (just written) for both; ``--warmup`` untimed
  reads first.
- **list**: ``--list-count`` distinct 512-byte blobs committed in a namespace of
  their own (each one single-request write-and-commit; containerd: 16
  concurrent ``Content.Write`` streams; pycontainerd: 8 pipelined
  ``content.write`` on one connection), then the list timed, p50 of
  ``--list-calls`` calls after a warm-up: decoded into the client library's
  objects (containerd: every ``Content.List`` batch into protobuf messages;
  pycontainerd: ``client.content.walk()`` into ``Info``), and raw
  (containerd: undecoded protobuf bytes; pycontainerd: msgpack maps).

Prints a table with the ratio pycontainerd/containerd per row and whether the
target is met, and writes JSON.

    .venv/bin/python bench/content.py [--size-mib 256] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import _peers

PEERS: dict[str, Callable[[], _peers.Peer]] = {
    "pycontainerd": _peers.start_pycontainerd,
    "containerd": _peers.start_containerd,
}
SCRIPTS = {"pycontainerd": "_content_pycontainerd.py", "containerd": "_content_containerd.py"}
PHASES = ("write", "read", "list")
BLOBS_DIR = Path("root") / "io.containerd.content.v1.content" / "blobs"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/content.py", description="content store benchmark: pycontainerd vs containerd"
    )
    p.add_argument("--size-mib", type=int, default=256, help="size of the blob (256)")
    p.add_argument("--runs", type=int, default=3, help="timed writes and reads of it (3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed writes and reads first (1)")
    p.add_argument("--list-count", type=int, default=10_000, help="small blobs to list (10000)")
    p.add_argument("--list-calls", type=int, default=7, help="timed list calls (7)")
    p.add_argument("--phases", default=",".join(PHASES), help="which of write,read,list")
    p.add_argument("--peers", default="pycontainerd,containerd", help="which daemons to run")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    return p


def _client(peer: _peers.Peer) -> list[str]:
    python = peer.client[0]  # the peer's venv: the project's or the gRPC one
    script = str(_peers.BENCH / SCRIPTS[peer.name])
    return [python, script, "--address", peer.address, "--daemon-pid", str(peer.pid)]


def run_phase(peer: _peers.Peer, phase: str, args: argparse.Namespace, blob: Path) -> Any:
    """One phase in a fresh client process against ``peer``; its JSON result.

    Raises:
        BenchError: the client process failed.
    """
    cmd = [*_client(peer), phase]
    if phase in ("write", "read"):
        cmd += ["--blob", str(blob), f"--runs={args.runs}", f"--warmup={args.warmup}"]
    if phase == "write":
        cmd += ["--blobs-dir", str(peer.base / BLOBS_DIR)]
    if phase == "list":
        cmd += [f"--count={args.list_count}", f"--calls={args.list_calls}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise _peers.BenchError(
            f"{peer.name} {phase} client failed ({done.returncode}):\n{done.stderr}\n"
            f"daemon log:\n{peer.log_tail()}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def _throughput(result: dict[str, Any]) -> dict[str, Any]:
    """MB/s (10^6 bytes) of each run, best, median; the daemon's and client's CPU."""
    size = result["size_bytes"]
    runs = result["runs"]
    mbps = [size / 1e6 / r["wall_s"] for r in runs]
    return {
        **result,
        "MBps_all": [round(x, 1) for x in mbps],
        "MBps_best": round(max(mbps), 1),
        "MBps_median": round(statistics.median(mbps), 1),
        "daemon_cpu_s_median": statistics.median(r["daemon_cpu_s"] for r in runs),
        "client_cpu_s_median": statistics.median(r["client_cpu_s"] for r in runs),
    }


def server_versions(peers: dict[str, _peers.Peer]) -> dict[str, str]:
    """Each daemon's version as its own CLI prints it."""
    out = {}
    for name, peer in peers.items():
        done = subprocess.run(peer.cli_version, capture_output=True, text=True)
        out[name] = " ".join(done.stdout.split()) if done.returncode == 0 else done.stderr.strip()
    return out


def measure(
    peers: dict[str, _peers.Peer], args: argparse.Namespace, blob: Path, phases: list[str]
) -> dict[str, dict[str, Any]]:
    """Every phase, alternating between the peers."""
    results: dict[str, dict[str, Any]] = {name: {} for name in peers}
    for name, version in server_versions(peers).items():
        results[name]["server"] = version
    for phase in phases:
        for name, peer in peers.items():
            print(f"[bench] {name}: {phase}", file=sys.stderr)
            out = run_phase(peer, phase, args, blob)
            if phase == "list":
                for key in ("decoded", "raw"):
                    out[f"{key}_p50_ms"] = round(_peers.percentile(out[f"{key}_ms"], 50), 3)
                    out[f"{key}_min_ms"] = min(out[f"{key}_ms"])
                results[name][phase] = out
            else:
                results[name][phase] = _throughput(out)
    return results


# label, phase, key, higher is better, target ratio (None: informative only)
SPEC: list[tuple[str, str, str, bool, float | None]] = [
    ("write MB/s, best", "write", "MBps_best", True, 1.0),
    ("write MB/s, median", "write", "MBps_median", True, 1.0),
    ("write daemon CPU s (median)", "write", "daemon_cpu_s_median", False, None),
    ("write client CPU s (median)", "write", "client_cpu_s_median", False, None),
    ("read MB/s, best", "read", "MBps_best", True, 1.0),
    ("read MB/s, median", "read", "MBps_median", True, 1.0),
    ("read daemon CPU s (median)", "read", "daemon_cpu_s_median", False, None),
    ("read client CPU s (median)", "read", "client_cpu_s_median", False, None),
    ("small-blob ingest, blobs/s", "list", "ingest.blobs_per_s", True, None),
    ("list, decoded p50 (ms)", "list", "decoded_p50_ms", False, 1.0),
    ("list, raw p50 (ms)", "list", "raw_p50_ms", False, 1.0),
    ("list, decoded min (ms)", "list", "decoded_min_ms", False, None),
    ("list, raw min (ms)", "list", "raw_min_ms", False, None),
]
GOALS = {"write": 1.5, "read": 2.0}
"""The issue's stretch goals (ratio of throughput) beside the targets of 1.0x."""


def _dig(result: dict[str, Any], phase: str, key: str) -> Any:
    value: Any = result.get(phase)
    for part in key.split("."):
        if value is None:
            return None
        value = value[part]
    return value


def rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The table: per figure both peers, pycontainerd/containerd, the target and its verdict.

    A target on a time (lower is better) means pycontainerd's time is at most
    ``target`` times containerd's; on a throughput, at least ``target`` times.
    """
    out = []
    for label, phase, key, higher, target in SPEC:
        row: dict[str, Any] = {"metric": label, "higher_is_better": higher, "target": target}
        for name in PEERS:
            value = _dig(results[name], phase, key) if name in results else None
            row[name] = None if value is None else round(float(value), 2)
        py, ctd = row["pycontainerd"], row["containerd"]
        row["ratio"] = round(py / ctd, 2) if py is not None and ctd else None
        met: bool | None = None
        if target is not None and row["ratio"] is not None:
            met = row["ratio"] >= target if higher else row["ratio"] <= target
        row["met"] = met
        goal = GOALS.get(phase) if higher and target is not None else None
        row["goal"] = goal
        row["goal_met"] = None if goal is None or row["ratio"] is None else row["ratio"] >= goal
        out.append(row)
    return out


def table(table_rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`rows`."""

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:,.1f}" if abs(v) >= 100 else f"{v:,.2f}"

    head = (
        f"{'metric':<30} {'pycontainerd':>13} {'containerd':>12} {'py/ctd':>7}  "
        f"{'target':<22} {'met':<4}"
    )
    lines = [head, "-" * len(head)]
    for r in table_rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        if r["target"] is None:
            target, met = "", ""
        else:
            sign = ">=" if r["higher_is_better"] else "<="
            target = f"{sign} {r['target']:.1f}x"
            if r["goal"] is not None:
                target += f" (goal {r['goal']:.1f}x{': met' if r['goal_met'] else ''})"
            met = "-" if r["met"] is None else "yes" if r["met"] else "NO"
        py, ctd = cell(r["pycontainerd"]), cell(r["containerd"])
        lines.append(f"{r['metric']:<30} {py:>13} {ctd:>12} {ratio:>7}  {target:<22} {met:<4}")
    return "\n".join(lines)


def make_blob(directory: Path, size: int) -> tuple[Path, str]:
    """``size`` random bytes in ``directory/blob``, and their digest."""
    path = directory / "blob"
    h = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return path, "sha256:" + h.hexdigest()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n for n in args.peers.split(",") if n]
    phases = [p for p in args.phases.split(",") if p]
    bad = [n for n in names if n not in PEERS] + [p for p in phases if p not in PHASES]
    if bad:
        print(f"bench/content.py: unknown peer or phase {bad[0]!r}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench/content.py: run as root (containerd needs it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored (&)
    peers: dict[str, _peers.Peer] = {}
    scratch = Path(tempfile.mkdtemp(prefix="pcd-bench-content-", dir="/tmp"))
    try:
        print(f"[bench] generating a {args.size_mib} MiB random blob", file=sys.stderr)
        blob, digest = make_blob(scratch, args.size_mib << 20)
        for name in names:
            print(f"[bench] starting {name}", file=sys.stderr)
            peers[name] = PEERS[name]()
        results = measure(peers, args, blob, phases)
    except _peers.BenchError as exc:
        print(f"bench/content.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/content.py: interrupted; stopping the daemons", file=sys.stderr)
        return 130
    finally:
        for peer in peers.values():
            peer.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    table_rows = rows(results)
    report = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "servers": {name: r.get("server") for name, r in results.items()},
            "clients": {
                name: next((v["client"] for v in r.values() if isinstance(v, dict)), {})
                for name, r in results.items()
            },
            "note": "MB = 10^6 bytes; reads hashed after the clock stops; read-back from "
            "the page cache; ratios are pycontainerd/containerd",
        },
        "config": {
            "blob_bytes": args.size_mib << 20,
            "blob_digest": digest,
            "chunk_bytes": 1 << 20,
            "runs": args.runs,
            "warmup": args.warmup,
            "list_count": args.list_count,
            "list_calls": args.list_calls,
            "phases": phases,
        },
        "rows": table_rows,
        "results": results,
    }
    print(table(table_rows))
    _peers.write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
