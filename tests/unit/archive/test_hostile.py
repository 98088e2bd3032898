"""Hostile layers: each gives a domain error naming the entry and writes nothing
outside the root (``sentinel`` is a directory next to it that must stay empty)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.archive import apply_layer, decompress_stream

from .trees import apply_bytes, make_tar, member, outside

REG, DIR, SYM, LNK = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "sentinel" / "victim").mkdir()
    (tmp_path / "sentinel" / "victim" / "keep").write_bytes(b"keep")
    return tmp_path / "root"


def refused(
    data: bytes, root: Path, error: type[errdefs.ErrdefsError], match: str
) -> errdefs.ErrdefsError:
    with pytest.raises(error, match=match) as info:
        apply_bytes(data, root)
    tmp = root.parent
    assert (tmp / "sentinel/victim/keep").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp.iterdir()) == ["root", "sentinel"]
    assert outside(tmp) == [str(tmp / "sentinel/victim"), str(tmp / "sentinel/victim/keep")]
    return info.value


def test_dotdot_escape(root: Path) -> None:
    data = make_tar([member("../sentinel/evil", REG, b"x")])
    refused(data, root, errdefs.InvalidArgument, r"'\.\./sentinel/evil'.*escapes")


def test_dotdot_escape_after_descent(root: Path) -> None:
    data = make_tar([member("a/b/../../../sentinel/evil", REG, b"x")])
    refused(data, root, errdefs.InvalidArgument, "escapes")


def test_absolute_path(root: Path) -> None:
    evil = str(root.parent / "sentinel" / "evil")
    refused(make_tar([member(evil, REG, b"x")]), root, errdefs.InvalidArgument, "absolute")


def test_write_through_escaping_symlink(root: Path) -> None:
    data = make_tar([member("link", SYM, linkname="../sentinel"), member("link/evil", REG, b"x")])
    refused(data, root, errdefs.InvalidArgument, r"'link/evil'.*outside the root")
    assert (root / "link").is_symlink()  # the symlink itself is harmless content


def test_write_through_deep_escaping_symlink(root: Path) -> None:
    data = make_tar(
        [
            member("a/b/", DIR),
            member("a/b/up", SYM, linkname="../../../sentinel/victim"),
            member("a/b/up/keep", REG, b"overwritten"),
        ]
    )
    refused(data, root, errdefs.InvalidArgument, "outside the root")


def test_absolute_symlink_is_confined_to_root(root: Path) -> None:
    sentinel = str(root.parent / "sentinel")
    data = make_tar([member("abs", SYM, linkname=sentinel), member("abs/evil", REG, b"x")])
    apply_bytes(data, root)  # containerd's RootPath: "/" means the root
    assert (root / sentinel.lstrip("/") / "evil").read_bytes() == b"x"
    assert outside(root.parent) == [
        str(root.parent / "sentinel/victim"),
        str(root.parent / "sentinel/victim/keep"),
    ]


def test_symlink_loop(root: Path) -> None:
    data = make_tar(
        [member("a", SYM, linkname="b"), member("b", SYM, linkname="a"), member("a/f", REG)]
    )
    refused(data, root, errdefs.InvalidArgument, "too many symlinks")


def test_hardlink_to_outside(root: Path) -> None:
    data = make_tar([member("h", LNK, linkname="../sentinel/victim/keep")])
    refused(data, root, errdefs.InvalidArgument, r"'h'.*escapes")


def test_hardlink_through_escaping_symlink(root: Path) -> None:
    data = make_tar(
        [member("s", SYM, linkname="../sentinel/victim"), member("h", LNK, linkname="s/keep")]
    )
    refused(data, root, errdefs.InvalidArgument, "outside the root")


def test_hardlink_to_absolute_host_path(root: Path) -> None:
    data = make_tar([member("h", LNK, linkname="/etc/passwd")])
    refused(data, root, errdefs.InvalidArgument, "absolute")


def test_hardlink_to_missing_or_dir(root: Path) -> None:
    refused(make_tar([member("h", LNK, linkname="nope")]), root, errdefs.InvalidArgument, "'h'")
    data = make_tar([member("d/", DIR), member("h2", LNK, linkname="d")])
    refused(data, root, errdefs.InvalidArgument, "'h2'.*not a file")


@pytest.mark.parametrize("name", [".wh..", ".wh.", "a/.wh..", "a/.wh.."])
def test_whiteout_of_root_or_parent(root: Path, name: str) -> None:
    data = make_tar([member("a/", DIR), member("a/f", REG), member(name, REG)])
    refused(data, root, errdefs.InvalidArgument, "invalid whiteout")
    assert (root / "a/f").exists()


def test_whiteout_through_escaping_symlink(root: Path) -> None:
    data = make_tar([member("s", SYM, linkname="../sentinel"), member("s/.wh.victim", REG)])
    refused(data, root, errdefs.InvalidArgument, "outside the root")


def test_opaque_through_escaping_symlink(root: Path) -> None:
    data = make_tar(
        [member("s", SYM, linkname="../sentinel/victim"), member("s/.wh..wh..opq", REG)]
    )
    refused(data, root, errdefs.InvalidArgument, "outside the root")


def test_name_longer_than_name_max(root: Path) -> None:
    data = make_tar([member("d/" + "n" * 256, REG)])
    refused(data, root, errdefs.InvalidArgument, "NAME_MAX")


def test_name_longer_than_path_max(root: Path) -> None:
    data = make_tar([member("/".join(["p" * 200] * 21), REG)])
    refused(data, root, errdefs.InvalidArgument, "PATH_MAX")


def test_truncated_member(root: Path) -> None:
    data = make_tar([member("f", REG, b"x" * 5000)])
    err = refused(data[: 512 + 2000], root, errdefs.DataLoss, r"truncated in 'f'")
    assert "3000 bytes" in str(err)


def test_truncated_header(root: Path) -> None:
    data = make_tar([member("f", REG, b"x"), member("g", REG, b"y")])
    refused(data[: 1024 + 300], root, errdefs.DataLoss, "truncated in a header")


def test_tar_bomb_declared_size_without_data(root: Path) -> None:
    info = tarfile.TarInfo("bomb")
    info.size = 1 << 40  # a terabyte announced, nothing sent
    header = info.tobuf(tarfile.PAX_FORMAT)
    refused(header + b"\0" * 4096, root, errdefs.DataLoss, r"'bomb'")
    assert (root / "bomb").stat().st_size == 4096  # what arrived, not what was declared


def test_corrupt_gzip_layer(root: Path) -> None:
    blob = bytearray(
        gzip.compress(make_tar([member(f"f{i}", REG, bytes(3000)) for i in range(50)]))
    )
    blob[len(blob) // 2 :] = b"\xff" * (len(blob) - len(blob) // 2)
    stream = decompress_stream(io.BytesIO(bytes(blob)))
    with pytest.raises(errdefs.DataLoss, match="gzip"), stream:
        apply_layer(stream, root)
    assert outside(root.parent) == [
        str(root.parent / "sentinel/victim"),
        str(root.parent / "sentinel/victim/keep"),
    ]


def test_bad_header_checksum(root: Path) -> None:
    data = bytearray(make_tar([member("f", REG, b"x")]))
    data[0:1] = b"g"
    refused(bytes(data), root, errdefs.DataLoss, "checksum")


def test_gnu_sparse_member(root: Path) -> None:
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0
    refused(info.tobuf(tarfile.GNU_FORMAT), root, errdefs.NotImplemented_, "'sparse'.*sparse")


def test_pax_sparse_member(root: Path) -> None:
    pax = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": str(1 << 40)}
    data = make_tar([member("GNUSparseFile.0/s", REG, b"", pax=pax)])
    refused(data, root, errdefs.NotImplemented_, "sparse")


def test_oversized_pax_header(root: Path) -> None:
    data = make_tar([member("f", REG, b"", pax={"comment": "c" * (2 << 20)})])
    refused(data, root, errdefs.InvalidArgument, "PAX header")


def test_malformed_pax_record(root: Path) -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    body = b"99 path=x\n"
    info.size = len(body)
    data = info.tobuf(tarfile.USTAR_FORMAT) + body + bytes(512 - len(body))
    data += make_tar([member("f", REG)])
    refused(data, root, errdefs.DataLoss, "PAX record")


def test_unknown_type(root: Path) -> None:
    info = tarfile.TarInfo("weird")
    info.type = b"V"  # a GNU volume header
    refused(info.tobuf(tarfile.GNU_FORMAT), root, errdefs.InvalidArgument, "'weird'.*header type")


def test_parent_is_a_file(root: Path) -> None:
    data = make_tar([member("f", REG, b"x"), member("f/child", REG)])
    refused(data, root, errdefs.InvalidArgument, r"'f/child'.*not a directory")


def test_corrupt_zstd_layer(root: Path) -> None:
    import zstandard

    blob = zstandard.ZstdCompressor().compress(make_tar([member("f", REG, bytes(100_000))]))
    stream = decompress_stream(io.BytesIO(blob[: len(blob) // 2]))
    with pytest.raises(errdefs.DataLoss, match="zstd"), stream:
        apply_layer(stream, root)


class _FailingSource:
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._data.read(min(size, 700))
        if not chunk:
            raise OSError(5, "Input/output error")
        return chunk


def test_source_read_error_is_a_domain_error(root: Path) -> None:
    data = make_tar([member("f", REG, b"x" * 3000)])[:1500]
    with pytest.raises(errdefs.Unknown, match="Input/output error"):
        apply_layer(_FailingSource(data), root)


def test_nul_in_pax_path(root: Path) -> None:
    data = make_tar([member("f", REG, b"x", pax={"path": "a\x00../../sentinel/evil"})])
    refused(data, root, errdefs.InvalidArgument, "NUL byte")
    link = make_tar([member("l", SYM, linkname="x", pax={"linkpath": "x\x00y"})])
    refused(link, root, errdefs.InvalidArgument, "'l'.*null")


def test_out_of_range_device_numbers(root: Path) -> None:
    info, _ = member("dev", tarfile.CHRTYPE)
    info.devmajor = 1 << 40  # base-256 in a GNU header
    refused(make_tar([(info, b"")], tarfile.GNU_FORMAT), root, errdefs.InvalidArgument, "'dev'")


def test_times_out_of_range_become_the_epoch(root: Path) -> None:
    pax = {"mtime": str(1 << 64), "atime": "-5"}
    apply_bytes(make_tar([member("f", REG, b"x", pax=pax), member("d/", DIR, pax=pax)]), root)
    assert os.stat(root / "f").st_mtime_ns == 0
    assert os.stat(root / "d").st_mtime_ns == 0
