"""Apply an OCI layer tar onto a directory (containerd ``archive.Apply``).

The rules are containerd's ``applyNaive`` (``archive/tar.go``):

- Every name is cleaned; the entry for the root itself is ignored. A name that is
  absolute, or whose ``..`` climbs above the root, is refused (containerd would
  clamp it; a layer that says so is hostile, and we say so).
- Parent components are resolved *inside* the root, as ``fs.RootPath`` does: a
  symlink met on the way is followed with the root as ``/`` (so ``var/run ->
  /run`` lands in ``<root>/run``); one whose relative target climbs above the
  root is refused. The last component is never followed. Missing parents are
  created ``0755``, or, given ``parents`` (the lower layers of an overlay upper
  being unpacked), with the mode, owner, xattrs and times of the same directory
  in the top-most parent that has it (containerd's ``WithParents``).
- An existing path is removed and replaced, unless both it and the entry are
  directories (then only metadata changes).
- OCI whiteouts: ``.wh.<name>`` removes ``<name>``; ``.wh..wh..opq`` empties its
  directory of everything not written by this same layer. Other ``.wh..wh.``
  names are AUFS metadata and skipped with everything below them (containerd
  keeps ``.wh..wh.plnk`` files as hardlink sources; OCI layers never use them).
  With ``convert_whiteout="overlay"`` (the root is an overlay upper dir) a
  whiteout becomes a 0/0 character device and an opaque marker the xattr
  ``trusted.overlay.opaque=y``.
- Ownership is ``lchown``'d before the mode is set (``chown`` clears setuid),
  xattrs come from PAX ``SCHILY.xattr.*`` (``security.*`` refused with EPERM and
  unsupported ones are skipped), mtimes last; directory mtimes at the very end
  so their children do not bump them.
- Without root (rootless unpack) device nodes are skipped and ownership and
  privileged xattrs that the kernel refuses are left as they are.

The DiffID is the SHA-256 of every uncompressed byte, computed while extracting.
We assume nothing else writes under ``root`` during the apply (the daemon owns
the snapshot's directory), as containerd does.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs

from pycontainerd.api import errdefs

from ._changes import read_xattrs
from ._readable import Readable
from ._tarstream import TarEntry, TarReader

NAME_MAX = 255
PATH_MAX = 4096
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_MAX_SYMLINKS = 40
_MAX_TIME_NS = (1 << 63) - 1
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _is_root() -> bool:
    """Whether this process may make devices and give files away. Asked on the
    refusal paths only (a process may drop privileges after import)."""
    return os.geteuid() == 0


_REGULAR = frozenset((b"0", b"\x00", b"7"))

ConvertWhiteout = Literal["overlay"]


@attrs.frozen
class ApplyResult:
    """What :func:`apply_layer` unpacked: ``diff_id`` is ``"sha256:<hex>"`` of the
    uncompressed tar and ``size`` its length in bytes."""

    diff_id: str
    size: int


def clean_name(name: str) -> list[str]:
    """Split a tar name into its components after ``filepath.Clean``.

    Raises:
        errdefs.InvalidArgument: the name is absolute, climbs above the root, or
            is longer than ``PATH_MAX`` / has a component longer than ``NAME_MAX``.
    """
    # A UTF-8 character is at most 4 bytes: short names skip the encoding.
    if len(name) * 4 >= PATH_MAX and len(name.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise errdefs.InvalidArgument(f"tar entry {name[:64]!r}...: name longer than PATH_MAX")
    if name.startswith("/"):
        raise errdefs.InvalidArgument(f"tar entry {name!r}: absolute path refused")
    if "\x00" in name:
        raise errdefs.InvalidArgument(f"tar entry {name!r}: NUL byte in the name")
    split = name.split("/")
    if split[-1] == "":
        split.pop()  # "dir/"
    if "" not in split and "." not in split and ".." not in split:
        parts = split  # already clean: the common case
    else:
        parts = []
        for comp in split:
            if comp in ("", "."):
                continue
            if comp == "..":
                if not parts:
                    raise errdefs.InvalidArgument(f"tar entry {name!r}: path escapes the root")
                parts.pop()
            else:
                parts.append(comp)
    for comp in parts:
        if len(comp) * 4 > NAME_MAX and len(comp.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise errdefs.InvalidArgument(f"tar entry {name!r}: component longer than NAME_MAX")
    return parts


def _bound(ns: int) -> int:
    """containerd's ``boundTime``: a time ``utimensat`` cannot hold becomes the epoch."""
    return ns if 0 <= ns <= _MAX_TIME_NS else 0


def _times(entry: TarEntry) -> tuple[int, int]:
    """(atime, mtime) in ns: atime is the later of the two, as containerd sets it."""
    mtime = _bound(entry.mtime_ns)
    atime = mtime if entry.atime_ns is None else max(_bound(entry.atime_ns), mtime)
    return atime, mtime


def _chown(target: str | int, uid: int, gid: int) -> None:
    """``lchown``/``fchown``; without root a refusal leaves our own ids (rootless)."""
    try:
        if isinstance(target, int):
            os.fchown(target, uid, gid)
        else:
            os.chown(target, uid, gid, follow_symlinks=False)
    except PermissionError:
        if _is_root():
            raise


def _remove(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


class _Applier:
    def __init__(
        self,
        root: Path,
        reader: TarReader,
        convert: ConvertWhiteout | None,
        parents: Sequence[Path],
    ) -> None:
        self.root = os.path.realpath(root)
        self.parents = [os.fspath(p) for p in parents]
        self.reader = reader
        self.convert = convert
        self.dirs: dict[tuple[str, ...], str] = {}  # cleaned parent -> real path
        self.unpacked: set[str] = set()
        self.dir_times: list[tuple[str, int, int]] = []

    # -- paths -----------------------------------------------------------

    def resolve_dir(self, parts: list[str], name: str, *, create: bool) -> str:
        """The real path of directory ``parts`` inside the root, following
        symlinks with the root as ``/``; missing directories are created."""
        key = tuple(parts)
        hit = self.dirs.get(key)
        if hit is not None:
            return hit
        todo = parts[::-1]
        cur: list[str] = []
        hops = 0
        while todo:
            comp = todo.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if not cur:
                    raise errdefs.InvalidArgument(
                        f"tar entry {name!r}: a symlink in its path points outside the root"
                    )
                cur.pop()
                continue
            path = self.root + "/" + "/".join([*cur, comp])
            st = _lstat(path)
            if st is None:
                if not create:
                    raise errdefs.InvalidArgument(f"tar entry {name!r}: {path!r} does not exist")
                os.mkdir(path, 0o755)
                self.unpacked.add(path)
                cur.append(comp)
                if self.parents:
                    self.copy_parent_info(path, cur)
            elif stat.S_ISDIR(st.st_mode):
                cur.append(comp)
            elif stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise errdefs.InvalidArgument(f"tar entry {name!r}: too many symlinks")
                target = os.readlink(path)
                if target.startswith("/"):
                    cur = []
                todo.extend(target.split("/")[::-1])
            else:
                raise errdefs.InvalidArgument(
                    f"tar entry {name!r}: {'/'.join([*cur, comp])!r} is not a directory"
                )
        real = self.root + "".join("/" + c for c in cur)
        self.dirs[key] = real
        return real

    def copy_parent_info(self, path: str, rel: list[str]) -> None:
        """containerd's ``mkparent`` with parents: copy the directory's metadata
        from the top-most lower layer that has it."""
        for parent in self.parents:
            source = os.path.join(parent, *rel)
            st = _lstat(source)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                _chown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))
                for key, value in read_xattrs(source).items():
                    os.setxattr(path, key, value)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            return

    def removed(self, path: str, st: os.stat_result) -> None:
        _remove(path, st)
        if not stat.S_ISREG(st.st_mode):
            self.dirs.clear()  # a cached parent may have gone or been re-pointed

    # -- entries ---------------------------------------------------------

    def apply(self, entry: TarEntry) -> None:
        parts = clean_name(entry.name)
        if not parts:
            return  # the root itself: ignored, as containerd does
        base = parts.pop()
        if (base.startswith(WHITEOUT_META_PREFIX) and base != WHITEOUT_OPAQUE) or any(
            part.startswith(WHITEOUT_META_PREFIX) for part in parts
        ):
            return  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        parent = self.resolve_dir(parts, entry.name, create=True)
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(entry, parent, base)
            return
        path = parent + "/" + base
        kind = entry.type
        mode = entry.mode & 0o7777
        if kind in _REGULAR:
            self.regular(entry, path, mode)
            self.unpacked.add(path)
            return
        if not self.make(entry, path, kind):
            return
        self.unpacked.add(path)
        self.chown(path, entry)
        is_link = kind == b"2" or (kind == b"1" and stat.S_ISLNK(os.lstat(path).st_mode))
        if not is_link:
            os.chmod(path, mode)
        self.set_xattrs(path, entry, follow=False)
        atime, mtime = _times(entry)
        if kind == b"5":
            self.dir_times.append((path, atime, mtime))
        else:
            os.utime(path, ns=(atime, mtime), follow_symlinks=False)

    def replace(self, path: str, keep_dir: bool) -> bool:
        """``path`` exists: remove it unless both it and the entry are directories.

        Returns whether the caller should create its node again."""
        st = os.lstat(path)
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return False
        self.removed(path, st)
        return True

    def make(self, entry: TarEntry, path: str, kind: bytes) -> bool:
        """Create the node of a non-regular entry; ``False`` if it is skipped.

        Creating first and replacing on ``EEXIST`` spares the ``lstat`` of every
        entry of a fresh snapshot, the common case."""
        for _ in range(2):
            try:
                if kind == b"5":
                    os.mkdir(path, 0o700)
                elif kind == b"2":
                    os.symlink(entry.linkname, path)
                elif kind == b"1":
                    self.hardlink(entry, path)
                elif kind in (b"3", b"4"):
                    dev_type = stat.S_IFCHR if kind == b"3" else stat.S_IFBLK
                    device = os.makedev(entry.devmajor, entry.devminor)
                    try:
                        os.mknod(path, dev_type | 0o600, device)
                    except PermissionError:
                        if _is_root():
                            raise
                        return False  # rootless: devices cannot be created, skip the entry
                elif kind == b"6":
                    os.mkfifo(path, 0o600)
                else:
                    raise errdefs.InvalidArgument(
                        f"tar entry {entry.name!r}: unhandled tar header type {kind!r}"
                    )
                return True
            except FileExistsError:
                if not self.replace(path, keep_dir=kind == b"5"):
                    return True
        raise errdefs.Unknown(f"tar entry {entry.name!r}: {path!r} keeps reappearing")

    def regular(self, entry: TarEntry, path: str, mode: int) -> None:
        try:
            fd = os.open(path, _OPEN_FLAGS, 0o600)
        except FileExistsError:
            self.replace(path, keep_dir=False)
            fd = os.open(path, _OPEN_FLAGS, 0o600)
        try:
            self.reader.copy_to(fd)
            self.chown(fd, entry)
            os.fchmod(fd, mode)
            self.set_xattrs(fd, entry, follow=True)
            os.utime(fd, ns=_times(entry))
        finally:
            os.close(fd)

    def hardlink(self, entry: TarEntry, path: str) -> None:
        try:
            target_parts = clean_name(entry.linkname)
        except errdefs.InvalidArgument as exc:
            raise errdefs.InvalidArgument(
                f"tar entry {entry.name!r}: hardlink target refused: {exc}"
            ) from exc
        if not target_parts:
            raise errdefs.InvalidArgument(f"tar entry {entry.name!r}: hardlink to the root")
        target_base = target_parts.pop()
        target_dir = self.resolve_dir(target_parts, entry.name, create=False)
        target = target_dir + "/" + target_base
        target_st = _lstat(target)
        if target_st is None or stat.S_ISDIR(target_st.st_mode):
            raise errdefs.InvalidArgument(
                f"tar entry {entry.name!r}: hardlink target {entry.linkname!r} "
                "is not a file inside the root"
            )
        os.link(target, path, follow_symlinks=False)

    def chown(self, target: str | int, entry: TarEntry) -> None:
        _chown(target, entry.uid, entry.gid)

    def set_xattrs(self, target: str | int, entry: TarEntry, *, follow: bool) -> None:
        for key, value in entry.xattrs.items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    continue  # the filesystem has no such namespace: containerd warns
                if exc.errno == errno.EPERM and (
                    key.startswith("security.")
                    or not _is_root()
                    or stat.S_ISLNK(self._mode(target))
                ):
                    continue
                raise

    @staticmethod
    def _mode(target: str | int) -> int:
        return os.fstat(target).st_mode if isinstance(target, int) else os.lstat(target).st_mode

    def whiteout(self, entry: TarEntry, parent: str, base: str) -> None:
        if base == WHITEOUT_OPAQUE:
            if self.convert == "overlay":
                os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            else:
                self.clear_opaque(parent)
            return
        victim = base[len(WHITEOUT_PREFIX) :]
        if victim in ("", ".", ".."):
            raise errdefs.InvalidArgument(f"tar entry {entry.name!r}: invalid whiteout")
        path = parent + "/" + victim
        st = _lstat(path)
        if st is not None:
            self.removed(path, st)
        if self.convert == "overlay":
            os.mknod(path, stat.S_IFCHR, 0)
            self.chown(path, entry)
            self.unpacked.add(path)

    def clear_opaque(self, directory: str) -> None:
        with os.scandir(directory) as it:
            children = list(it)
        for child in children:
            if child.path in self.unpacked:
                if child.is_dir(follow_symlinks=False):
                    self.clear_opaque(child.path)
                continue
            self.removed(child.path, child.stat(follow_symlinks=False))

    def finish(self) -> None:
        for path, atime, mtime in self.dir_times:
            try:
                os.utime(path, ns=(atime, mtime), follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed again later in the same layer


def _os_error(name: str, exc: OSError) -> errdefs.ErrdefsError:
    message = f"tar entry {name!r}: {exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errdefs.ResourceExhausted(message)
    if exc.errno in (errno.EPERM, errno.EACCES):
        return errdefs.PermissionDenied(message)
    if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR):
        return errdefs.InvalidArgument(message)
    return errdefs.Unknown(message)


def apply_layer(
    stream: Readable,
    root: Path,
    *,
    convert_whiteout: ConvertWhiteout | None = None,
    parents: Sequence[Path] = (),
    cancel: threading.Event | None = None,
) -> ApplyResult:
    """Unpack an uncompressed layer tar onto ``root`` and digest it.

    Pass a blob through :func:`decompress_stream` first. Runs synchronously (call
    it from a worker thread); one read-ahead thread inflates and digests.

    Args:
        stream: the uncompressed tar, read to its end (trailing bytes included in
            the DiffID); not closed.
        root: an existing directory, e.g. a mounted snapshot or an overlay upper.
        convert_whiteout: ``"overlay"`` to write whiteouts the way overlayfs
            stores them instead of deleting from ``root``.
        parents: lower directories, top-most first, whose directory metadata
            implicitly created parents copy (for unpacking into an overlay upper).
        cancel: checked before each entry, as containerd checks its context;
            once set the apply stops with :class:`errdefs.Canceled`, leaving what
            was written (the caller removes the half-applied snapshot).

    Returns:
        :class:`ApplyResult` with the DiffID and the uncompressed size.

    Raises:
        errdefs.InvalidArgument: a hostile or malformed entry (escaping path,
            bad whiteout, hardlink outside the root, unknown type, overlong name).
        errdefs.DataLoss: a truncated or corrupt stream.
        errdefs.NotImplemented_: a sparse member.
        errdefs.NotFound: ``root`` does not exist.
        errdefs.ResourceExhausted: the disk is full.
        errdefs.PermissionDenied: the kernel refused an operation we must do.
        errdefs.Unknown: reading ``stream`` failed, or another OS error.
        errdefs.Canceled: ``cancel`` was set.
    """
    if not os.path.isdir(root):
        raise errdefs.NotFound(f"apply root {str(root)!r} is not a directory")
    with TarReader(stream) as reader:
        applier = _Applier(root, reader, convert_whiteout, parents)
        while (entry := reader.next_entry()) is not None:
            if cancel is not None and cancel.is_set():
                raise errdefs.Canceled(f"apply canceled before tar entry {entry.name!r}")
            try:
                applier.apply(entry)
            except OSError as exc:
                raise _os_error(entry.name, exc) from exc
            except (OverflowError, ValueError) as exc:  # NUL in a name, ids out of range
                raise errdefs.InvalidArgument(f"tar entry {entry.name!r}: {exc}") from exc
        diff_id, size = reader.finish()
        applier.finish()
    return ApplyResult(diff_id=diff_id, size=size)
