"""Image graph logic: chain IDs, manifest selection, children and their labels.

An image is a tree of blobs walked from its target (``images/image.go``,
``images/handlers.go``)::

    index ──m.0──> manifest (linux/amd64) ──config──> config {rootfs.diff_ids}
          └─m.1──> manifest (linux/arm64)  └─l.0, l.1──> layers

:func:`children` names the edges, :func:`child_labels` turns them into the
``containerd.io/gc.ref.content.*`` labels that keep children alive while their
parent is, and :func:`chain_ids` names the snapshots the layers unpack into.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import attrs

from pycontainerd.api import errdefs, labels
from pycontainerd.api.types import Platform

from ._mediatypes import (
    LABEL_DISTRIBUTION_SOURCE,
    MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST,
    child_gc_label,
    is_index,
    is_known_config,
    is_layer,
    is_manifest,
)
from ._oci import Descriptor, ImageConfig, Index, Manifest
from .platforms import MatchComparer, less, normalize
from .platforms import format as format_platform


def chain_id(diff_ids: Sequence[str]) -> str:
    """The ChainID of a layer stack (``identity.ChainID``).

    ``chain_id([d0]) == d0``; ``chain_id([d0..dn]) == sha256(chain_id([d0..dn-1]) + " " + dn)``.

    Raises:
        errdefs.InvalidArgument: ``diff_ids`` is empty.
    """
    if not diff_ids:
        raise errdefs.InvalidArgument("chain ID of an empty layer list")
    return chain_ids(diff_ids)[-1]


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The ChainID of every prefix of ``diff_ids`` (``identity.ChainIDs``): the snapshot names."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            joined = f"{out[-1]} {diff_id}".encode()
            out.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return out


def candidates(index: Index, matcher: MatchComparer) -> list[Descriptor]:
    """Entries of ``index`` whose platform is absent or matches, best first.

    The sort is stable by ``matcher.less``; entries without a platform go last
    (containerd's ``images.Manifest``).
    """
    kept = [d for d in index.manifests if d.platform is None or matcher.match(d.platform)]
    # insertion sort: stable and driven by the Less relation alone, like sort.SliceStable
    ordered: list[Descriptor] = []
    for desc in kept:
        pos = len(ordered)
        while pos > 0 and less(matcher, desc.platform, ordered[pos - 1].platform):
            pos -= 1
        ordered.insert(pos, desc)
    return ordered


def select_manifest(index: Index, matcher: MatchComparer) -> Descriptor:
    """The best entry of ``index`` for ``matcher`` (it may itself be an index: walk again).

    Raises:
        errdefs.NotFound: "no match for platform in manifest".
    """
    found = candidates(index, matcher)
    if not found:
        raise errdefs.NotFound("no match for platform in manifest")
    return found[0]


def matches_platform(
    matcher: MatchComparer, desc: Descriptor, config_platform: Platform | None = None
) -> bool:
    """Whether a manifest matches: its descriptor's platform, else its config's.

    A manifest without a platform gets it from its config (``images.Manifest``);
    pass ``ImageConfig.platform`` as ``config_platform``.
    """
    if desc.platform is not None:
        return matcher.match(desc.platform)
    if config_platform is not None:
        return matcher.match(config_platform)
    return False


def platform_label(desc: Descriptor) -> str:
    """``os/arch[/variant]`` of a descriptor's normalized platform, or ``"unknown"``."""
    if desc.platform is None:
        return "unknown"
    return format_platform(normalize(desc.platform))


def children(desc: Descriptor, blob: bytes) -> list[Descriptor]:
    """The direct children of a blob (``images.Children``).

    A manifest's config then layers; an index's manifests; nothing for layers,
    configs and unknown types.

    Raises:
        errdefs.InvalidArgument: the blob does not parse as its media type, or
            its JSON ``mediaType`` contradicts the descriptor's.
        errdefs.NotImplemented_: a schema 1 manifest.
    """
    if is_manifest(desc.media_type):
        manifest = Manifest.parse(blob)
        _check_media_type(manifest.media_type, desc.media_type)
        return [manifest.config, *manifest.layers]
    if is_index(desc.media_type):
        index = Index.parse(blob)
        _check_media_type(index.media_type, desc.media_type)
        return list(index.manifests)
    if desc.media_type == MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST:
        raise errdefs.NotImplemented_("schema 1 manifests are not supported")
    return []


def _check_media_type(in_document: str, in_descriptor: str) -> None:
    if in_document and in_document != in_descriptor:
        raise errdefs.InvalidArgument(
            f"mediaType: document says {in_document!r}, descriptor says {in_descriptor!r}"
        )


LabelMap = Callable[[str, Mapping[str, str]], str | None]


def _default_label_map(media_type: str, annotations: Mapping[str, str]) -> str | None:
    return child_gc_label(media_type, annotations)


def child_labels(
    kids: Iterable[Descriptor], label_map: LabelMap = _default_label_map
) -> dict[str, str]:
    """The GC labels a parent carries for its children (``SetChildrenMappedLabels``).

    Each child's key comes from ``label_map`` (default
    :func:`~pycontainerd.images.child_gc_label`; ``None`` = no label). A key
    ending in ``.`` always gets the per-key index appended (``...m.0``,
    ``...l.1``); other keys only from their second occurrence
    (``...config``, ``...config1``).
    """
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for kid in kids:
        key = label_map(kid.media_type, kid.annotations)
        if key is None:
            continue
        idx = seen.get(key, 0)
        seen[key] = idx + 1
        if idx > 0 or key.endswith("."):
            key = f"{key}{idx}"
        out[key] = kid.digest
    return out


def is_child_kind(media_type: str) -> bool:
    """A media type :func:`children` knows (manifest, index, config or layer)."""
    return (
        is_manifest(media_type)
        or is_index(media_type)
        or is_known_config(media_type)
        or is_layer(media_type)
    )


def _hostname(host: str) -> str:
    """``host[:port]`` without the port (Go's ``url.URL.Hostname``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def distribution_source_key(host: str) -> str:
    """``containerd.io/distribution.source.<hostname>`` for a reference host.

    The port is dropped, as containerd does (``127.0.0.1:5000`` →
    ``...source.127.0.0.1``; ``docker.io`` stays ``docker.io``).
    """
    return f"{LABEL_DISTRIBUTION_SOURCE}.{_hostname(host)}"


def merge_distribution_source(current: str, repo: str) -> str:
    """Add ``repo`` to a comma-joined repository list: sorted, de-duplicated."""
    repos = {r for r in [*current.split(","), repo] if r}
    return ",".join(sorted(repos))


def distribution_source_label(
    existing: Mapping[str, str], host: str, repo: str
) -> tuple[str, str] | None:
    """The label recording that a blob came from ``host/repo`` (``AppendDistributionSourceLabel``).

    ``host`` is the reference's host (its port is dropped from the key).

    Returns ``(key, value)`` merged with the blob's ``existing`` labels, or
    ``None`` when the result would break the label size limit (the label is
    then skipped, as containerd does, and cross-repo mount just won't be tried).
    """
    key = distribution_source_key(host)
    value = merge_distribution_source(existing.get(key, ""), repo)
    try:
        labels.validate(key, value)
    except errdefs.InvalidArgument:
        return None
    return key, value


def distribution_sources(existing: Mapping[str, str], host: str) -> list[str]:
    """The repositories on ``host`` a blob is known to exist in (for cross-repo mount)."""
    value = existing.get(distribution_source_key(host), "")
    return [r for r in value.split(",") if r]


@attrs.frozen
class PlatformImage:
    """The manifest chosen for a platform, with its descriptor and config."""

    desc: Descriptor
    manifest: Manifest
    config: ImageConfig


MAX_INDEX_DEPTH = 8


async def resolve_platform(
    read: Callable[[Descriptor], Awaitable[bytes]],
    target: Descriptor,
    matcher: MatchComparer,
) -> PlatformImage:
    """Walk from an image target to the manifest for ``matcher`` (``images.Manifest``).

    ``read`` returns a blob's bytes (from the content store, or a registry);
    it is the only IO. Indexes are descended (nested ones too, up to
    :data:`MAX_INDEX_DEPTH`), candidates tried best first; a manifest without
    a platform in its descriptor is judged by its config's os/architecture.

    Raises:
        errdefs.NotFound: "no match for platform in manifest".
        errdefs.InvalidArgument: a blob that does not parse as its media type,
            or indexes nested too deep.
        errdefs.NotImplemented_: the target is neither a manifest nor an index.
    """
    return await _resolve(read, target, matcher, 0)


async def _resolve(
    read: Callable[[Descriptor], Awaitable[bytes]],
    desc: Descriptor,
    matcher: MatchComparer,
    depth: int,
) -> PlatformImage:
    if depth > MAX_INDEX_DEPTH:
        raise errdefs.InvalidArgument(f"indexes nested deeper than {MAX_INDEX_DEPTH}")
    if is_manifest(desc.media_type):
        data = await read(desc)
        kids = children(desc, data)
        manifest = Manifest.parse(data)
        config = ImageConfig.parse(await read(kids[0]))
        if matches_platform(matcher, desc, config.platform):
            return PlatformImage(desc=desc, manifest=manifest, config=config)
        raise errdefs.NotFound("no match for platform in manifest")
    if is_index(desc.media_type):
        index = Index.parse(await read(desc))
        _check_media_type(index.media_type, desc.media_type)
        for candidate in candidates(index, matcher):
            try:
                return await _resolve(read, candidate, matcher, depth + 1)
            except errdefs.NotFound:
                continue
        raise errdefs.NotFound("no match for platform in manifest")
    raise errdefs.NotImplemented_(f"{desc.media_type!r} is neither a manifest nor an index")
