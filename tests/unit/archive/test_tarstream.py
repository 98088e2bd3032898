from __future__ import annotations

import io
import tarfile

import pytest

from pycontainerd.api import errdefs
from pycontainerd.archive import TarReader
from pycontainerd.archive._tarstream import parse_pax

from .trees import make_tar, member, sha256


def entries(data: bytes) -> list[tuple[str, int, int, int, str]]:
    found = []
    with TarReader(io.BytesIO(data)) as reader:
        while (entry := reader.next_entry()) is not None:
            found.append((entry.name, entry.uid, entry.mtime_ns, entry.size, entry.linkname))
        digest, size = reader.finish()
    assert digest == sha256(data)
    assert size == len(data)
    return found


def test_gnu_base256_numbers() -> None:
    info, data = member("big", tarfile.REGTYPE, b"x")
    info.uid = 3_000_000_000  # beyond 7 octal digits: GNU writes base-256
    info.mtime = -1  # negative: base-256 with the sign byte
    assert entries(make_tar([(info, data)], tarfile.GNU_FORMAT)) == [
        ("big", 3_000_000_000, -1_000_000_000, 1, "")
    ]


def test_pax_overrides_and_fractional_times() -> None:
    pax = {"mtime": "1600000000.123456789", "uid": "70000", "path": "p" * 150}
    info, data = member("short", tarfile.REGTYPE, b"abc", pax=pax)
    assert entries(make_tar([(info, data)])) == [
        ("p" * 150, 70000, 1_600_000_000_123_456_789, 3, "")
    ]


def test_octal_fields_with_spaces_and_nul() -> None:
    info, _ = member("f", tarfile.REGTYPE)
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    block[108:116] = b"  1750 \x00"  # uid as some old tars pad it
    block[148:156] = b"        "
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    assert entries(bytes(block) + bytes(1024)) == [("f", 0o1750, 1_600_000_000 * 10**9, 0, "")]


def test_pax_global_header_is_skipped() -> None:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"c": "1"}
    ) as tf:
        info, _ = member("a", tarfile.SYMTYPE, linkname="b")
        tf.addfile(info)
    assert entries(buf.getvalue()) == [("a", info.uid, 1_600_000_000 * 10**9, 0, "b")]


def test_unread_data_is_skipped() -> None:
    data = make_tar([member("a", tarfile.REGTYPE, b"1" * 3000), member("b", tarfile.REGTYPE, b"2")])
    assert [e[0] for e in entries(data)] == ["a", "b"]


def test_parse_pax_records() -> None:
    assert parse_pax(b"12 path=abc\n20 SCHILY.xattr.k=\xff\n") == {
        "path": b"abc",
        "SCHILY.xattr.k": b"\xff",
    }
    with pytest.raises(errdefs.DataLoss):
        parse_pax(b"x path=abc\n")
    with pytest.raises(errdefs.DataLoss):
        parse_pax(b"11 pathabc\n")
