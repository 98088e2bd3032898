"""Unpack: an image's layers applied into snapshots named by their chain IDs
(containerd ``pkg/unpack/unpacker.go``, ``rootfs/apply.go``).

For layer ``i`` with ``chain = chain_ids(diff_ids)``::

    stat(chain[i])            exists → already unpacked, next layer
    wait for the layer blob   (a pull fetches layer i+1.. while this one applies)
    prepare("extract-<nanos>-<rand> <chain[i]>", parent=chain[i-1],
            labels={containerd.io/snapshot.ref: chain[i]})
                              AlreadyExists (the ref target) → unpacked by someone else
    apply(blob, mounts)       digest of the tar must be diff_ids[i]:
                              "wrong diff id calculated on extraction"
    commit(chain[i], key)     AlreadyExists = success; any failure removes the key
    label the layer blob      containerd.io/uncompressed=<diff_id>

and at the end the config blob gets ``containerd.io/gc.ref.snapshot.<sn>=<top
chain ID>``, which keeps the snapshots alive as long as an image references
the config. Everything made here is held by the job's lease until then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.types import Descriptor as ApiDescriptor
from pycontainerd.images import (
    LABEL_UNCOMPRESSED,
    MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
    MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN,
    Descriptor,
    ImageConfig,
    chain_ids,
)
from pycontainerd.metadata import NamespacedSnapshotter
from pycontainerd.remotes import push_ref_key

from ._job import DEFAULT_SNAPSHOTTER, Job, extract_key

REF_LABEL = "containerd.io/snapshot.ref"
GC_REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."

Fetched = Callable[[int], Awaitable[None]]
"""Returns once layer ``i`` is in the content store."""


async def _local(_: int) -> None:
    return None


def _exists(sn: NamespacedSnapshotter, key: str) -> bool:
    try:
        sn.stat(key)
    except errdefs.NotFound:
        return False
    return True


_DETECT = (MEDIA_TYPE_DOCKER_SCHEMA2_LAYER, MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN)


def differ_descriptor(layer: Descriptor) -> ApiDescriptor:
    """The layer as the differ is asked to apply it.

    Docker's plain ``...rootfs.diff.tar`` means "detect the compression" in
    containerd (``DiffCompression`` answers unknown); the walking differ
    refuses that media type but detects when given none, so it gets none.
    """
    desc = layer.to_api()
    if layer.media_type in (
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN,
    ):
        return attrs.evolve(desc, media_type="")
    return desc


def apply_layer(
    job: Job,
    sn: NamespacedSnapshotter,
    layer: Descriptor,
    diff_id: str,
    chain_id: str,
    parent: str,
) -> bool:
    """Apply one layer as the committed snapshot ``chain_id`` (worker thread).

    Returns:
        Whether this call made the snapshot (``False``: it appeared meanwhile).

    Raises:
        errdefs.DataLoss: the applied tar's digest is not ``diff_id``.
        errdefs.NotFound: the layer blob or ``parent`` is missing.
    """
    key = extract_key(chain_id)
    labels = {REF_LABEL: chain_id}
    try:
        mounts = sn.prepare(key, parent, labels)
    except errdefs.AlreadyExists:
        if _exists(sn, chain_id):
            return False
        raise
    committed = False
    try:
        applied = job.stores.differ.apply(differ_descriptor(layer), mounts, job.content)
        if applied.digest != diff_id:
            raise errdefs.DataLoss(
                f"wrong diff id calculated on extraction {diff_id!r}: got {applied.digest!r}"
            )
        try:
            sn.commit(chain_id, key, labels)
            committed = True
        except errdefs.AlreadyExists:
            return False
        return True
    finally:
        if not committed:
            with contextlib.suppress(errdefs.ErrdefsError):
                sn.remove(key)


async def unpack_image(
    job: Job,
    config_desc: Descriptor,
    config: ImageConfig,
    layers: Sequence[Descriptor],
    snapshotter: str = "",
    fetched: Fetched = _local,
) -> list[str]:
    """Unpack one platform's layers, in chain order; returns the chain IDs.

    ``fetched(i)`` waits until layer ``i`` is in the content store (a pull
    passes its download events; local content needs no wait). An image whose
    snapshots exist is not unpacked again.

    Raises:
        errdefs.InvalidArgument: the config's ``diff_ids`` and the manifest's layers
            differ in number.
        errdefs.DataLoss: "wrong diff id calculated on extraction".
    """
    snapshotter = snapshotter or DEFAULT_SNAPSHOTTER
    diff_ids = list(config.diff_ids)
    if len(diff_ids) != len(layers):
        raise errdefs.InvalidArgument(
            f"mismatched image rootfs and manifest layers: {len(diff_ids)} diff ids, "
            f"{len(layers)} layers"
        )
    chain = chain_ids(diff_ids)
    sn = job.snapshotter(snapshotter)
    parent = ""
    for i, layer in enumerate(layers):
        if await job.run(_exists, sn, chain[i]):
            parent = chain[i]
            continue
        await fetched(i)
        ref = push_ref_key(layer)
        await job.report("extracting", ref, desc=layer, total=layer.size)
        made = await job.run(apply_layer, job, sn, layer, diff_ids[i], chain[i], parent)
        if made:
            await job.set_labels(layer.digest, {LABEL_UNCOMPRESSED: diff_ids[i]})
        await job.report("unpacked", ref, desc=layer, progress=layer.size, total=layer.size)
        parent = chain[i]
    if chain:
        await job.set_labels(config_desc.digest, {GC_REF_SNAPSHOT + snapshotter: chain[-1]})
    return chain
