"""``new_container`` / ``new_task`` / ``cio`` with real runc on overlayfs rootfs."""

from __future__ import annotations

import io
import os

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client, cio

from .conftest import IMAGE


def test_image_config_and_stdout_stderr_capture(client: Client) -> None:
    ctr = client.new_container(
        "cfg", image=IMAGE, args=["sh", "-c", 'echo "$GREETING in $(pwd)"; echo oops >&2; exit 4']
    )
    assert ctr.record.snapshot_key == "cfg" and ctr.record.snapshotter == "overlayfs"
    out, err = io.BytesIO(), io.BytesIO()
    task = ctr.new_task(cio.with_streams(None, out, err))
    fifo_dir = os.path.dirname(task.io.config.stdout) if task.io else ""
    assert os.path.isdir(fifo_dir)
    task.start()
    status = task.wait()
    assert status.code == 4 and status.exited_at is not None
    assert task.delete().code == 4
    assert out.getvalue() == b"from-image in /srv/www\n"
    assert err.getvalue() == b"oops\n"
    assert not os.path.exists(fifo_dir)
    ctr.delete()
    with pytest.raises(errdefs.NotFound):
        client.snapshots("overlayfs").stat("cfg")


def test_image_cmd_and_stdin(client: Client) -> None:
    out = io.BytesIO()
    plain = client.new_container("cmd", image=IMAGE)
    task = plain.new_task(cio.with_streams(None, out, out))
    task.start()
    assert task.wait().code == 0
    task.delete()
    assert out.getvalue() == b"image-cmd\n"
    out = io.BytesIO()
    ctr = client.new_container("stdin", image=IMAGE, args=["sh", "-c", "wc -c; cat >/dev/null"])
    task = ctr.new_task(cio.with_streams(b"x" * 100_000, out, None))
    task.start()
    assert task.wait().code == 0
    task.delete()
    assert out.getvalue().strip() == b"100000"
