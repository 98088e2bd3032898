"""Push: a local image to a registry (containerd ``remotes/handlers.go``
``PushContent``, ``core/transfer/local/push.go``).

The image's content is walked from its target (an index's manifests limited
to ``matcher`` when one is given); blobs go first, up to three at a time, each
trying a cross-repo mount from the repositories its
``containerd.io/distribution.source.<host>`` label names; then manifests and
indexes, children before parents, the target last under the reference's tag.
Non-distributable layers are skipped, as containerd does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import trio

from pycontainerd.api import errdefs
from pycontainerd.content import CHUNK
from pycontainerd.images import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    Index,
    MatchComparer,
    children,
    distribution_sources,
    is_index,
    is_manifest,
    is_non_distributable,
)
from pycontainerd.metadata.images import ImageRecord
from pycontainerd.remotes import Resolver, push_order, push_ref_key, reference

from ._job import Job, ProgressFn, Stores, open_job, open_workers


async def walk(
    job: Job, target: Descriptor, matcher: MatchComparer | None
) -> tuple[list[Descriptor], dict[str, bytes]]:
    """Every descriptor under ``target`` (target included) and the manifest/index bytes.

    Raises:
        errdefs.NotFound: a manifest, index or blob the walk needs is not in content.
    """
    seen: dict[str, Descriptor] = {}
    data: dict[str, bytes] = {}
    todo = [target]
    while todo:
        desc = todo.pop()
        if desc.digest in seen:
            continue
        seen[desc.digest] = desc
        if not (is_index(desc.media_type) or is_manifest(desc.media_type)):
            if await job.info(desc.digest) is None and not is_non_distributable(desc.media_type):
                raise errdefs.NotFound(f"content digest {desc.digest}: not found")
            continue
        blob = await job.read_blob(desc, MAX_MANIFEST_SIZE)
        data[desc.digest] = blob
        kids = children(desc, blob)
        if is_index(desc.media_type) and matcher is not None:
            Index.parse(blob)
            kids = [k for k in kids if k.platform is None or matcher.match(k.platform)]
        todo.extend(kids)
    return list(seen.values()), data


async def _blob_chunks(job: Job, digest: str) -> AsyncGenerator[bytes, None]:
    path = await job.run(job.content.blob_path, digest)
    async with await trio.open_file(path, "rb") as f:
        while chunk := await f.read(CHUNK):
            yield chunk


async def push(
    stores: Stores,
    resolver: Resolver,
    ref: str,
    *,
    source_ref: str = "",
    matcher: MatchComparer | None = None,
    lease: str | None = None,
    progress: ProgressFn | None = None,
    max_concurrent: int = 3,
) -> ImageRecord:
    """Push the image ``source_ref`` (default ``ref``) to ``ref``; returns the local image.

    Raises:
        errdefs.InvalidArgument: ``ref`` does not parse.
        errdefs.NotFound: no such image, or content it references is missing.
        errdefs.PermissionDenied: the registry refused the credentials.
    """
    spec = reference.parse(ref)
    async with open_job(stores, lease=lease, progress=progress) as job:
        rec = await job.get_image(source_ref or ref)
        target = Descriptor.from_api(rec.target)
        descs, manifests = await walk(job, target, matcher)
        pusher = resolver.pusher(ref)
        ordered = [d for d in push_order(descs) if not is_non_distributable(d.media_type)]
        blobs = [d for d in ordered if d.digest not in manifests]
        send, receive = trio.open_memory_channel[Descriptor](len(blobs) or 1)
        for d in blobs:
            send.send_nowait(d)
        send.close()

        async def push_worker() -> None:
            async for desc in receive:
                key = push_ref_key(desc)
                info = await job.info(desc.digest)
                labels = {} if info is None else dict(info.labels)
                await job.report("pushing", key, desc=desc, total=desc.size)
                status = await pusher.push_blob(
                    desc,
                    _blob_chunks(job, desc.digest),
                    mount_from=distribution_sources(labels, spec.hostname),
                )
                await job.report(status, key, desc=desc, progress=desc.size, total=desc.size)

        async with open_workers() as nursery:
            for _ in range(min(max_concurrent, max(len(blobs), 1))):
                nursery.start_soon(push_worker)
        for desc in ordered:
            if desc.digest not in manifests:
                continue
            tag = (spec.tag or None) if desc.digest == target.digest else None
            key = push_ref_key(desc)
            status = await pusher.push_manifest(desc, manifests[desc.digest], tag=tag)
            await job.report(status, key, desc=desc, progress=desc.size, total=desc.size)
        await job.report(f"Pushed {ref}", ref, desc=target)
        return rec
