"""Every runtime path of a daemon lies under its ``--state`` (issue 11, finding 8).

Shim sockets are ``<state>/s/<sha256>`` (the digest cut to fit the 108-byte
``sun_path`` of a long state directory), runc's state is ``<state>/runc/<ns>``,
the shims' bytecode cache ``<state>/pycache``; the fork server talks over a
socket pair (no path at all). Nothing is written to ``/run/pycontainerd`` by a
daemon whose state is elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path

import pytest

from pycontainerd import oci, runtime, shim
from pycontainerd.client import Client
from tests.integration.daemon import DaemonProcess

from .conftest import pid_alive, wait_until

RUN = Path("/run/pycontainerd")
NS = "statepaths"


def _entries(top: Path) -> set[str]:
    """Every path under ``top`` except the clients' FIFO directories (cio's, not a daemon's)."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        if rel == "fifo" or rel.startswith("fifo/"):
            dirnames[:] = []
            continue
        found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {k: v for k, _, v in pairs}


@pytest.fixture
def long_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a state directory of 70 bytes: a full sha256 would not fit a socket address
    base = Path(tmp_path_factory.mktemp("paths", numbered=True))
    pad = 70 - len(str(base / "state")) - 1
    assert pad > 0
    nested = base / ("x" * pad)
    nested.mkdir()
    assert len(str(nested / "state")) == 70
    return nested


def test_every_runtime_path_is_under_the_state_dir(long_base: Path, busybox_rootfs: Path) -> None:
    before = _entries(RUN)
    d = DaemonProcess(long_base)
    d.env["PYTHONDONTWRITEBYTECODE"] = "1"  # the shims keep a bytecode cache then
    d.env.pop("PYTHONPYCACHEPREFIX", None)
    d.start()
    state = str(d.state)
    try:
        with Client(d.address, namespace=NS) as c:
            c.containers.create("paths", spec=_spec(c))
            mounts = [{"type": "bind", "source": str(busybox_rootfs), "options": ["rbind", "ro"]}]
            pid = c.call("tasks.create", {"container_id": "paths", "rootfs": mounts})["pid"]
            c.call("tasks.start", {"container_id": "paths"})

            bundle = d.state / runtime.TASK_PLUGIN / NS / "paths"
            address = (bundle / "address").read_text().strip().removeprefix("unix://")
            socket_dir, name = os.path.split(address)
            assert socket_dir == os.path.join(state, "s")
            assert len(address.encode()) == shim.MAX_SOCKET_PATH  # the digest, cut to fit
            assert len(name) >= shim.MIN_SOCKET_DIGEST and set(name) <= set(string.hexdigits)
            with runtime.ShimClient(address, "paths") as client:
                shim_pid = int(client.connect()["shim_pid"])
            cmdline = Path(f"/proc/{shim_pid}/cmdline").read_bytes().split(b"\0")
            assert cmdline[cmdline.index(b"-socket-dir") + 1] == os.fsencode(socket_dir)
            cache = _environ(shim_pid)["PYTHONPYCACHEPREFIX"]
            assert cache == os.path.join(state, "pycache")
            assert any(p.suffix == ".pyc" for p in Path(cache).rglob("*.pyc"))
            assert (d.state / "runc" / NS / "paths" / "state.json").is_file()

            c.call("tasks.kill", {"container_id": "paths", "signal": 9})
            assert c.call("tasks.wait", {"container_id": "paths"})["exit_status"] == 137
            c.call("tasks.delete", {"container_id": "paths"})
            c.containers.delete("paths")
            assert wait_until(lambda: not pid_alive(shim_pid))
            assert not os.path.exists(address)
            assert not pid_alive(pid)
    finally:
        d.stop()
        d.reap()
    # the places the daemon used under /run before (sockets, bytecode): not made
    digest = hashlib.sha256(state.encode()).hexdigest()[:12]
    assert not (RUN / "s" / digest).exists()
    assert sorted(_entries(RUN) - before) == []


def _spec(c: Client) -> oci.Spec:
    spec = oci.default_spec(c.namespace, "paths")
    oci.apply(spec, oci.with_default_path_env(), oci.with_process_args("sleep", "600"))
    return spec
