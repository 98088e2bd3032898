"""/proc sampling, statistics and the plain-text table of ``bench/pull.py``.

:func:`peak_rss` polls the RSS of a daemon and all its descendants (pycontainerd's
gunzip processes, containerd's ``unpigz``) every 10 ms while a block runs, and
reads the daemon's own ``VmHWM`` at the end; :func:`cpu_with_children_s` is its
CPU with the children it has waited for. :func:`summarize` turns each side's
runs into best and median seconds of the pull (resolve + fetch + unpack) and of
the push, the peak RSS, the daemon's CPU and what the registry saw of the
pushes; then the ratios of each pycontainerd side to containerd, with issue 6's
target (pull at most :data:`TARGET` times containerd's wall time) and goal
(:data:`GOAL`). :func:`table` prints it.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import _peers

TARGET = 1.0
GOAL = 0.6
BASELINE = "containerd"
HEADLINE = "pycontainerd"
ORDER = ("pycontainerd", "pycontainerd-client", "containerd")
POLL_S = 0.01


# --------------------------------------------------------------------------- /proc
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def tree_rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB (0 when gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _peers.rss_kb(p) or 0
        todo.extend(_children(p))
    return total


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_with_children_s(pid: int) -> float:
    """User + system CPU of ``pid`` and its children it has waited for, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / _peers.CLK_TCK


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[dict[str, int]]:
    """Poll :func:`tree_rss_kb` of ``pid`` every 10 ms while the block runs.

    Yields:
        A dict filled when the block ends: ``tree_peak_kb`` (the largest sum
        seen), ``samples`` and ``daemon_hwm_kb`` (the daemon's own ``VmHWM``).
    """
    out: dict[str, int] = {"tree_peak_kb": 0, "samples": 0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            out["tree_peak_kb"] = max(out["tree_peak_kb"], tree_rss_kb(pid))
            out["samples"] += 1
            stop.wait(POLL_S)

    thread = threading.Thread(target=poll, name="rss-poll", daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["daemon_hwm_kb"] = status_kb(pid, "VmHWM") or 0


# --------------------------------------------------------------------------- statistics
def _times(runs: list[dict[str, Any]], phase: str) -> dict[str, float]:
    walls = [run[phase]["wall_s"] for run in runs]
    return {
        "best_s": round(min(walls), 3),
        "median_s": round(statistics.median(walls), 3),
        "cpu_s_median": round(statistics.median(run[phase]["daemon_cpu_s"] for run in runs), 2),
    }


def _side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    pull_rss = [run["pull"]["rss_tree_peak_kb"] for run in runs]
    hwm = [run["pull"]["rss_daemon_hwm_kb"] for run in runs]
    registry: Counter[str] = Counter()
    for run in runs:
        registry.update(run["push"]["registry"])
    return {
        "pull": _times(runs, "pull"),
        "push": _times(runs, "push"),
        "pull_rss_peak_mib_median": round(statistics.median(pull_rss) / 1024, 1),
        "pull_rss_peak_mib_max": round(max(pull_rss) / 1024, 1),
        "daemon_hwm_mib_max": round(max(hwm) / 1024, 1),
        "push_registry_per_run": {k: v / len(runs) for k, v in sorted(registry.items())},
    }


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each side's figures, and every pycontainerd side's ratios to containerd.

    Returns:
        ``{side: {...}, "ratios": {side: {"pull_best": r, ...}}}``; a ratio's
        ``*_target_met``/``*_goal_met`` are set for the pulls.
    """
    out: dict[str, Any] = {side: _side(r["runs"]) for side, r in results.items()}
    ratios: dict[str, dict[str, Any]] = {}
    if BASELINE in out:
        base = out[BASELINE]
        for side in results:
            if side == BASELINE:
                continue
            r: dict[str, Any] = {}
            for phase in ("pull", "push"):
                for key in ("best", "median"):
                    ratio = round(out[side][phase][f"{key}_s"] / base[phase][f"{key}_s"], 3)
                    r[f"{phase}_{key}"] = ratio
                    if phase == "pull":
                        r[f"pull_{key}_target_met"] = ratio <= TARGET
                        r[f"pull_{key}_goal_met"] = ratio <= GOAL
            r["pull_rss_peak"] = round(
                out[side]["pull_rss_peak_mib_max"] / base["pull_rss_peak_mib_max"], 2
            )
            ratios[side] = r
    out["ratios"] = ratios
    return out


def table(summary: dict[str, Any]) -> str:
    """The plain-text table of :func:`summarize`, with the verdicts under it."""
    sides = [s for s in ORDER if s in summary]
    head = f"{'metric':<30}" + "".join(f"{s:>21}" for s in sides)
    lines = [head, "-" * len(head)]

    def row(label: str, cell: Any) -> None:
        lines.append(f"{label:<30}" + "".join(f"{cell(summary[s]):>21}" for s in sides))

    row("pull+unpack s, best", lambda x: f"{x['pull']['best_s']:.2f}")
    row("pull+unpack s, median", lambda x: f"{x['pull']['median_s']:.2f}")
    row("daemon CPU s (pull), median", lambda x: f"{x['pull']['cpu_s_median']:.2f}")
    row("peak RSS MiB (pull), median", lambda x: f"{x['pull_rss_peak_mib_median']:.1f}")
    row("peak RSS MiB (pull), max", lambda x: f"{x['pull_rss_peak_mib_max']:.1f}")
    row("daemon VmHWM MiB, max", lambda x: f"{x['daemon_hwm_mib_max']:.1f}")
    row("push s, best", lambda x: f"{x['push']['best_s']:.2f}")
    row("push s, median", lambda x: f"{x['push']['median_s']:.2f}")
    row("daemon CPU s (push), median", lambda x: f"{x['push']['cpu_s_median']:.2f}")
    row(
        "push: uploaded/mounted/exists",
        lambda x: "/".join(
            f"{x['push_registry_per_run'].get(k, 0):g}" for k in ("uploaded", "mounted", "exists")
        ),
    )
    for side, r in summary.get("ratios", {}).items():
        name = f"{side}/{BASELINE}"
        lines.append(
            f"{name}: pull {r['pull_best']:.2f}x best, {r['pull_median']:.2f}x median; "
            f"push {r['push_best']:.2f}x best, {r['push_median']:.2f}x median; "
            f"peak RSS {r['pull_rss_peak']:.2f}x"
        )
        for key in ("best", "median"):
            target = "met" if r[f"pull_{key}_target_met"] else "NOT met"
            goal = "met" if r[f"pull_{key}_goal_met"] else "not met"
            star = " (headline)" if side == HEADLINE else ""
            lines.append(
                f"  pull {key}{star}: target <= {TARGET:.1f}x {target}; "
                f"goal <= {GOAL:.1f}x {goal} (ratio {r[f'pull_{key}']:.2f})"
            )
    return "\n".join(lines)
