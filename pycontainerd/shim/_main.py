"""The shim's command line, shaped like containerd's shim CLI.

::

    python -m pycontainerd.shim -namespace NS -id ID -address DAEMON_SOCK [-debug] start
    python -m pycontainerd.shim -namespace NS -id ID [-bundle PATH] delete

``start`` (cwd = the bundle) listens on ``/run/pycontainerd/s/<sha256>``,
writes ``address`` in the bundle atomically, starts the serving shim in a new
session (the listener as fd 3, stdio to ``shim.log``), prints the address and
exits: the serving shim is re-parented and outlives whoever started it.
``delete`` is the cleanup after a dead shim: ``runc delete --force``, unmount
the rootfs, print the delete result as JSON (the recorded exit when there is
one, else 128 + SIGKILL now, as containerd's runc shim answers).
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

import msgpack

from ._process import read_exit_file
from ._reaper import Reaper, set_child_subreaper
from ._rpc import Publisher, Server, log
from ._runc import Runc, RuntimeError_
from ._service import OPTIONS_FILE, TaskService

SOCKET_DIR = "/run/pycontainerd/s"
_MAX_SOCKET_PATH = 107
_LISTEN_FD = 3
_MNT_DETACH = 2

_FLAGS = {"namespace", "id", "address", "bundle", "publish-binary", "socket-dir"}


class UsageError(Exception):
    pass


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
    if action not in ("start", "delete", "serve"):
        raise UsageError("the action is one of start, delete, serve")
    for required in ("namespace", "id"):
        if not flags.get(required):
            raise UsageError(f"-{required} is required")
    return flags, debug, action


def socket_path(socket_dir: str, address: str, namespace: str, id: str) -> str:
    """``<dir>/<hex sha256(address/namespace/id)>`` (containerd's ``SocketAddress``)."""
    import hashlib  # here: OpenSSL costs the serving shim 4 MiB of RSS

    digest = hashlib.sha256(f"{address}/{namespace}/{id}".encode()).hexdigest()
    return os.path.join(socket_dir, digest)


def _write_atomic(path: str, data: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start(flags: dict[str, str], debug: bool) -> int:
    bundle = flags.get("bundle") or os.getcwd()
    socket_dir = flags.get("socket-dir") or SOCKET_DIR
    path = socket_path(socket_dir, flags.get("address", ""), flags["namespace"], flags["id"])
    if len(path) > _MAX_SOCKET_PATH:
        raise UsageError(f"shim socket path {path!r} is over {_MAX_SOCKET_PATH} bytes")
    address = f"unix://{path}"
    os.makedirs(socket_dir, mode=0o711, exist_ok=True)
    if os.path.exists(path):
        if _alive(path):  # a shim already serves this task: share it
            _write_atomic(os.path.join(bundle, "address"), address)
            print(address, flush=True)
            return 0
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(128)
    _write_atomic(os.path.join(bundle, "address"), address)
    argv = [sys.executable, "-S", "-m", "pycontainerd.shim"]
    for name in ("namespace", "id", "address", "socket-dir"):
        if flags.get(name):
            argv += [f"-{name}", flags[name]]
    argv += ["-bundle", bundle, *(["-debug"] if debug else []), "serve"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and p != bundle)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    logfd = os.open(
        os.path.join(bundle, "shim.log"),
        os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
        0o600,
    )
    actions = [
        (os.POSIX_SPAWN_DUP2, null, 0),
        (os.POSIX_SPAWN_DUP2, logfd, 1),
        (os.POSIX_SPAWN_DUP2, logfd, 2),
        (os.POSIX_SPAWN_DUP2, listener.fileno(), _LISTEN_FD),
    ]
    os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
    os.close(null)
    os.close(logfd)
    listener.close()
    print(address, flush=True)
    return 0


def serve(flags: dict[str, str], debug: bool) -> int:
    bundle = flags.get("bundle") or os.getcwd()
    socket_dir = flags.get("socket-dir") or SOCKET_DIR
    listener = socket.socket(fileno=_LISTEN_FD)
    os.set_inheritable(_LISTEN_FD, False)
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
    if path and os.path.exists(path) and not _alive(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


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
        record = {"pid": pid, "exit_status": 128 + signal.SIGKILL, "exited_at": time.time_ns()}
    result = {k: record[k] for k in ("pid", "exit_status", "exited_at")}
    print("{" + ", ".join(f'"{k}": {int(v)}' for k, v in result.items()) + "}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the shim command line; the process exit status."""
    try:
        flags, debug, action = parse_args(sys.argv[1:] if argv is None else argv)
        if action == "start":
            return start(flags, debug)
        if action == "delete":
            return delete(flags)
        return serve(flags, debug)
    except UsageError as exc:
        print(f"pycontainerd shim: {exc}", file=sys.stderr)
        return 2
