"""``pyctr tasks``, as ``ctr tasks``: ``ls`` prints ``TASK PID STATUS``."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from pycontainerd.api import convert, errdefs
from pycontainerd.api import tasks as api
from pycontainerd.client import Client, Process, Task, cio

from ._commands import Output
from ._run import raw_terminal, resize, signals_blocked, task_io, wait_forwarding


def parse_signal(text: str) -> int:
    """``SIGKILL``, ``KILL`` or ``9``.

    Raises:
        errdefs.InvalidArgument: no such signal.
    """
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise errdefs.InvalidArgument(f"unknown signal {text!r}") from None


def _flatten(prefix: str, value: Any, rows: list[list[str]]) -> None:
    if isinstance(value, dict):
        for k, v in sorted(value.items()):
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, rows)
    else:
        rows.append([prefix, str(value)])


def _ls(client: Client, out: Output) -> None:
    resp = client.conn.call("tasks.list", {}, namespace=client.namespace)
    found = convert.structure(resp, api.ListTasksResponse).tasks
    if out.json_mode:
        out.json(found)
        return
    rows = [[t.container_id, str(t.pid), t.status.upper()] for t in found]
    out.table(["TASK", "PID", "STATUS"], rows)


def _start(client: Client, args: argparse.Namespace) -> int:
    ctr = client.load_container(args.id)
    tty = bool(ctr.spec().get("process", {}).get("terminal"))
    with signals_blocked():
        task = ctr.new_task(task_io(args.detach, tty))
        if args.detach:
            task.start()
            return 0
        try:
            with raw_terminal(tty):
                if tty:
                    resize(task)
                task.start()
                status = wait_forwarding(task, tty)
        finally:
            try:
                task.delete(kill=True)
            finally:
                if task.io is not None:
                    task.io.close()
    return status.code


def _exec(client: Client, args: argparse.Namespace) -> int:
    ctr = client.load_container(args.id)
    task = ctr.task()
    process: dict[str, Any] = dict(ctr.spec().get("process") or {})
    process["args"] = list(args.args)
    process["terminal"] = args.tty
    if args.cwd:
        process["cwd"] = args.cwd
    if args.env:
        process["env"] = [*process.get("env", []), *args.env]
    if args.user:
        uid, _, gid = args.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if not args.args:
        raise errdefs.InvalidArgument("exec: a command is required")
    with signals_blocked():
        proc = task.exec(args.exec_id, process, task_io(args.detach, args.tty))
        if args.detach:
            proc.start()
            return 0
        try:
            with raw_terminal(args.tty):
                proc.start()
                status = wait_forwarding(proc, args.tty)
        finally:
            try:
                proc.delete()
            finally:
                if proc.io is not None:
                    proc.io.close()
    return status.code


def _attach(client: Client, args: argparse.Namespace) -> int:
    task = Task(client, args.id, None, 0)
    p = task.status()
    config = cio.Config(p.stdin, p.stdout, p.stderr, p.terminal)
    stdin = sys.stdin.buffer if p.stdin else None
    with signals_blocked():
        task.io = cio.attach(config, stdin, sys.stdout.buffer, sys.stderr.buffer)(args.id)
        try:
            with raw_terminal(p.terminal):
                status = wait_forwarding(task, p.terminal)
            task.io.wait(5.0)
        finally:
            task.io.close()
    return status.code


def tasks(client: Client, args: argparse.Namespace, out: Output) -> int:
    action = args.action
    if action in ("ls", "list"):
        _ls(client, out)
    elif action == "start":
        return _start(client, args)
    elif action == "exec":
        return _exec(client, args)
    elif action == "attach":
        return _attach(client, args)
    elif action == "kill":
        Process(client, args.id, args.exec_id, None).kill(parse_signal(args.signal), all=args.all)
    elif action == "ps":
        pids = Task(client, args.id, None, 0).pids()
        if out.json_mode:
            out.json(pids)
        else:
            rows = [[str(p.pid), str(p.info.value) if p.info else "-"] for p in pids]
            out.table(["PID", "INFO"], rows)
    elif action == "pause":
        Task(client, args.id, None, 0).pause()
    elif action == "resume":
        Task(client, args.id, None, 0).resume()
    elif action == "metrics":
        metric = Task(client, args.id, None, 0).metrics()
        if out.json_mode:
            out.json(metric)
        else:
            table: list[list[str]] = []
            _flatten("", metric.data.value if metric.data else {}, table)
            out.table(["METRIC", "VALUE"], table)
    elif action in ("rm", "delete", "del", "remove"):
        for id in args.ids:
            if args.exec_id:
                Process(client, id, args.exec_id, None).delete()
            else:
                Task(client, id, None, 0).delete(kill=args.force)
    return 0


COMMANDS = {"tasks": tasks, "task": tasks, "t": tasks}
