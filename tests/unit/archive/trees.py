"""Helpers shared by the archive tests: tar building and bit-for-bit tree snapshots."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

from pycontainerd.archive import ApplyResult, apply_layer, read_xattrs

Snapshot = dict[str, tuple[object, ...]]


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int | None = None,
    mtime: int = 1_600_000_000,
    linkname: str = "",
    pax: dict[str, str] | None = None,
) -> tuple[tarfile.TarInfo, bytes]:
    """A tar member as (header, data) for :func:`make_tar`."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode if mode is not None else 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = mtime
    info.linkname = linkname
    info.uid, info.gid = os.getuid(), os.getgid()
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = dict(pax)
    return info, data


def make_tar(
    members: Iterable[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


def apply_bytes(data: bytes, root: Path, **kwargs: object) -> ApplyResult:
    return apply_layer(io.BytesIO(data), root, **kwargs)  # type: ignore[arg-type]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> Snapshot:
    """Everything a layer carries about each path under ``root`` (root excluded):
    type, mode, owner, mtime, size, content digest, link target, device, xattrs,
    and which other names share its inode."""
    out: Snapshot = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            digest = ""
            link = ""
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(path)
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            out[rel] = (
                stat.filemode(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                size,
                digest,
                link,
                st.st_rdev,
                tuple(sorted(read_xattrs(path).items())),
            )
    for names in inodes.values():
        for name in names:
            out[name] = (*out[name], tuple(sorted(names)))
    return out


def set_mtimes(root: Path, seconds: int) -> None:
    """Give every entry under ``root`` a whole-second mtime, children first."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (seconds, seconds), follow_symlinks=False)


def outside(tmp_path: Path) -> list[str]:
    """What exists next to the test's ``root`` and ``sentinel`` (must stay empty)."""
    found = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("root", "sentinel"))
    found += [str(p) for p in (tmp_path / "sentinel").rglob("*")]
    return found
