"""containerd 1.6 pulls what we push; its labels and snapshots are what we compute.

The real ``containerd`` runs on a temporary root with the native snapshotter;
``ctr images pull`` fetches our two-platform image from the test registry and
unpacks the host's manifest. Then the content labels it wrote (GC child refs,
``distribution.source``, ``uncompressed``, ``gc.ref.snapshot``) and the
snapshot names (ChainIDs) must equal :mod:`pycontainerd.images`' results.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.images import platforms
from pycontainerd.remotes import Resolver
from tests import imagebuild
from tests.requirements import require

from .registry import RegistryProcess

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")


class Containerd:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "c.sock"
        (base / "config.toml").write_text(
            "version = 2\n"
            f'root = "{base / "root"}"\n'
            f'state = "{base / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
        )
        self._log = (base / "containerd.log").open("wb")
        assert CONTAINERD is not None
        self.proc = subprocess.Popen(
            [CONTAINERD, "--config", str(base / "config.toml")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError((base / "containerd.log").read_text())
            time.sleep(0.05)

    def ctr(self, *args: str) -> str:
        assert CTR is not None
        done = subprocess.run(
            [CTR, "-a", str(self.socket), "-n", "conformance", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        root = str(self.base)
        with open("/proc/self/mounts") as mounts:
            leftover = [line.split()[1] for line in mounts if line.split()[1].startswith(root)]
        for target in sorted(leftover, reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    require("containerd", "containerd")
    require("ctr", "containerd")
    base = tmp_path_factory.mktemp("ctd", numbered=True)
    daemon = Containerd(base)
    yield daemon
    daemon.close()


def content_labels(listing: str) -> dict[str, dict[str, str]]:
    """``ctr content ls`` → digest → labels (single-repo label values only)."""
    out: dict[str, dict[str, str]] = {}
    for line in listing.splitlines()[1:]:
        fields = [f for f in line.split("\t") if f]
        labels: dict[str, str] = {}
        if len(fields) >= 4:
            for item in fields[-1].split(","):
                key, _, value = item.partition("=")
                labels[key] = value
        out[fields[0].strip()] = labels
    return out


async def test_containerd_pull_labels_and_chain_ids(
    registry: RegistryProcess, image: imagebuild.BuiltImage, containerd: Containerd
) -> None:
    ref = f"{registry.host}/conformance/busybox:1"
    async with Resolver() as resolver:
        await imagebuild.push_image(resolver, ref, image)

    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref)
    labels = content_labels(containerd.ctr("content", "ls"))

    source_key, source_value = images.distribution_source_label(
        {}, registry.host, "conformance/busybox"
    ) or ("", "")
    index = images.Index.parse(image.target.data)
    host = images.select_manifest(index, platforms.default_comparer())
    kids = images.children(host, image.blob(host.digest))
    config = images.ImageConfig.parse(image.blob(kids[0].digest))
    chain = images.chain_ids(config.diff_ids)

    def expect(digest: str, extra: dict[str, str]) -> None:
        assert labels[digest] == {source_key: source_value, **extra}, digest

    expect(image.target.desc.digest, images.child_labels(index.manifests))
    expect(host.digest, images.child_labels(kids))
    expect(kids[0].digest, {"containerd.io/gc.ref.snapshot.native": chain[-1]})
    for layer, diff_id in zip(kids[1:], config.diff_ids, strict=True):
        expect(layer.digest, {images.LABEL_UNCOMPRESSED: diff_id})

    snapshots = containerd.ctr("snapshots", "--snapshotter", "native", "ls").splitlines()[1:]
    parents = {}
    for line in snapshots:
        key, *parent, kind = line.split()
        assert kind == "Committed"
        parents[key] = parent[0] if parent else ""
    assert parents == {chain[0]: "", chain[1]: chain[0]}
