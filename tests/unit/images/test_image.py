"""OCI parsing, chain IDs, manifest selection, children and their labels."""

from __future__ import annotations

import hashlib
import json

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.api.types import Platform
from pycontainerd.images import platforms


def dgst(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_CONFIG, digest=dgst(b"c"), size=1)
L0 = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_LAYER_GZIP, digest=dgst(b"0"), size=2)
L1 = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_LAYER_ZSTD, digest=dgst(b"1"), size=3)


def manifest_desc(data: bytes, platform: Platform | None) -> images.Descriptor:
    return images.Descriptor(
        media_type=images.MEDIA_TYPE_OCI_MANIFEST,
        digest=dgst(data),
        size=len(data),
        platform=platform,
    )


def test_chain_id_definition() -> None:
    a, b, c = dgst(b"a"), dgst(b"b"), dgst(b"c")
    ab = dgst(f"{a} {b}".encode())
    abc = dgst(f"{ab} {c}".encode())
    assert images.chain_ids([a, b, c]) == [a, ab, abc]
    assert images.chain_id([a]) == a
    assert images.chain_id([a, b, c]) == abc
    assert images.chain_ids([]) == []
    with pytest.raises(errdefs.InvalidArgument):
        images.chain_id([])


def test_chain_id_as_containerd_names_snapshots() -> None:
    # observed from containerd 1.6: `ctr snapshots ls` after pulling a two-layer image
    diff_ids = [
        "sha256:eb93032cbb62d7cdd70dd2b05e48f3fbff12c0170043c49135d9bc3cf5b89c2b",
        "sha256:9912fbf76248dd8c5bcd7a1b49734614f735bfc1db84e6a35a09aef9eef701a0",
    ]
    assert images.chain_ids(diff_ids) == [
        diff_ids[0],
        "sha256:cb8ea23bc155e3191a620228228bf87138cada3218d08e5d29c48fc87d32ea45",
    ]


def test_manifest_roundtrip_and_children_labels() -> None:
    manifest = images.Manifest(
        media_type=images.MEDIA_TYPE_OCI_MANIFEST, config=CONFIG, layers=(L0, L1)
    )
    data = manifest.to_json()
    assert images.Manifest.parse(data) == manifest
    desc = manifest_desc(data, None)
    kids = images.children(desc, data)
    assert kids == [CONFIG, L0, L1]
    assert images.child_labels(kids) == {
        "containerd.io/gc.ref.content.config": CONFIG.digest,
        "containerd.io/gc.ref.content.l.0": L0.digest,
        "containerd.io/gc.ref.content.l.1": L1.digest,
    }


def test_child_labels_index_rules() -> None:
    m0 = manifest_desc(b"m0", Platform(os="linux", architecture="amd64"))
    m1 = manifest_desc(b"m1", Platform(os="linux", architecture="arm64"))
    other = images.Descriptor(media_type="application/x-thing", digest=dgst(b"o"), size=1)
    nested = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_INDEX, digest=dgst(b"i"), size=1)
    second_config = images.Descriptor(
        media_type=images.MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG, digest=dgst(b"c2"), size=1
    )
    labels = images.child_labels([m0, m1, other, nested, CONFIG, second_config])
    assert labels == {
        "containerd.io/gc.ref.content.m.0": m0.digest,
        "containerd.io/gc.ref.content.m.1": m1.digest,
        "containerd.io/gc.ref.content.0": other.digest,
        "containerd.io/gc.ref.content.1": nested.digest,
        "containerd.io/gc.ref.content.config": CONFIG.digest,
        "containerd.io/gc.ref.content.config1": second_config.digest,
    }
    no_layers = images.child_labels(
        [CONFIG, L0], lambda mt, ann: images.child_gc_label_filter_layers(mt, ann)
    )
    assert no_layers == {"containerd.io/gc.ref.content.config": CONFIG.digest}


def _index(*descs: images.Descriptor) -> images.Index:
    return images.Index(media_type=images.MEDIA_TYPE_OCI_INDEX, manifests=descs)


def test_select_manifest() -> None:
    amd = manifest_desc(b"amd", Platform(os="linux", architecture="amd64"))
    i386 = manifest_desc(b"386", Platform(os="linux", architecture="386"))
    arm = manifest_desc(b"arm", Platform(os="linux", architecture="arm64", variant="v8"))
    bare = manifest_desc(b"bare", None)
    index = _index(bare, i386, arm, amd)
    data = index.to_json()
    assert images.Index.parse(data) == index
    amd_only = platforms.only(platforms.parse("linux/amd64"))
    assert images.select_manifest(index, amd_only) == amd
    assert images.candidates(index, amd_only) == [amd, i386, bare]
    arm_only = platforms.only(platforms.parse("linux/aarch64"))
    assert images.select_manifest(index, arm_only) == arm
    assert images.select_manifest(_index(i386), amd_only) == i386
    with pytest.raises(errdefs.NotFound, match="no match for platform in manifest"):
        images.select_manifest(_index(arm), amd_only)
    # platform-less entries are kept, last
    assert images.select_manifest(_index(bare), arm_only) == bare
    assert images.select_manifest(index, platforms.all_platforms) == i386


def test_matches_platform_uses_config_when_descriptor_has_none() -> None:
    amd = platforms.only(platforms.parse("linux/amd64"))
    bare = manifest_desc(b"x", None)
    assert images.matches_platform(amd, bare, Platform(os="linux", architecture="x86_64"))
    assert not images.matches_platform(amd, bare, Platform(os="linux", architecture="arm64"))
    assert not images.matches_platform(amd, bare)
    assert images.platform_label(bare) == "unknown"
    arm = manifest_desc(b"y", Platform(os="linux", architecture="aarch64"))
    assert images.platform_label(arm) == "linux/arm64"


def test_children_of_leaves_and_bad_documents() -> None:
    assert images.children(L0, b"\x1f\x8b") == []
    assert images.children(CONFIG, b"{}") == []
    index_bytes = _index(CONFIG).to_json()
    with pytest.raises(errdefs.InvalidArgument):
        images.children(manifest_desc(index_bytes, None), index_bytes)
    lie = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST,
            "config": CONFIG.to_dict(),
            "layers": [],
        }
    ).encode()
    with pytest.raises(errdefs.InvalidArgument, match="mediaType"):
        images.children(manifest_desc(lie, None), lie)
    schema1 = images.Descriptor(
        media_type=images.MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST, digest=dgst(b"s"), size=1
    )
    with pytest.raises(errdefs.NotImplemented_):
        images.children(schema1, b"{}")


def test_distribution_source_labels() -> None:
    merge = images.merge_distribution_source
    assert merge("", "alpine") == "alpine"
    assert merge("alpine", "alpine") == "alpine"
    assert merge("alpine", "ubuntu") == "alpine,ubuntu"
    assert merge("ubuntu,alpine", "busybox") == "alpine,busybox,ubuntu"
    assert merge("alpine,ubuntu", "") == "alpine,ubuntu"
    key = "containerd.io/distribution.source.docker.io"
    assert images.distribution_source_label({key: "library/redis"}, "docker.io", "a/b") == (
        key,
        "a/b,library/redis",
    )
    huge = {key: "x" * 4090}
    assert images.distribution_source_label(huge, "docker.io", "more") is None
    assert images.distribution_sources({key: "a,b"}, "docker.io") == ["a", "b"]
    assert images.distribution_sources({}, "docker.io") == []
    # the key carries the hostname only, as containerd 1.6 writes it
    local = "containerd.io/distribution.source.127.0.0.1"
    assert images.distribution_source_key("127.0.0.1:5000") == local
    assert images.distribution_source_key("[::1]:5000") == "containerd.io/distribution.source.::1"
    assert images.distribution_source_label({}, "127.0.0.1:5000", "test/bb") == (local, "test/bb")
    assert images.distribution_sources({local: "a/b"}, "127.0.0.1:5999") == ["a/b"]
