"""Shims outliving their launcher, dying, and being recovered; memory; other runtimes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import msgpack
import pytest

from pycontainerd import runtime, shim
from pycontainerd.api import errdefs
from tests.requirements import require

from .conftest import NAMESPACE, Harness, pid_alive, wait_until

LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from pycontainerd import oci, runtime, shim
    from pycontainerd.api.types import Mount
    state, root, rootfs, id = sys.argv[1:5]
    spec = oci.default_spec("shimtest", id)
    oci.apply(spec, oci.with_default_path_env(), oci.with_process_args("sleep", "60"))
    mounts = [Mount(type="bind", source=rootfs, options=["rbind", "rw"])]
    bundle = runtime.new_bundle(state, root, "shimtest", id, spec, mounts)
    shim = runtime.start_shim(bundle)
    pid = shim.create(bundle)
    shim.start()
    print(json.dumps({"address": shim.address, "pid": pid, "shim": shim.connect()["shim_pid"]}))
    sys.stdout.flush()
    time.sleep(600)
    """
)


def _vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_shim_survives_the_death_of_its_launcher(harness: Harness) -> None:
    id = "launched"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, harness.state, harness.root, str(harness.rootfs), id],
        stdout=subprocess.PIPE,
    )
    try:
        assert launcher.stdout is not None
        info = json.loads(launcher.stdout.readline())
    finally:
        launcher.kill()
        launcher.wait()
        assert launcher.stdout is not None
        launcher.stdout.close()
    bundle = runtime.load_bundle(harness.state, harness.root, NAMESPACE, id)
    harness._bundles.append(bundle)
    assert pid_alive(info["shim"]) and pid_alive(info["pid"])
    shim = runtime.ShimClient(info["address"], id)
    harness._shims.append(shim)
    assert shim.connect() == {
        "shim_pid": info["shim"],
        "task_pid": info["pid"],
        "version": "pycontainerd-shim/1",
    }
    assert shim.state()["status"] == "running"
    shim.kill(signal.SIGKILL)
    assert shim.wait(timeout=10).exit_status == 137
    shim.delete()
    shim.shutdown()
    assert wait_until(lambda: not pid_alive(info["shim"]))
    assert not os.path.exists(info["address"])


def test_killed_shim_is_reported_dead_by_load_existing(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    shim_pid = task.shim.connect()["shim_pid"]
    os.kill(shim_pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(shim_pid))
    with pytest.raises(errdefs.Unavailable):
        task.shim.state()
    # As with containerd's shim, the container outlives a SIGKILLed shim
    # until the dead shim's cleanup runs.
    assert pid_alive(task.pid)
    loaded = runtime.load_existing(harness.state, harness.root, connect_timeout=1.0)
    assert [(t.state, t.bundle.id) for t in loaded] == [("dead", task.id)]
    dead = loaded[0]
    # No exit was recorded: the cleanup's answer (128 + SIGKILL) is reported,
    # so that the daemon publishes /tasks/exit once.
    assert (dead.pid, dead.exit_status) == (task.pid, 137)
    assert dead.exited_at is not None
    assert wait_until(lambda: not pid_alive(task.pid))
    assert task.shim.address.startswith(os.path.join(harness.state, "s") + "/")
    assert not os.path.exists(task.shim.address)  # the dead shim's socket is gone too
    assert not os.path.exists(task.bundle.path)
    assert not os.path.exists(task.bundle.work_dir)


def test_load_existing_reconnects_live_and_stopped_cleans_deleted_and_leftovers(
    harness: Harness,
) -> None:
    live = harness.task("sleep", "60")
    exited = harness.task("sh", "-c", "exit 9")
    assert exited.shim.wait(timeout=10).exit_status == 9
    deleted = harness.task("sh", "-c", "exit 3")
    assert deleted.shim.wait(timeout=10).exit_status == 3
    deleted.shim.delete()  # the daemon died inside tasks.delete, before the shutdown
    deleted_shim_pid = deleted.shim.connect()["shim_pid"]
    empty = os.path.join(runtime.TASK_PLUGIN, NAMESPACE, "empty")
    os.makedirs(os.path.join(harness.state, empty))
    os.makedirs(os.path.join(harness.root, runtime.TASK_PLUGIN, NAMESPACE, "stale-work"))
    os.makedirs(os.path.join(harness.state, runtime.TASK_PLUGIN, NAMESPACE, ".half-deleted"))

    loaded = {t.bundle.id: t for t in runtime.load_existing(harness.state, harness.root)}
    assert set(loaded) == {live.id, exited.id, deleted.id}
    assert loaded[live.id].state == "live"
    shim = loaded[live.id].shim
    assert shim is not None
    try:
        assert shim.connect()["task_pid"] == live.pid
        assert shim.state()["status"] == "running"
    finally:
        shim.close()
    # ended while the daemon was down: kept, stopped, until deleted (as containerd)
    stopped = loaded[exited.id]
    assert stopped.state == "live" and stopped.shim is not None
    try:
        st = stopped.shim.state()
        assert (st["status"], st["exit_status"], st["pid"]) == ("stopped", 9, exited.pid)
    finally:
        stopped.shim.close()
    assert os.path.exists(exited.bundle.path)
    gone = loaded[deleted.id]
    assert (gone.state, gone.known, gone.pid, gone.exit_status) == (
        "deleted",
        True,
        deleted.pid,
        3,
    )
    assert not os.path.exists(deleted.bundle.path)
    assert wait_until(lambda: not pid_alive(deleted_shim_pid))
    assert not os.path.exists(os.path.join(harness.state, empty))
    assert not os.path.exists(
        os.path.join(harness.root, runtime.TASK_PLUGIN, NAMESPACE, "stale-work")
    )
    assert os.path.exists(live.bundle.work_dir)


def test_shim_memory(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    task.shim.exec("x", {"args": ["true"], "cwd": "/", "env": []})
    shim_pid = task.shim.connect()["shim_pid"]
    rss = _vm_rss_kib(shim_pid)
    print(f"\nshim VmRSS with one running container: {rss} KiB ({rss / 1024:.1f} MiB)")
    assert rss < 40 * 1024


def test_other_runtime_binary_crun(harness: Harness) -> None:
    crun = require("crun", "crun")
    try:
        task = harness.task("sh", "-c", "exit 4", options={"binary_name": crun})
    except errdefs.ErrdefsError as exc:
        pytest.skip(f"crun refuses this host: {exc}")
    assert task.shim.wait(timeout=10).exit_status == 4
    with open(os.path.join(task.bundle.path, shim.OPTIONS_FILE), "rb") as f:
        assert msgpack.unpackb(f.read())["binary_name"] == crun


def test_missing_runtime_binary_is_not_found(harness: Harness) -> None:
    with pytest.raises(errdefs.NotFound, match="no-such-runc"):
        harness.task("true", options={"binary_name": "no-such-runc"})


def test_checkpoint_reports_criu_errors(harness: Harness) -> None:
    task = harness.task("sleep", "60")
    image = os.path.join(harness.base, "checkpoint")
    try:
        task.shim.checkpoint(image, {"exit": False})
    except errdefs.FailedPrecondition as exc:
        assert "checkpoint failed" in exc.message
        assert len(exc.message) > len("runc checkpoint failed: ")
        pytest.skip(f"criu cannot checkpoint on this host: {exc.message}")
    assert os.listdir(image)
    assert task.shim.state()["status"] == "running"


def test_runtime_create_error_is_runc_message(harness: Harness) -> None:
    with pytest.raises(errdefs.ErrdefsError, match="no-such-program") as info:
        harness.task("no-such-program")
    assert "runc create failed" in info.value.message
