"""Real runc under real shims: a busybox rootfs, bundles, a fake daemon socket."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pycontainerd import oci, runtime
from pycontainerd.api import errdefs
from pycontainerd.api.types import Mount
from tests.requirements import require

NAMESPACE = "shimtest"
APPLETS = ("sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "stty", "head", "tail")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):  # ESRCH: reaped while read
        return False


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    busybox = require("/bin/busybox", "busybox-static")
    require("runc", "runc")
    root = tmp_path_factory.mktemp("busybox")
    for d in ("bin", "etc", "proc", "sys", "dev", "run", "tmp"):
        (root / d).mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n")
    return root


class FakeDaemon:
    """A plain msgpack-RPC socket answering ``events.forward`` (the daemon's wire)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.envelopes: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False, timestamp=3)
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                unpacker.feed(data)
                for msg in unpacker:
                    assert msg[0] == 0 and msg[2] == "events.forward"
                    with self._cond:
                        self.envelopes.append(msg[3][0]["envelope"])
                        self._cond.notify_all()
                    conn.sendall(msgpack.packb([1, msg[1], None, {}]))

    def topics(self, container_id: str) -> list[str]:
        with self._cond:
            return [
                e["topic"] for e in self.envelopes if e["event"].get("container_id") == container_id
            ]

    def wait_for(self, container_id: str, topic: str, count: int = 1, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.topics_locked(container_id).count(topic) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def topics_locked(self, container_id: str) -> list[str]:
        return [
            e["topic"] for e in self.envelopes if e["event"].get("container_id") == container_id
        ]

    def close(self) -> None:
        self._sock.close()
        for conn in self._conns:
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Task:
    def __init__(self, bundle: runtime.Bundle, shim: runtime.ShimClient, pid: int) -> None:
        self.bundle, self.shim, self.pid = bundle, shim, pid
        self.id = bundle.id


class Harness:
    """Bundles and shims of one test, all cleaned up after it."""

    def __init__(self, base: str, rootfs: Path) -> None:
        self.base = base
        self.state = os.path.join(base, "state")
        self.root = os.path.join(base, "root")
        self.rootfs = rootfs
        self.daemon_address = ""
        self.debug = False
        self._shims: list[runtime.ShimClient] = []
        self._bundles: list[runtime.Bundle] = []
        self.daemons: list[FakeDaemon] = []

    def spec(self, *args: str, id: str) -> oci.Spec:
        spec = oci.default_spec(NAMESPACE, id)
        oci.apply(spec, oci.with_default_path_env(), oci.with_process_args(*args))
        return spec

    def bundle(self, spec: oci.Spec, id: str) -> runtime.Bundle:
        mounts = [Mount(type="bind", source=str(self.rootfs), options=["rbind", "rw"])]
        bundle = runtime.new_bundle(self.state, self.root, NAMESPACE, id, spec, mounts)
        self._bundles.append(bundle)
        return bundle

    def shim(self, bundle: runtime.Bundle) -> runtime.ShimClient:
        shim = runtime.start_shim(bundle, daemon_address=self.daemon_address, debug=self.debug)
        self._shims.append(shim)
        return shim

    def fifo(self, name: str) -> str:
        path = os.path.join(self.base, name)
        os.mkfifo(path)
        return path

    def task(
        self,
        *args: str,
        opts: tuple[oci.SpecOpt, ...] = (),
        start: bool = True,
        **io: Any,
    ) -> Task:
        id = f"t-{uuid.uuid4().hex[:10]}"
        spec = self.spec(*args, id=id)
        oci.apply(spec, *opts)
        bundle = self.bundle(spec, id)
        shim = self.shim(bundle)
        pid = shim.create(bundle, **io)
        if start:
            shim.start()
        return Task(bundle, shim, pid)

    def cleanup(self) -> None:
        for shim in self._shims:
            shim_pid = 0
            with contextlib.suppress(errdefs.ErrdefsError):
                shim_pid = int(shim.connect()["shim_pid"])
                with contextlib.suppress(errdefs.ErrdefsError):
                    shim.kill(signal.SIGKILL, all=True)
                with contextlib.suppress(errdefs.ErrdefsError):
                    shim.wait(timeout=5)
                with contextlib.suppress(errdefs.ErrdefsError):
                    shim.delete()
                shim.shutdown(now=True)
            shim.close()
            if shim_pid:
                wait_until(lambda pid=shim_pid: not pid_alive(pid), 3)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(shim_pid, signal.SIGKILL)
        for bundle in self._bundles:
            if os.path.exists(bundle.path):
                with contextlib.suppress(errdefs.ErrdefsError):
                    runtime.delete_shim(bundle)
                bundle.delete()
        for daemon in self.daemons:  # last: the shims' final events reach them
            daemon.close()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def harness(busybox_rootfs: Path) -> Iterator[Harness]:
    # Short: Unix socket paths (the fake daemon's) are limited to 108 bytes.
    h = Harness(tempfile.mkdtemp(prefix="shim", dir="/tmp"), busybox_rootfs)
    try:
        yield h
    finally:
        h.cleanup()


@pytest.fixture
def daemon(harness: Harness) -> FakeDaemon:
    fake = FakeDaemon(os.path.join(harness.base, "d.sock"))
    harness.daemon_address = fake.path
    harness.daemons.append(fake)
    return fake


def read_fifo(fd: int, *, until: bytes = b"", timeout: float = 5.0) -> bytes:
    """Read a non-blocking FIFO fd until ``until`` appears, EOF, or ``timeout``."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if until and until in data:
                return data
            continue
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            if until and until not in data:
                time.sleep(0.02)  # no writer yet
                continue
            return data
        data += chunk
        if until and until in data:
            return data
    return data
