"""Statistics and the plain-text table of ``bench/pull.py``.

:func:`summarize` turns each side's runs into best and median seconds of the
pull (resolve + fetch + unpack) and of the push, the peak RSS of the daemon
with its children, the daemon's CPU, and what the registry saw of the pushes;
then the ratios of each pycontainerd side to containerd, with issue 6's target
(pull at most :data:`TARGET` times containerd's wall time) and goal
(:data:`GOAL`). :func:`table` prints it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

TARGET = 1.0
GOAL = 0.6
BASELINE = "containerd"
HEADLINE = "pycontainerd"
ORDER = ("pycontainerd", "pycontainerd-client", "containerd")


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
