"""Chaos, the long run: SIGKILL the daemon and task shims at ``--kills`` random points.

The loop of ``tests/chaos`` (:mod:`tests.chaos.harness`) without its CI
bounds: one daemon on a temporary root, a local ``docker-registry`` with the
multi-layer chaos image, and ``--kills`` kill points drawn at random (seeded)
from every kind — the daemon during a task's create, start, exec, kill or
delete, a pull or a content write; a task's shim during create, start, exec,
kill or delete. After each kill the daemon is restarted (if it was the
target) and every invariant is checked: committed blobs match their digests,
no image points at a half-unpacked chain, no container at a missing snapshot,
running tasks still run and are listed, every exit is journalled exactly
once, a dead shim's task is cleaned up. At the end everything is deleted and
nothing may be left behind (mounts, shims, FIFO directories, cgroups).

Prints the kill points by kind (and how many landed while the operation was
in flight), the invariant violations (0 expected) and the run time; exits 1
on any violation. ``--findings`` appends each violation to a Markdown file as
it is found.

    .venv/bin/python bench/chaos.py --kills 200 [--seed N] [--targets daemon,shim]
        [--budget SECONDS] [--findings PATH] [--tmpdir /tmp] [--json out.json]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import _peers

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kill points to run")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's choices")
    parser.add_argument(
        "--targets", default="daemon,shim", help="what to kill: daemon, shim or both"
    )
    parser.add_argument("--budget", type=float, default=None, help="stop after SECONDS")
    parser.add_argument("--findings", default=None, help="append violations to this file")
    parser.add_argument("--tmpdir", default="/tmp", help="where the run's directories go")
    parser.add_argument("--json", default=None, help="write the report as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no line per kill point")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))  # the harness lives with the tests
    from tests.chaos.harness import KILL_POINTS, Chaos, push_chaos_image
    from tests.chaos.invariants import Violation
    from tests.integration.daemon import DaemonProcess
    from tests.integration.remotes.registry import RegistryProcess

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    targets = set(args.targets.split(","))
    points = [p for p in KILL_POINTS if p.target in targets]
    if not points:
        parser.error(f"--targets {args.targets!r}: choose from daemon, shim")
    print(f"chaos: seed {seed}, {args.kills} kill points from {len(points)} kinds", flush=True)

    findings = Path(args.findings) if args.findings else None
    if findings is not None:
        with findings.open("a") as f:
            f.write(
                f"\n## bench/chaos.py --kills {args.kills} --seed {seed} --targets {args.targets}"
                f" (started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
            )

    def record(v: Violation) -> None:
        if findings is not None:
            with findings.open("a") as f:
                f.write(f"- {v}\n")

    def log(line: str) -> None:
        if not args.quiet and "delay" not in line:
            print(line, flush=True)

    base = Path(tempfile.mkdtemp(prefix="chaos", dir=args.tmpdir))  # short: socket paths
    registry = None
    daemon = None
    try:
        (base / "registry").mkdir()
        registry = RegistryProcess(base / "registry")
        image_ref = push_chaos_image(registry.host)
        (base / "d").mkdir()
        daemon = DaemonProcess(base / "d").start()
        chaos = Chaos(daemon, image_ref, seed, on_violation=record, log=log)
        started = time.monotonic()
        chaos.setup()
        chaos.run(points, args.kills, args.budget)
        chaos.cleanup()
        report = chaos.report
        report.seconds = time.monotonic() - started
        print(report.summary(), flush=True)
        if findings is not None:
            with findings.open("a") as f:
                kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kills.items()))
                f.write(
                    f"- result: {sum(report.kills.values())} kill points ({kinds}), "
                    f"{len(report.violations)} violations, {report.seconds:.0f} s\n"
                )
        _peers.write_report(
            args.json,
            {
                "seed": seed,
                "kills": dict(report.kills),
                "in_flight": dict(report.in_flight),
                "violations": [str(v) for v in report.violations],
                "seconds": round(report.seconds, 1),
            },
        )
        return 1 if report.violations else 0
    finally:
        if daemon is not None:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.stop()
            daemon.reap()
        if registry is not None:
            registry.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
