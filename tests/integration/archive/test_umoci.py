"""Cross-check against an independent implementation: layers built by umoci.

umoci (``repack``) writes the layers; ``umoci unpack`` gives the reference tree.
Applying the same blobs with our applier must give the same tree bit for bit,
and our DiffIDs must equal the config's ``rootfs.diff_ids``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pycontainerd.archive import apply_layer, decompress_stream, write_diff
from tests.requirements import require
from tests.unit.archive.trees import snapshot

BUSYBOX = "/bin/busybox"


def umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True, capture_output=True)


def blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def manifest(layout: Path, tag: str) -> tuple[list[str], list[str]]:
    """The layer digests and the config's diff_ids of ``layout:tag``."""
    for entry in read_json(layout / "index.json")["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            man = read_json(blob(layout, entry["digest"]))
            config = read_json(blob(layout, man["config"]["digest"]))
            return [layer["digest"] for layer in man["layers"]], config["rootfs"]["diff_ids"]
    raise AssertionError(f"tag {tag} not in {layout}")


def touched_parents(layer: Path) -> set[str]:
    """Directories a layer writes into without an entry of their own."""
    import tarfile

    with tarfile.open(layer) as tf:
        names = [m.name.rstrip("/") for m in tf]
    parents = {os.path.dirname(name) for name in names} - {"", "."}
    return parents - set(names)


def first_rootfs(rootfs: Path) -> None:
    for name in ("bin", "etc/conf.d", "var/lib/data", "home/user", "dev"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    os.link(rootfs / "bin/busybox", rootfs / "bin/sh")
    os.symlink("busybox", rootfs / "bin/ls")
    os.symlink("/bin/busybox", rootfs / "bin/abs")
    (rootfs / "etc/passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc/conf.d/a").write_bytes(b"a" * 10_000)
    (rootfs / "etc/conf.d/b").write_bytes(b"b")
    (rootfs / "var/lib/data/blob").write_bytes(os.urandom(300_000))
    (rootfs / "home/user/.profile").write_bytes(b"PS1='$ '\n")
    os.chown(rootfs / "home/user", 1000, 1000)
    os.chown(rootfs / "home/user/.profile", 1000, 1000)
    os.chmod(rootfs / "bin/busybox", 0o4755)
    os.mkfifo(rootfs / "var/fifo")
    os.mknod(rootfs / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.setxattr(rootfs / "etc/passwd", "user.origin", b"test")
    os.mkdir(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "tmp", 0o1777)


def second_rootfs(rootfs: Path) -> None:
    os.remove(rootfs / "etc/conf.d/a")
    shutil.rmtree(rootfs / "var/lib")
    os.remove(rootfs / "bin/ls")
    (rootfs / "etc/passwd").write_bytes(b"root:x:0:0:root:/root:/bin/ash\n")
    (rootfs / "var/lib").mkdir()
    (rootfs / "var/lib/new").write_bytes(b"replaced")
    os.chmod(rootfs / "etc/conf.d", 0o700)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("umoci", "umoci")
    require(BUSYBOX, "busybox-static")
    work = tmp_path_factory.mktemp("umoci")
    layout = work / "layout"
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:t")
    for step, edit in enumerate((first_rootfs, second_rootfs)):
        bundle = work / f"bundle{step}"
        umoci("unpack", "--image", f"{layout}:t", str(bundle))
        edit(bundle / "rootfs")
        umoci("repack", "--image", f"{layout}:t", str(bundle))
        shutil.rmtree(bundle)
    umoci("unpack", "--image", f"{layout}:t", str(work / "reference"))
    return work


def test_layers_apply_like_umoci_unpack(image: Path, tmp_path: Path) -> None:
    layout = image / "layout"
    layers, diff_ids = manifest(layout, "t")
    assert len(layers) == 2
    ours = []
    for digest in layers:
        with open(blob(layout, digest), "rb") as f, decompress_stream(f) as stream:
            assert stream.compression == "gzip"
            ours.append(apply_layer(stream, tmp_path).diff_id)
    assert ours == diff_ids
    expected = snapshot(image / "reference/rootfs")
    got = snapshot(tmp_path)
    # umoci restores a directory's mtime after writing or whiting out inside it;
    # containerd (and we) leave the mtime the kernel gives unless the layer has
    # an entry for the directory itself. Only those directories may differ, and
    # only in mtime.
    touched = touched_parents(blob(layout, layers[1]))
    # umoci leaves a parent out when its mtime did not move within the second
    assert touched <= {"bin", "etc", "var"}  # e.g. bin/.wh.ls without a bin/ entry
    for name in touched:
        assert got[name][:3] + got[name][4:] == expected[name][:3] + expected[name][4:]
        got[name] = expected[name]
    assert got == expected
    assert "etc/conf.d/a" not in got and "var/lib/data" not in got and "bin/ls" not in got
    assert got["bin/sh"][-1] == ("bin/busybox", "bin/sh")  # hardlink identity kept


def test_second_layer_carries_whiteouts(image: Path) -> None:
    import tarfile

    layers, _ = manifest(image / "layout", "t")
    with tarfile.open(blob(image / "layout", layers[1])) as tf:
        names = tf.getnames()
    assert any(name.endswith(".wh.a") for name in names)
    assert any(name.endswith(".wh.ls") for name in names)


def test_our_diff_of_umoci_trees_reproduces_them(image: Path, tmp_path: Path) -> None:
    empty, target = tmp_path / "empty", tmp_path / "target"
    empty.mkdir()
    target.mkdir()
    reference = image / "reference/rootfs"
    out = io.BytesIO()
    write_diff(empty, reference, out)
    out.seek(0)
    apply_layer(out, target)
    assert snapshot(target) == snapshot(reference)


def write_layout(layout: Path, layers: list[tuple[bytes, str, str]]) -> None:
    """An OCI layout tagged ``ours`` with ``layers`` as (blob, media type, diff_id)."""
    import hashlib

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = blob(layout, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return digest

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, _, diff_id in layers]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": media_type, "digest": put(data), "size": len(data)}
                for data, media_type, _ in layers
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "ours"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def test_umoci_unpacks_our_layers(image: Path, tmp_path: Path) -> None:
    from pycontainerd.archive import compress

    empty, first, second = (tmp_path / n for n in ("empty", "first", "second"))
    for path in (empty, first, second):
        path.mkdir()
    first_rootfs(first)
    layers = []
    out = io.BytesIO()
    result = compress(lambda w: write_diff(empty, first, w), out, "gzip")
    layers.append((out.getvalue(), result.media_type, result.diff_id))
    out.seek(0)
    with decompress_stream(out) as stream:
        apply_layer(stream, second)
    second_rootfs(second)
    out = io.BytesIO()
    result = compress(lambda w: write_diff(first, second, w), out, "gzip")  # umoci 0.4: no zstd
    layers.append((out.getvalue(), result.media_type, result.diff_id))
    layout = tmp_path / "layout"
    write_layout(layout, layers)
    umoci("unpack", "--image", f"{layout}:ours", str(tmp_path / "bundle"))
    theirs = snapshot(tmp_path / "bundle/rootfs")
    target = tmp_path / "target"
    target.mkdir()
    for data, _, diff_id in layers:
        with decompress_stream(io.BytesIO(data)) as stream:
            assert apply_layer(stream, target).diff_id == diff_id
    ours = snapshot(target)
    assert "etc/conf.d/a" not in ours and "var/lib/new" in ours
    # our layers name every parent of a change, so even directory mtimes agree
    assert theirs == ours
