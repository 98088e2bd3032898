from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from pycontainerd.api import errdefs
from pycontainerd.archive import Change, Compression, changes, compress, write_changes, write_diff

from .trees import apply_bytes, set_mtimes, sha256, snapshot

EPOCH = 1_700_000_000


def build(root: Path) -> None:
    """A tree with one of everything a rootless layer can carry."""
    (root / "etc/conf.d").mkdir(parents=True)
    (root / "etc/passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/conf.d/a").write_bytes(b"a" * 70_000)
    (root / "empty").mkdir()
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(os.urandom(200_000))
    os.chmod(root / "bin/busybox", 0o4755)
    os.link(root / "bin/busybox", root / "bin/sh")
    os.link(root / "bin/busybox", root / "etc/ls")
    os.symlink("busybox", root / "bin/ash")
    os.symlink("/etc/passwd", root / "etc/abs")
    os.mkdir(root / "tmp", 0o1777)
    os.chmod(root / "tmp", 0o1777)
    os.mkfifo(root / "tmp/fifo", 0o640)
    (root / "x").write_bytes(b"xattrs")
    os.setxattr(root / "x", "user.mime", b"text/plain")
    os.setxattr(root / "etc", "user.dir", b"\xff\x00binary")
    (root / ("long-" + "n" * 120)).write_bytes(b"long name")
    (root / "caf\u00e9").write_bytes(b"utf8 name")
    for i, path in enumerate(sorted(root.rglob("*"), reverse=True)):
        os.utime(path, (EPOCH - i * 100, EPOCH - i * 100), follow_symlinks=False)


def names_in(layer: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        return tf.getnames()


def diff_bytes(lower: Path, upper: Path, epoch: int | None = None) -> bytes:
    out = io.BytesIO()
    write_diff(lower, upper, out, source_date_epoch=epoch)
    return out.getvalue()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    made = {name: tmp_path / name for name in ("empty", "lower", "upper", "target")}
    for path in made.values():
        path.mkdir()
    return made


def test_round_trip_against_empty_lower(dirs: dict[str, Path]) -> None:
    build(dirs["upper"])
    layer = diff_bytes(dirs["empty"], dirs["upper"])
    result = apply_bytes(layer, dirs["target"])
    assert result.diff_id == sha256(layer)
    assert snapshot(dirs["target"]) == snapshot(dirs["upper"])
    names = names_in(layer)
    assert names.index("bin") < names.index("bin/ash") < names.index("bin/busybox")
    assert names.index("etc") < names.index("etc/abs") < names.index("etc/conf.d")
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        links = {m.name: m.linkname for m in tf if m.islnk()}
    assert links == {"bin/sh": "bin/busybox", "etc/ls": "bin/busybox"}


def modify(upper: Path) -> None:
    (upper / "etc/passwd").write_bytes(b"root:x:0:0:root:/root:/bin/ash\n")
    os.remove(upper / "etc/conf.d/a")  # the only change in etc/conf.d: parent is included
    (upper / "etc/conf.d/b").write_bytes(b"b")
    os.rmdir(upper / "empty")
    (upper / "empty").write_bytes(b"dir became a file")
    os.remove(upper / "x")
    os.mkdir(upper / "x")  # file became a dir
    (upper / "x/inside").write_bytes(b"i")
    os.chmod(upper / "bin/busybox", 0o755)  # mode change of a hardlinked file
    os.link(upper / "etc/passwd", upper / "etc/passwd-")
    os.remove(upper / "bin/ash")
    os.symlink("sh", upper / "bin/ash")
    os.setxattr(upper / "etc", "user.dir", b"changed")
    os.mkfifo(upper / "fifo2")
    changed = ("etc/passwd", "etc/conf.d/b", "empty", "x", "x/inside", "bin/ash", "fifo2")
    for path in (*changed, "etc", "bin", "etc/passwd-"):
        os.utime(upper / path, (EPOCH + 5, EPOCH + 5), follow_symlinks=False)
    os.utime(upper / "etc/conf.d", (EPOCH + 6, EPOCH + 6))


def test_round_trip_against_modified_lower(dirs: dict[str, Path]) -> None:
    build(dirs["empty"])
    base = diff_bytes(dirs["lower"], dirs["empty"])  # "lower" is still empty here
    for name in ("lower", "upper", "target"):
        apply_bytes(base, dirs[name])
    assert snapshot(dirs["upper"]) == snapshot(dirs["empty"])
    modify(dirs["upper"])
    layer = diff_bytes(dirs["lower"], dirs["upper"])
    apply_bytes(layer, dirs["target"])
    assert snapshot(dirs["target"]) == snapshot(dirs["upper"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        names = tf.getnames()
    assert "etc/conf.d/.wh.a" in names
    assert "etc/conf.d" in names  # unchanged parent of a change, written first
    assert names.index("etc/conf.d") < names.index("etc/conf.d/.wh.a")
    assert "tmp" not in names  # unchanged subtree stays out
    assert "etc/abs" not in names


def test_deleted_dir_is_one_whiteout(dirs: dict[str, Path]) -> None:
    (dirs["lower"] / "gone/deep").mkdir(parents=True)
    (dirs["lower"] / "gone/deep/f").write_bytes(b"f")
    with tarfile.open(fileobj=io.BytesIO(diff_bytes(dirs["lower"], dirs["upper"]))) as tf:
        members = tf.getmembers()
    assert [(m.name, m.type, m.mode, m.mtime) for m in members] == [
        (".wh.gone", tarfile.REGTYPE, 0, 0)
    ]


def test_unchanged_trees_give_an_empty_layer(dirs: dict[str, Path]) -> None:
    build(dirs["lower"])
    base = diff_bytes(dirs["empty"], dirs["lower"])
    apply_bytes(base, dirs["upper"])
    with tarfile.open(fileobj=io.BytesIO(diff_bytes(dirs["lower"], dirs["upper"]))) as tf:
        assert tf.getnames() == []


def test_hardlink_to_unmodified_file_links_to_the_new_name(dirs: dict[str, Path]) -> None:
    (dirs["lower"] / "a").write_bytes(b"shared")
    os.utime(dirs["lower"] / "a", (EPOCH, EPOCH))  # whole seconds: what a layer keeps
    os.link(dirs["lower"] / "a", dirs["lower"] / "b")
    apply_bytes(diff_bytes(dirs["empty"], dirs["lower"]), dirs["upper"])
    apply_bytes(diff_bytes(dirs["empty"], dirs["lower"]), dirs["target"])
    os.link(dirs["upper"] / "a", dirs["upper"] / "c")  # nlink 3, a and b unchanged
    layer = diff_bytes(dirs["lower"], dirs["upper"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        entries = [(m.name, m.type, m.linkname) for m in tf]
    assert entries == [
        ("c", tarfile.REGTYPE, ""),
        ("a", tarfile.LNKTYPE, "c"),
        ("b", tarfile.LNKTYPE, "c"),
    ]
    apply_bytes(layer, dirs["target"])
    assert snapshot(dirs["target"]) == snapshot(dirs["upper"])


def test_output_is_deterministic(dirs: dict[str, Path]) -> None:
    build(dirs["upper"])
    first = diff_bytes(dirs["empty"], dirs["upper"])
    assert diff_bytes(dirs["empty"], dirs["upper"]) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tf:
        for m in tf:
            assert (m.uname, m.gname) == ("", "")
            assert "atime" not in m.pax_headers and "ctime" not in m.pax_headers


def test_source_date_epoch_clamps_mtimes(dirs: dict[str, Path]) -> None:
    build(dirs["upper"])
    (dirs["lower"] / "deleted").write_bytes(b"")
    clamp = EPOCH - 500
    layer = diff_bytes(dirs["lower"], dirs["upper"], epoch=clamp)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        times = {m.name: m.mtime for m in tf}
    assert max(times.values()) == clamp
    assert times[".wh.deleted"] == clamp
    assert min(times.values()) < clamp  # older entries keep their time


def test_sockets_are_skipped(dirs: dict[str, Path]) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dirs["upper"] / "sock"))
        assert [c.path for c in changes(dirs["lower"], dirs["upper"])] == ["/sock"]
        assert names_in(diff_bytes(dirs["lower"], dirs["upper"])) == []


def test_same_size_same_second_different_content_is_modified(dirs: dict[str, Path]) -> None:
    for name, data in (("lower", b"aaaa"), ("upper", b"bbbb")):
        (dirs[name] / "f").write_bytes(data)
        os.utime(dirs[name] / "f", (EPOCH, EPOCH))
    assert [(c.kind, c.path) for c in changes(dirs["lower"], dirs["upper"])] == [("modify", "/f")]
    (dirs["upper"] / "f").write_bytes(b"aaaa")
    os.utime(dirs["upper"] / "f", (EPOCH, EPOCH))
    assert list(changes(dirs["lower"], dirs["upper"])) == []


@pytest.mark.parametrize("kind", ["uncompressed", "gzip", "zstd"])
def test_compress_reports_digest_size_and_diff_id(dirs: dict[str, Path], kind: Compression) -> None:
    build(dirs["upper"])
    blob = io.BytesIO()
    result = compress(lambda w: write_diff(dirs["empty"], dirs["upper"], w), blob, kind)
    stored = blob.getvalue()
    assert result.digest == sha256(stored)
    assert result.size == len(stored)
    if kind == "gzip":
        tar = gzip.decompress(stored)
    elif kind == "zstd":
        tar = zstandard.ZstdDecompressor().stream_reader(stored).read()
    else:
        tar = stored
    assert result.diff_id == sha256(tar)
    assert result.uncompressed_size == len(tar)
    assert tar == diff_bytes(dirs["empty"], dirs["upper"])
    assert result.media_type.startswith("application/vnd.oci.image.layer.v1.tar")


def test_missing_roots_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(errdefs.NotFound):
        write_diff(tmp_path / "nope", tmp_path, io.BytesIO())


def test_vanished_source_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "gone").write_bytes(b"soon gone")
    gone = Change("add", "/gone", os.lstat(tmp_path / "gone"))
    os.remove(tmp_path / "gone")
    with pytest.raises(errdefs.NotFound, match="changed while writing"):
        write_changes(tmp_path, [gone], io.BytesIO())


def test_non_utf8_names_round_trip(dirs: dict[str, Path]) -> None:
    odd = os.fsdecode(b"latin1-\xe9\xff")
    (dirs["upper"] / odd).write_bytes(b"bytes name")
    os.symlink(odd, dirs["upper"] / "to-odd")
    set_mtimes(dirs["upper"], EPOCH)
    apply_bytes(diff_bytes(dirs["empty"], dirs["upper"]), dirs["target"])
    assert os.fsencode(odd) in os.listdir(os.fsencode(dirs["target"]))
    assert snapshot(dirs["target"]) == snapshot(dirs["upper"])


def test_cancel_stops_the_diff(dirs: dict[str, Path]) -> None:
    import threading

    build(dirs["upper"])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(errdefs.Canceled):
        write_diff(dirs["empty"], dirs["upper"], io.BytesIO(), cancel=cancel)
