"""Container lifecycle benchmark: pycontainerd against Debian's containerd, in one run, as root.

Issue 7. Both daemons start side by side (``_peers``) with their roots on one
filesystem made for the run (``--fs``, see ``_scratch_fs``), get the same
one-layer busybox image (``_lifecycle_host.busybox_layer``: written into
content, ``Snapshots.Prepare`` → ``Diff.Apply`` → ``Snapshots.Commit`` on
``overlayfs``) and run, from a client process each (``_lifecycle_containerd.py``
over gRPC, ``_lifecycle_pycontainerd.py`` over msgpack-RPC; both
``_lifecycle_worker``'s loop):

1. **sequential**: ``--warmup`` then ``--runs`` lifecycles of ``true`` with
   containerd's default spec, runtime ``io.containerd.runc.v2`` (Debian's runc
   for both), no stdio: Prepare, Containers.Create, Mounts, Tasks.Create,
   Tasks.Start, Tasks.Wait, Tasks.Delete, Containers.Delete, Snapshots.Remove,
   each step timed; p50/p90/p99 of the whole. The floor is plain ``runc run``
   of an equivalent bundle (the same spec, the layer as a directory).
2. **concurrent**: ``--concurrency`` client threads doing ``--concurrent-total``
   lifecycles between them: containers per second.
3. **memory**: ``--memory-tasks`` tasks running ``sleep``: RSS and PSS
   (``/proc/<pid>/smaps_rollup``) of each task's shim (``containerd-shim-runc-v2``
   against ``python -S -m pycontainerd.shim``).

Prints a table with the ratios pycontainerd/containerd and the verdicts (p50
at most 1.0x containerd's, goal 0.7x; containers/s at least 1.0x; shim memory
goal not above containerd's) and writes JSON with ``--json``. Daemons, shims,
containers, mounts, cgroups and temporary directories are removed also on
failure and Ctrl-C.

    .venv/bin/python bench/lifecycle.py [--runs 50] [--warmup 5] [--concurrency 20]
        [--concurrent-total 100] [--memory-tasks 5] [--fs ext4|tmpfs|none]
        [--peers pycontainerd,containerd] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import _lifecycle_host
import _lifecycle_worker
import _peers
import _scratch_fs
from unpack import filesystem, unmount_under

PEERS: dict[str, Callable[[Path | None], _peers.Peer]] = {
    "pycontainerd": _peers.start_pycontainerd,
    "containerd": _peers.start_containerd,
}
SCRIPTS = {"pycontainerd": "_lifecycle_pycontainerd.py", "containerd": "_lifecycle_containerd.py"}
P50_TARGET, P50_GOAL, RATE_TARGET = 1.0, 0.7, 1.0
"""Issue 7: p50 at most 1.0x containerd's (goal 0.7x); containers/s at least 1.0x."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/lifecycle.py",
        description="container lifecycle (create, start, wait, delete of true): "
        "pycontainerd vs containerd vs runc run",
    )
    p.add_argument("--runs", type=int, default=50, help="sequential timed lifecycles (50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed lifecycles first (5)")
    p.add_argument("--concurrency", type=int, default=20, help="client threads (20)")
    p.add_argument(
        "--concurrent-total", type=int, default=100, help="lifecycles over the threads (100)"
    )
    p.add_argument("--memory-tasks", type=int, default=5, help="sleeping tasks (5)")
    _scratch_fs.add_arguments(p)
    p.add_argument("--peers", default="pycontainerd,containerd", help="which daemons to run")
    p.add_argument("--no-floor", action="store_true", help="skip the runc run floor")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    return p


def run_client(
    peer: _peers.Peer, layer: Path, spec: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The whole client side against ``peer`` in one process; its JSON result.

    Raises:
        BenchError: the client process failed.
    """
    python = peer.client[0]  # the peer's venv: the project's or the gRPC one
    cmd = [python, str(_peers.BENCH / SCRIPTS[peer.name]), "--address", peer.address]
    cmd += ["--daemon-pid", str(peer.pid), "--layer", str(layer), "--spec", str(spec)]
    cmd += [f"--runs={args.runs}", f"--warmup={args.warmup}"]
    cmd += [f"--concurrency={args.concurrency}", f"--concurrent-total={args.concurrent_total}"]
    cmd += [f"--memory-tasks={args.memory_tasks}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise _peers.BenchError(
            f"{peer.name} lifecycle client failed ({done.returncode}):\n{done.stderr}\n"
            f"daemon log:\n{peer.log_tail()}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --------------------------------------------------------------------------- report
def summarize(
    results: dict[str, dict[str, Any]],
    floor: dict[str, Any] | None,
    cold: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Per daemon: lifecycle percentiles, per-step medians, containers/s, shim memory;
    the floor's percentiles; the ratios and verdicts."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        seq = r["sequential"]["samples_ms"]
        s: dict[str, Any] = {
            "lifecycle_ms": _peers.summarize(seq["total"], "ms"),
            "step_p50_ms": {
                k: round(statistics.median(seq[k]), 3) for k in _lifecycle_worker.LIFECYCLE_STEPS
            },
            "daemon_cpu_ms_per_lifecycle": r["sequential"]["daemon_cpu_ms_per_lifecycle"],
            "host_cpu_ms_per_lifecycle": r["sequential"]["host_cpu_ms_per_lifecycle"],
        }
        if "concurrent" in r:
            c = r["concurrent"]
            s["concurrent"] = {
                "threads": c["threads"],
                "lifecycles": c["lifecycles"],
                "containers_per_s": c["containers_per_s"],
                "lifecycle_ms": _peers.summarize(c["samples_ms"], "ms"),
                "daemon_cpu_ms_per_lifecycle": c["daemon_cpu_ms_per_lifecycle"],
                "host_cpu_ms_per_lifecycle": c["host_cpu_ms_per_lifecycle"],
            }
        if "memory" in r:
            shims = r["memory"]["shims"]
            s["shim"] = {
                "tasks": len(shims),
                "rss_kb_mean": round(statistics.fmean(x["rss_kb"] for x in shims)),
                "pss_kb_mean": round(statistics.fmean(x["pss_kb"] for x in shims)),
                "cpu_ms_mean": round(statistics.fmean(x["cpu_ms"] for x in shims)),
                "threads": shims[0].get("threads"),
                "argv": r["memory"]["shim_argv"],
            }
        if name in cold:
            s["shim_cold_start"] = cold[name]
        out[name] = s
    if floor is not None:
        out["runc_run"] = {"lifecycle_ms": _peers.summarize(floor["samples_ms"], "ms")}
    if "pycontainerd" in out and "containerd" in out:
        py, ctd = out["pycontainerd"], out["containerd"]
        ratio = py["lifecycle_ms"]["p50_ms"] / ctd["lifecycle_ms"]["p50_ms"]
        verdicts: dict[str, Any] = {
            "p50_ratio": round(ratio, 3),
            "p50_target_met": ratio <= P50_TARGET,
            "p50_goal_met": ratio <= P50_GOAL,
        }
        if "concurrent" in py and "concurrent" in ctd:
            rate = py["concurrent"]["containers_per_s"] / ctd["concurrent"]["containers_per_s"]
            verdicts["rate_ratio"] = round(rate, 3)
            verdicts["rate_target_met"] = rate >= RATE_TARGET
        if "shim" in py and "shim" in ctd:
            for key in ("rss", "pss"):
                mem = py["shim"][f"{key}_kb_mean"] / ctd["shim"][f"{key}_kb_mean"]
                verdicts[f"shim_{key}_ratio"] = round(mem, 3)
                verdicts[f"shim_{key}_goal_met"] = mem <= 1.0
        out["verdicts"] = verdicts
    return out


def _cell(value: float | None, fmt: str = ".2f") -> str:
    return f"{'-' if value is None else format(value, fmt):>14}"


def table(summary: dict[str, Any]) -> str:
    """The plain-text table of :func:`summarize`."""
    names = [n for n in (*PEERS, "runc_run") if n in summary]
    head = f"{'metric':<30}" + "".join(f"{n:>14}" for n in names)
    lines = [head, "-" * len(head)]

    def row(label: str, *path: str, fmt: str = ".2f") -> None:
        cells = []
        for n in names:
            value: Any = summary[n]
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            cells.append(_cell(value, fmt))
        lines.append(f"{label:<30}" + "".join(cells))

    for p in ("p50", "p90", "p99"):
        row(f"lifecycle ms, {p}", "lifecycle_ms", f"{p}_ms")
    for step in _lifecycle_worker.LIFECYCLE_STEPS:
        row(f"  {step} ms, p50", "step_p50_ms", step)
    row("daemon CPU ms / lifecycle", "daemon_cpu_ms_per_lifecycle")
    row("host CPU ms / lifecycle", "host_cpu_ms_per_lifecycle")
    row("concurrent containers/s", "concurrent", "containers_per_s")
    row("  lifecycle ms, p50", "concurrent", "lifecycle_ms", "p50_ms")
    row("  daemon CPU ms / lifecycle", "concurrent", "daemon_cpu_ms_per_lifecycle")
    row("  host CPU ms / lifecycle", "concurrent", "host_cpu_ms_per_lifecycle")
    row("shim process cold start ms", "shim_cold_start", "median_ms")
    row("shim RSS KiB, mean", "shim", "rss_kb_mean", fmt=".0f")
    row("shim PSS KiB, mean", "shim", "pss_kb_mean", fmt=".0f")
    row("shim CPU ms to running, mean", "shim", "cpu_ms_mean", fmt=".0f")
    v = summary.get("verdicts")
    if v:
        met = {True: "met", False: "NOT met"}
        lines.append(
            f"p50 ratio {v['p50_ratio']:.2f}: target <= {P50_TARGET:.1f}x "
            f"{met[v['p50_target_met']]}; goal <= {P50_GOAL:.1f}x {met[v['p50_goal_met']]}"
        )
        if "rate_ratio" in v:
            lines.append(
                f"containers/s ratio {v['rate_ratio']:.2f}: target >= {RATE_TARGET:.1f}x "
                f"{met[v['rate_target_met']]}"
            )
        if "shim_rss_ratio" in v:
            lines.append(
                f"shim RSS ratio {v['shim_rss_ratio']:.2f}, PSS ratio {v['shim_pss_ratio']:.2f}: "
                f"goal <= 1.0x RSS {met[v['shim_rss_goal_met']]}, "
                f"PSS {met[v['shim_pss_goal_met']]}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop(peer: _peers.Peer) -> None:
    """Stop ``peer``, then kill its leftover shims and containers and unmount its mounts."""
    if peer.proc.poll() is None:
        peer.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        peer.proc.wait(15)
    shims = _lifecycle_host.kill_shims(peer.base)
    if shims:
        print(f"[bench] killed {peer.name}'s leftover shims {shims}", file=sys.stderr)
        time.sleep(0.5)
    for point in unmount_under(peer.base):
        print(f"[bench] unmounted {point}, left behind by {peer.name}", file=sys.stderr)
    peer.stop()
    _lifecycle_host.remove_run_dirs(peer.base, _lifecycle_worker.NAMESPACE)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n for n in args.peers.split(",") if n]
    if any(n not in PEERS for n in names) or not names or args.runs < 1:
        print(
            "bench/lifecycle.py: --peers from pycontainerd,containerd; --runs >= 1", file=sys.stderr
        )
        return 2
    if os.geteuid() != 0:
        print("bench/lifecycle.py: run as root (mounts, runc)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored (&)
    peers: dict[str, _peers.Peer] = {}
    results: dict[str, dict[str, Any]] = {}
    floor: dict[str, Any] | None = None
    cold: dict[str, dict[str, Any]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="pcd-bench-lifecycle-", dir=args.tmpdir))
    filesystems = contextlib.ExitStack()
    try:
        layer = _lifecycle_host.busybox_layer(scratch)
        spec = _lifecycle_host.default_spec(scratch, _lifecycle_worker.NAMESPACE)
        root, made = filesystems.enter_context(_scratch_fs.scratch_fs(args.fs, scratch))
        fs = f"{filesystem(root)}; {made}"
        for name in names:
            print(f"[bench] starting {name}", file=sys.stderr)
            peers[name] = PEERS[name](root)
        for name, peer in peers.items():
            done = subprocess.run(peer.cli_version, capture_output=True, text=True)
            print(f"[bench] {name}: image, sequential, concurrent, memory", file=sys.stderr)
            results[name] = run_client(peer, scratch / "layer.json", spec, args)
            results[name]["server"] = " ".join((done.stdout or done.stderr).split())
            if errors := results[name]["cleanup_errors"]:
                print(f"[bench] {name}: cleanup errors: {errors}", file=sys.stderr)
        print("[bench] shim process cold start", file=sys.stderr)
        cold = _lifecycle_host.shim_cold_start()
        if not args.no_floor:
            print("[bench] runc run floor", file=sys.stderr)
            floor = _lifecycle_host.runc_floor(root, layer, spec, args.runs, args.warmup)
    except (_peers.BenchError, _scratch_fs.ScratchError, RuntimeError) as exc:
        print(f"bench/lifecycle.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/lifecycle.py: interrupted; stopping the daemons", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for peer in peers.values():
            _stop(peer)
        parents = [_lifecycle_worker.NAMESPACE, _lifecycle_host.FLOOR_CGROUP_PARENT]
        _lifecycle_host.remove_cgroups(parents)
        filesystems.close()
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarize(results, floor, cold)
    report = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "filesystem": fs,
            "runc": floor["runc"] if floor else None,
            "servers": {name: r.get("server") for name, r in results.items()},
            "clients": {name: r.get("client") for name, r in results.items()},
            "note": "lifecycle = Prepare..Snapshots.Remove of `true` (containerd's default "
            "spec, no stdio) on overlayfs; runc_run = plain `runc run` of the same spec on a "
            "directory; ratios pycontainerd/containerd",
        },
        "image": {k: v for k, v in layer.items() if k != "path"},
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "summary": summary,
        "results": results,
        "runc_run": floor,
    }
    print(f"filesystem of both daemons' roots: {fs}")
    print(
        f"sequential: {args.runs} lifecycles after {args.warmup}; concurrent: "
        f"{args.concurrent_total} over {args.concurrency} threads; shims: {args.memory_tasks}"
    )
    print(table(summary))
    _peers.write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
