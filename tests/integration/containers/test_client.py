"""``new_container`` / ``new_task`` / ``cio`` with real runc on overlayfs rootfs."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pycontainerd import oci
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


def _run(client: Client, id: str, *args: str, opts: list[oci.SpecOpt] | None = None) -> bytes:
    """Run ``args`` in a new container to completion; its output (stdout and stderr)."""
    out = io.BytesIO()
    ctr = client.new_container(id, image=IMAGE, args=list(args), spec_opts=opts or [])
    task = ctr.new_task(cio.with_streams(None, out, out))
    task.start()
    code = task.wait().code
    task.delete()
    ctr.delete()
    return f"{code}:".encode() + out.getvalue()


def test_env_user_cwd_from_opts(client: Client) -> None:
    opts = [
        oci.with_env(["GREETING=from-opts", "EXTRA=1"]),
        oci.with_user("1000:2000"),
        oci.with_process_cwd("/tmp"),
    ]
    got = _run(
        client, "opts", "sh", "-c", 'echo "$GREETING $EXTRA $(id -u):$(id -g) $(pwd)"', opts=opts
    )
    assert got == b"0:from-opts 1 1000:2000 /tmp\n"


def test_user_name_from_the_image_passwd(client: Client, layout_tar: Path) -> None:
    from tests import imagebuild

    from .conftest import APPLETS, GROUP, PASSWD

    layers = [
        imagebuild.busybox_layer(applets=APPLETS),
        imagebuild.files_layer({"etc/passwd": PASSWD, "etc/group": GROUP}),
    ]
    built = imagebuild.build_image(layers, cmd=["id"], user="app", env=("PATH=/bin",))
    layout = built.write_oci_layout(layout_tar.parent / "user-layout")
    tarball = layout_tar.parent / "user.tar"
    with tarfile.open(tarball, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(layout / name, arcname=name)
    # not unpacked: new_container unpacks it (as `ctr run` does)
    [image] = client.import_(str(tarball), base_name="example.com/test/user", unpack=False)
    assert not image.is_unpacked()
    out = io.BytesIO()
    ctr = client.new_container("named-user", image=image)
    task = ctr.new_task(cio.with_streams(None, out, out))
    task.start()
    assert task.wait().code == 0
    task.delete()
    ctr.delete()
    assert out.getvalue() == b"uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n"
    client.images.delete(image.name)


def test_limits_applied_in_the_cgroup(client: Client) -> None:
    ctr = client.new_container(
        "limited",
        image=IMAGE,
        args=["sleep", "30"],
        spec_opts=[oci.with_memory_limit(64 << 20), oci.with_cpus(0.5)],
    )
    task = ctr.new_task(cio.null())
    task.start()
    try:
        memory = Path("/sys/fs/cgroup/memory/default/limited/memory.limit_in_bytes")
        cpu = Path("/sys/fs/cgroup/cpu/default/limited")
        assert int(memory.read_text()) == 64 << 20
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 50_000
        assert int((cpu / "cpu.cfs_period_us").read_text()) == 100_000
        assert task.pid in {p.pid for p in task.pids()}
        metric = task.metrics()
        assert metric.id == "limited" and metric.data is not None
    finally:
        task.kill(signal.SIGKILL)
        assert task.wait().code == 137
        task.delete()
        ctr.delete()
    assert not memory.parent.exists(), "the task's cgroup is left after delete"


def test_readonly_rootfs(client: Client) -> None:
    got = _run(client, "ro", "sh", "-c", "touch /x", opts=[oci.with_rootfs_readonly()])
    assert got.startswith(b"1:") and b"Read-only file system" in got
    assert _run(client, "rw", "sh", "-c", "touch /x && echo ok") == b"0:ok\n"


def test_joining_an_existing_netns(client: Client) -> None:
    name = f"pcd-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        link = ["ip", "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"]
        subprocess.run(link, check=True)
        opts = [oci.with_linux_namespace("network", f"/var/run/netns/{name}")]
        got = _run(client, "netns", "cat", "/proc/net/dev", opts=opts)
        assert got.startswith(b"0:") and b"probe0:" in got and b"probe1:" in got
        assert b"probe0:" not in _run(client, "own-netns", "cat", "/proc/net/dev")
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_signals_exec_pause_and_log_file(client: Client, tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    ctr = client.new_container(
        "sig",
        image=IMAGE,
        args=[
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; echo up; while :; do sleep 0.1; done",
        ],
    )
    task = ctr.new_task(cio.log_file(log))
    assert task.io is not None and task.io.config.stdout == f"file://{log}"
    task.start()
    _until(lambda: log.exists() and b"up" in log.read_bytes())
    out = io.BytesIO()
    probe = task.exec(
        "probe",
        {"args": ["sh", "-c", "echo $$; exit 2"], "cwd": "/", "env": ["PATH=/bin"]},
        cio.with_streams(None, out, None),
    )
    probe.start()
    assert probe.wait().code == 2
    assert probe.delete().code == 2
    assert out.getvalue().strip().isdigit()
    second = task.exec("probe2", {"args": ["/bin/true"], "cwd": "/"}, cio.null())
    with pytest.raises(errdefs.AlreadyExists):
        task.exec("probe2", {"args": ["/bin/true"], "cwd": "/"}, cio.null())
    second.start()
    assert second.wait().code == 0
    second.delete()
    task.pause()
    assert task.status().status == "paused"
    with pytest.raises(errdefs.FailedPrecondition):
        task.delete()
    task.resume()
    task.kill(signal.SIGTERM)
    status = task.wait()
    assert status.code == 9
    assert b"got-term" in log.read_bytes()
    with pytest.raises(errdefs.NotFound, match="already finished"):
        task.kill(signal.SIGKILL)
    task.delete()
    ctr.delete()


def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_terminal_and_resize(client: Client) -> None:
    out = io.BytesIO()
    ctr = client.new_container(
        "term",
        image=IMAGE,
        args=["sh", "-c", "stty size; tty; read x; echo got:$x"],
        spec_opts=[oci.with_tty()],
    )
    task = ctr.new_task(cio.with_streams(b"typed\n", out, terminal=True))
    assert task.io is not None and task.io.config.terminal and task.io.config.stderr == ""
    task.resize(120, 40)
    task.start()
    assert task.wait().code == 0
    task.delete()
    ctr.delete()
    text = out.getvalue()
    assert b"40 120\r\n" in text and b"got:typed\r\n" in text
    assert re.search(rb"/dev/pts/\d+\r\n", text)


def test_close_io_gives_eof(client: Client) -> None:
    out = io.BytesIO()
    ctr = client.new_container("eof", image=IMAGE, args=["sh", "-c", "cat; echo eof"])
    r, w = os.pipe()
    with os.fdopen(r, "rb") as stdin:
        task = ctr.new_task(cio.with_streams(stdin, out, None))
        task.start()
        os.write(w, b"line\n")
        _until(lambda: out.getvalue() == b"line\n")
        task.close_io()
        assert task.wait().code == 0
        task.delete()  # joins the copy threads, stdin's included
    os.close(w)
    ctr.delete()
    assert out.getvalue() == b"line\neof\n"


def test_containers_listing_and_labels(client: Client) -> None:
    a = client.new_container("list-a", image=IMAGE, labels={"team": "a"})
    client.new_container("list-b", image=IMAGE)
    assert sorted(c.id for c in client.containers()) == ["list-a", "list-b"]
    assert [c.id for c in client.containers('labels."team"==a')] == ["list-a"]
    assert a.set_labels({"team": "", "x": "1"}) == {"x": "1"}
    loaded = client.load_container("list-a")
    assert loaded.labels() == {"x": "1"} and loaded.image().name == IMAGE
    assert loaded.spec()["process"]["cwd"] == "/srv/www"
    with pytest.raises(errdefs.NotFound):
        client.load_container("nope")
    for c in client.containers():
        c.delete()
