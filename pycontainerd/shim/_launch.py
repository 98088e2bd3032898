"""Launching a serving shim: its socket, the bundle's ``address``, the ``serve`` process.

One code path for both launchers: the shim's own ``start`` command (containerd's
shim CLI, an interpreter of its own) and the daemon's ``runtime.start_shim``,
which does the same in-process and saves a Python start per task::

    address, pid = launch_serve(
        [sys.executable, "-S", "-P", "-m", "pycontainerd.shim"], env,
        bundle="/run/pycontainerd/io.containerd.runtime.v2.task/default/web",
        namespace="default", id="web", address="/run/pycontainerd/pycontainerd.sock",
    )

The socket is ``<socket-dir>/<sha256(address/namespace/id)>`` (containerd's
``SocketAddress``; the daemon's socket dir is ``<state>/s``), mode 0600 in a
0711 directory; the serving shim gets the
listener as fd 3, ``/dev/null`` as stdin, the bundle's ``shim.log`` as stdout
and stderr, the bundle as cwd, and a session of its own (``setsid``): a signal
to the launcher's process group does not reach it, and it outlives its
launcher. Standard library only: the shim's ``start`` imports nothing more.

A fork server (``_main``'s ``zygote`` action) is started with ``-cmdline-room``
padding so that each shim it forks can show its own ``serve`` command line
(:func:`set_cmdline`), where ``ps`` and operators look for shims.
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Callable, Mapping, Sequence

SOCKET_DIR = "/run/pycontainerd/s"
"""The ``start`` command's socket directory when none is given (the daemon's is ``<state>/s``)."""
MAX_SOCKET_PATH = 107
MIN_SOCKET_DIGEST = 32
"""Hex digits of the digest a socket name keeps at least (128 bits) when a long
socket directory leaves no room for all 64."""
LISTEN_FD = 3
ADDRESS_FILE = "address"
LOG_FILE = "shim.log"


class UsageError(Exception):
    """A shim command line or launch request that cannot be served."""


def max_socket_dir(min_digest: int = MIN_SOCKET_DIGEST) -> int:
    """The longest socket directory (bytes) whose sockets fit a Unix socket address."""
    return MAX_SOCKET_PATH - 1 - min_digest


def socket_path(socket_dir: str, address: str, namespace: str, id: str) -> str:
    """``<dir>/<hex sha256(address/namespace/id)>`` (containerd's ``SocketAddress``).

    The digest is cut to what :data:`MAX_SOCKET_PATH` leaves after ``dir/``,
    never below :data:`MIN_SOCKET_DIGEST` digits (the path is too long then).
    """
    import hashlib  # here: OpenSSL costs the serving shim 4 MiB of RSS

    digest = hashlib.sha256(f"{address}/{namespace}/{id}".encode()).hexdigest()
    room = MAX_SOCKET_PATH - len(os.fsencode(socket_dir)) - 1
    return os.path.join(socket_dir, digest[: max(room, MIN_SOCKET_DIGEST)])


def write_atomic(path: str, data: str) -> None:
    """Write ``path`` through ``path.tmp`` + fsync + rename: readers see all or nothing."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def alive(path: str) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def serve_args(
    *,
    bundle: str,
    namespace: str,
    id: str,
    address: str = "",
    socket_dir: str = "",
    debug: bool = False,
) -> list[str]:
    """The ``serve`` flags (what follows the shim's command on its command line)."""
    args = ["-namespace", namespace, "-id", id]
    if address:
        args += ["-address", address]
    if socket_dir:
        args += ["-socket-dir", socket_dir]
    return [*args, "-bundle", bundle, *(["-debug"] if debug else []), "serve"]


Spawner = Callable[[Sequence[str], list[str], Mapping[str, str], int, int], int]
"""``(command, serve_args, env, listener_fd, log_fd) -> pid`` (0: not known)."""


def spawn_exec(
    command: Sequence[str], args: list[str], env: Mapping[str, str], listen_fd: int, log_fd: int
) -> int:
    """Run ``command + args`` in a new session: the listener as fd 3, the log as
    stdout and stderr, ``/dev/null`` as stdin; its pid (the caller's child).

    posix_spawn has no cwd action before Python 3.13, so the shim changes into
    its bundle itself (``-bundle``), and ``command[0]`` must be absolute.
    """
    argv = [*command, *args]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    actions = [
        (os.POSIX_SPAWN_DUP2, null, 0),
        (os.POSIX_SPAWN_DUP2, log_fd, 1),
        (os.POSIX_SPAWN_DUP2, log_fd, 2),
        (os.POSIX_SPAWN_DUP2, listen_fd, LISTEN_FD),
    ]
    try:
        return os.posix_spawn(
            argv[0], argv, dict(env), file_actions=actions, setsid=True, setsigmask=()
        )
    finally:
        os.close(null)


def launch_serve(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    bundle: str,
    namespace: str,
    id: str,
    address: str = "",
    socket_dir: str = "",
    debug: bool = False,
    spawn: Spawner = spawn_exec,
) -> tuple[str, int]:
    """Listen on the task's shim socket and start the serving shim on it.

    When a live shim already serves that socket (containerd's shim grouping, or
    a second start of one task) it is shared: the bundle's ``address`` file is
    rewritten and nothing is started; a dead shim's socket file is replaced.

    Args:
        command: the shim's command before its flags (``python -S -m pycontainerd.shim``).
        env: the serving shim's environment.
        bundle: the task's bundle directory (absolute).
        namespace: the task's namespace.
        id: the task's id.
        address: the daemon's socket, where the shim publishes events ("" for none).
        socket_dir: where the socket is made ("" for :data:`SOCKET_DIR`).
        debug: whether the shim logs every call.
        spawn: what starts the serving shim (:func:`spawn_exec`, or a fork server's).

    Returns:
        ``(unix://<socket>, pid)``: the pid of the serving shim started, 0 when a
        live one is shared (or the spawner cannot tell). An exec'd shim is the
        caller's child: the ``start`` command exits and leaves it to init or the
        subreaper; a daemon reaps it.

    Raises:
        UsageError: the socket path is longer than a Unix socket address allows.
        OSError: the socket, the ``address`` file or the process could not be made.
    """
    bundle = os.path.abspath(bundle)
    socket_dir = socket_dir or SOCKET_DIR
    path = socket_path(socket_dir, address, namespace, id)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise UsageError(f"shim socket path {path!r} is over {MAX_SOCKET_PATH} bytes")
    uri = f"unix://{path}"
    os.makedirs(socket_dir, mode=0o711, exist_ok=True)
    if os.path.exists(path):
        if alive(path):  # a shim already serves this task: share it
            write_atomic(os.path.join(bundle, ADDRESS_FILE), uri)
            return uri, 0
        os.unlink(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        try:
            os.chmod(path, 0o600)
            listener.listen(128)
            write_atomic(os.path.join(bundle, ADDRESS_FILE), uri)
            args = serve_args(
                bundle=bundle,
                namespace=namespace,
                id=id,
                address=address,
                socket_dir=socket_dir,
                debug=debug,
            )
            log_fd = os.open(
                os.path.join(bundle, LOG_FILE),
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                0o600,
            )
            try:
                pid = spawn(command, args, env, listener.fileno(), log_fd)
            finally:
                os.close(log_fd)
        except BaseException:
            os.unlink(path)
            raise
    return uri, pid


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
