"""SIGKILL the daemon and shims at random points; nothing that must hold breaks.

Bounded for CI (each test cycles through its kill points, at least once each,
within its share of the suite's budget); ``bench/chaos.py`` runs the same
loop for as many kill points as asked.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.integration.daemon import DaemonProcess

from .harness import DAEMON_POINTS, SHIM_POINTS, Chaos, KillPoint

ROUNDS = 4
"""Times each test goes through its kill points (if its budget allows)."""


def _run(
    daemon: DaemonProcess,
    image_ref: str,
    seed: int,
    budget: float,
    points: Sequence[KillPoint],
) -> None:
    chaos = Chaos(daemon, image_ref, seed, log=print)
    chaos.setup()
    chaos.run(points, kills=ROUNDS * len(points), budget=budget, cycle=True)
    chaos.cleanup()
    report = chaos.report
    print(report.summary())
    if report.violations or set(report.kills) != {str(p) for p in points}:
        pytest.fail(report.summary(), pytrace=False)  # every violation, untruncated


def test_daemon_killed_during_task_operations(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    points = [p for p in DAEMON_POINTS if p.op not in ("pull", "write")]
    _run(daemon, image_ref, seed, budget, points)


def test_shims_killed_during_task_operations(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    _run(daemon, image_ref, seed, budget, SHIM_POINTS)


def test_daemon_killed_during_pulls_and_content_writes(
    daemon: DaemonProcess, image_ref: str, seed: int, budget: float
) -> None:
    points = [p for p in DAEMON_POINTS if p.op in ("pull", "write")]
    _run(daemon, image_ref, seed, budget, points)
