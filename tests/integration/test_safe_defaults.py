"""Issue 11, safe defaults: private directories and files (a local user who is
not root reads no container spec and no blob), and references that cannot climb
out of a registry's ``/v2/`` (the daemon as a subprocess)."""

from __future__ import annotations

import hashlib
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.client import Client

from .daemon import DaemonProcess, RawConnection, RemoteError

SECRET = "DB_PASSWORD=hunter2-do-not-leak"
SPEC = {
    "ociVersion": "1.0.2",
    "process": {"args": ["sh"], "cwd": "/", "env": [SECRET]},
    "root": {"path": "rootfs"},
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` as user nobody, group nogroup, no supplementary groups."""
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _private_files(d: DaemonProcess) -> tuple[Path, list[Path]]:
    """A blob with a secret in it and the metadata database files."""
    data = f"a blob holding {SECRET}".encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with Client(d.address, namespace="secrets") as c:
        c.containers.create("app", spec=SPEC)
        w = c.content.writer("blob-1", total=len(data))
        w.write(data)
        w.commit(len(data), digest, labels={"containerd.io/gc.root": "x"})
    blob = d.root / "io.containerd.content.v1.content" / "blobs" / "sha256" / digest[7:]
    assert blob.read_bytes() == data
    meta = d.root / "io.containerd.metadata.v1.sqlite"
    dbs = [meta / name for name in ("meta.db", "meta.db-wal", "meta.db-shm")]
    assert any(SECRET.encode() in p.read_bytes() for p in dbs if p.exists())
    return blob, [p for p in dbs if p.exists()]


def _assert_private(d: DaemonProcess, blob: Path, dbs: list[Path]) -> None:
    assert _mode(d.root) == 0o711
    assert _mode(d.state) == 0o711
    for db in dbs:
        assert _mode(db) == 0o600, db
    # The reader really is unprivileged: it reads what anyone may read.
    assert _as_nobody("cat", "/etc/hostname").returncode == 0
    for path in [blob, *dbs]:
        r = _as_nobody("cat", str(path))
        assert r.returncode != 0 and SECRET not in r.stdout, path
        assert "Permission denied" in r.stderr
    for listed in (d.root, d.state):
        r = _as_nobody("ls", str(listed))
        assert r.returncode != 0 and "Permission denied" in r.stderr
    r = _as_nobody("grep", "-rl", "hunter2", str(d.root), str(d.state))
    assert r.stdout == ""


def test_a_local_user_reads_no_spec_and_no_blob(daemon: DaemonProcess) -> None:
    blob, dbs = _private_files(daemon)
    _assert_private(daemon, blob, dbs)


def test_an_existing_install_is_tightened_at_start(daemon: DaemonProcess) -> None:
    blob, _ = _private_files(daemon)
    daemon.kill()  # the -wal and -shm files stay
    meta = daemon.root / "io.containerd.metadata.v1.sqlite"
    content = daemon.root / "io.containerd.content.v1.content"
    # What an install from before this change looks like.
    for path in (daemon.root, daemon.state, meta, content, content / "blobs"):
        path.chmod(0o755)
    for path in meta.iterdir():
        path.chmod(0o644)
    blob.chmod(0o444)
    daemon.start()
    dbs = [p for p in meta.iterdir() if p.name.startswith("meta.db")]
    _assert_private(daemon, blob, dbs)
    with Client(daemon.address, namespace="secrets") as c:
        assert c.containers.get("app").spec is not None


# -- references --------------------------------------------------------------


class RecordingServer:
    """A plain HTTP listener on 127.0.0.1 that records every request line and
    answers 404: what a registry would have been asked."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data:
                        self.requests.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                        conn.sendall(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n"
                        )
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    s = RecordingServer()
    yield s
    s.close()


BAD_REFERENCES = [
    "{host}/../../etc/passwd:latest",
    "{host}/library/../../../etc/passwd:latest",
    "{host}/a/./b:latest",
    "{host}/a//b:latest",
    "{host}//a:latest",
    "{host}/a/:latest",
    "{host}/Upper/case:latest",
    "{host}/a/.hidden:latest",
    "{host}/a%2F..%2Fb:latest",
    "{host}/a\\..\\b:latest",
    "{host}/a:bad/tag",
    "{host}/a:-tag",
    "{host}/a:" + "t" * 129,
    "{host}/" + "a" * 300 + ":latest",
    "{host}/a?x=..:latest",
    "{host}/a#..:latest",
    "{host}/a@sha256:../../x",
    "../{host}/a:latest",
]


@pytest.mark.parametrize("template", BAD_REFERENCES)
def test_a_bad_reference_is_refused_before_any_request(
    daemon: DaemonProcess, server: RecordingServer, template: str
) -> None:
    ref = template.format(host=f"127.0.0.1:{server.port}")
    with RawConnection(daemon.address, timeout=30) as c:
        with pytest.raises(RemoteError) as err:
            c.call("transfer.pull", {"ref": ref, "plain_http": True, "unpack": False}, "refs")
        assert err.value.code == "InvalidArgument", err.value.message
        with pytest.raises(RemoteError) as err:
            c.call(
                "transfer.push", {"ref": ref, "source_ref": "local/x:1", "plain_http": True}, "refs"
            )
        assert err.value.code == "InvalidArgument", err.value.message
    assert server.requests == []


def test_a_good_reference_reaches_the_registry(
    daemon: DaemonProcess, server: RecordingServer
) -> None:
    """The listener above does see what the daemon asks (the control)."""
    ref = f"127.0.0.1:{server.port}/library/ok-repo_1.x:v1.0"
    with RawConnection(daemon.address, timeout=30) as c, pytest.raises(RemoteError) as err:
        c.call("transfer.pull", {"ref": ref, "plain_http": True, "unpack": False}, "refs")
    assert err.value.code == "NotFound"
    assert server.requests == ["HEAD /v2/library/ok-repo_1.x/manifests/v1.0 HTTP/1.1"]
