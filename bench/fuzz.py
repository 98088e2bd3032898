"""The wire fuzzer's long run, by hand, as root.

Starts the daemon on a temporary root and state, a probe process calling
``version.version`` in a loop on its own connection, and ``--workers`` clients
that run random cases drawn by hypothesis (``tests/fuzz/strategies.py``: every
method of ``docs/schema.json`` with schema-shaped, wrong, huge and deep params
and random meta; raw frames and broken envelopes; clients that close early)
until ``--requests`` requests were sent. A daemon that exits or hangs is
recorded, counted and restarted, so the run goes on past a violation.

Prints requests sent, per-method counts, the reply-code histogram, probe
latency p50/p99/max, RSS (idle and max) and the number of daemon exits; each
violation as it happens (and appended to ``--findings`` if given).

    .venv/bin/python bench/fuzz.py --requests 100000 [--seed N] [--workers 2]
        [--json out.json] [--findings findings.md] [--source DIR]

``--source DIR`` runs the daemon from another checkout's ``pycontainerd``
(``git archive <commit> pycontainerd | tar -x -C DIR``), e.g. to see what the
fuzzer finds in an older revision.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz import strategies as S  # noqa: E402
from tests.fuzz.harness import Harness, Violation, report  # noqa: E402

CHUNK = 500
"""Cases per hypothesis run (each run seeded from ``--seed`` and its index)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=100_000, help="requests to send (100000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--workers", type=int, default=2, help="concurrent clients (2)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    p.add_argument("--findings", metavar="FILE", help="append violations here as they happen")
    p.add_argument("--source", metavar="DIR", help="run the daemon from DIR/pycontainerd")
    p.add_argument("--tmpdir", default="/tmp", help="where the daemon's root and state go")
    p.add_argument(
        "--replay",
        metavar="FILE",
        help="instead: run the cases in FILE (one repr a line, as violations show them) "
        "one by one on a fresh daemon, with RSS and probe numbers for each",
    )
    return p


def replay(args: argparse.Namespace) -> None:
    lines = [ln.strip() for ln in Path(args.replay).read_text().splitlines() if ln.strip()]
    base = Path(tempfile.mkdtemp(prefix="fz", dir=args.tmpdir))
    h = Harness(base)
    if args.source:
        h.daemon.env["PYTHONPATH"] = str(Path(args.source).resolve())
    h.on_violation.append(_violation_writer(None))
    h.start()
    worker = h.worker()
    try:
        for line in lines:
            case = S.parse_case(line)
            rss, slow = h.daemon.rss(), len(h.stats.probe_slow)
            outcomes = Counter(h.stats.outcomes)
            started = time.monotonic()
            worker.run(case)
            time.sleep(0.2)  # a probe sample or two after it
            print(
                f"{time.monotonic() - started:.2f}s RSS {rss >> 20} -> {h.daemon.rss() >> 20} MiB, "
                f"slow probes {[ms for _, ms, _ in h.stats.probe_slow[slow:]]}, "
                f"exits {h.stats.daemon_exits}, "
                f"replies {dict(h.stats.outcomes - outcomes)}: "
                f"{S.summarize(case, 300)}"
            )
    finally:
        worker.close()
        h.stop()
        shutil.rmtree(base, ignore_errors=True)


def _mix() -> S.Strategy:
    """Mostly ``case()``; now and then a request at the 16 MiB cap."""
    return S.weighted((1000, S.case()), (1, S.over_cap_case()))


def _violation_writer(path: str | None) -> Any:
    lock = threading.Lock()

    def write(v: Violation) -> None:
        line = v.line()
        print(line[:3000], file=sys.stderr, flush=True)
        if path is None:
            return
        with lock, open(path, "a") as f:
            f.write(f"\n- **{v.kind}** (owner: {v.owner}) {v.detail}\n\n  case: `{v.case}`\n")

    return write


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"[fuzz] seed {run_seed} (rerun with --seed {run_seed})", file=sys.stderr)
    base = Path(tempfile.mkdtemp(prefix="fz", dir=args.tmpdir))
    h = Harness(base)
    if args.source:
        source = str(Path(args.source).resolve())
        h.daemon.env["PYTHONPATH"] = source + os.pathsep + h.daemon.env.get("PYTHONPATH", "")
    h.on_violation.append(_violation_writer(args.findings))
    cases: queue.Queue[S.Case | None] = queue.Queue(maxsize=64)
    done = threading.Event()
    start = time.monotonic()
    deadline = start + args.max_seconds if args.max_seconds else None

    def finished() -> bool:
        over = deadline is not None and time.monotonic() > deadline
        return done.is_set() or over or h.stats.requests >= args.requests

    def worker() -> None:
        w = h.worker()
        try:
            while (case := cases.get()) is not None:
                w.run(case)
        finally:
            w.close()

    def progress() -> None:
        while not done.wait(15):
            s = h.stats
            probe = s.probe_summary()
            print(
                f"[fuzz] {time.monotonic() - start:5.0f}s requests {s.requests} "
                f"cases {s.cases} exits {s.daemon_exits} violations {len(h.violations)} "
                f"probe p99 {probe['p99']:.1f} ms max {probe['max']:.1f} ms "
                f"RSS max {s.rss_max >> 20} MiB",
                file=sys.stderr,
                flush=True,
            )

    h.start()
    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    threads.append(threading.Thread(target=progress, daemon=True))
    for t in threads:
        t.start()
    try:
        chunk = 0
        while not finished():

            @seed(run_seed * 1_000_003 + chunk)
            @settings(
                max_examples=CHUNK,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],
            )
            @given(_mix())
            def feed(case: S.Case) -> None:
                if not finished():
                    cases.put(case)

            feed()
            chunk += 1
    except KeyboardInterrupt:
        print("[fuzz] interrupted", file=sys.stderr)
    finally:
        done.set()
        for _ in range(args.workers):
            cases.put(None)
        for t in threads[: args.workers]:
            t.join()
        elapsed = time.monotonic() - start
        rc = h.stop()
    print(report(h, elapsed))
    slow_by_method: Counter[str] = Counter()
    for _, near in h.slow_probe_causes():
        for c in near:
            for name in S.METHODS:
                if f"'{name}'" in c:
                    slow_by_method[name] += 1
    if slow_by_method:
        print("methods in flight during slow probes: " + str(slow_by_method.most_common(10)))
    for v in h.violations:
        print(v.line()[:2000])
    s = h.stats
    result = {
        "seed": run_seed,
        "elapsed_s": elapsed,
        "requests": s.requests,
        "cases": s.cases,
        "frames": s.frames,
        "daemon_exits": s.daemon_exits,
        "daemon_hangs": s.daemon_hangs,
        "daemon_rc_at_stop": rc,
        "per_method": dict(s.per_method),
        "outcomes": dict(s.outcomes),
        "per_method_outcomes": {f"{m} {o}": n for (m, o), n in s.per_method_outcomes.items()},
        "probe_ms": s.probe_summary(),
        "probe_slow": [
            {"ms": ms, "load": load, "beside": near}
            for (_, _, load), (ms, near) in zip(s.probe_slow, h.slow_probe_causes(), strict=True)
        ],
        "rss_idle": s.rss_idle,
        "rss_max": s.rss_max,
        "load_average": os.getloadavg(),
        "violations": [
            {"kind": v.kind, "owner": v.owner, "detail": v.detail, "case": v.case}
            for v in h.violations
        ],
    }
    shutil.rmtree(base, ignore_errors=True)
    return result


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/fuzz.py runs the daemon as root (it mounts, runs runc)")
    args = _parser().parse_args()
    if args.replay:
        replay(args)
        return
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    hard = [v for v in result["violations"] if v["kind"] not in ("internal",)]
    sys.exit(1 if result["daemon_exits"] or hard else 0)


if __name__ == "__main__":
    main()
