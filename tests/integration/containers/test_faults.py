"""Bad input and faults: clear errors, no leaked snapshots, mounts, shims, cgroups or FIFOs."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio
from tests.integration.daemon import DaemonProcess

from .conftest import IMAGE, leftovers


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
    assert leftovers(cdaemon) == []


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
    assert leftovers(cdaemon) == []


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
    assert leftovers(cdaemon) == []


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
    assert leftovers(cdaemon) == []


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
    assert leftovers(cdaemon) == []
