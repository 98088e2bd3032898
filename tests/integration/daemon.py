"""Run the real daemon as a subprocess on a temporary root, state and socket.

Integration tests talk to it with a stock msgpack library over a plain Unix
socket (:class:`RawConnection`), as a client written from ``docs/protocol.md``
alone would, or with pycontainerd's own clients.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

REPO = Path(__file__).resolve().parents[2]


class DaemonProcess:
    """One ``pycontainerd`` subprocess and its directories."""

    def __init__(self, base: Path, *, extra_args: list[str] | None = None) -> None:
        self.base = base
        self.root = base / "root"
        self.state = base / "state"
        self.address = str(base / "pycontainerd.sock")
        self.log_path = base / "daemon.log"
        self.config_path = base / "config.toml"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = dict(os.environ)

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "pycontainerd.daemon",
            "--root",
            str(self.root),
            "--state",
            str(self.state),
            "--address",
            self.address,
            "--log-level",
            "debug",
            *self.extra_args,
        ]
        if self.config_path.exists():
            cmd += ["--config", str(self.config_path)]
        return cmd

    def start(self, *, wait: bool = True) -> DaemonProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=self.env)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            try:
                with RawConnection(self.address) as conn:
                    conn.call("version.version", {})
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"daemon not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def reap(self) -> None:
        """Remove what tasks of this daemon left behind (a failed test's
        containers, shims and rootfs mounts), so later tests start clean."""
        runc_base = self.state / "runc"
        for root in sorted(runc_base.iterdir()) if runc_base.is_dir() else []:
            listed = subprocess.run(
                ["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True
            )
            for id in listed.stdout.split():
                subprocess.run(
                    ["runc", "--root", str(root), "delete", "-f", id], capture_output=True
                )
        marker = str(self.state)
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"pycontainerd.shim" in cmdline and marker.encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        with open("/proc/mounts") as mounts:
            targets = [line.split()[1] for line in mounts if f" {marker}/" in line]
        for target in sorted(targets, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"daemon ignored SIGTERM:\n{self.log()}") from None
        return self.proc.returncode


class RemoteError(Exception):
    """An error response: ``code`` and ``message`` as the daemon sent them."""

    def __init__(self, error: Any) -> None:
        super().__init__(error)
        self.code = error.get("code") if isinstance(error, dict) else None
        self.message = error.get("message") if isinstance(error, dict) else None


class RawConnection:
    """A msgpack-RPC connection with nothing but ``socket`` and ``msgpack``."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise
        self.unpacker = msgpack.Unpacker(raw=False, timestamp=3)
        self.msgid = 0

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, obj: Any) -> None:
        self.sock.sendall(msgpack.packb(obj, use_bin_type=True, datetime=True))

    def send_request(self, method: str, request: Any, meta: dict[str, Any] | None = None) -> int:
        self.msgid += 1
        params = [request] if meta is None else [request, meta]
        self.send([0, self.msgid, method, params])
        return self.msgid

    def messages(self) -> Iterator[Any]:
        while True:
            yield from self.unpacker
            data = self.sock.recv(1 << 16)
            if not data:
                return
            self.unpacker.feed(data)

    def next_message(self) -> Any:
        for msg in self.messages():
            return msg
        raise ConnectionError("connection closed by the daemon")

    def response(self, msgid: int) -> Any:
        for msg in self.messages():
            if msg[0] == 1 and msg[1] == msgid:
                if msg[2] is not None:
                    raise RemoteError(msg[2])
                return msg[3]
        raise ConnectionError("connection closed by the daemon")

    def call(self, method: str, request: Any, namespace: str | None = None) -> Any:
        meta = None if namespace is None else {"namespace": namespace}
        return self.response(self.send_request(method, request, meta))
