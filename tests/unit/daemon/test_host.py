from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pycontainerd.daemon._host import (
    RootLock,
    RootLocked,
    address_in_use,
    private_dir,
    raise_nofile_limit,
    sd_notify,
)


def test_root_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    first = RootLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(RootLocked, match=f"pid {os.getpid()}"):
            RootLock(tmp_path).acquire()
    finally:
        first.release()
    second = RootLock(tmp_path)
    second.acquire()
    second.release()


def test_root_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = (
        "import sys, os, signal\n"
        "from pathlib import Path\n"
        "from pycontainerd.daemon._host import RootLock\n"
        f"RootLock(Path({str(tmp_path)!r})).acquire()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    lock = RootLock(tmp_path)
    lock.acquire()
    lock.release()


def test_address_in_use(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    assert not address_in_use(path)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()
    assert address_in_use(path)
    srv.close()
    assert os.path.exists(path)
    assert not address_in_use(path)  # a stale file answers nothing


def test_sd_notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    path = str(tmp_path / "n.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sd_notify("READY=1") is True
    assert rx.recv(64) == b"READY=1"
    rx.close()


def test_raise_nofile_limit() -> None:
    soft = raise_nofile_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_private_dir_creates_0711_and_tightens_an_existing_dir(tmp_path: Path) -> None:
    made = tmp_path / "a" / "root"
    private_dir(made)
    assert made.stat().st_mode & 0o777 == 0o711
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    private_dir(loose)
    assert loose.stat().st_mode & 0o777 == 0o711
    private_dir(loose, 0o700)
    assert loose.stat().st_mode & 0o777 == 0o700


_LARGE_BUFFERS = """
import os, sys
from pycontainerd.daemon._host import return_large_buffers
if sys.argv[1] == "on":
    assert return_large_buffers()
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) >> 10
first = os.urandom(1) * (16 << 20); del first  # raises glibc's threshold
base = rss()
big, keep = [], []
for i in range(6):  # six large requests at once
    big.append(os.urandom(1) * (15 << 20))
    keep.append(bytes(200_000))  # allocated after each: pins the heap
del big
print(rss() - base)
"""


def test_large_buffers_go_back_to_the_system_once_freed() -> None:
    """Six 15 MiB requests at once, freed: glibc keeps 90 MiB of them in the
    heap (its threshold grew with the first large free); after
    return_large_buffers they go back to the system."""
    import subprocess
    import sys

    def growth(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _LARGE_BUFFERS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    assert growth("off") > 60  # the behaviour this is for, on this libc
    assert growth("on") < 8
