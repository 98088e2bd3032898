"""The transfers that stay on this host: import, export, and unpack of a stored image.

Each runs as a :class:`~pycontainerd.transfer.Job` like a pull: under a lease,
its tar and content work in worker threads, the image records written last.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pycontainerd.api import errdefs
from pycontainerd.images import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageConfig,
    Manifest,
    MatchComparer,
    matches_platform,
    resolve_platform,
)
from pycontainerd.metadata.tables.images import ImageRecord

from ._archive import (
    Archive,
    docker_manifest,
    export_layout,
    image_name,
    import_tree,
    read_index,
)
from ._job import Job, ProgressFn, Stores, open_job
from ._unpack import unpack_image

ImportedImage = tuple[str, Descriptor, list[tuple[Descriptor, bytes]]]


def _read_archive(
    job: Job, path: Path, base_name: str, matcher: MatchComparer, all_platforms: bool
) -> list[ImportedImage]:
    """Store the selected content of the tarball; the images to name (worker thread)."""
    found: list[ImportedImage] = []
    with Archive(path) as archive:
        index = read_index(archive)
        if index is not None:
            for entry in index.manifests:
                name = image_name(dict(entry.annotations), base_name)
                if not name:
                    continue
                target = Descriptor(
                    media_type=entry.media_type,
                    digest=entry.digest,
                    size=entry.size,
                    platform=entry.platform,
                )
                manifests = import_tree(archive, job.content, target, matcher, all_platforms)
                found.append((name, target, manifests))
            return found
        if not archive.has("manifest.json"):
            raise errdefs.InvalidArgument(
                f"{path}: neither an OCI image layout (index.json) nor a docker save "
                "(manifest.json)"
            )
        entries = archive.json("manifest.json")
        if not isinstance(entries, list):
            raise errdefs.InvalidArgument("manifest.json: expected a list")
        for entry in entries:
            desc, names = docker_manifest(archive, job.content, entry)
            data = job.content.blob_path(desc.digest).read_bytes()
            found.extend((name, desc, [(desc, data)]) for name in names)
    return found


async def _unpack_manifests(
    job: Job,
    manifests: Sequence[tuple[Descriptor, bytes]],
    matcher: MatchComparer,
    snapshotter: str,
) -> None:
    for desc, data in manifests:
        manifest = Manifest.parse(data)
        config = ImageConfig.parse(await job.read_blob(manifest.config, MAX_MANIFEST_SIZE))
        if matches_platform(matcher, desc, config.platform):
            await unpack_image(job, manifest.config, config, manifest.layers, snapshotter)


async def import_(
    stores: Stores,
    path: Path,
    *,
    matcher: MatchComparer,
    unpack_matcher: MatchComparer | None = None,
    base_name: str = "",
    all_platforms: bool = False,
    unpack: bool = True,
    snapshotter: str = "",
    lease: str | None = None,
    progress: ProgressFn | None = None,
) -> list[ImageRecord]:
    """Import an OCI layout or docker-save tarball; returns the images it named.

    Raises:
        errdefs.NotFound: no such file, or a blob of a selected platform is missing.
        errdefs.InvalidArgument: not a tarball of either kind, or an unsafe member name.
        errdefs.FailedPrecondition: a blob is not its digest.
    """
    async with open_job(stores, lease=lease, progress=progress) as job:
        await job.report(f"Importing from {path}")
        found = await job.run(_read_archive, job, path, base_name, matcher, all_platforms)
        records = []
        for name, target, manifests in found:
            if unpack:
                await _unpack_manifests(job, manifests, unpack_matcher or matcher, snapshotter)
            records.append(await job.save_image(name, target))
        return records


async def export(
    stores: Stores,
    path: Path,
    refs: Sequence[str],
    *,
    matcher: MatchComparer,
    all_platforms: bool = False,
    lease: str | None = None,
    progress: ProgressFn | None = None,
) -> list[ImageRecord]:
    """Write the images ``refs`` to the tarball ``path``; returns them.

    Raises:
        errdefs.InvalidArgument: no refs.
        errdefs.NotFound: an unknown image, or content of a selected platform missing.
    """
    if not refs:
        raise errdefs.InvalidArgument("export: at least one image is required")
    async with open_job(stores, lease=lease, progress=progress) as job:
        records = [await job.get_image(ref) for ref in refs]
        images = [(r.name, Descriptor.from_api(r.target)) for r in records]
        count = await job.run(export_layout, job.content, path, images, matcher, all_platforms)
        await job.report("exported", str(path), progress=count, total=count)
        return records


async def unpack(
    stores: Stores,
    name: str,
    *,
    matcher: MatchComparer,
    snapshotter: str = "",
    lease: str | None = None,
    progress: ProgressFn | None = None,
) -> list[str]:
    """Unpack the stored image ``name`` for ``matcher``; returns its chain IDs.

    Raises:
        errdefs.NotFound: no such image, no manifest for the platform, missing content.
    """
    async with open_job(stores, lease=lease, progress=progress) as job:
        rec = await job.get_image(name)

        async def read(desc: Descriptor) -> bytes:
            return await job.read_blob(desc, MAX_MANIFEST_SIZE)

        chosen = await resolve_platform(read, Descriptor.from_api(rec.target), matcher)
        return await unpack_image(
            job, chosen.manifest.config, chosen.config, chosen.manifest.layers, snapshotter
        )
