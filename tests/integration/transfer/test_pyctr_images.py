"""``pyctr images`` with ctr's argument order and flags, against the daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pycontainerd.client import Client
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import RegistryProcess

from .conftest import MULTI, ZSTD


def pyctr(daemon: DaemonProcess, namespace: str, *args: str) -> str:
    env = dict(os.environ, PYCONTAINERD_ADDRESS=daemon.address, PYCONTAINERD_NAMESPACE=namespace)
    done = subprocess.run(
        [sys.executable, "-m", "pycontainerd.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_images_pull_ls_tag_check_label_usage_export_import_rm_push(
    client: Client, daemon: DaemonProcess, pushed: RegistryProcess, workdir: Path
) -> None:
    ns, ref = client.namespace, f"{pushed.host}/{MULTI}"
    out = pyctr(
        daemon, ns, "images", "pull", "--plain-http", "--all-platforms", "--print-chainid", ref
    )
    lines = out.splitlines()
    assert any(line.startswith("downloading\tlayer-sha256:") for line in lines)  # not a TTY
    assert lines[-1] == f"image chain ID: {client.image(ref).rootfs()[-1]}"

    pyctr(daemon, ns, "images", "tag", ref, "example.com/copy:1")
    pushed_ref = f"{pushed.host}/cli/copy:3"
    pyctr(daemon, ns, "images", "push", "--plain-http", pushed_ref, "example.com/copy:1")
    pyctr(daemon, ns, "images", "pull", "--plain-http", "--skip-unpack", pushed_ref)
    names = pyctr(daemon, ns, "images", "ls", "-q").split()
    assert names == sorted(["example.com/copy:1", ref, pushed_ref])
    assert client.images.get(pushed_ref).target == client.images.get(ref).target
    pyctr(daemon, ns, "images", "rm", pushed_ref)
    table = pyctr(daemon, ns, "images", "ls").splitlines()
    assert table[0].split() == ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]
    assert "linux/amd64,linux/arm64" in table[1]

    check = json.loads(pyctr(daemon, ns, "--format", "json", "images", "check"))
    assert {c["ref"]: (c["status"], c["unpacked"]) for c in check} == {
        ref: ("complete", True),
        "example.com/copy:1": ("complete", True),
    }
    assert pyctr(daemon, ns, "images", "label", ref, "team=a").strip() == "team=a"
    assert client.images.get(ref).labels == {"team": "a"}
    usage = pyctr(daemon, ns, "images", "usage", ref).splitlines()
    assert [row.split()[0] for row in usage[1:]] == client.image(ref).rootfs()

    tarball = workdir / f"{ns}.tar"
    pyctr(daemon, ns, "images", "export", str(tarball), ref, "example.com/copy:1")
    assert tarball.stat().st_size > 0
    pyctr(daemon, ns, "images", "rm", "--sync", ref, "example.com/copy:1")
    assert pyctr(daemon, ns, "images", "ls", "-q") == ""
    out = pyctr(daemon, ns, "images", "import", "--no-unpack", str(tarball))
    imported = [line.split()[0] for line in out.splitlines() if "\t" not in line]
    assert set(imported) == {ref, "example.com/copy:1"}
    tarball.unlink()


def test_images_pull_a_platform_of_a_single_manifest_image(
    client: Client, daemon: DaemonProcess, pushed: RegistryProcess
) -> None:
    ref = f"{pushed.host}/{ZSTD}"
    out = pyctr(daemon, client.namespace, "--format", "json", "images", "pull", "--plain-http", ref)
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == f"Resolving from {ref}" and "saved" in events


def test_images_mount_and_unmount(
    client: Client, daemon: DaemonProcess, pushed: RegistryProcess, workdir: Path
) -> None:
    ns, ref = client.namespace, f"{pushed.host}/{MULTI}"
    client.pull(ref, plain_http=True, unpack=False)
    target = workdir / f"mnt-{ns}"
    target.mkdir()
    try:
        assert pyctr(daemon, ns, "images", "mount", ref, str(target)).strip() == str(target)
        assert (target / "etc" / "motd").read_bytes() == b"hello\n"
        assert [lease.id for lease in client.leases.list()] == [str(target)]
    finally:
        pyctr(daemon, ns, "images", "unmount", str(target))
    assert not os.path.ismount(target)
    assert list(os.listdir(target)) == []
    assert client.leases.list() == []
    assert str(target) not in {s.name for s in client.snapshots("overlayfs").walk()}
    target.rmdir()
