"""Launching a task's shim and talking to it (``runtime/v2/binary.go``, ``shim.go``).

::

    bundle = new_bundle(state, root, "default", "web", spec, mounts)
    shim = start_shim(bundle)  # listens on <state>/s/<sha256>
    shim.create(bundle, stdout="/run/fifos/web-stdout")
    shim.start()
    exit = shim.wait()          # blocks; ExitStatus(exit_status, exited_at)
    shim.delete(); shim.shutdown(); shim.close(); bundle.delete()

The shim runs as ``python -S -P -m pycontainerd.shim`` with ``PYTHONPATH`` set
to this interpreter's path (no ``site``: a smaller shim), forked by the
process's fork server (``_forkserver``) or exec'd. All calls are blocking and
may come from several threads (``wait`` with the others).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import attrs

import pycontainerd
from pycontainerd import shim, wire
from pycontainerd.api import errdefs

from ._bundle import Bundle
from ._forkserver import FORK_SERVER, spawn_exec_reaped

SHIM_BINARY_FILE = "shim-binary-path"
DELETE_TIMEOUT = 10.0
"""Seconds for a dead shim's cleanup (containerd allows 5; Python starts slower)."""


SOCKET_DIR = "s"
"""The shims' sockets: ``<state>/s/<sha256>`` (containerd's ``/run/containerd/s``)."""
PYCACHE_DIR = "pycache"
"""The shims' bytecode cache, ``<state>/pycache``, when this process writes none
(``PYTHONDONTWRITEBYTECODE``)."""


def shim_socket_dir(state_dir: str) -> str:
    """Where the shims of the daemon with state ``state_dir`` listen."""
    return os.path.join(state_dir, SOCKET_DIR)


def max_socket_dir() -> int:
    """The longest socket directory (bytes) whose shim sockets fit a Unix socket address."""
    return shim.max_socket_dir()


def shim_pycache_dir(state_dir: str) -> str:
    """The shims' bytecode cache of the daemon with state ``state_dir``."""
    return os.path.join(state_dir, PYCACHE_DIR)


def shim_command() -> list[str]:
    """The command that runs the shim (before its flags).

    ``-S``: no ``site``; ``-P``: the launcher's cwd is not put first on ``sys.path``.
    """
    return [sys.executable, "-S", "-P", "-m", "pycontainerd.shim"]


def shim_env(pycache: str) -> dict[str, str]:
    """The shim's environment: ``PYTHONPATH`` finds pycontainerd and msgpack without ``site``.

    A daemon run with ``PYTHONDONTWRITEBYTECODE`` would have every shim compile
    its modules from source (about half of its start-up CPU): the shims then
    keep their bytecode under ``pycache`` instead (``PYTHONPYCACHEPREFIX``,
    outside the source tree, the daemon's ``<state>/pycache``; the first shim
    writes it), unless a prefix is set.
    """
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(pycontainerd.__file__)))
    paths = [package_parent, *(p for p in sys.path if p and p != package_parent)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
        del env["PYTHONDONTWRITEBYTECODE"]
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


@attrs.frozen(kw_only=True)
class ExitStatus:
    """How a process ended (``WaitResponse``): ``exited_at`` is None if it has not."""

    exit_status: int
    exited_at: datetime | None


@attrs.frozen(kw_only=True)
class DeleteResult:
    """``DeleteResponse{pid, exit_status, exited_at}``."""

    pid: int
    exit_status: int
    exited_at: datetime | None


def _at(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int) and value:
        return datetime.fromtimestamp(value / 1e9, tz=UTC)
    return None


class ShimClient:
    """The task API of one shim, over its socket.

    Every method raises the shim's errdefs error (its class is the error's
    code) or ``wire.ConnectionLost`` (an ``Unavailable``) when the shim is gone.

    Args:
        address: the shim's socket path (``unix://`` prefix allowed).
        id: the container id, sent as ``id`` in every request.
        timeout: per-call timeout in seconds (``wait`` has none).
    """

    def __init__(self, address: str, id: str, *, timeout: float | None = 30.0) -> None:
        self.address = address.removeprefix("unix://")
        self.id = id
        self._client = wire.Client(self.address, namespace=None, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ShimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **fields: Any) -> Any:
        """Call ``method`` with ``id`` and ``fields``; the result map."""
        return self._client.call(method, {"id": self.id, **fields})

    def create(
        self,
        bundle: Bundle,
        *,
        stdin: str = "",
        stdout: str = "",
        stderr: str = "",
        terminal: bool = False,
        rootfs: list[dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
    ) -> int:
        """Create the container (``runc create``); its init pid.

        ``options``: the runc options ``binary_name`` (``crun``...), ``root``,
        ``systemd_cgroup``.
        """
        result = self.call(
            "create",
            bundle=bundle.path,
            rootfs=rootfs or [],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            terminal=terminal,
            options=options or {},
        )
        return int(result["pid"])

    def start(self, exec_id: str = "") -> int:
        return int(self.call("start", exec_id=exec_id)["pid"])

    def delete(self, exec_id: str = "") -> DeleteResult:
        r = self.call("delete", exec_id=exec_id)
        return DeleteResult(
            pid=r["pid"], exit_status=r["exit_status"], exited_at=_at(r["exited_at"])
        )

    def exec(
        self,
        exec_id: str,
        process: dict[str, Any],
        *,
        stdin: str = "",
        stdout: str = "",
        stderr: str = "",
        terminal: bool = False,
    ) -> None:
        """Add exec process ``exec_id`` (an OCI ``Process``); start it with :meth:`start`."""
        spec = {"type_url": "types.containerd.io/opencontainers/runtime-spec/1/Process"}
        self.call(
            "exec",
            exec_id=exec_id,
            spec={**spec, "value": process},
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            terminal=terminal,
        )

    def state(self, exec_id: str = "") -> dict[str, Any]:
        """``StateResponse``: ``id, bundle, pid, status, stdin, stdout, stderr,
        terminal, exit_status, exited_at, exec_id``."""
        result: dict[str, Any] = self.call("state", exec_id=exec_id)
        return result

    def pids(self) -> list[dict[str, Any]]:
        """``[{pid, info}]``; ``info`` is ``{"exec_id"}`` for exec processes."""
        return list(self.call("pids")["processes"])

    def pause(self) -> None:
        self.call("pause")

    def resume(self) -> None:
        self.call("resume")

    def kill(self, signal: int, *, exec_id: str = "", all: bool = False) -> None:
        self.call("kill", exec_id=exec_id, signal=signal, all=all)

    def resize_pty(self, width: int, height: int, exec_id: str = "") -> None:
        self.call("resize_pty", exec_id=exec_id, width=width, height=height)

    def close_io(self, exec_id: str = "", stdin: bool = True) -> None:
        self.call("close_io", exec_id=exec_id, stdin=stdin)

    def checkpoint(self, path: str, options: dict[str, Any] | None = None) -> None:
        self.call("checkpoint", path=path, options=options or {})

    def update(self, resources: dict[str, Any]) -> None:
        """``runc update`` with OCI ``LinuxResources`` (``{"memory": {"limit": n}}``)."""
        url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
        self.call("update", resources={"type_url": url, "value": resources})

    def wait(self, exec_id: str = "", timeout: float | None = None) -> ExitStatus:
        """Block until the process exits (``timeout``: DeadlineExceeded after it)."""
        r = self._client.call("wait", {"id": self.id, "exec_id": exec_id}, timeout=timeout)
        return ExitStatus(exit_status=r["exit_status"], exited_at=_at(r["exited_at"]))

    def stats(self) -> dict[str, Any]:
        """``{"type_url", "value"}``: cgroup v1 or v2 metrics of the container."""
        return dict(self.call("stats")["stats"])

    def connect(self) -> dict[str, Any]:
        """``{shim_pid, task_pid, version}``."""
        return dict(self.call("connect"))

    def shutdown(self, now: bool = False) -> None:
        """Ask the shim to exit (ignored while its container exists, unless ``now``)."""
        with contextlib.suppress(wire.ConnectionLost):  # it exited before answering
            self.call("shutdown", now=now)


def start_shim(
    bundle: Bundle,
    *,
    daemon_address: str = "",
    debug: bool = False,
    socket_dir: str = "",
    fork: bool = True,
) -> ShimClient:
    """Start the shim of ``bundle`` and connect to it (containerd ``binary.Start``).

    What the shim's ``start`` command does, done here without its interpreter
    (``shim.launch_serve``): listen on the task's socket, write the bundle's
    ``address``, spawn ``serve`` in a session of its own with the listener as
    fd 3; a live shim already on that socket is shared. With ``fork`` the
    shim is forked by this process's ``FORK_SERVER`` (a pre-imported shim:
    about a millisecond instead of an interpreter start), else exec'd and
    reaped by ``REAPER`` if it exits before this process; either way it
    outlives this process. Nothing is waited for: a shim that dies before it
    serves fails the first call with ``Unavailable`` (its ``shim.log`` says why).

    ``daemon_address`` empty: the shim publishes no events (the daemon's task
    actor does). The socket is made under ``<state>/s`` of the bundle's state
    directory (``socket_dir`` overrides it), the bytecode cache is
    ``<state>/pycache``: nothing of a daemon's shims lives outside its state.

    Raises:
        errdefs.Unavailable: the socket, the ``address`` file or the shim process
            could not be made (the reason is in the message).
    """
    try:
        address, _ = shim.launch_serve(
            shim_command(),
            shim_env(shim_pycache_dir(bundle.state_dir)),
            bundle=bundle.path,
            namespace=bundle.namespace,
            id=bundle.id,
            address=daemon_address,
            socket_dir=socket_dir or shim_socket_dir(bundle.state_dir),
            debug=debug,
            spawn=FORK_SERVER.spawn if fork else spawn_exec_reaped,
        )
    except (shim.UsageError, OSError) as exc:
        raise errdefs.Unavailable(f"shim start for {bundle.id} failed: {exc}") from None
    with open(os.path.join(bundle.path, SHIM_BINARY_FILE), "w") as f:
        f.write(json.dumps(shim_command()))
    return ShimClient(address, bundle.id)


def recorded_shim_command(bundle: Bundle) -> list[str]:
    """The shim command recorded in ``shim-binary-path`` (this one if none is)."""
    try:
        with open(os.path.join(bundle.path, SHIM_BINARY_FILE)) as f:
            command = json.load(f)
    except (OSError, ValueError):
        return shim_command()
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        return command
    return shim_command()


def delete_shim(bundle: Bundle, timeout: float = DELETE_TIMEOUT) -> DeleteResult:
    """Run the shim's ``delete`` cleanup for a dead shim (containerd ``binary.Delete``).

    The command is the one recorded in the bundle's ``shim-binary-path`` (the
    shim that ran the task), as containerd runs the recorded runtime binary.

    Raises:
        errdefs.Unavailable: the cleanup failed or timed out.
    """
    cmd = [*recorded_shim_command(bundle), "-namespace", bundle.namespace, "-id", bundle.id]
    cmd += ["-bundle", bundle.path, "delete"]
    try:
        done = subprocess.run(
            cmd,
            cwd=bundle.path,
            env=shim_env(shim_pycache_dir(bundle.state_dir)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        doc = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        raise errdefs.Unavailable(f"shim delete for {bundle.id} timed out") from None
    except ValueError:
        text = done.stderr.decode(errors="replace").strip()
        raise errdefs.Unavailable(f"shim delete for {bundle.id} failed: {text}") from None
    return DeleteResult(
        pid=int(doc["pid"]), exit_status=int(doc["exit_status"]), exited_at=_at(doc["exited_at"])
    )


def record_exit(bundle: Bundle, pid: int, exit_status: int, exited_at: datetime) -> DeleteResult:
    """Record the init's exit in the bundle unless one is recorded; the recorded one.

    A dead shim's cleanup that failed (no ``delete`` answer) records the exit it
    publishes, so that a restarted daemon's recovery publishes the same one
    (its journal drops the duplicate) and not a new exit of its own.
    """
    recorded = shim.read_exit_file(bundle.path)
    if recorded is None:
        shim.write_exit_record(
            bundle.path,
            {
                "container_id": bundle.id,
                "id": bundle.id,
                "exec_id": "",
                "pid": pid,
                "exit_status": exit_status,
                "exited_at": round(exited_at.timestamp() * 1e9),
            },
        )
        return DeleteResult(pid=pid, exit_status=exit_status, exited_at=exited_at)
    return DeleteResult(
        pid=int(recorded.get("pid", 0)),
        exit_status=int(recorded.get("exit_status", 0)),
        exited_at=_at(recorded.get("exited_at")),
    )
