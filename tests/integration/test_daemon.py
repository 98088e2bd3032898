"""The daemon process: root lock, socket, signals, sd_notify, config, introspection."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from .daemon import DaemonProcess, RawConnection


def test_second_daemon_on_the_same_root_refuses_with_a_clear_message(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    other = DaemonProcess(daemon.base)
    other.address = str(tmp_path / "other.sock")
    other.log_path = tmp_path / "other.log"
    other.start(wait=False)
    assert other.proc is not None
    assert other.proc.wait(20) != 0
    assert f"pid {daemon.pid}" in other.log()
    assert "holds" in other.log()
    with RawConnection(daemon.address) as c:
        assert c.call("version.version", {})["version"]


def test_sigkilled_daemon_never_blocks_its_successor(daemon: DaemonProcess) -> None:
    daemon.kill()
    assert os.path.exists(daemon.address)  # the stale socket file is left behind
    daemon.start()
    with RawConnection(daemon.address) as c:
        assert c.call("version.version", {})["version"]


def test_socket_mode_0660_owned_by_root(daemon: DaemonProcess) -> None:
    st = os.stat(daemon.address)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == 0


def test_address_in_use_by_a_live_server_is_refused(base: Path, tmp_path: Path) -> None:
    first = DaemonProcess(base).start()
    try:
        second = DaemonProcess(tmp_path / "b")
        second.base.mkdir()
        second.address = first.address
        second.start(wait=False)
        assert second.proc is not None
        assert second.proc.wait(20) != 0
        assert "in use" in second.log()
    finally:
        first.stop()


def test_sigterm_is_graceful_and_notifies_systemd(base: Path) -> None:
    notify_path = str(base / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(20)
    try:
        d = DaemonProcess(base)
        d.env["NOTIFY_SOCKET"] = notify_path
        d.start()
        assert sock.recv(256) == b"READY=1"
        assert d.stop() == 0
        assert sock.recv(256) == b"STOPPING=1"
        assert not os.path.exists(d.address)
        assert "stopped" in d.log()
    finally:
        sock.close()


def test_sigusr1_dumps_the_actor_tree_and_task_stacks(daemon: DaemonProcess) -> None:
    os.kill(daemon.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "trio tasks" not in daemon.log():
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)
    log = daemon.log()
    assert "root/metadata" in log
    assert "actor tree" in log
    with RawConnection(daemon.address) as c:
        assert c.call("version.version", {})


def test_introspection_plugins_and_server(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        plugins = c.call("introspection.plugins", {})["plugins"]
        ids = {(p["type"], p["id"]) for p in plugins}
        assert ("io.containerd.metadata.v1", "sqlite") in ids
        assert ("io.containerd.event.v1", "exchange") in ids
        # btrfs is skipped unless the root is on btrfs, as in containerd
        failed = {p["id"]: p["init_err"]["code"] for p in plugins if p["init_err"] is not None}
        assert failed in ({}, {"btrfs": "FailedPrecondition"})
        only = c.call("introspection.plugins", {"filters": ['type=="io.containerd.event.v1"']})
        assert [p["id"] for p in only["plugins"]] == ["exchange"]
        server = c.call("introspection.server", {})
        assert server["pid"] == daemon.pid
        assert len(server["uuid"]) == 36
    daemon.stop()
    daemon.start()
    with RawConnection(daemon.address) as c:
        assert c.call("introspection.server", {})["uuid"] == server["uuid"]


def test_debug_actors_lists_the_live_tree(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        actors = c.call("debug.actors", {})["actors"]
    paths = {a["path"]: a for a in actors}
    assert "root/metadata" in paths and "root/events" in paths
    md = paths["root/metadata"]
    assert md["mailbox_capacity"] == 1024
    assert md["restarts"] == 0
    assert md["age_seconds"] > 0


def test_config_default_prints_toml_the_daemon_accepts(base: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pycontainerd.daemon", "config", "default"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "[rpc]" in out and "max_events" in out
    d = DaemonProcess(base)
    # The printed defaults, pointed at the temp dirs, start a daemon.
    text = out.replace("/var/lib/pycontainerd", str(d.root)).replace(
        "/run/pycontainerd", str(d.state)
    )
    d.config_path.write_text(text)
    d.start()
    assert d.stop() == 0


def test_bad_config_is_refused_with_the_key_named(base: Path) -> None:
    d = DaemonProcess(base)
    d.config_path.write_text("version = 2\n[rpc]\n  adress = '/x'\n")
    d.start(wait=False)
    assert d.proc is not None
    assert d.proc.wait(20) == 2
    assert "adress" in d.log()
