"""A deterministic 5-layer OCI image for the unpack benchmark (stdlib and pycontainerd only).

:func:`build` writes five ``application/vnd.oci.image.layer.v1.tar+gzip`` blobs
into a directory and describes them (digest, size, DiffID, ChainID). The trees
look like a distribution base, libraries, a language runtime, dependencies and
an application stacked on each other:

- many small files (sizes log-normal around 4 KiB, the bulk of a real rootfs)
  and a few large ones (shared libraries, archives, data files: 4-16 MiB);
- nested directories (every entry's parents are in the same layer, as in
  layers written by ``docker``/``buildkit``), symlinks (relative and absolute,
  some dangling), hardlinks, executables;
- upper layers that rewrite files of lower ones, delete some with OCI whiteouts
  (``.wh.<name>``) and replace whole directories (opaque ``.wh..wh..opq``).

File contents are slices of a fixed pool of text-like and binary-like bytes, so
layers compress about 2.5x with gzip, like real ones. Everything comes from
:class:`random.Random` seeded by :data:`SEED`: the same bytes, digests and
DiffIDs on every run and machine. Tar headers are PAX, owner 0:0, mtime
:data:`MTIME`; gzip is zlib level 6 (Go's ``gzip.DefaultCompression``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import random
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import attrs

from pycontainerd.images import chain_ids

MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
SEED = 20261123
MTIME = 1_700_000_000
POOL_SIZE = 8 << 20
MIB = 1 << 20


@attrs.frozen(kw_only=True)
class LayerSpec:
    """What one layer adds, rewrites and deletes."""

    name: str
    small: int  # small files added
    large_mib: tuple[int, ...]  # sizes of the large files added
    symlinks: int
    hardlinks: int = 0
    rewrites: int = 0  # files of lower layers written again
    whiteouts: int = 0  # files of lower layers deleted
    opaque: int = 0  # directories of lower layers replaced


SPECS = (
    LayerSpec(name="base", small=3000, large_mib=(16, 12, 8, 8), symlinks=400, hardlinks=12),
    LayerSpec(name="libs", small=2000, large_mib=(12, 10, 6), symlinks=200, rewrites=40),
    LayerSpec(
        name="runtime",
        small=2500,
        large_mib=(10, 8),
        symlinks=100,
        hardlinks=6,
        rewrites=60,
        whiteouts=30,
        opaque=2,
    ),
    LayerSpec(
        name="deps",
        small=1000,
        large_mib=(12, 6),
        symlinks=50,
        rewrites=30,
        whiteouts=10,
        opaque=1,
    ),
    LayerSpec(name="app", small=500, large_mib=(8, 4), symlinks=20, rewrites=20, whiteouts=20),
)
"""The image: about 9,000 files and 200 MB of tar, 5 layers."""


@attrs.frozen(kw_only=True)
class Layer:
    """One generated layer blob."""

    path: Path
    media_type: str
    digest: str  # of the gzip blob
    size: int  # of the gzip blob
    diff_id: str  # of the uncompressed tar
    tar_size: int
    chain_id: str
    files: int
    dirs: int
    symlinks: int
    hardlinks: int
    whiteouts: int

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["path"] = str(self.path)
        return out


def _pool(rng: random.Random) -> bytes:
    """Text-like and binary-like blocks of 64 KiB, both drawn Zipf-wise from vocabularies.

    Text (words and punctuation) gzips about 2.6x, binary (machine-code-like
    tokens after a little noise) about 2x; three quarters are text.
    """
    letters = "abcdefghijklmnopqrstuvwxyz"
    syllables = ["".join(rng.choices(letters, k=rng.randint(1, 4))) for _ in range(600)]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(8000)]
    words += ["{", "}", "(", ")", ";", "=", "->", "0", "1", "\n", "\n    ", "#", "//"]
    word_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(words))))
    tokens = [rng.randbytes(rng.randint(2, 8)) for _ in range(2000)]
    token_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(tokens))))
    blocks: list[bytes] = []
    size = 0
    while size < POOL_SIZE:
        if rng.random() < 0.75:
            text = " ".join(rng.choices(words, cum_weights=word_weights, k=12_000)).encode()
            block = text[: 64 << 10]
        else:
            code = b"".join(rng.choices(tokens, cum_weights=token_weights, k=20_000))
            block = rng.randbytes(4 << 10) + code[: 60 << 10]
        blocks.append(block)
        size += len(block)
    return b"".join(blocks)[:POOL_SIZE]


class _Sink:
    """The tar stream's file: hashes the tar, gzips it into the blob and hashes that."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31)
        self.tar_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.tar_size = 0
        self.size = 0

    def _out(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self.blob_hash.update(data)
            self.size += len(data)

    def write(self, data: bytes) -> int:
        self.tar_hash.update(data)
        self.tar_size += len(data)
        self._out(self._gzip.compress(data))
        return len(data)

    def close(self) -> None:
        self._out(self._gzip.flush())
        self._file.close()


class _Builder:
    """Generates the layers in order, remembering the merged tree for the upper ones."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = _pool(self.rng)
        self.files: set[str] = set()  # regular files of the merged tree so far
        self.dirs: set[str] = set()  # its directories
        self.names = [
            "".join(
                self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=self.rng.randint(3, 12))
            )
            for _ in range(3000)
        ]

    def content(self, size: int) -> bytes:
        parts: list[bytes] = []
        left = size
        while left:
            n = min(left, 64 << 10)
            off = self.rng.randrange(0, POOL_SIZE - n)
            parts.append(self.pool[off : off + n])
            left -= n
        return b"".join(parts)

    def small_size(self) -> int:
        return min(256 << 10, max(0, int(self.rng.lognormvariate(math.log(4096), 1.2))))

    def new_dirs(self, top: str, count: int) -> list[str]:
        made: list[str] = []
        for _ in range(count):
            depth = self.rng.randint(1, 4)
            parts = [top, *self.rng.choices(self.names, k=depth)]
            made.append("/".join(parts))
        return made

    def layer(self, index: int, spec: LayerSpec, out: Path) -> dict[str, Any]:
        rng = self.rng
        top = ["usr/lib", "usr/share", "opt/runtime", "srv/deps", "app"][index % 5]
        dirs = self.new_dirs(top, max(8, spec.small // 12))
        if index == 0:
            dirs += ["bin", "etc", "usr/bin", "var/lib", "tmp", "root", "home"]
        entries: dict[str, tuple[str, Any]] = {}  # path -> (kind, payload)
        added_files: list[str] = []

        def add_file(path: str, data: bytes, mode: int) -> None:
            entries[path] = ("file", (data, mode))
            added_files.append(path)

        for i in range(spec.small):
            d = rng.choice(dirs)
            ext = rng.choice([".py", ".so.1", ".txt", ".h", ".json", "", ".conf", ".mo"])
            mode = 0o755 if ext in ("", ".so.1") and rng.random() < 0.5 else 0o644
            add_file(
                f"{d}/{rng.choice(self.names)}-{i}{ext}", self.content(self.small_size()), mode
            )
        for i, mib in enumerate(spec.large_mib):
            add_file(f"{rng.choice(dirs)}/large-{index}-{i}.bin", self.content(mib * MIB), 0o644)
        lower_files = sorted(self.files)
        for path in rng.sample(lower_files, min(spec.rewrites, len(lower_files))):
            add_file(path, self.content(self.small_size()), 0o644)
        for i in range(spec.symlinks):
            target = rng.choice(added_files)
            link = f"{rng.choice(dirs)}/link-{index}-{i}"
            if i % 10 == 0:
                entries[link] = ("symlink", "/" + target)  # absolute, resolved in the rootfs
            elif i % 25 == 1:
                entries[link] = ("symlink", "../missing/dangling")
            else:
                entries[link] = ("symlink", _relative(target, link))
        for i in range(spec.hardlinks):
            entries[f"{rng.choice(dirs)}/hard-{index}-{i}"] = (
                "hardlink",
                rng.choice(added_files[: spec.small]),
            )
        untouched = sorted(set(lower_files) - set(entries))
        removed = rng.sample(untouched, min(spec.whiteouts, len(untouched)))
        for path in removed:
            head, _, name = path.rpartition("/")
            entries[f"{head}/.wh.{name}"] = ("whiteout", None)
        opaque_dirs: list[str] = []
        if spec.opaque:
            deep = sorted(d for d in self.dirs if d.count("/") >= 2)
            opaque_dirs = rng.sample(deep, min(spec.opaque, len(deep)))
        for d in opaque_dirs:
            entries[f"{d}/.wh..wh..opq"] = ("whiteout", None)
            add_file(f"{d}/replaced-{index}.conf", self.content(self.small_size()), 0o644)
        counts = self.write_tar(out, entries)
        # the merged tree, for the next layers' rewrites and whiteouts
        for d in opaque_dirs:
            self.files = {f for f in self.files if not f.startswith(d + "/")}
            self.dirs = {x for x in self.dirs if not x.startswith(d + "/")}
        self.files -= set(removed)
        self.files |= {p for p, (kind, _) in entries.items() if kind == "file"}
        self.dirs |= counts.pop("dirset")
        return counts

    def write_tar(self, out: Path, entries: dict[str, tuple[str, Any]]) -> dict[str, Any]:
        parents: set[str] = set()
        for path in entries:
            parts = path.split("/")[:-1]
            for n in range(1, len(parts) + 1):
                parents.add("/".join(parts[:n]))
        sink = _Sink(out)
        counts: dict[str, Any] = {"files": 0, "symlinks": 0, "hardlinks": 0, "whiteouts": 0}
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for d in sorted(parents):
                tar.addfile(_info(d + "/", tarfile.DIRTYPE, 0o755))
            # hardlinks after their targets; otherwise sorted, like a layer diff's walk
            order = sorted(entries, key=lambda p: (entries[p][0] == "hardlink", p))
            for path in order:
                kind, payload = entries[path]
                if kind == "file":
                    data, mode = payload
                    info = _info(path, tarfile.REGTYPE, mode)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    counts["files"] += 1
                elif kind == "whiteout":
                    tar.addfile(_info(path, tarfile.REGTYPE, 0o644), io.BytesIO(b""))
                    counts["whiteouts"] += 1
                else:
                    info = _info(
                        path, tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE, 0o777
                    )
                    info.linkname = payload
                    if kind == "hardlink":
                        info.mode = entries[payload][1][1]
                    tar.addfile(info)
                    counts[kind + "s"] += 1
        sink.close()
        counts.update(
            dirs=len(parents),
            dirset=parents,
            digest="sha256:" + sink.blob_hash.hexdigest(),
            size=sink.size,
            diff_id="sha256:" + sink.tar_hash.hexdigest(),
            tar_size=sink.tar_size,
        )
        return counts


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _relative(target: str, link: str) -> str:
    up = link.count("/")
    return "../" * up + target


def build(directory: Path, seed: int = SEED) -> list[Layer]:
    """Write the image's layer blobs into ``directory``; their descriptions, bottom first."""
    builder = _Builder(seed)
    made: list[dict[str, Any]] = []
    for i, spec in enumerate(SPECS):
        path = directory / f"layer-{i}-{spec.name}.tar.gz"
        made.append({"path": path, **builder.layer(i, spec, path)})
    chains = chain_ids([m["diff_id"] for m in made])
    return [
        Layer(media_type=MEDIA_TYPE, chain_id=chain, **m)
        for m, chain in zip(made, chains, strict=True)
    ]


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        layers = build(Path(tmp))
        took = time.perf_counter() - t0
        for layer in layers:
            print(
                layer.path.name,
                layer.tar_size,
                layer.size,
                round(layer.tar_size / layer.size, 2),
                layer.files,
                layer.dirs,
                layer.symlinks,
                layer.whiteouts,
                file=sys.stderr,
            )
        total_tar = sum(x.tar_size for x in layers)
        total = sum(x.size for x in layers)
        print(
            f"tar {total_tar / 1e6:.1f} MB gzip {total / 1e6:.1f} MB in {took:.1f}s",
            file=sys.stderr,
        )
