"""Starting shims without a ``start`` interpreter: exec'd or forked by the fork server."""

from __future__ import annotations

import os
import signal
import uuid

from pycontainerd import runtime

from .conftest import Harness, pid_alive, wait_until


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_an_execd_shim_runs_a_task_and_is_reaped(harness: Harness) -> None:
    id = f"x-{uuid.uuid4().hex[:8]}"
    bundle = harness.bundle(harness.spec("sh", "-c", "exit 3", id=id), id)
    shim = runtime.start_shim(bundle, fork=False)
    harness._shims.append(shim)
    shim_pid = int(shim.connect()["shim_pid"])
    assert _ppid(shim_pid) == os.getpid() and os.getsid(shim_pid) == shim_pid
    with open(os.path.join(bundle.path, runtime.SHIM_BINARY_FILE)) as f:
        assert runtime.shim_command()[0] in f.read()
    shim.create(bundle)
    shim.start()
    assert shim.wait(timeout=10).exit_status == 3
    assert shim.delete().exit_status == 3
    shim.shutdown()
    # Our child: the daemon's reaper waits for it, no zombie is left.
    assert wait_until(lambda: not os.path.exists(f"/proc/{shim_pid}"))


def test_a_forked_task_outlives_its_fork_server(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    shim_pid = int(task.shim.connect()["shim_pid"])
    zygote = runtime.FORK_SERVER.pid
    assert zygote and _ppid(shim_pid) == zygote
    with open(f"/proc/{shim_pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    assert argv[-3:] == ["-bundle", task.bundle.path, "serve"]
    assert argv[argv.index("-id") + 1] == task.id
    os.kill(zygote, signal.SIGKILL)
    assert wait_until(lambda: not os.path.exists(f"/proc/{zygote}"))
    assert task.shim.state()["status"] == "running"
    task.shim.kill(signal.SIGKILL)
    assert task.shim.wait(timeout=10).exit_status == 137
    # The next task is exec'd (the dead fork server is found), the one after forked again.
    after = [harness.task("true") for _ in range(2)]
    parents = [_ppid(int(t.shim.connect()["shim_pid"])) for t in after]
    assert parents[0] == os.getpid()
    assert parents[1] == runtime.FORK_SERVER.pid not in (0, zygote)
    for t in after:
        assert t.shim.wait(timeout=10).exit_status == 0
    assert pid_alive(shim_pid)
