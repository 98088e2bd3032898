"""``pyctr run``, ``containers`` and ``tasks`` as a user runs them (subprocesses)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from pycontainerd.client import Client, cio
from tests.integration.daemon import DaemonProcess

from .conftest import IMAGE


def pyctr(
    d: DaemonProcess, *args: str, input: bytes = b"", timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "pycontainerd.cli", "--address", d.address, *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)


def test_run_passes_the_exit_code_and_the_command_untouched(
    cdaemon: DaemonProcess, client: Client
) -> None:
    r = pyctr(cdaemon, "run", "--rm", IMAGE, "x", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert client.containers.list() == []
    r = pyctr(cdaemon, "run", "--rm", IMAGE, "cat", "cat", input=b"piped in\n")
    assert (r.returncode, r.stdout) == (0, b"piped in\n")
    r = pyctr(cdaemon, "run", "--rm", IMAGE, "nope", "/bin/does-not-exist")
    assert r.returncode == 1 and b"does-not-exist" in r.stderr
    assert client.containers.list() == []


def test_run_options(cdaemon: DaemonProcess, client: Client, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("bound\n")
    host_ifaces = set(re.findall(r"^\s*(\S+):", Path("/proc/net/dev").read_text(), re.M))
    script = "echo $FOO; cat /data/f; touch /data/g 2>/dev/null || echo ro; cat /proc/net/dev"
    r = pyctr(
        cdaemon,
        "run",
        "--rm",
        "--env",
        "FOO=bar baz",
        "--mount",
        f"type=bind,src={tmp_path},dst=/data,options=rbind:ro",
        "--net-host",
        IMAGE,
        "opts",
        "sh",
        "-c",
        script,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[:3] == ["bar baz", "bound", "ro"]
    assert host_ifaces <= set(re.findall(r"^\s*(\S+):", r.stdout.decode(), re.M))


def test_run_limits(cdaemon: DaemonProcess, client: Client) -> None:
    limits = ["--memory-limit", str(32 << 20), "--cpus", "0.25"]
    r = pyctr(cdaemon, "run", "-d", *limits, IMAGE, "lim", "sleep", "60")
    assert r.returncode == 0, r.stderr
    memory = Path("/sys/fs/cgroup/memory/default/lim/memory.limit_in_bytes")
    assert int(memory.read_text()) == 32 << 20
    assert Path("/sys/fs/cgroup/cpu/default/lim/cpu.cfs_quota_us").read_text().strip() == "25000"
    assert pyctr(cdaemon, "tasks", "rm", "-f", "lim").returncode == 0
    assert pyctr(cdaemon, "containers", "rm", "lim").returncode == 0
    assert not memory.parent.exists()


def test_detached_task_and_the_tasks_commands(cdaemon: DaemonProcess, client: Client) -> None:
    r = pyctr(cdaemon, "run", "-d", IMAGE, "bg", "sleep", "60")
    assert r.returncode == 0, r.stderr
    pid = client.load_container("bg").task().pid
    r = pyctr(cdaemon, "tasks", "ls")
    lines = r.stdout.decode().splitlines()
    assert re.split(r"\s+", lines[0]) == ["TASK", "PID", "STATUS"]
    assert re.split(r"\s+", lines[1]) == ["bg", str(pid), "RUNNING"]
    assert str(pid) in pyctr(cdaemon, "tasks", "ps", "bg").stdout.decode()
    r = pyctr(cdaemon, "tasks", "exec", "--exec-id", "e1", "bg", "sh", "-c", "echo in; exit 5")
    assert (r.returncode, r.stdout) == (5, b"in\n")
    assert pyctr(cdaemon, "tasks", "pause", "bg").returncode == 0
    assert re.split(r"\s+", pyctr(cdaemon, "tasks", "ls").stdout.decode().splitlines()[1])[2] == (
        "PAUSED"
    )
    assert pyctr(cdaemon, "tasks", "resume", "bg").returncode == 0
    metrics = pyctr(cdaemon, "tasks", "metrics", "bg")
    assert metrics.returncode == 0 and b"METRIC" in metrics.stdout
    r = pyctr(cdaemon, "tasks", "rm", "bg")
    assert r.returncode == 1 and b"FailedPrecondition" in r.stderr
    assert pyctr(cdaemon, "tasks", "kill", "--signal", "KILL", "bg").returncode == 0
    assert client.load_container("bg").task().wait().code == 137
    r = pyctr(cdaemon, "tasks", "kill", "bg")
    assert r.returncode == 1 and b"already finished" in r.stderr
    assert pyctr(cdaemon, "tasks", "rm", "bg").returncode == 0
    r = pyctr(cdaemon, "containers", "label", "bg", "team=a")
    assert r.stdout == b"team=a\n"
    listed = pyctr(cdaemon, "containers", "ls").stdout.decode().splitlines()
    assert re.split(r"\s+", listed[1]) == ["bg", IMAGE, "io.containerd.runc.v2"]
    assert b'"snapshot_key": "bg"' in pyctr(cdaemon, "containers", "info", "bg").stdout
    assert pyctr(cdaemon, "containers", "rm", "bg").returncode == 0
    assert client.containers.list() == []


def test_containers_create_then_tasks_start(cdaemon: DaemonProcess, client: Client) -> None:
    r = pyctr(cdaemon, "containers", "create", IMAGE, "later", "sh", "-c", "echo later; exit 6")
    assert r.returncode == 0, r.stderr
    r = pyctr(cdaemon, "tasks", "start", "later")
    assert (r.returncode, r.stdout) == (6, b"later\n")
    assert pyctr(cdaemon, "containers", "rm", "later").returncode == 0


def test_run_with_a_tty_under_a_pty(cdaemon: DaemonProcess, client: Client) -> None:
    cmd = [sys.executable, "-m", "pycontainerd.cli", "--address", cdaemon.address]
    cmd += [
        "run",
        "-t",
        "--rm",
        IMAGE,
        "tty",
        "sh",
        "-c",
        "tty; stty size; read x; echo got:$x; exit 4",
    ]
    pid, master = pty.fork()
    if pid == 0:  # the child: its stdio is the pty's slave
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        os.execv(cmd[0], cmd)
    output = b""
    sent = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child has gone
                break
            if not data:
                break
            output += data
            if not sent and b"33 111" in output:
                os.write(master, b"typed\r")
                sent = True
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 4, output
    assert re.search(rb"/dev/pts/\d+", output)
    assert b"33 111" in output and b"got:typed" in output
    assert client.containers.list() == []


def test_tasks_attach(cdaemon: DaemonProcess, client: Client) -> None:
    script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo attached; exit 7"
    ctr = client.new_container("att", image=IMAGE, args=["sh", "-c", script])
    task = ctr.new_task(cio.with_streams(None, io.BytesIO()))
    assert task.io is not None
    fifo = task.io.config.stdout
    task.io.cancel()  # this client stops reading: `tasks attach` takes over
    task.start()
    cmd = [sys.executable, "-m", "pycontainerd.cli", "--address", cdaemon.address]
    attach = subprocess.Popen([*cmd, "tasks", "attach", "att"], stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not _holds(attach.pid, fifo):
            assert time.monotonic() < deadline and attach.poll() is None
            time.sleep(0.02)
        go = task.exec(
            "go", {"args": ["touch", "/tmp/go"], "cwd": "/", "env": ["PATH=/bin"]}, cio.null()
        )
        go.start()
        go.wait()
        go.delete()
        stdout, _ = attach.communicate(timeout=15)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    assert (attach.returncode, stdout) == (7, b"attached\n")
    task.delete()
    ctr.delete()


def _holds(pid: int, path: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            continue
    return False
