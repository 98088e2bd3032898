"""The differ: ``diff.apply`` and ``diff.diff`` through the daemon, and the
walking differ with real overlayfs snapshots."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.types import Descriptor, Mount
from pycontainerd.client import Client
from pycontainerd.content import LocalStore
from pycontainerd.diff import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, WalkingDiffer
from pycontainerd.metadata import ContentStore, Database, DirectRunner
from pycontainerd.snapshots import OverlaySnapshotter

from .daemon import DaemonProcess

ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    """A tar: (name, data or None for a dir, symlink target or "")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_text()
    return out


BASE = layer([("etc", None, ""), ("etc/hostname", b"base\n", ""), ("bin", None, "")])
BASE += b"\0" * 512  # trailing bytes after the end blocks count in the DiffID
TOP = layer(
    [
        ("etc/hostname", b"top\n", ""),
        ("etc/.wh.gone", b"", ""),
        ("bin/sh", None, "busybox"),
        ("app", None, ""),
        ("app/main", b"print(1)\n", ""),
    ]
)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[OverlaySnapshotter, ContentStore, WalkingDiffer]]:
    db = Database.open(tmp_path / "meta.db")
    content = ContentStore(DirectRunner(db), LocalStore(tmp_path / "content"), "diff")
    sn = OverlaySnapshotter(tmp_path / "overlayfs")
    yield sn, content, WalkingDiffer(tmp_path / "tmpmounts")
    sn.close()
    db.close()


def _put(content: ContentStore, data: bytes) -> Descriptor:
    with content.writer(f"put-{digest(data)}") as w:
        w.write(data)
        w.commit(len(data), digest(data), ROOT)
    return Descriptor(media_type=LAYER_GZIP, digest=digest(data), size=len(data))


def test_apply_two_layers_into_overlay_snapshots_and_diff_them_back(
    stores: tuple[OverlaySnapshotter, ContentStore, WalkingDiffer], tmp_path: Path
) -> None:
    sn, content, differ = stores
    base_blob = _put(content, gzip.compress(BASE))
    top_blob = _put(content, TOP)  # uncompressed: detected by magic
    applied = differ.apply(base_blob, sn.prepare("a", ""), content)
    assert applied == Descriptor(media_type=LAYER_TAR, digest=digest(BASE), size=len(BASE))
    sn.commit("base", "a")
    mounts = sn.prepare("b", "base")
    assert mounts[0].type == "overlay"  # applied straight into the upper dir
    assert differ.apply(top_blob, mounts, content).digest == digest(TOP)
    sn.commit("top", "b")
    view = sn.view("v", "top")
    from pycontainerd.mount import with_readonly_temp_mount

    with with_readonly_temp_mount(view, temp_dir=tmp_path) as root:
        assert tree(Path(root)) == {
            "etc": "dir",
            "etc/hostname": "top\n",
            "bin": "dir",
            "bin/sh": "-> busybox",
            "app": "dir",
            "app/main": "print(1)\n",
        }
    # diff base → top and apply the result onto a fresh child of base: same tree
    for media_type in (LAYER_GZIP, LAYER_ZSTD, LAYER_TAR):
        sn.view(f"lower-{media_type}", "base")
        desc = differ.compare(
            sn.mounts(f"lower-{media_type}"),
            view,
            content,
            media_type=media_type,
            labels={"x": "y"},
        )
        info = content.info(desc.digest)
        assert info.labels["containerd.io/uncompressed"].startswith("sha256:")
        assert info.labels["x"] == "y"
        again = sn.prepare(f"again-{media_type}", "base")
        applied = differ.apply(desc, again, content)
        assert applied.digest == info.labels["containerd.io/uncompressed"]
        sn.commit(f"again-top-{media_type}", f"again-{media_type}")
        with with_readonly_temp_mount(
            sn.view(f"check-{media_type}", f"again-top-{media_type}"), temp_dir=tmp_path
        ) as root:
            assert tree(Path(root))["bin/sh"] == "-> busybox"
            assert tree(Path(root))["etc/hostname"] == "top\n"


def test_a_hostile_layer_writes_nothing_outside_and_the_snapshot_stays_removable(
    stores: tuple[OverlaySnapshotter, ContentStore, WalkingDiffer], tmp_path: Path
) -> None:
    sn, content, differ = stores
    outside = tmp_path / "outside"
    hostile = [
        layer([("../../../../outside/pwned", b"x", "")]),
        layer([("escape", None, str(outside)), ("escape/pwned", b"x", "")]),
        gzip.compress(BASE)[:60],  # a truncated gzip stream
    ]
    for i, data in enumerate(hostile):
        blob = _put(content, data)
        mounts = sn.prepare(f"hostile-{i}", "")
        if i == 1:
            # containerd resolves an absolute symlink inside the root: the file
            # lands under the snapshot, never at the real path
            differ.apply(blob, mounts, content)
        else:
            with pytest.raises((errdefs.InvalidArgument, errdefs.DataLoss)):
                differ.apply(blob, mounts, content)
        assert not outside.exists()
        sn.remove(f"hostile-{i}")
    with pytest.raises(errdefs.NotFound):
        differ.apply(
            Descriptor(media_type=LAYER_GZIP, digest=digest(b"absent"), size=6),
            sn.prepare("absent", ""),
            content,
        )
    with pytest.raises(errdefs.NotImplemented_):
        differ.compare([], sn.mounts("absent"), content, media_type="application/x-rar")


def test_diff_service_over_the_wire(daemon: DaemonProcess, tmp_path: Path) -> None:
    lower, upper, work, target = (tmp_path / n for n in ("lower", "upper", "work", "target"))
    for d in (lower, upper, work, target):
        d.mkdir()
    with Client(daemon.address, namespace="differ") as c:
        blob = gzip.compress(BASE)
        with c.content.writer("base-layer") as w:
            w.write(blob)
            w.commit(len(blob), digest(blob), ROOT)
        desc = {"media_type": LAYER_GZIP, "digest": digest(blob), "size": len(blob)}
        bind = {"type": "bind", "source": str(lower), "options": ["rw", "rbind"]}
        applied = c.call("diff.apply", {"diff": desc, "mounts": [bind]})["applied"]
        assert applied == {
            "media_type": LAYER_TAR,
            "digest": digest(BASE),
            "size": len(BASE),
            "annotations": {},
        }
        assert tree(lower)["etc/hostname"] == "base\n"
        # an overlay with an upper dir: TOP lands in the upper dir, whiteouts converted
        top = TOP
        with c.content.writer("top-layer") as w:
            w.write(top)
            w.commit(len(top), digest(top), ROOT)
        overlay = Mount(
            type="overlay",
            source="overlay",
            options=[f"workdir={work}", f"upperdir={upper}", f"lowerdir={lower}"],
        )
        req = {
            "diff": {"media_type": LAYER_TAR, "digest": digest(top), "size": len(top)},
            "mounts": [
                {"type": overlay.type, "source": overlay.source, "options": overlay.options}
            ],
        }
        assert c.call("diff.apply", req)["applied"]["digest"] == digest(top)
        assert (upper / "app" / "main").read_text() == "print(1)\n"
        assert not (lower / "app").exists()
        # diff.diff: lower → (lower + upper) as an overlay, read-only
        produced = c.call(
            "diff.diff",
            {
                "left": [{"type": "bind", "source": str(lower), "options": ["ro", "rbind"]}],
                "right": [
                    {
                        "type": "overlay",
                        "source": "overlay",
                        "options": [f"lowerdir={upper}:{lower}"],
                    }
                ],
                "media_type": LAYER_ZSTD,
                "labels": {"made-by": "test"},
            },
        )["diff"]
        assert produced["media_type"] == LAYER_ZSTD
        info = c.content.info(produced["digest"])
        assert info.size == produced["size"]
        assert info.labels["made-by"] == "test"
        # a hostile layer over the wire: a clear error, nothing outside, daemon serving
        evil = layer([("../escaped", b"x", "")])
        with c.content.writer("evil") as w:
            w.write(evil)
            w.commit(len(evil), digest(evil), ROOT)
        bad = {
            "diff": {"media_type": LAYER_TAR, "digest": digest(evil), "size": len(evil)},
            "mounts": [{"type": "bind", "source": str(target), "options": ["rw", "rbind"]}],
        }
        with pytest.raises(errdefs.InvalidArgument):
            c.call("diff.apply", bad)
        assert not (tmp_path / "escaped").exists()
        with pytest.raises(errdefs.NotImplemented_):
            c.call("diff.diff", {"right": [bind], "media_type": "text/plain"})
        with pytest.raises(errdefs.NotFound):
            c.call("diff.apply", {"diff": {"digest": digest(b"nope")}, "mounts": [bind]})
        assert c.version().version
