"""One daemon per module and a busybox image imported from an OCI layout."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client, Image, cio
from tests import imagebuild
from tests.integration.daemon import DaemonProcess

IMAGE = "example.com/test/busybox:latest"
APPLETS = (*imagebuild.APPLETS, "pwd", "hostname", "printf", "stty", "tty", "ps", "wc")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n"


def built_image() -> imagebuild.BuiltImage:
    layers = [
        imagebuild.busybox_layer(applets=APPLETS),
        imagebuild.files_layer(
            {"etc/passwd": PASSWD, "etc/group": GROUP, "srv/www/index.html": b"hi\n"}
        ),
    ]
    return imagebuild.build_image(
        layers,
        cmd=["sh", "-c", "echo image-cmd"],
        env=("PATH=/bin", "GREETING=from-image"),
        working_dir="/srv/www",
    )


def leftovers(d: DaemonProcess, timeout: float = 5.0) -> list[str]:
    """Mounts under the daemon's state, its shims, task cgroups (a shim told to
    shut down exits a moment after the reply: allow it ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (found := found_now(d)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def found_now(d: DaemonProcess) -> list[str]:
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


@pytest.fixture(scope="module")
def cbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = Path(tmp_path_factory.mktemp("ctr", numbered=True))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cdaemon(cbase: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(cbase / "d")
    proc.base.mkdir()
    fifos = set(os.listdir(cio.FIFO_DIR)) if os.path.isdir(cio.FIFO_DIR) else set()
    proc.start()
    try:
        yield proc
        # after the module's tests: nothing left behind
        assert leftovers(proc) == []
        left = set(os.listdir(cio.FIFO_DIR)) - fifos if os.path.isdir(cio.FIFO_DIR) else set()
        assert left == set(), "FIFO directories left"
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()
        proc.reap()


@pytest.fixture(scope="module")
def layout_tar(cbase: Path) -> Path:
    layout = built_image().write_oci_layout(cbase / "layout")
    out = cbase / "busybox.tar"
    with tarfile.open(out, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(layout / name, arcname=name)
    return out


@pytest.fixture(scope="module")
def image_name(cdaemon: DaemonProcess, layout_tar: Path) -> str:
    with Client(cdaemon.address, namespace="default") as c:
        [image] = c.import_(str(layout_tar), base_name="example.com/test/busybox")
        assert image.name == IMAGE
    return IMAGE


@pytest.fixture
def client(cdaemon: DaemonProcess, image_name: str) -> Iterator[Client]:
    with Client(cdaemon.address, namespace="default") as c:
        yield c
        for ctr in c.containers():
            with contextlib.suppress(errdefs.NotFound):
                ctr.task().delete(kill=True)
            ctr.delete()
    cdaemon.reap()


def image_of(c: Client) -> Image:
    return c.image(IMAGE)
