"""Import and export of image tarballs (containerd ``images/archive``).

An export is an OCI image layout in a tar, plus docker's ``manifest.json``::

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    blobs/sha256/<hex>...      every blob of the platforms exported
    index.json                 one entry per image: its target, annotated
                               io.containerd.image.name=<full name>
                               org.opencontainers.image.ref.name=<tag>
    manifest.json              [{"Config", "RepoTags", "Layers"}] for ``docker load``

An import reads either layout: ``index.json`` entries name images by
``io.containerd.image.name``, else ``org.opencontainers.image.ref.name``
(a full reference, or a tag joined to ``base_name``); a docker-save tarball
without ``index.json`` gets a Docker schema 2 manifest written for each
``manifest.json`` entry, named by its ``RepoTags``. Only the blobs of the
platforms selected are read, so a tarball missing the others imports.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pycontainerd.api import errdefs
from pycontainerd.content import Info
from pycontainerd.images import (
    MAX_MANIFEST_SIZE,
    MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG,
    MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
    MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_ZSTD,
    Descriptor,
    Index,
    Manifest,
    MatchComparer,
    candidates,
    child_labels,
    children,
    is_index,
    is_manifest,
)
from pycontainerd.metadata import ContentStore
from pycontainerd.remotes import push_ref_key, reference

from ._job import commit_bytes

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def ref_object(name: str) -> str:
    """``org.opencontainers.image.ref.name`` for an image name: its tag (containerd's
    ``ociReferenceName``), or the name itself when it does not parse."""
    try:
        return reference.parse(name).object
    except errdefs.InvalidArgument:
        return name


def familiar(name: str) -> str:
    """docker's short form for ``RepoTags`` (``docker.io/library/x:1`` → ``x:1``)."""
    if not name.startswith("docker.io/"):
        return name
    rest = name.removeprefix("docker.io/")
    short = rest.removeprefix("library/")
    return short if short != rest and "/" not in short else rest


def select(
    desc: Descriptor, blob: bytes, matcher: MatchComparer, all_platforms: bool
) -> list[Descriptor]:
    """The children of ``desc`` a transfer follows (an index's best manifest, or all)."""
    kids = children(desc, blob)
    if is_index(desc.media_type) and not all_platforms:
        return candidates(Index.parse(blob), matcher)[:1]
    return kids


# -- export --------------------------------------------------------------------


def _blob_name(digest: str) -> str:
    algorithm, _, hexa = digest.partition(":")
    return f"blobs/{algorithm}/{hexa}"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0
    tar.addfile(info, io.BytesIO(data))


def export_layout(
    content: ContentStore,
    path: Path,
    images: Sequence[tuple[str, Descriptor]],
    matcher: MatchComparer,
    all_platforms: bool,
) -> int:
    """Write the images ``(name, target)`` as one tarball at ``path``; returns the blob count.

    Raises:
        errdefs.NotFound: a blob the selected platforms need is not in content.
    """
    blobs: dict[str, Descriptor] = {}
    docker: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []

    def read(desc: Descriptor) -> bytes:
        content.info(desc.digest)
        if desc.size > MAX_MANIFEST_SIZE:
            raise errdefs.ResourceExhausted(f"{desc.digest}: {desc.size} bytes")
        return content.blob_path(desc.digest).read_bytes()

    for name, target in images:
        todo = [target]
        while todo:
            desc = todo.pop()
            if desc.digest in blobs:
                continue
            content.info(desc.digest)
            blobs[desc.digest] = desc
            if is_index(desc.media_type) or is_manifest(desc.media_type):
                todo.extend(select(desc, read(desc), matcher, all_platforms))
        _docker_entry(docker, name, _platform_manifest(read, target, matcher))
        annotations = {**target.annotations, ANNOTATION_IMAGE_NAME: name}
        annotations[ANNOTATION_REF_NAME] = ref_object(name)
        entry = Descriptor(
            media_type=target.media_type,
            digest=target.digest,
            size=target.size,
            annotations=annotations,
            platform=target.platform,
        )
        entries.append(entry.to_dict())
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": entries}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, "oci-layout", OCI_LAYOUT)
            for digest in sorted(blobs):
                info = tar.gettarinfo(str(content.blob_path(digest)), arcname=_blob_name(digest))
                info.mtime, info.mode, info.uid, info.gid = 0, 0o444, 0, 0
                info.uname = info.gname = ""
                with content.blob_path(digest).open("rb") as f:
                    tar.addfile(info, f)
            _add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
            _add(tar, "manifest.json", json.dumps(docker, separators=(",", ":")).encode())
        os.replace(tmp, path)
    except FileNotFoundError as exc:
        raise errdefs.NotFound(f"export to {path}: {exc.strerror}") from None
    except PermissionError as exc:
        raise errdefs.PermissionDenied(f"export to {path}: {exc.strerror}") from None
    except OSError as exc:
        raise errdefs.Unavailable(f"export to {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return len(blobs)


def _platform_manifest(
    read: Callable[[Descriptor], bytes], target: Descriptor, matcher: MatchComparer
) -> Manifest | None:
    """The manifest ``docker load`` gets for an image: the best for ``matcher``."""
    desc: Descriptor | None = target
    for _ in range(8):
        if desc is None:
            return None
        if is_manifest(desc.media_type):
            return Manifest.parse(read(desc))
        if not is_index(desc.media_type):
            return None
        best = candidates(Index.parse(read(desc)), matcher)[:1]
        desc = best[0] if best else None
    return None


def _docker_entry(docker: list[dict[str, Any]], name: str, manifest: Manifest | None) -> None:
    if manifest is None:
        return
    config = _blob_name(manifest.config.digest)
    entry = next((d for d in docker if d["Config"] == config), None)
    if entry is None:
        entry = {
            "Config": config,
            "RepoTags": [],
            "Layers": [_blob_name(layer.digest) for layer in manifest.layers],
        }
        docker.append(entry)
    try:
        tagged = bool(reference.parse(name).tag)
    except errdefs.InvalidArgument:
        tagged = False
    if tagged and familiar(name) not in entry["RepoTags"]:
        entry["RepoTags"].append(familiar(name))


# -- import --------------------------------------------------------------------


class Archive:
    """A tarball opened for import: its members by normalized name.

    Raises:
        errdefs.InvalidArgument: not a tar, or a member named absolutely or with ``..``.
        errdefs.NotFound: no such file.
    """

    def __init__(self, path: Path) -> None:
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise errdefs.NotFound(f"{path}: no such file") from None
        except (tarfile.TarError, OSError) as exc:
            raise errdefs.InvalidArgument(f"{path}: not a tar archive: {exc}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in self._tar.getmembers():
            pure = PurePosixPath(member.name)
            if pure.is_absolute() or ".." in pure.parts:
                self.close()
                raise errdefs.InvalidArgument(f"archive member {member.name!r}: unsafe name")
            if member.isfile():
                self.members[str(pure)] = member

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        """A member's bytes as a file.

        Raises:
            errdefs.NotFound: no such member.
        """
        member = self.members.get(name)
        f = None if member is None else self._tar.extractfile(member)
        if f is None:
            raise errdefs.NotFound(f"{name}: not found in archive")
        return f

    def read(self, name: str, limit: int = MAX_MANIFEST_SIZE) -> bytes:
        member = self.members.get(name)
        if member is not None and member.size > limit:
            raise errdefs.ResourceExhausted(f"{name}: {member.size} bytes, limit {limit}")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise errdefs.InvalidArgument(f"{name}: not JSON: {exc}") from None


def store_member(
    archive: Archive,
    content: ContentStore,
    member: str,
    desc: Descriptor | None,
    labels: dict[str, str],
) -> Descriptor:
    """Copy one member into content, verified against ``desc`` (or hashed, without).

    Raises:
        errdefs.NotFound: the member is missing.
        errdefs.FailedPrecondition: its bytes are not ``desc``'s.
    """
    if desc is not None:
        try:
            content.info(desc.digest)
            if labels:
                _label(content, desc.digest, labels)
            return desc
        except errdefs.NotFound:
            pass
    with archive.open(member) as f:
        if desc is None:
            hasher = hashlib.sha256()
            size = 0
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hasher.update(chunk)
                size += len(chunk)
            desc = Descriptor(media_type="", digest="sha256:" + hasher.hexdigest(), size=size)
            f.seek(0)
        try:
            writer = content.writer(push_ref_key(desc), desc.size, desc.digest)
        except errdefs.AlreadyExists:
            return desc
        try:
            if writer.status().offset:
                writer.truncate(0)
            while chunk := f.read(1 << 20):
                writer.write(chunk)
            writer.commit(desc.size, desc.digest, labels)
        except errdefs.AlreadyExists:
            pass
        except errdefs.FailedPrecondition:
            writer.close()
            content.abort(push_ref_key(desc))
            raise
        finally:
            writer.close()
    return desc


def _label(content: ContentStore, digest: str, labels: dict[str, str]) -> None:
    info = content.info(digest)
    content.update(
        Info(
            digest=digest,
            size=0,
            created_at=info.created_at,
            updated_at=info.updated_at,
            labels=labels,
        ),
        [f"labels.{k}" for k in labels],
    )


def import_tree(
    archive: Archive,
    content: ContentStore,
    target: Descriptor,
    matcher: MatchComparer,
    all_platforms: bool,
) -> list[tuple[Descriptor, bytes]]:
    """Store ``target`` and the blobs under it for the selected platforms.

    Returns the manifests stored, with their bytes.

    Raises:
        errdefs.NotFound: a selected blob is missing from the archive.
    """
    manifests: list[tuple[Descriptor, bytes]] = []
    todo = [target]
    seen: set[str] = set()
    while todo:
        desc = todo.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        name = _blob_name(desc.digest)
        if is_index(desc.media_type) or is_manifest(desc.media_type):
            data = archive.read(name) if archive.has(name) else _stored(content, desc, name)
            kids = select(desc, data, matcher, all_platforms)
            todo.extend(kids)
            store_member_bytes(content, desc, data, child_labels(children(desc, data)))
            if is_manifest(desc.media_type):
                manifests.append((desc, data))
        elif archive.has(name):
            store_member(archive, content, name, desc, {})
        else:
            _stored(content, desc, name)
    return manifests


def _stored(content: ContentStore, desc: Descriptor, name: str) -> bytes:
    try:
        content.info(desc.digest)
    except errdefs.NotFound:
        raise errdefs.NotFound(f"blob {desc.digest} ({name}) not found in archive") from None
    return content.blob_path(desc.digest).read_bytes() if desc.size <= MAX_MANIFEST_SIZE else b""


def store_member_bytes(
    content: ContentStore, desc: Descriptor, data: bytes, labels: dict[str, str]
) -> None:
    """Commit a small blob already read, with ``labels``.

    Raises:
        errdefs.FailedPrecondition: ``data`` is not ``desc``'s.
    """
    try:
        content.info(desc.digest)
    except errdefs.NotFound:
        commit_bytes(content, push_ref_key(desc), desc, data, labels)
        return
    if labels:
        _label(content, desc.digest, labels)


def layer_media_type(head: bytes) -> str:
    """A docker-save layer's media type from its first bytes."""
    if head.startswith(b"\x1f\x8b\x08"):
        return MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return MEDIA_TYPE_OCI_LAYER_ZSTD
    return MEDIA_TYPE_DOCKER_SCHEMA2_LAYER


def docker_manifest(
    archive: Archive, content: ContentStore, entry: Any
) -> tuple[Descriptor, list[str]]:
    """Write a schema 2 manifest for one ``manifest.json`` entry; returns it and its RepoTags.

    Raises:
        errdefs.InvalidArgument: an entry without ``Config`` or ``Layers``.
        errdefs.NotFound: a file it names is missing.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
        raise errdefs.InvalidArgument("manifest.json: an entry without Config")
    layers_in = entry.get("Layers")
    if not isinstance(layers_in, list) or not all(isinstance(x, str) for x in layers_in):
        raise errdefs.InvalidArgument("manifest.json: Layers must be a list of paths")
    config = store_member(archive, content, str(PurePosixPath(entry["Config"])), None, {})
    config = Descriptor(
        media_type=MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG, digest=config.digest, size=config.size
    )
    layers = []
    for path in layers_in:
        name = str(PurePosixPath(path))
        with archive.open(name) as f:
            head = f.read(4)
        stored = store_member(archive, content, name, None, {})
        layers.append(
            Descriptor(media_type=layer_media_type(head), digest=stored.digest, size=stored.size)
        )
    manifest = Manifest(
        media_type=MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST, config=config, layers=tuple(layers)
    )
    data = manifest.to_json()
    desc = Descriptor(
        media_type=MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    store_member_bytes(content, desc, data, child_labels([config, *layers]))
    tags = entry.get("RepoTags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise errdefs.InvalidArgument("manifest.json: RepoTags must be a list of strings")
    return desc, [reference.normalize_docker(t) for t in tags]


def image_name(annotations: dict[str, str], base_name: str) -> str:
    """containerd's ``imageName``: the full-name annotation, else the OCI ref name."""
    name = annotations.get(ANNOTATION_IMAGE_NAME, "")
    if name:
        return name
    ref = annotations.get(ANNOTATION_REF_NAME, "")
    if not ref:
        return ""
    if base_name:
        return f"{base_name}:{ref}" if ":" not in ref and "/" not in ref else ref
    try:
        reference.parse(ref)
    except errdefs.InvalidArgument:
        return ""
    return ref


def read_index(archive: Archive) -> Index | None:
    """``index.json`` when there is one.

    Raises:
        errdefs.InvalidArgument: it does not parse.
    """
    if not archive.has("index.json"):
        return None
    return Index.parse(archive.read("index.json"))
