"""The OCI runtime binary, driven as go-runc drives it (``runc`` or compatible).

Every command is ``<binary> --root <root> --log <bundle>/log.json
--log-format json <command> ...`` started through the :class:`Reaper`, so
that its exit status is never stolen by the subreaper loop. A failing
command raises an errdefs error carrying the runtime's own message (the last
``error`` line of ``log.json``, else its stderr).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pycontainerd.api import errdefs

from ._reaper import Reaper

TYPE_CHECKING = False  # typing costs the shim 1 MiB of RSS: imported for mypy only
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BINARY = "runc"


class RuntimeError_(errdefs.Unknown):
    """The OCI runtime failed; ``message`` is its own error text."""


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


class Runc:
    """One OCI runtime binary with its state ``root``, for one bundle.

    Args:
        reaper: the shim's reaper (commands are waited on through it).
        bundle: the bundle directory (``log.json`` lives there).
        binary: ``runc`` or any runc-compatible CLI (``crun``).
        root: the runtime's state directory (``--root``).
        systemd_cgroup: pass ``--systemd-cgroup``.
    """

    def __init__(
        self,
        reaper: Reaper,
        bundle: str,
        binary: str = DEFAULT_BINARY,
        root: str = "",
        systemd_cgroup: bool = False,
    ) -> None:
        self.reaper = reaper
        self.bundle = bundle
        self.binary = binary or DEFAULT_BINARY
        self.root = root
        self.systemd_cgroup = systemd_cgroup
        self.log_path = os.path.join(bundle, "log.json")

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = [self.binary]
        if self.root:
            argv += ["--root", self.root]
        argv += ["--log", self.log_path, "--log-format", "json"]
        if self.systemd_cgroup:
            argv.append("--systemd-cgroup")
        return argv + list(args)

    def run(
        self,
        *args: str,
        stdio: tuple[int, int, int] | None = None,
        input: bytes = b"",
        capture: bool = False,
    ) -> bytes:
        """Run one command; its stdout when ``capture``.

        ``stdio`` is handed to the command as fds 0-2 (the container's stdio for
        ``create`` and ``exec``); otherwise stdin carries ``input``.

        Raises:
            errdefs.NotFound: the binary does not exist.
            RuntimeError_: the command failed (its message is the runtime's).
        """
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        to_close = [devnull]
        try:
            if stdio is None:
                stdin = devnull
                if input:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    os.write(w, input)  # small documents: they fit the pipe buffer
                    os.close(w)
                    stdin = r
                    to_close.append(r)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                to_close += [err_r, err_w]
                out_r, out_w = (os.pipe2(os.O_CLOEXEC)) if capture else (-1, devnull)
                if capture:
                    to_close += [out_r, out_w]
                stdio = (stdin, out_w, err_w)
            else:
                err_r = err_w = out_r = out_w = -1
            try:
                pid = self.reaper.spawn(
                    self._argv(args), stdin=stdio[0], stdout=stdio[1], stderr=stdio[2]
                )
            except FileNotFoundError:
                raise errdefs.NotFound(f"OCI runtime binary {self.binary!r} not found") from None
            out = b""
            err = b""
            if err_w != -1:
                os.close(err_w)
                to_close.remove(err_w)
                if capture:
                    os.close(out_w)
                    to_close.remove(out_w)
                    out = _read_all(out_r)
                err = _read_all(err_r)
            code = self.reaper.wait(pid)
        finally:
            for fd in to_close:
                os.close(fd)
        if code != 0:
            message = self._last_error() or err.decode("utf-8", "replace").strip()
            raise RuntimeError_(
                f"{self.binary} {args[0]} failed: {message or f'exit status {code}'}"
            )
        return out

    def _last_error(self) -> str:
        import json  # lazily: json and re cost the shim 1 MiB of RSS

        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 16384))
                lines = f.read().splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", ""))
        return ""

    def create(
        self, id: str, *, pid_file: str, stdio: tuple[int, int, int], console_socket: str = ""
    ) -> None:
        """``create --bundle <bundle> --pid-file <f> [--console-socket <s>] <id>``."""
        args = ["create", "--bundle", self.bundle, "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        self.run(*args, id, stdio=stdio)

    def start(self, id: str) -> None:
        self.run("start", id)

    def exec(
        self,
        id: str,
        *,
        process_file: str,
        pid_file: str,
        stdio: tuple[int, int, int],
        console_socket: str = "",
    ) -> None:
        """``exec --process <f> --detach --pid-file <f> [--console-socket <s>] <id>``."""
        args = ["exec", "--process", process_file, "--detach", "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        self.run(*args, id, stdio=stdio)

    def kill(self, id: str, signal: int, all: bool = False) -> None:
        self.run("kill", *(["--all"] if all else []), id, str(signal))

    def delete(self, id: str, force: bool = False) -> None:
        self.run("delete", *(["--force"] if force else []), id)

    def pause(self, id: str) -> None:
        self.run("pause", id)

    def resume(self, id: str) -> None:
        self.run("resume", id)

    def update(self, id: str, resources: dict[str, Any]) -> None:
        """``update --resources - <id>`` with the OCI ``LinuxResources`` on stdin."""
        import json

        self.run("update", "--resources", "-", id, input=json.dumps(resources).encode())

    def state(self, id: str) -> dict[str, Any]:
        import json

        doc = json.loads(self.run("state", id, capture=True) or b"{}")
        return doc if isinstance(doc, dict) else {}

    def ps(self, id: str) -> list[int]:
        """The pids of the container's processes (``ps --format json``)."""
        import json

        doc = json.loads(self.run("ps", "--format", "json", id, capture=True) or b"[]")
        return [int(p) for p in doc or []]

    def checkpoint(self, id: str, image_path: str, work_path: str, leave_running: bool) -> None:
        args = ["checkpoint", "--image-path", image_path, "--work-path", work_path]
        if leave_running:
            args.append("--leave-running")
        self.run(*args, id)
