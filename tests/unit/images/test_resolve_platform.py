"""images.resolve_platform walks index → manifest → config through a reader."""

from __future__ import annotations

import attrs
import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.images import platforms
from tests import imagebuild

LAYER = imagebuild.files_layer({"f": b"x"})
AMD = imagebuild.build_image([LAYER], architecture="amd64")
ARM = imagebuild.build_image([LAYER], architecture="arm64", variant="v8")
S390 = imagebuild.build_image([LAYER], architecture="s390x")


class Reader:
    """Blobs by digest, recording what was read."""

    def __init__(self, *built: imagebuild.BuiltImage, extra: tuple[imagebuild.Blob, ...] = ()):
        self.blobs = {b.desc.digest: b.data for image in built for b in image.blobs}
        self.blobs.update({b.desc.digest: b.data for b in extra})
        self.reads: list[str] = []

    async def __call__(self, desc: images.Descriptor) -> bytes:
        self.reads.append(desc.digest)
        return self.blobs[desc.digest]


def only(spec: str) -> images.MatchComparer:
    return platforms.only(platforms.parse(spec))


async def test_index_picks_the_platform() -> None:
    index = imagebuild.build_index([AMD, ARM])
    read = Reader(index)
    got = await images.resolve_platform(read, index.target.desc, only("linux/arm64"))
    assert got.desc.digest == ARM.target.desc.digest
    assert got.config.architecture == "arm64"
    assert got.manifest.layers == (LAYER.blob.desc,)
    # only the index, the chosen manifest and its config were read
    assert read.reads == [
        index.target.desc.digest,
        ARM.target.desc.digest,
        ARM.configs[0].desc.digest,
    ]
    with pytest.raises(errdefs.NotFound, match="no match for platform in manifest"):
        await images.resolve_platform(read, index.target.desc, only("linux/s390x"))


async def test_nested_index_and_platformless_entries() -> None:
    # an index whose entries carry no platform: configs decide
    bare = [
        attrs.evolve(i.target, desc=attrs.evolve(i.target.desc, platform=None)) for i in (AMD, S390)
    ]
    inner = imagebuild.Blob.of(
        images.MEDIA_TYPE_OCI_INDEX,
        images.Index(manifests=tuple(b.desc for b in bare)).to_json(),
    )
    outer = imagebuild.Blob.of(
        images.MEDIA_TYPE_OCI_INDEX, images.Index(manifests=(inner.desc,)).to_json()
    )
    read = Reader(AMD, S390, extra=(inner, outer))
    got = await images.resolve_platform(read, outer.desc, only("linux/s390x"))
    assert got.desc.digest == S390.target.desc.digest
    got = await images.resolve_platform(read, outer.desc, only("linux/amd64"))
    assert got.config.architecture == "amd64"
    with pytest.raises(errdefs.NotFound):
        await images.resolve_platform(read, outer.desc, only("linux/arm64"))


async def test_single_manifest_target_and_bad_targets() -> None:
    read = Reader(AMD)
    target = attrs.evolve(AMD.target.desc, platform=None)
    got = await images.resolve_platform(read, target, only("linux/amd64"))
    assert got.config.diff_ids == (LAYER.diff_id,)
    got = await images.resolve_platform(read, target, platforms.all_platforms)
    assert got.desc == target
    with pytest.raises(errdefs.NotFound):
        await images.resolve_platform(read, target, only("linux/arm64"))
    with pytest.raises(errdefs.NotImplemented_):
        await images.resolve_platform(read, LAYER.blob.desc, only("linux/amd64"))
