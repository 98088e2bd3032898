"""Tarballs both ways with Debian's containerd 1.6: ``ctr images import`` of our
export (and a container run from it), and our import of ``ctr images export``
(and a container run from that)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import oci
from pycontainerd.client import Client
from tests.integration.remotes.registry import RegistryProcess
from tests.integration.remotes.test_containerd_conformance import Containerd
from tests.requirements import require

from .conftest import MULTI, ZSTD


@pytest.fixture(scope="module")
def containerd(workdir: Path) -> Iterator[Containerd]:
    require("containerd", "containerd")
    require("ctr", "containerd")
    base = workdir / "ctd"
    base.mkdir()
    daemon = Containerd(base)
    yield daemon
    daemon.close()


def test_ctr_imports_and_runs_our_export(
    client: Client, pushed: RegistryProcess, containerd: Containerd, workdir: Path
) -> None:
    ref = f"{pushed.host}/{MULTI}"
    client.pull(ref, plain_http=True, unpack=False)
    tarball = workdir / "ours.tar"
    client.export(str(tarball), [ref])
    try:
        containerd.ctr("images", "import", "--snapshotter", "native", str(tarball))
    finally:
        tarball.unlink()
    assert ref in containerd.ctr("images", "ls", "-q").split()
    out = containerd.ctr(
        "run", "--rm", "--snapshotter", "native", ref, "interop-run", "/bin/cat", "/etc/motd"
    )
    assert out == "hello\n"


def test_we_import_ctr_export(
    client: Client, pushed: RegistryProcess, containerd: Containerd, workdir: Path
) -> None:
    ref = f"{pushed.host}/{ZSTD}"
    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref)
    tarball = workdir / "theirs.tar"
    containerd.ctr("images", "export", str(tarball), ref)
    try:
        [image] = client.import_(str(tarball))
    finally:
        tarball.unlink()
    assert image.name == ref
    rows = [line.split() for line in containerd.ctr("images", "ls").splitlines()[1:]]
    assert [row[2] for row in rows if row[0] == ref] == [image.target.digest]
    assert image.is_unpacked()
    # ... and runs: a container on a snapshot of the imported image's top layer
    out = workdir / "run.out"
    snapshots = client.snapshots("overlayfs")
    snapshots.prepare("interop-rootfs", image.rootfs()[-1])
    spec = oci.apply(
        oci.default_spec(client.namespace, "interop-run"),
        oci.with_default_path_env(),
        oci.with_process_args("/bin/sh", "-c", "echo ran from the ctr export"),
    )
    client.containers.create(
        "interop-run", spec=spec, snapshotter="overlayfs", snapshot_key="interop-rootfs"
    )
    try:
        client.call("tasks.create", {"container_id": "interop-run", "stdout": f"file://{out}"})
        client.call("tasks.start", {"container_id": "interop-run"})
        status = client.call("tasks.wait", {"container_id": "interop-run"})
        assert status["exit_status"] == 0
        assert out.read_text() == "ran from the ctr export\n"
        client.call("tasks.delete", {"container_id": "interop-run"})
    finally:
        client.containers.delete("interop-run")
        snapshots.remove("interop-rootfs")
