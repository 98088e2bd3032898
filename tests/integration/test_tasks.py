"""``tasks.*`` through the daemon with real shims and runc: the lifecycle, exec,
signals, pause, metrics, the state machine's errors, the events (each exit
journalled once), and a daemon killed with SIGKILL while its tasks run."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import oci
from pycontainerd.api import errdefs
from pycontainerd.client import Client

from .daemon import DaemonProcess

APPLETS = ("sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "hostname")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox-rootfs")
    for d in ("bin", "etc", "proc", "sys", "dev", "run", "tmp"):
        (root / d).mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def _container(c: Client, id: str, rootfs: Path, *args: str) -> list[dict[str, Any]]:
    spec = oci.default_spec(c.namespace, id)
    oci.apply(
        spec, oci.with_default_path_env(), oci.with_process_args(*args), oci.with_hostname(id)
    )
    c.containers.create(id, spec=spec)
    return [{"type": "bind", "source": str(rootfs), "options": ["rbind", "ro"]}]


def _task(c: Client, id: str, rootfs: Path, out: Path, *args: str) -> int:
    mounts = _container(c, id, rootfs, *args)
    req = {
        "container_id": id,
        "rootfs": mounts,
        "stdout": f"file://{out}",
        "stderr": f"file://{out}",
    }
    return int(c.call("tasks.create", req)["pid"])


def _wait(c: Client, id: str, exec_id: str = "") -> dict[str, Any]:
    result: dict[str, Any] = c.call("tasks.wait", {"container_id": id, "exec_id": exec_id})
    return result


def test_run_to_completion_with_events(daemon: DaemonProcess, rootfs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    with Client(daemon.address, namespace="lifecycle") as c:
        pid = _task(c, "hello", rootfs, out, "sh", "-c", "echo hello from $(hostname); exit 3")
        assert pid > 0
        got = c.call("tasks.get", {"container_id": "hello"})["process"]
        assert got["status"] == "created" and got["pid"] == pid
        with pytest.raises(errdefs.FailedPrecondition):
            c.call("tasks.pause", {"container_id": "hello"})
        assert c.call("tasks.start", {"container_id": "hello"})["pid"] == pid
        status = _wait(c, "hello")
        assert status["exit_status"] == 3 and status["exited_at"] is not None
        assert out.read_text() == "hello from hello\n"
        with pytest.raises(errdefs.NotFound, match="already finished"):
            c.call("tasks.kill", {"container_id": "hello", "signal": 9})
        deleted = c.call("tasks.delete", {"container_id": "hello"})
        assert deleted["exit_status"] == 3 and deleted["pid"] == pid
        with pytest.raises(errdefs.NotFound):
            c.call("tasks.get", {"container_id": "hello"})
        topics = []
        for e in c.subscribe(['namespace=="lifecycle",topic~="/tasks/"'], since=0):
            topics.append(e.topic)
            if e.topic == "/tasks/delete":
                break
        assert topics == ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]
        c.containers.delete("hello")


def test_exec_signals_pause_and_metrics(
    daemon: DaemonProcess, rootfs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.log"
    with Client(daemon.address, namespace="tasks2") as c:
        _task(c, "sleeper", rootfs, out, "sleep", "300")
        c.call("tasks.start", {"container_id": "sleeper"})
        with pytest.raises(errdefs.FailedPrecondition):
            c.call("tasks.start", {"container_id": "sleeper"})
        with pytest.raises(errdefs.AlreadyExists):
            c.call("tasks.create", {"container_id": "sleeper"})
        exec_out = tmp_path / "exec.log"
        process = {"args": ["sh", "-c", "echo exec; exit 7"], "cwd": "/", "env": ["PATH=/bin"]}
        with pytest.raises(errdefs.InvalidArgument):
            c.call("tasks.exec", {"container_id": "sleeper", "exec_id": "", "spec": {}})
        c.call(
            "tasks.exec",
            {
                "container_id": "sleeper",
                "exec_id": "probe",
                "stdout": f"file://{exec_out}",
                "spec": {
                    "type_url": "types.containerd.io/opencontainers/runtime-spec/1/Process",
                    "value": process,
                },
            },
        )
        c.call("tasks.start", {"container_id": "sleeper", "exec_id": "probe"})
        assert _wait(c, "sleeper", "probe")["exit_status"] == 7
        assert exec_out.read_text() == "exec\n"
        c.call("tasks.delete_process", {"container_id": "sleeper", "exec_id": "probe"})
        pids = c.call("tasks.list_pids", {"container_id": "sleeper"})["processes"]
        assert len(pids) >= 1
        c.call("tasks.pause", {"container_id": "sleeper"})
        assert c.call("tasks.get", {"container_id": "sleeper"})["process"]["status"] == "paused"
        with pytest.raises(errdefs.FailedPrecondition):
            c.call("tasks.delete", {"container_id": "sleeper"})
        c.call("tasks.resume", {"container_id": "sleeper"})
        listed = c.call("tasks.list", {})["tasks"]
        assert [(t["container_id"], t["status"]) for t in listed] == [("sleeper", "running")]
        metrics = c.call("tasks.metrics", {"filters": ["id==sleeper"]})["metrics"]
        assert [m["id"] for m in metrics] == ["sleeper"] and metrics[0]["data"]["value"]
        c.call("tasks.kill", {"container_id": "sleeper", "signal": 9})
        assert _wait(c, "sleeper")["exit_status"] == 137
        c.call("tasks.delete", {"container_id": "sleeper"})
        c.containers.delete("sleeper")


def test_tasks_survive_a_daemon_killed_and_exits_are_published_once(
    base: Path, rootfs: Path, tmp_path: Path
) -> None:
    d = DaemonProcess(base).start()
    try:
        out = tmp_path / "out.log"
        with Client(d.address, namespace="survive") as c:
            _task(c, "keeper", rootfs, out, "sleep", "300")
            pid = c.call("tasks.start", {"container_id": "keeper"})["pid"]
            _task(c, "quitter", rootfs, out, "sh", "-c", "sleep 1; exit 5")
            c.call("tasks.start", {"container_id": "quitter"})
        d.kill()
        os.kill(pid, 0)  # the container runs on under its shim
        time.sleep(1.5)  # "quitter" exits while the daemon is down
        d.start()
        with Client(d.address, namespace="survive") as c:
            listed = {t["container_id"]: t for t in c.call("tasks.list", {})["tasks"]}
            # as containerd: a task whose container ended while the daemon was down
            # stays, stopped, until deleted; its exit is published once
            assert sorted(listed) == ["keeper", "quitter"]
            assert listed["keeper"]["status"] == "running" and listed["keeper"]["pid"] == pid
            assert (listed["quitter"]["status"], listed["quitter"]["exit_status"]) == ("stopped", 5)
            assert _wait(c, "quitter")["exit_status"] == 5
            c.call("tasks.kill", {"container_id": "keeper", "signal": 9})
            assert _wait(c, "keeper")["exit_status"] == 137
            c.call("tasks.delete", {"container_id": "keeper"})
            assert c.call("tasks.delete", {"container_id": "quitter"})["exit_status"] == 5
            statuses = {}
            for e in c.subscribe(['namespace=="survive",topic=="/tasks/exit"'], since=0):
                statuses[e.event["container_id"]] = e.event["exit_status"]
                if len(statuses) == 2:
                    break
            assert statuses == {"quitter": 5, "keeper": 137}
            journal = _journal(c, 'namespace=="survive",topic~="^/tasks/(exit|delete)$"')
            assert sorted(journal) == [
                ("/tasks/delete", "keeper"),
                ("/tasks/delete", "quitter"),
                ("/tasks/exit", "keeper"),
                ("/tasks/exit", "quitter"),
            ]
    finally:
        d.stop()
        d.reap()


def _journal(c: Client, flt: str) -> list[tuple[str, str]]:
    """Every journalled event matching ``flt``, up to a marker published now."""
    marker = "/tasks-test/marker"
    c.publish(marker, {"end": True})
    seen = []
    for e in c.subscribe([flt, f'topic=="{marker}"'], since=0):
        if e.topic == marker:
            break
        seen.append((e.topic, e.event["container_id"]))
    return seen
