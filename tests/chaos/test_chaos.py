"""SIGKILL the daemon and shims at random points; nothing that must hold breaks.

Bounded for CI (each test cycles through its kill points, at least once each,
within its share of the suite's budget); ``bench/chaos.py`` runs the same
loop for as many kill points as asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.integration.daemon import DaemonProcess

from .harness import DAEMON_POINTS, SHIM_POINTS, Chaos, KillPoint

ROUNDS = 2
"""Times each test goes through its kill points."""


def _run(
    daemon: DaemonProcess,
    image_ref: str,
    seed: int,
    budget: float,
    points: Sequence[KillPoint],
    *,
    with_tasks: bool,
) -> None:
    chaos = Chaos(daemon, image_ref, seed, log=print)
    if with_tasks:
        chaos.setup()
    chaos.run(points, kills=ROUNDS * len(points), budget=budget, cycle=True)
    chaos.cleanup()
    report = chaos.report
    print(report.summary())
    assert report.violations == [], report.summary()
    assert set(report.kills) == {str(p) for p in points}, report.summary()


def test_daemon_killed_during_task_operations(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    points = [p for p in DAEMON_POINTS if p.op not in ("pull", "write")]
    _run(daemon, image_ref, seed, budget, points, with_tasks=True)


def test_shims_killed_during_task_operations(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    _run(daemon, image_ref, seed, budget, SHIM_POINTS, with_tasks=True)


def test_daemon_killed_during_pulls_and_content_writes(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    points = [p for p in DAEMON_POINTS if p.op in ("pull", "write")]
    _run(daemon, image_ref, seed, budget, points * 2, with_tasks=False)
