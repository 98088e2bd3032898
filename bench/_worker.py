"""The load loop shared by the per-daemon client processes (stdlib only).

A client script (``_containerd_client.py``, ``_pycontainerd_client.py``) builds a
table of zero-argument callables, one per benchmarked method, and hands it to
:func:`main`. The same loop then runs against either daemon, under either
venv's Python, so the two sides are measured the same way.

Modes (argv):

    latency --calls N --warmup W [--methods a,b]
        W warm-up calls of each method, then N sequential calls of each, timed
        one by one. Prints ``{"samples_us": {method: [...]}, "server": ...}``.
    throughput --method M --duration S --warmup W
        W warm-up calls, then prints ``ready`` and waits for one line on stdin
        (the start signal, so that many client processes start together), then
        calls M back to back for S seconds. Prints ``{"calls": n, "elapsed_s": t}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping

Calls = Mapping[str, Callable[[], object]]


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line every client script accepts."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--address", required=True, help="the daemon's Unix socket")
    sub = p.add_subparsers(dest="mode", required=True)
    lat = sub.add_parser("latency", help="sequential calls, each timed")
    lat.add_argument("--calls", type=int, default=2000)
    lat.add_argument("--warmup", type=int, default=200)
    lat.add_argument("--methods", default="version,namespaces_list")
    thr = sub.add_parser("throughput", help="back-to-back calls for a fixed time")
    thr.add_argument("--method", default="version")
    thr.add_argument("--duration", type=float, default=5.0)
    thr.add_argument("--warmup", type=int, default=50)
    return p


def latency(calls: Calls, methods: list[str], n: int, warmup: int) -> dict[str, list[float]]:
    """Time ``n`` sequential calls of each method after ``warmup`` untimed ones.

    Returns:
        Per method, the latency of every call in microseconds, in call order.
    """
    for name in methods:
        for _ in range(warmup):
            calls[name]()
    out: dict[str, list[float]] = {}
    clock = time.perf_counter_ns
    for name in methods:
        fn = calls[name]
        samples: list[float] = []
        for _ in range(n):
            t0 = clock()
            fn()
            samples.append((clock() - t0) / 1e3)
        out[name] = samples
    return out


def throughput(fn: Callable[[], object], duration: float) -> tuple[int, float]:
    """Call ``fn`` back to back for ``duration`` seconds.

    Returns:
        The number of completed calls and the elapsed wall time in seconds.
    """
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    now = t0
    while now < deadline:
        fn()
        n += 1
        now = time.perf_counter()
    return n, now - t0


def main(
    prog: str, connect: Callable[[str], tuple[Calls, object]], argv: list[str] | None = None
) -> int:
    """Run one client process.

    Args:
        prog: the script's name, for ``--help``.
        connect: opens the one persistent connection to the daemon at the given
            address; returns the callables by method name and the server's
            self-description (its version reply), reported as ``server``.
        argv: the command line (default ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    args = parser(prog).parse_args(argv)
    calls, server = connect(args.address)
    if args.mode == "latency":
        methods = [m for m in args.methods.split(",") if m]
        unknown = [m for m in methods if m not in calls]
        if unknown:
            print(f"{prog}: unknown method {unknown[0]!r}; have {sorted(calls)}", file=sys.stderr)
            return 2
        samples = latency(calls, methods, args.calls, args.warmup)
        json.dump({"server": server, "samples_us": samples}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    fn = calls.get(args.method)
    if fn is None:
        print(f"{prog}: unknown method {args.method!r}; have {sorted(calls)}", file=sys.stderr)
        return 2
    for _ in range(args.warmup):
        fn()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if not sys.stdin.readline():
        return 1
    n, elapsed = throughput(fn, args.duration)
    json.dump({"calls": n, "elapsed_s": elapsed}, sys.stdout)
    sys.stdout.write("\n")
    return 0
