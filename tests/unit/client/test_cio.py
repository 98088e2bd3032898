"""``cio``: the FIFOs a task's shim would open, driven from the test (no daemon)."""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import pytest

from pycontainerd.client import cio


@pytest.fixture
def fifo_base(tmp_path: Path) -> Path:
    return tmp_path / "fifo"


def _shim_writes(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _shim_reads(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def test_streams_copy_both_ways_and_close_removes_the_fifos(fifo_base: Path) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    pio = cio.with_streams(b"x" * 200_000, out, err, fifo_dir=str(fifo_base))("ctr")
    config = pio.config
    assert not config.terminal
    for path in (config.stdin, config.stdout, config.stderr):
        assert stat.S_ISFIFO(os.stat(path).st_mode)
        assert Path(path).parent.parent == fifo_base
    assert Path(config.stdout).name == "ctr-stdout"
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(_shim_reads(config.stdin)))
    reader.start()
    _shim_writes(config.stdout, b"hello ")
    _shim_writes(config.stderr, b"oops")
    reader.join(10)
    assert got == [b"x" * 200_000]
    pio.wait(10)
    pio.close()
    assert out.getvalue() == b"hello " and err.getvalue() == b"oops"
    assert os.listdir(fifo_base) == []
    pio.close()  # idempotent


def test_close_when_nothing_ever_connected(fifo_base: Path) -> None:
    streams = (io.BytesIO(b"never read"), io.BytesIO(), io.BytesIO())
    pio = cio.with_streams(*streams, fifo_dir=str(fifo_base))("idle")
    pio.close()  # the input thread is blocked opening its FIFO: unblocked, joined
    assert os.listdir(fifo_base) == []


def test_streams_without_stdin_or_with_a_terminal(fifo_base: Path) -> None:
    pio = cio.with_streams(None, io.BytesIO(), None, fifo_dir=str(fifo_base))("a")
    assert pio.config.stdin == "" and pio.config.stderr == "" and pio.config.stdout
    pio.close()
    tty = cio.with_streams(b"", io.BytesIO(), io.BytesIO(), terminal=True, fifo_dir=str(fifo_base))(
        "b"
    )
    assert tty.config.terminal and tty.config.stderr == "" and tty.config.stdin
    tty.close()


def test_log_file_and_null_have_no_fifos(tmp_path: Path, fifo_base: Path) -> None:
    log = cio.log_file(tmp_path / "x.log")("c")
    assert log.config.fields() == {
        "stdin": "",
        "stdout": f"file://{tmp_path}/x.log",
        "stderr": f"file://{tmp_path}/x.log",
        "terminal": False,
    }
    log.close()
    null = cio.null()("d")
    assert null.config == cio.Config()
    null.close()
    assert not fifo_base.exists() or os.listdir(fifo_base) == []


def test_attach_leaves_the_owners_fifos(tmp_path: Path) -> None:
    path = tmp_path / "owned-stdout"
    os.mkfifo(path)
    out = io.BytesIO()
    pio = cio.attach(cio.Config(stdout=str(path)), stdout=out)("e")
    _shim_writes(str(path), b"attached")
    pio.wait(10)
    pio.close()
    assert out.getvalue() == b"attached" and path.exists()
