"""Bad input and faults: clear errors, no leaked snapshots, mounts, shims, cgroups or FIFOs."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio
from tests.integration.daemon import DaemonProcess

from .conftest import IMAGE


def _leftovers(d: DaemonProcess, timeout: float = 5.0) -> list[str]:
    """Mounts under the daemon's state, its shims, task cgroups (a shim told to
    shut down exits a moment after the reply: allow it ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (found := _found(d)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _found(d: DaemonProcess) -> list[str]:
    marker = str(d.state)
    found = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if marker + "/" in line
    ]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pycontainerd.shim" in cmdline and marker.encode() in cmdline:
            found.append(f"shim {pid}")
    for controller in ("memory", "cpu", "pids", "freezer"):
        group = Path("/sys/fs/cgroup") / controller / "default"
        if group.is_dir():
            found += [str(p) for p in group.iterdir() if p.is_dir()]
    return found


def test_create_with_a_missing_snapshot(client: Client, cdaemon: DaemonProcess) -> None:
    with pytest.raises(errdefs.NotFound):
        client.new_container("nosnap", snapshot="does-not-exist")
    # metadata naming a snapshot that is not there: the task cannot be created
    client.containers.create(
        "nosnap", spec={"ociVersion": "1.0.2"}, snapshotter="overlayfs", snapshot_key="gone"
    )
    ctr = client.load_container("nosnap")
    with pytest.raises(errdefs.NotFound):
        ctr.new_task(cio.null())
    ctr.delete()
    assert _leftovers(cdaemon) == []


def test_a_spec_of_the_wrong_types(client: Client, cdaemon: DaemonProcess) -> None:
    def bad(spec: dict[str, Any]) -> None:
        spec["process"]["args"] = "sh -c true"  # a string, not a list

    ctr = client.new_container("badspec", image=IMAGE, spec_opts=[bad])
    before = set(os.listdir(cio.FIFO_DIR))
    # as containerd: runc's own message, code Unknown ("OCI runtime create failed")
    with pytest.raises(errdefs.Unknown, match=r"cannot unmarshal string .*args"):
        ctr.new_task(cio.with_streams(None, io.BytesIO(), None))
    assert set(os.listdir(cio.FIFO_DIR)) == before, "the FIFOs of a failed create are left"
    ctr.delete()
    assert _leftovers(cdaemon) == []


def test_a_taken_id(client: Client) -> None:
    first = client.new_container("taken", image=IMAGE, args=["true"])
    with pytest.raises(errdefs.AlreadyExists):
        client.new_container("taken", image=IMAGE, args=["false"])
    assert client.load_container("taken").spec()["process"]["args"] == ["true"]
    first.delete()


def test_the_state_machine(client: Client) -> None:
    ctr = client.new_container("states", image=IMAGE, args=["sleep", "30"])
    task = ctr.new_task(cio.null())
    with pytest.raises(errdefs.AlreadyExists):
        ctr.new_task(cio.null())
    task.start()
    with pytest.raises(errdefs.FailedPrecondition):
        task.start()
    with pytest.raises(errdefs.FailedPrecondition):
        task.delete()
    with pytest.raises(errdefs.FailedPrecondition):
        ctr.delete()
    task.kill(signal.SIGKILL)
    assert task.wait().code == 137
    with pytest.raises(errdefs.NotFound, match="process already finished"):
        task.kill()
    task.delete()
    with pytest.raises(errdefs.NotFound):
        task.status()
    ctr.delete()


def test_a_created_task_deleted_without_starting(client: Client, cdaemon: DaemonProcess) -> None:
    ctr = client.new_container("never", image=IMAGE, args=["true"])
    task = ctr.new_task(cio.with_streams(b"", io.BytesIO(), io.BytesIO()))
    assert task.status().status == "created"
    task.delete()
    ctr.delete()
    assert _leftovers(cdaemon) == []


def test_runc_failing_surfaces_its_message(client: Client, cdaemon: DaemonProcess) -> None:
    mount = {
        "destination": "/data",
        "type": "bind",
        "source": "/does/not/exist",
        "options": ["rbind"],
    }

    def with_bad_mount(spec: dict[str, Any]) -> None:
        spec["mounts"].append(mount)

    ctr = client.new_container("runcfail", image=IMAGE, args=["true"], spec_opts=[with_bad_mount])
    with pytest.raises(errdefs.ErrdefsError, match="no such file or directory"):
        ctr.new_task(cio.null())
    ctr.delete()
    assert _leftovers(cdaemon) == []


def test_exec_format_error(client: Client, cdaemon: DaemonProcess, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\x01not an executable\n")
    garbage.chmod(0o755)
    mount = {
        "destination": "/bin/garbage",
        "type": "bind",
        "source": str(garbage),
        "options": ["rbind", "ro"],
    }

    def with_garbage(spec: dict[str, Any]) -> None:
        spec["mounts"].append(mount)

    ctr = client.new_container(
        "badexec", image=IMAGE, args=["/bin/garbage"], spec_opts=[with_garbage]
    )
    out = io.BytesIO()
    task = ctr.new_task(cio.with_streams(None, out, out))
    # runc >= 1.1 execs after `runc start` returns: the process exits 1 and runc's
    # init says why on the container's stderr (what `ctr run` shows too)
    task.start()
    assert task.wait().code == 1
    assert task.delete().code == 1
    assert out.getvalue() == b"exec /bin/garbage: exec format error\n"
    ctr.delete()
    assert _leftovers(cdaemon) == []
