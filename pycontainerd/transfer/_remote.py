"""Transfers with a registry: pull and push (containerd ``core/transfer/local/pull.go``,
``push.go``, ``images/handlers.go``, ``remotes/handlers.go``).

A pull takes a reference into content, snapshots and an image record:

::

    resolve(ref) ─▶ target ─▶ index ─▶ manifests (platform-filtered, best one
                                       unless all platforms) ─▶ config
                                                   │
             layer fetchers (3) ◀── layers queue ──┘
               │  fetch(desc, offset=ingest offset) → writer → commit(size, digest)
               ▼  events[digest].set()
             unpacker: layer 0 apply, waits layer 1, apply, ...  (chain order)
                                                   │
                                  image record (create or update target) ─▶ lease deleted

Blobs the namespace owns already are not fetched (``already exists``);
manifests and indexes carry the GC labels of their children, every blob
``containerd.io/distribution.source.<host>=<repo>``. A partial ingest from a
killed pull resumes from its offset with ``Range``.

A push walks the image's content from its target (an index's manifests
limited to ``matcher`` when one is given); blobs go first, up to three at a
time, each trying a cross-repo mount from the repositories its
``containerd.io/distribution.source.<host>`` label names; then manifests and
indexes, children before parents, the target last under the reference's tag.
Non-distributable layers are skipped, as containerd does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.content import CHUNK, Info
from pycontainerd.images import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    MatchComparer,
    candidates,
    child_labels,
    children,
    distribution_source_label,
    distribution_sources,
    is_index,
    is_manifest,
    is_non_distributable,
    matches_platform,
)
from pycontainerd.metadata import NamespacedWriter
from pycontainerd.metadata.tables.images import ImageRecord
from pycontainerd.remotes import Fetcher, Resolver, push_order, push_ref_key, reference
from pycontainerd.remotes.reference import Spec

from ._job import Job, ProgressFn, Stores, open_job, open_workers
from ._unpack import unpack_image

WRITE_BUFFER = 1 << 20
"""Bytes gathered from the network before one write in a worker thread."""

REPORT_INTERVAL = 0.2
"""Seconds between two ``downloading`` items of one blob."""


@attrs.frozen
class PlatformManifest:
    """A manifest chosen for the pull, with its config."""

    desc: Descriptor
    manifest: Manifest
    config_desc: Descriptor
    config: ImageConfig


class _Puller:
    def __init__(self, job: Job, fetcher: Fetcher, spec: Spec) -> None:
        self.job = job
        self.fetcher = fetcher
        self.spec = spec

    def _source_labels(self, existing: Mapping[str, str]) -> dict[str, str]:
        label = distribution_source_label(existing, self.spec.hostname, self.spec.repository)
        return {} if label is None else {label[0]: label[1]}

    async def _load(self, desc: Descriptor) -> tuple[bytes, Info | None]:
        """A manifest, index or config: from content if the namespace has it, else fetched."""
        info = await self.job.info(desc.digest)
        if info is not None:
            return await self.job.read_blob(desc, MAX_MANIFEST_SIZE), info
        return await self.fetcher.fetch_bytes(desc), None

    async def _keep(
        self, desc: Descriptor, data: bytes, info: Info | None, labels: dict[str, str]
    ) -> None:
        """Store a fetched blob with ``labels``, or add them to the stored one."""
        ref = push_ref_key(desc)
        if info is not None:
            wanted = {**labels, **self._source_labels(info.labels)}
            await self.job.set_labels(
                desc.digest, {k: v for k, v in wanted.items() if info.labels.get(k) != v}
            )
            await self.job.report("already exists", ref, desc=desc, progress=desc.size)
            return
        await self.job.write_blob(ref, desc, data, {**labels, **self._source_labels({})})
        await self.job.report("complete", ref, desc=desc, progress=desc.size, total=desc.size)

    async def _small(self, desc: Descriptor) -> bytes:
        data, info = await self._load(desc)
        await self._keep(desc, data, info, {})
        return data

    async def manifests(
        self, desc: Descriptor, matcher: MatchComparer, all_platforms: bool, depth: int = 0
    ) -> list[PlatformManifest]:
        """Store ``desc`` and what it references for the platforms wanted.

        Raises:
            errdefs.NotFound: no manifest for the platform.
            errdefs.NotImplemented_: neither an index nor a manifest.
        """
        if depth > 8:
            raise errdefs.InvalidArgument("indexes nested deeper than 8")
        if is_index(desc.media_type):
            data, info = await self._load(desc)
            index = Index.parse(data)
            kids = list(index.manifests) if all_platforms else candidates(index, matcher)[:1]
            if not kids:
                raise errdefs.NotFound(f"no match for platform {matcher} in manifest {desc.digest}")
            # labelled with every child, as containerd does, fetched or not
            await self._keep(desc, data, info, child_labels(index.manifests))
            found: list[PlatformManifest] = []
            for kid in kids:
                if is_index(kid.media_type) or is_manifest(kid.media_type):
                    found += await self.manifests(kid, matcher, all_platforms, depth + 1)
            return found
        if is_manifest(desc.media_type):
            data, info = await self._load(desc)
            kids = children(desc, data)
            manifest = Manifest.parse(data)
            config = ImageConfig.parse(await self._small(manifest.config))
            if not all_platforms and not matches_platform(matcher, desc, config.platform):
                raise errdefs.NotFound(f"no match for platform {matcher} in manifest {desc.digest}")
            await self._keep(desc, data, info, child_labels(kids))
            return [PlatformManifest(desc, manifest, manifest.config, config)]
        raise errdefs.NotImplemented_(f"{desc.media_type!r} is neither a manifest nor an index")

    async def fetch_layer(self, desc: Descriptor, parent: str) -> None:
        """Fetch one layer into content unless the namespace has it; verified on commit.

        Raises:
            errdefs.FailedPrecondition: the registry's bytes are not ``desc``
                (the ingest is aborted: a resume does not build on them).
        """
        job, ref = self.job, push_ref_key(desc)
        writer = await job.open_writer(ref, desc)
        if writer is None:
            info = await job.info(desc.digest)
            labels = {} if info is None else self._source_labels(info.labels)
            existing = {} if info is None else info.labels
            await job.set_labels(
                desc.digest, {k: v for k, v in labels.items() if existing.get(k) != v}
            )
            await job.report(
                "already exists",
                ref,
                desc=desc,
                progress=desc.size,
                total=desc.size,
                parents=(parent,),
            )
            return
        done = False
        try:
            offset = writer.status().offset
            if offset > desc.size:
                await job.run(writer.truncate, 0)
                offset = 0
            await job.report("downloading", ref, desc=desc, progress=offset, total=desc.size)
            if offset < desc.size:
                offset = await self._download(writer, desc, offset, ref)
            try:
                await job.run(writer.commit, desc.size, desc.digest, self._source_labels({}))
            except errdefs.AlreadyExists:
                pass
            except errdefs.FailedPrecondition:
                with trio.CancelScope(shield=True):
                    await job.run(writer.close)
                    await job.run(job.content.abort, ref)
                done = True
                raise
            done = True
        finally:
            if not done:
                with trio.CancelScope(shield=True), contextlib.suppress(errdefs.ErrdefsError):
                    await job.run(writer.close)
        await job.report(
            "complete", ref, desc=desc, progress=desc.size, total=desc.size, parents=(parent,)
        )

    async def _download(
        self, writer: NamespacedWriter, desc: Descriptor, offset: int, ref: str
    ) -> int:
        job = self.job
        write = writer.write
        buffer: list[bytes] = []
        pending = 0
        last = trio.current_time()
        async with await self.fetcher.fetch(desc, offset) as stream:
            async for chunk in stream:
                buffer.append(chunk)
                pending += len(chunk)
                now = trio.current_time()
                if pending >= WRITE_BUFFER or now - last >= REPORT_INTERVAL:
                    await job.run(write, b"".join(buffer))
                    offset += pending
                    buffer, pending = [], 0
                    if now - last >= REPORT_INTERVAL:
                        last = now
                        await job.report(
                            "downloading", ref, desc=desc, progress=offset, total=desc.size
                        )
        if pending:
            await job.run(write, b"".join(buffer))
            offset += pending
        return offset


async def pull(
    stores: Stores,
    resolver: Resolver,
    ref: str,
    *,
    matcher: MatchComparer,
    unpack_matcher: MatchComparer | None = None,
    all_platforms: bool = False,
    unpack: bool = True,
    snapshotter: str = "",
    lease: str | None = None,
    progress: ProgressFn | None = None,
    max_concurrent: int = 3,
) -> ImageRecord:
    """Pull ``ref`` and (``unpack``) unpack it; returns the image record.

    ``matcher`` picks the manifest (the best one) unless ``all_platforms``;
    the manifests unpacked are those ``unpack_matcher`` (default ``matcher``)
    accepts. Cancelling leaves nothing referenced: the image record is the
    last thing written, and the job's lease goes with the job.

    Raises:
        errdefs.InvalidArgument: ``ref`` does not parse.
        errdefs.NotFound: no such reference, or no manifest for the platform.
        errdefs.FailedPrecondition: a blob's bytes are not its digest or size.
        errdefs.PermissionDenied: the registry refused the credentials.
        errdefs.DataLoss: "wrong diff id calculated on extraction".
    """
    if max_concurrent < 1:
        raise errdefs.InvalidArgument("max_concurrent_downloads must be at least 1")
    reference.parse(ref)
    async with open_job(stores, lease=lease, progress=progress) as job:
        await job.report(f"Resolving from {ref}")
        name, target = await resolver.resolve(ref)
        spec = reference.parse(name)
        puller = _Puller(job, resolver.fetcher(name), spec)
        await job.report(f"Pulling from {name}", desc=target)
        chosen = await puller.manifests(target, matcher, all_platforms)
        wanted = unpack_matcher or matcher
        to_unpack = [
            m for m in chosen if unpack and matches_platform(wanted, m.desc, m.config.platform)
        ]
        fetched: dict[str, trio.Event] = {}
        queue: list[tuple[Descriptor, str]] = []
        for m in chosen:
            for layer in m.manifest.layers:
                if layer.digest not in fetched:
                    fetched[layer.digest] = trio.Event()
                    queue.append((layer, push_ref_key(m.desc)))
        send, receive = trio.open_memory_channel[tuple[Descriptor, str]](len(queue))
        for item in queue:
            send.send_nowait(item)
        send.close()

        async def fetch_worker() -> None:
            async for layer, parent in receive:
                await puller.fetch_layer(layer, parent)
                fetched[layer.digest].set()

        async def unpack_all() -> None:
            for m in to_unpack:
                layers = m.manifest.layers

                async def wait(i: int, layers: tuple[Descriptor, ...] = layers) -> None:
                    await fetched[layers[i].digest].wait()

                await unpack_image(job, m.config_desc, m.config, layers, snapshotter, wait)

        async with open_workers() as nursery:
            for _ in range(min(max_concurrent, max(len(queue), 1))):
                nursery.start_soon(fetch_worker)
            nursery.start_soon(unpack_all)
        rec = await job.save_image(name, target)
        await job.report(f"Completed pull from {name}", name, desc=target)
        return rec


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
