"""Test images from ``busybox-static``: built in memory, written as OCI layouts, pushed.

Deterministic (tar and gzip mtimes are 0, entries sorted), so the same inputs
always give the same digests. The building blocks::

    layer = busybox_layer()                        # /bin/busybox + applet symlinks, gzip
    extra = files_layer({"etc/motd": b"hi\\n"}, compression="zstd")
    image = build_image([layer, extra], cmd=["/bin/sh"])       # one manifest + config
    multi = build_index([image, build_image([layer, extra], architecture="arm64")])
    multi.write_oci_layout(tmp_path / "layout")                # oci-layout, index.json, blobs/
    await push_image(resolver, "127.0.0.1:5000/test/busybox:1", multi)

``busybox_image(for_platforms=("linux/amd64", "linux/arm64"))`` does all of that in
one call; a second platform reuses the host's layers under a config with a
different ``os``/``architecture``, which is enough for selection tests (the
binaries only run on the host's platform).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import zstandard

from pycontainerd import images
from pycontainerd.api.types import Platform
from pycontainerd.images import platforms
from pycontainerd.remotes import Resolver, push_order, reference

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "true", "false", "ls", "env", "id", "mkdir", "rm", "touch")

_LAYER_TYPES = {
    ("oci", "gzip"): images.MEDIA_TYPE_OCI_LAYER_GZIP,
    ("oci", "zstd"): images.MEDIA_TYPE_OCI_LAYER_ZSTD,
    ("oci", ""): images.MEDIA_TYPE_OCI_LAYER,
    ("docker", "gzip"): images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP,
    ("docker", ""): images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.frozen
class Blob:
    """A descriptor and the bytes it describes."""

    desc: images.Descriptor
    data: bytes

    @classmethod
    def of(cls, media_type: str, data: bytes, *, platform: Platform | None = None) -> Blob:
        desc = images.Descriptor(
            media_type=media_type, digest=digest_of(data), size=len(data), platform=platform
        )
        return cls(desc, data)


@attrs.frozen
class Layer:
    """A layer blob plus its uncompressed tar and ``diff_id`` (sha256 of the tar)."""

    blob: Blob
    tar: bytes

    @property
    def diff_id(self) -> str:
        return digest_of(self.tar)


@attrs.frozen
class BuiltImage:
    """An image: its target (manifest or index) and every blob under it."""

    target: Blob
    blobs: tuple[Blob, ...]
    """All blobs, target included, children before parents (push order)."""

    @property
    def manifests(self) -> list[Blob]:
        return [b for b in self.blobs if images.is_manifest(b.desc.media_type)]

    @property
    def configs(self) -> list[Blob]:
        return [b for b in self.blobs if images.is_config(b.desc.media_type)]

    @property
    def layers(self) -> list[Blob]:
        return [b for b in self.blobs if images.is_layer(b.desc.media_type)]

    def blob(self, digest: str) -> bytes:
        """The bytes of one blob.

        Raises:
            KeyError: not part of this image.
        """
        for b in self.blobs:
            if b.desc.digest == digest:
                return b.data
        raise KeyError(digest)

    def write_oci_layout(self, directory: Path, tag: str = "latest") -> Path:
        """Write an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``)."""
        blob_dir = directory / "blobs" / "sha256"
        blob_dir.mkdir(parents=True, exist_ok=True)
        for b in self.blobs:
            (blob_dir / b.desc.digest.split(":", 1)[1]).write_bytes(b.data)
        (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        target = attrs.evolve(
            self.target.desc, annotations={"org.opencontainers.image.ref.name": tag}
        )
        index = images.Index(media_type=images.MEDIA_TYPE_OCI_INDEX, manifests=(target,))
        (directory / "index.json").write_bytes(index.to_json())
        return directory


def _tar(entries: Iterable[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                tar.addfile(entry[0], io.BytesIO(entry[1]))
            else:
                tar.addfile(entry)
    return out.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def compress(data: bytes, compression: str) -> bytes:
    """``gzip`` (mtime 0), ``zstd`` or ``""`` (as is)."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "":
        return data
    raise ValueError(f"unknown compression {compression!r}")


def decompress(data: bytes) -> bytes:
    """Undo :func:`compress`, detecting gzip and zstd by their magic."""
    if data[:3] == b"\x1f\x8b\x08":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def files_layer(
    files: Mapping[str, bytes],
    *,
    compression: str = "gzip",
    flavour: str = "oci",
    symlinks: Mapping[str, str] | None = None,
    mode: int = 0o644,
) -> Layer:
    """A layer holding ``files`` (paths relative to ``/``) and ``symlinks`` (path → target)."""
    entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = []
    dirs: set[str] = set()
    for path in [*files, *(symlinks or {})]:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for d in sorted(dirs):
        entries.append(_info(d + "/", tarfile.DIRTYPE, 0o755))
    for path, data in sorted(files.items()):
        entries.append((_info(path.strip("/"), tarfile.REGTYPE, mode, len(data)), data))
    for path, target in sorted((symlinks or {}).items()):
        entries.append(_info(path.strip("/"), tarfile.SYMTYPE, 0o777, link=target))
    tar = _tar(entries)
    blob = Blob.of(_LAYER_TYPES[(flavour, compression)], compress(tar, compression))
    return Layer(blob=blob, tar=tar)


def busybox_layer(
    *, compression: str = "gzip", flavour: str = "oci", applets: Sequence[str] = APPLETS
) -> Layer:
    """``/bin/busybox`` from the host (mode 0755) plus ``/bin/<applet>`` symlinks to it."""
    tar_entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = [
        _info("bin/", tarfile.DIRTYPE, 0o755)
    ]
    data = BUSYBOX.read_bytes()
    tar_entries.append((_info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), data))
    for applet in sorted(applets):
        tar_entries.append(_info(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox"))
    for d in ("etc/", "tmp/", "proc/", "sys/", "dev/"):
        tar_entries.append(_info(d, tarfile.DIRTYPE, 0o1777 if d == "tmp/" else 0o755))
    tar = _tar(tar_entries)
    blob = Blob.of(_LAYER_TYPES[(flavour, compression)], compress(tar, compression))
    return Layer(blob=blob, tar=tar)


def build_image(
    layers: Sequence[Layer],
    *,
    os: str = "linux",
    architecture: str | None = None,
    variant: str = "",
    cmd: Sequence[str] | None = ("/bin/sh",),
    entrypoint: Sequence[str] | None = None,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    working_dir: str = "/",
    user: str = "",
    labels: Mapping[str, str] | None = None,
    flavour: str = "oci",
) -> BuiltImage:
    """One manifest and its config over ``layers`` (architecture default: the host's)."""
    host = platforms.default_platform()
    arch = architecture or host.architecture
    if architecture is None:
        variant = variant or host.variant
    config = images.ImageConfig(
        architecture=arch,
        os=os,
        variant=variant,
        created="1970-01-01T00:00:00Z",
        config=images.ContainerConfig(
            user=user,
            env=tuple(env),
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            cmd=None if cmd is None else tuple(cmd),
            working_dir=working_dir,
            labels=dict(labels or {}),
        ),
        diff_ids=tuple(layer.diff_id for layer in layers),
    )
    docker = flavour == "docker"
    config_blob = Blob.of(
        images.MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG if docker else images.MEDIA_TYPE_OCI_CONFIG,
        config.to_json(),
    )
    manifest_type = (
        images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST if docker else images.MEDIA_TYPE_OCI_MANIFEST
    )
    manifest = images.Manifest(
        media_type=manifest_type,
        config=config_blob.desc,
        layers=tuple(layer.blob.desc for layer in layers),
    )
    manifest_blob = Blob.of(
        manifest_type,
        manifest.to_json(),
        platform=Platform(os=os, architecture=arch, variant=variant),
    )
    blobs = _unique([*(layer.blob for layer in layers), config_blob, manifest_blob])
    return BuiltImage(target=manifest_blob, blobs=tuple(blobs))


def build_index(manifests: Sequence[BuiltImage], *, flavour: str = "oci") -> BuiltImage:
    """An index over single-manifest images (their descriptors carry the platform)."""
    index_type = (
        images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST
        if flavour == "docker"
        else images.MEDIA_TYPE_OCI_INDEX
    )
    index = images.Index(
        media_type=index_type, manifests=tuple(image.target.desc for image in manifests)
    )
    index_blob = Blob.of(index_type, index.to_json())
    blobs = _unique([b for image in manifests for b in image.blobs] + [index_blob])
    return BuiltImage(target=index_blob, blobs=tuple(blobs))


def busybox_image(
    *,
    for_platforms: Sequence[str] = (),
    compression: str = "gzip",
    extra_files: Mapping[str, bytes] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
) -> BuiltImage:
    """Busybox (plus ``extra_files`` in a second layer) for the host, or an index.

    With ``for_platforms`` (specifiers such as ``"linux/amd64"``) an index is
    built with one manifest per platform, all over the same layers.
    """
    layers = [busybox_layer(compression=compression)]
    if extra_files:
        layers.append(files_layer(extra_files, compression=compression))
    if not for_platforms:
        return build_image(layers, cmd=cmd)
    built = []
    for spec in for_platforms:
        p = platforms.parse(spec)
        built.append(
            build_image(layers, os=p.os, architecture=p.architecture, variant=p.variant, cmd=cmd)
        )
    return build_index(built)


def _unique(blobs: Iterable[Blob]) -> list[Blob]:
    seen: dict[str, Blob] = {}
    for b in blobs:
        seen.setdefault(b.desc.digest, b)
    return list(seen.values())


async def push_image(
    resolver: Resolver, ref: str, image: BuiltImage, *, tag: str | None = None
) -> images.Descriptor:
    """Push every blob (children first), then tag the target; returns the target descriptor.

    The tag defaults to the reference's tag; with neither, the target is
    pushed by digest only.
    """
    spec = reference.parse(ref)
    pusher = resolver.pusher(ref)
    by_digest = {b.desc.digest: b for b in image.blobs}
    for desc in push_order(b.desc for b in image.blobs):
        blob = by_digest[desc.digest]
        if images.is_manifest(desc.media_type) or images.is_index(desc.media_type):
            name = (tag or spec.tag or None) if desc.digest == image.target.desc.digest else None
            await pusher.push_manifest(desc, blob.data, tag=name)
        else:
            await pusher.push_blob(desc, blob.data)
    return image.target.desc


def manifest_json(blob: Blob) -> dict[str, object]:
    """A manifest or index blob as a dict (for asserting on what was pushed)."""
    doc = json.loads(blob.data)
    assert isinstance(doc, dict)
    return doc
