"""The arguments of ``pyctr run``, ``containers`` and ``tasks`` (kept apart from the
commands so that building the parser imports nothing heavy)."""

from __future__ import annotations

import argparse
import os
from typing import Any

SNAPSHOTTER_ENV = "PYCONTAINERD_SNAPSHOTTER"


def _container_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``run`` and ``containers create`` (ctr's)."""
    p.add_argument("-t", "--tty", action="store_true", help="allocate a TTY for the container")
    p.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="an environment variable"
    )
    p.add_argument("--env-file", default="", help="environment variables from a file")
    p.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="SPEC",
        help="type=bind,src=/host,dst=/ctr,options=rbind:ro",
    )
    p.add_argument("--net-host", action="store_true", help="use the host's network namespace")
    p.add_argument("--memory-limit", type=int, default=0, metavar="BYTES", help="memory limit")
    p.add_argument("--cpus", type=float, default=0.0, help="CPUs (CFS quota over 100ms)")
    p.add_argument("--user", "-u", default="", help="uid[:gid] or a user name of the image")
    p.add_argument("--cwd", default="", help="the working directory")
    p.add_argument("--read-only", action="store_true", help="a read-only rootfs")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="a label")
    p.add_argument(
        "--snapshotter",
        default=os.environ.get(SNAPSHOTTER_ENV) or "overlayfs",
        help=f"the snapshotter (${SNAPSHOTTER_ENV}, default overlayfs)",
    )
    p.add_argument("--runtime", default="io.containerd.runc.v2", help="the runtime name")
    p.add_argument("--runc-binary", default="", help="a runc-compatible binary")
    p.add_argument("image")
    p.add_argument("id")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")


def add_parsers(sub: Any) -> None:
    """Register ``run``, ``containers`` (``c``) and ``tasks`` (``t``) on the subparsers."""
    run = sub.add_parser("run", help="run a container (IMAGE ID [ARGS...])")
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument("-d", "--detach", action="store_true", help="do not wait for the task")
    _container_options(run)

    c = sub.add_parser("containers", aliases=["container", "c"], help="manage containers")
    c_sub = c.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = c_sub.add_parser("ls", aliases=["list"], help="list containers")
    ls.add_argument("-q", "--quiet", action="store_true", help="ids only")
    ls.add_argument("filters", nargs="*", metavar="FILTER")
    _container_options(c_sub.add_parser("create", help="create a container IMAGE ID [ARGS...]"))
    rm = c_sub.add_parser("rm", aliases=["delete", "del", "remove"], help="delete containers")
    rm.add_argument("--keep-snapshot", action="store_true", help="keep the snapshot")
    rm.add_argument("ids", nargs="+", metavar="ID")
    info = c_sub.add_parser("info", help="a container as JSON")
    info.add_argument("--spec", action="store_true", help="only its OCI spec")
    info.add_argument("id")
    lb = c_sub.add_parser("label", help="set labels (KEY= removes one)")
    lb.add_argument("id")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")

    t = sub.add_parser("tasks", aliases=["task", "t"], help="manage tasks")
    t_sub = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    t_sub.add_parser("ls", aliases=["list"], help="list tasks")
    st = t_sub.add_parser("start", help="start a container's task and wait for it")
    st.add_argument("-d", "--detach", action="store_true", help="do not wait")
    st.add_argument("id")
    k = t_sub.add_parser("kill", help="signal a task")
    k.add_argument("-s", "--signal", default="SIGTERM", help="name or number (default SIGTERM)")
    k.add_argument("-a", "--all", action="store_true", help="every process of the task")
    k.add_argument("--exec-id", default="", help="an exec'd process")
    k.add_argument("id")
    for name, what in (
        ("ps", "the pids of a task"),
        ("pause", "pause a task"),
        ("resume", "resume a task"),
        ("attach", "attach to a task's stdio"),
        ("metrics", "a task's cgroup statistics"),
    ):
        t_sub.add_parser(name, help=what).add_argument("id")
    rm = t_sub.add_parser("rm", aliases=["delete", "del", "remove"], help="delete stopped tasks")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running task first")
    rm.add_argument("--exec-id", default="", help="an exec'd process")
    rm.add_argument("ids", nargs="+", metavar="ID")
    ex = t_sub.add_parser("exec", help="run a process in a task (CONTAINER ARGS...)")
    ex.add_argument("--exec-id", required=True, help="the process's id")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a TTY")
    ex.add_argument("-d", "--detach", action="store_true", help="do not wait")
    ex.add_argument("--cwd", default="", help="the working directory")
    ex.add_argument("--env", action="append", default=[], metavar="K=V")
    ex.add_argument("--user", "-u", default="", help="uid[:gid]")
    ex.add_argument("id", metavar="CONTAINER")
    ex.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
