"""RPC benchmark: pycontainerd against Debian's containerd, in one run, as root.

Starts both daemons side by side on temporary directories and measures each
the same way:

- latency of ``version.version`` (containerd: Version) and ``namespaces.list``
  (containerd: Namespaces.List): p50/p90/p99 over N sequential calls, after a
  warm-up, from one client process holding one connection;
- calls/s of ``version.version`` with 1 and with 16 concurrent client processes,
  each with its own connection, for a fixed duration;
- idle RSS of each daemon (VmRSS, median of 5 samples, after the warm-up);
- cold start of ``pyctr --address A version`` vs ``ctr --address A version``
  (median of 15 runs).

Prints a table with the ratio pycontainerd/containerd per row and writes JSON.

    .venv/bin/python bench/rpc.py [--calls N] [--json out.json] [--peers containerd]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import _peers

PEERS: dict[str, Callable[[], _peers.Peer]] = {
    "pycontainerd": _peers.start_pycontainerd,
    "containerd": _peers.start_containerd,
}
METHODS = {"version": "version.version", "namespaces_list": "namespaces.list"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/rpc.py", description="RPC benchmark: pycontainerd vs containerd"
    )
    p.add_argument("--calls", type=int, default=2000, help="timed calls per method (2000)")
    p.add_argument("--warmup", type=int, default=200, help="untimed calls per method first (200)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (5)")
    p.add_argument("--clients", default="1,16", help="client processes per throughput run (1,16)")
    p.add_argument("--cold-runs", type=int, default=15, help="runs of each CLI (15)")
    p.add_argument("--peers", default="pycontainerd,containerd", help="which daemons to run")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    return p


def measure(peers: dict[str, _peers.Peer], args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, phase by phase, alternating between the peers."""
    results: dict[str, dict[str, Any]] = {name: {} for name in peers}
    for name, peer in peers.items():
        print(f"[bench] {name}: latency, {args.calls} calls per method", file=sys.stderr)
        lat = _peers.latency(peer, args.calls, args.warmup, list(METHODS))
        results[name]["server"] = lat["server"]
        for key, samples in lat["samples_us"].items():
            results[name][key] = _peers.summarize(samples)
    for name, peer in peers.items():
        results[name]["idle_rss"] = _peers.sample_rss(peer.pid)
    for clients in [int(c) for c in args.clients.split(",") if c]:
        for name, peer in peers.items():
            print(f"[bench] {name}: throughput, {clients} client(s)", file=sys.stderr)
            run = _peers.throughput(peer, clients, args.duration)
            results[name][f"throughput_{clients}"] = run
    for name, peer in peers.items():
        print(f"[bench] {name}: cold start of its CLI", file=sys.stderr)
        results[name]["cli_cold_start"] = _peers.cold_start(peer.cli_version, runs=args.cold_runs)
    return results


def _dig(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = result
    for key in path:
        value = value[key]
    return value


def rows(results: dict[str, dict[str, Any]], clients: list[int]) -> list[dict[str, Any]]:
    """The table: one row per figure, both peers and pycontainerd/containerd."""
    spec: list[tuple[str, tuple[str, ...], float]] = []  # label, path in a result, scale
    for key, method in METHODS.items():
        for p in (50, 90, 99):
            spec.append((f"{method} p{p} (us)", (key, f"p{p}_us"), 1.0))
    for c in clients:
        suffix = f"{c} client{'s' if c != 1 else ''}"
        spec.append((f"calls/s, {suffix}", (f"throughput_{c}", "calls_per_s"), 1.0))
        spec.append(
            (f"daemon CPU us/call, {suffix}", (f"throughput_{c}", "daemon_cpu_us_per_call"), 1.0)
        )
    spec.append(("idle RSS (MiB)", ("idle_rss", "vmrss_kb_median"), 1 / 1024))
    spec.append(("CLI version, cold (ms)", ("cli_cold_start", "median_ms"), 1.0))
    out = []
    for label, path, scale in spec:
        row: dict[str, Any] = {"metric": label}
        for name in PEERS:
            value = _dig(results[name], path) if name in results else None
            row[name] = None if value is None else round(value * scale, 1)
        py, ctd = row["pycontainerd"], row["containerd"]
        row["ratio"] = round(py / ctd, 2) if py is not None and ctd else None
        out.append(row)
    return out


def table(table_rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`rows`."""

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"

    head = f"{'metric':<32} {'pycontainerd':>14} {'containerd':>14} {'py/ctd':>8}"
    lines = [head, "-" * len(head)]
    for r in table_rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        py, ctd = cell(r["pycontainerd"]), cell(r["containerd"])
        lines.append(f"{r['metric']:<32} {py:>14} {ctd:>14} {ratio:>8}")
    return "\n".join(lines)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n for n in args.peers.split(",") if n]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        print(
            f"bench/rpc.py: unknown peer {unknown[0]!r}; choose from {list(PEERS)}", file=sys.stderr
        )
        return 2
    if os.geteuid() != 0:
        print("bench/rpc.py: run as root (containerd needs it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    peers: dict[str, _peers.Peer] = {}
    try:
        for name in names:
            print(f"[bench] starting {name}", file=sys.stderr)
            peers[name] = PEERS[name]()
        results = measure(peers, args)
    except _peers.BenchError as exc:
        print(f"bench/rpc.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/rpc.py: interrupted; stopping the daemons", file=sys.stderr)
        return 130
    finally:
        for peer in peers.values():
            peer.stop()
    clients = [int(c) for c in args.clients.split(",") if c]
    table_rows = rows(results, clients)
    report = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "servers": {name: results[name]["server"] for name in results},
        },
        "config": {
            "calls": args.calls,
            "warmup": args.warmup,
            "throughput_duration_s": args.duration,
            "clients": clients,
            "cold_runs": args.cold_runs,
        },
        "rows": table_rows,
        "results": results,
    }
    print(table(table_rows))
    _peers.write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
