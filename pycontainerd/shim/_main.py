"""The shim's command line, shaped like containerd's shim CLI.

::

    python -m pycontainerd.shim -namespace NS -id ID -address DAEMON_SOCK [-debug] start
    python -m pycontainerd.shim -namespace NS -id ID [-bundle PATH] delete
    python -m pycontainerd.shim -cmdline-room SPACES zygote   # the fork server (below)

``start`` (cwd = the bundle) listens on ``<socket-dir>/<sha256>`` (by default
``/run/pycontainerd/s``; the daemon's shims use ``<state>/s``),
writes ``address`` in the bundle atomically, starts the serving shim in a new
session (the listener as fd 3, stdio to ``shim.log``), prints the address and
exits: the serving shim is re-parented and outlives whoever started it. The
daemon does the same in-process (``runtime.start_shim``, through ``_launch``)
and runs ``serve`` directly: one interpreter start per task instead of two.
``delete`` is the cleanup after a dead shim: ``runc delete --force`` (it kills
what is left of the container and removes its cgroups; what runc has no state
for, a create cut short, is killed and removed through the container's own
cgroups), unmount the rootfs,
remove the dead shim's socket, print the delete result as JSON: the recorded
exit when there is one, else 128 + SIGKILL now, as containerd's runc shim
answers, recorded in the bundle so that a second ``delete`` answers the same.

``zygote`` is the shim fork server: one pre-imported process that forks every
serving shim of a daemon (``runtime``'s ``ForkServer``). On fd 3, a
``SOCK_SEQPACKET`` socket, it takes one request per task: the ``serve`` flags
(NUL-separated) with the task's listener and ``shim.log`` as ``SCM_RIGHTS``. It
forks (about a millisecond, against some 40 ms for a fresh interpreter) and
answers the child's pid as ASCII digits, or ``error: <reason>``. The child
makes a session of its own, takes the listener as fd 3, ``/dev/null`` as stdin
and the log as stdout and stderr, shows its ``serve`` command line and runs
:func:`serve`, exactly as an exec'd ``serve``. The fork server is
single-threaded (a forked thread-holding process may deadlock) and ignores
``SIGCHLD``: its children are reaped by the kernel while it lives and
re-parented to init or the subreaper when it dies; they never depend on it. It
exits when the daemon's end of the socket closes (the daemon died).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback

import msgpack

from ._cgroups import remove_cgroups
from ._launch import (
    CONTROL_FD,
    LISTEN_FD,
    MAX_REQUEST,
    SOCKET_DIR,
    UsageError,
    alive,
    launch_serve,
    set_cmdline,
)
from ._process import read_exit_file, write_exit_record
from ._reaper import Reaper, set_child_subreaper
from ._rpc import Publisher, Server, log
from ._runc import Runc, RuntimeError_
from ._service import OPTIONS_FILE, TaskService

_MNT_DETACH = 2

_FLAGS = {"namespace", "id", "address", "bundle", "publish-binary", "socket-dir", "cmdline-room"}


def parse_args(argv: list[str]) -> tuple[dict[str, str], bool, str]:
    """``(flags, debug, action)`` of the shim's command line."""
    flags: dict[str, str] = {}
    debug = False
    action = ""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.lstrip("-").partition("=")
            if name == "debug":
                debug = True
            elif name in _FLAGS:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag -{name} needs a value")
                    value = argv[i]
                flags[name] = value
            else:
                raise UsageError(f"unknown flag {arg}")
        elif not action:
            action = arg
        else:
            raise UsageError(f"unexpected argument {arg!r}")
        i += 1
    if action not in ("start", "delete", "serve", "zygote"):
        raise UsageError("the action is one of start, delete, serve, zygote")
    for required in ("namespace", "id") if action != "zygote" else ():
        if not flags.get(required):
            raise UsageError(f"-{required} is required")
    return flags, debug, action


def start(flags: dict[str, str], debug: bool) -> int:
    bundle = flags.get("bundle") or os.getcwd()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and p != bundle)
    address, _ = launch_serve(
        [sys.executable, "-S", "-P", "-m", "pycontainerd.shim"],
        env,
        bundle=bundle,
        namespace=flags["namespace"],
        id=flags["id"],
        address=flags.get("address", ""),
        socket_dir=flags.get("socket-dir", ""),
        debug=debug,
    )
    print(address, flush=True)  # the serving shim is left to init (or the subreaper)
    return 0


def serve(flags: dict[str, str], debug: bool) -> int:
    bundle = flags.get("bundle") or os.getcwd()
    os.chdir(bundle)  # a launcher's posix_spawn cannot set it
    socket_dir = flags.get("socket-dir") or SOCKET_DIR
    listener = socket.socket(fileno=LISTEN_FD)
    os.set_inheritable(LISTEN_FD, False)
    path = listener.getsockname()
    set_child_subreaper()
    publisher = Publisher(flags.get("address", ""), flags["namespace"])
    service = TaskService(flags["namespace"], flags["id"], bundle, publisher, socket_dir)
    wakeup = service.reaper.install()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    server = Server(listener, service.handlers(), blocking=frozenset({"wait"}), debug=debug)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if debug:
        log(f"serving {flags['namespace']}/{flags['id']} on {path} (pid {os.getpid()})")
    while not service.shutdown_requested.is_set():
        ready, _, _ = select.select([wakeup], [], [], 0.25)
        if ready:
            service.reaper.drain_wakeup()
        service.reaper.reap()
    time.sleep(0.05)  # let the shutdown answer leave
    publisher.flush(2.0)
    listener.close()
    if isinstance(path, str) and path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if debug:
        log("shutdown")
    return 0


def _remove_dead_socket(bundle: str) -> None:
    """Remove the socket of the bundle's shim if nothing serves it any more."""
    try:
        with open(os.path.join(bundle, "address")) as f:
            path = f.read().strip().removeprefix("unix://")
    except OSError:
        return
    if path and os.path.exists(path) and not alive(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _own_cgroups(bundle: str, id: str) -> str:
    """The container's ``linux.cgroupsPath`` if it is the container's own (its last
    component is the container's id, as the default ``/<namespace>/<id>``): a
    cgroup a spec shares with others is never emptied by a cleanup."""
    import json

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            path = json.loads(f.read()).get("linux", {}).get("cgroupsPath", "")
    except (OSError, ValueError, AttributeError):
        return ""
    if not isinstance(path, str) or ":" in path:  # systemd's slice:prefix:name
        return ""
    return path if path.rstrip("/").rsplit("/", 1)[-1] == id else ""


def delete(flags: dict[str, str]) -> int:
    bundle = flags.get("bundle") or os.getcwd()
    id = flags["id"]
    try:
        with open(os.path.join(bundle, OPTIONS_FILE), "rb") as f:
            options = msgpack.unpackb(f.read())
    except (OSError, ValueError, msgpack.UnpackException):
        options = {}
    if not isinstance(options, dict):
        options = {}
    runc = Runc(
        Reaper(lambda pid, status: None),
        bundle,
        binary=str(options.get("binary_name") or "runc"),
        root=str(options.get("root") or f"/run/pycontainerd/runc/{flags['namespace']}"),
    )
    try:
        runc.delete(id, force=True)
    except RuntimeError_ as exc:
        if "not exist" not in exc.message:
            log(f"delete {id}: {exc.message}")
    cgroups = _own_cgroups(bundle, id)
    if cgroups:  # what runc had no state for (killed inside its create) dies here
        for left in remove_cgroups(cgroups):
            log(f"delete {id}: cgroup {left} stays")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(os.path.join(bundle, "rootfs").encode(), _MNT_DETACH)
    _remove_dead_socket(bundle)
    record = read_exit_file(bundle)
    if record is None:
        try:
            with open(os.path.join(bundle, "init.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = 0
        record = {
            "container_id": id,
            "id": id,
            "exec_id": "",
            "pid": pid,
            "exit_status": 128 + signal.SIGKILL,
            "exited_at": time.time_ns(),
        }
        # recorded: a second cleanup (the daemon died before it removed the
        # bundle) answers this same exit, which is then published once
        try:
            write_exit_record(bundle, record)
        except OSError as exc:
            log(f"delete {id}: cannot record the exit: {exc}")
    result = {k: record[k] for k in ("pid", "exit_status", "exited_at")}
    print("{" + ", ".join(f'"{k}": {int(v)}' for k, v in result.items()) + "}", flush=True)
    return 0


def _child(ctl: socket.socket, args: list[str], listen_fd: int, log_fd: int) -> int:
    ctl.close()
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    # every source is above 3 (0-2 are open and 3 was the control socket)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.dup2(listen_fd, LISTEN_FD)
    for fd in {null, log_fd, listen_fd} - {0, 1, 2, LISTEN_FD}:
        os.close(fd)
    flags, debug, action = parse_args(args)
    if action != "serve":
        raise UsageError(f"the fork server runs serve, not {action}")
    set_cmdline([*_command(), *args])
    return serve(flags, debug)


def _command() -> list[str]:
    """This interpreter's shim command (``python -S -P -m pycontainerd.shim``)."""
    return [sys.executable, *sys.orig_argv[1 : sys.orig_argv.index("-m") + 2]]


def _fork(ctl: socket.socket, args: list[str], listen_fd: int, log_fd: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = _child(ctl, args, listen_fd, log_fd)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def zygote(control_fd: int = CONTROL_FD) -> int:
    """The fork server: serve fork requests on ``control_fd`` until its peer closes.

    See the module's notes; the exit status.
    """
    ctl = socket.socket(fileno=control_fd)
    os.set_inheritable(control_fd, False)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the forked shims
    while True:
        msg, fds, _, _ = socket.recv_fds(ctl, MAX_REQUEST, 2)
        if not msg and not fds:
            return 0  # the daemon is gone
        try:
            if len(fds) != 2:
                reply = f"error: {len(fds)} fds, want the listener and the log"
            else:
                reply = str(_fork(ctl, msg.decode().split("\0"), fds[0], fds[1]))
        except (OSError, UnicodeDecodeError) as exc:
            reply = f"error: {exc}"
        finally:
            for fd in fds:
                os.close(fd)
        try:
            ctl.send(reply.encode())
        except OSError:
            return 0  # the daemon is gone


def main(argv: list[str] | None = None) -> int:
    """Run the shim command line; the process exit status."""
    try:
        flags, debug, action = parse_args(sys.argv[1:] if argv is None else argv)
        if action == "start":
            return start(flags, debug)
        if action == "delete":
            return delete(flags)
        if action == "zygote":
            return zygote()
        return serve(flags, debug)
    except UsageError as exc:
        print(f"pycontainerd shim: {exc}", file=sys.stderr)
        return 2
