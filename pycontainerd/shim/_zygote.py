"""The shim fork server ("zygote"): one pre-imported process forks every serving shim.

::

    python -S -P -m pycontainerd.shim -cmdline-room "<2 KiB of spaces>" zygote  # fd 3

A daemon starts one zygote (``runtime``'s ``ForkServer``) and hands it one
request per task: the ``serve`` flags (``-namespace NS -id ID ... serve``,
NUL-separated) with the task's listening socket and its ``shim.log`` as
``SCM_RIGHTS``. The zygote has imported the whole shim once; it forks (about a
millisecond, against some 40 ms for a fresh interpreter) and answers the
child's pid as ASCII digits, or ``error: <reason>``. The child makes a session
of its own, takes the listener as fd 3, ``/dev/null`` as stdin and the log as
stdout and stderr, shows the ``serve`` command line in ``/proc/<pid>/cmdline``
(where ``ps``, the daemon's tools and operators look for shims: written over
the fork server's, which is started with room for it) and runs
:func:`~pycontainerd.shim._main.serve`, exactly as an exec'd ``serve``.

The zygote is single-threaded (a forked thread-holding process may deadlock)
and ignores ``SIGCHLD``: its children are reaped by the kernel while it lives,
and re-parented to init or the subreaper when it dies; they never depend on it.
It exits when the daemon's end of the socket closes (the daemon died).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import traceback

from ._launch import LISTEN_FD, UsageError
from ._main import parse_args, serve

CONTROL_FD = 3
MAX_REQUEST = 65536
CMDLINE_ROOM = 2048
"""Bytes of ``-cmdline-room`` padding the fork server is started with: the
command line a forked shim shows is written over the fork server's own."""


def set_cmdline(argv: list[str]) -> bool:
    """Write ``argv`` over this process's original command line, in place.

    ``/proc/<pid>/cmdline`` shows the bytes between the kernel's ``arg_start``
    and ``arg_end``; they are overwritten (truncated to that room, the rest
    zeroed), as ``setproctitle`` does, without any capability. Python keeps its
    own copy of its arguments (``sys.orig_argv``), which is left as it was.

    Returns:
        Whether it was written (``/proc`` unreadable: it was not).
    """
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49: arg_start, arg_end
    except (OSError, IndexError, ValueError):
        return False
    room = end - start
    if room <= 1:
        return False
    data = b"\0".join(a.encode() for a in argv)[: room - 1]
    ctypes.memmove(start, data.ljust(room, b"\0"), room)
    return True


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


def run(control_fd: int = CONTROL_FD) -> int:
    """Serve fork requests on ``control_fd`` until its peer closes; the exit status."""
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
        ctl.send(reply.encode())
