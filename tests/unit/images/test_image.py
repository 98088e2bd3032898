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


def test_chain_id_image_spec_vector() -> None:
    # image-spec identity/chainid_test.go: ChainID of one layer is its DiffID
    # and the second step hashes "<chain> <diffid>".
    d0 = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
    d1 = "sha256:d4cd8c83f68c0b1c0ad8c1a0b4c84e8b1b4e9f0a38e9ce4d0a2a41b3e6c7f3a0"
    expected = "sha256:" + hashlib.sha256(f"{d0} {d1}".encode()).hexdigest()
    assert images.chain_id([d0, d1]) == expected


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


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (b"not json", "malformed JSON"),
        (b"[]", "expected object"),
        (b'{"schemaVersion": 1, "config": {}}', "schemaVersion"),
        (b'{"schemaVersion": "2"}', "schemaVersion: expected integer"),
        (b'{"schemaVersion": 2}', "config: required"),
        (b'{"schemaVersion": 2, "config": []}', "config: expected object"),
        (b'{"schemaVersion": 2, "config": {"digest": "sha256:00", "size": 1}}', "config.digest"),
        (b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'"}}', "size"),
        (
            b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'", '
            b'"size": true}}',
            "config.size: expected integer",
        ),
        (
            b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'", "size": -1}}',
            "config.size: must not be negative",
        ),
        (
            b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'", '
            b'"size": 1, "mediaType": 7}}',
            "config.mediaType: expected string",
        ),
        (
            b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'", '
            b'"size": 1}, "layers": [{"digest": "x", "size": 1}]}',
            r"layers\[0\]\.digest",
        ),
        (
            b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"0" * 64 + b'", '
            b'"size": 1}, "annotations": {"a": 1}}',
            "annotations.a: expected string",
        ),
    ],
)
def test_manifest_parse_names_the_field(document: bytes, field: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=field):
        images.Manifest.parse(document)


def test_index_parse_errors() -> None:
    bad_platform = (
        b'{"schemaVersion": 2, "manifests": [{"digest": "sha256:' + b"0" * 64 + b'", '
        b'"size": 1, "platform": {"architecture": 64}}]}'
    )
    with pytest.raises(errdefs.InvalidArgument, match=r"manifests\[0\]\.platform\.architecture"):
        images.Index.parse(bad_platform)
    with pytest.raises(errdefs.InvalidArgument, match="manifests: expected array"):
        images.Index.parse(b'{"schemaVersion": 2, "manifests": {}}')


def test_oversized_manifest_is_rejected() -> None:
    assert images.MAX_MANIFEST_SIZE == 4 * 1048 * 1048
    big = b'{"schemaVersion": 2, "pad": "' + b"x" * images.MAX_MANIFEST_SIZE + b'"}'
    with pytest.raises(errdefs.InvalidArgument, match="exceeds the maximum"):
        images.Index.parse(big)


def test_image_config() -> None:
    raw = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/sh", "-c"],
                "Cmd": ["echo hi"],
                "Env": ["PATH=/bin"],
                "WorkingDir": "/",
                "User": "0:0",
                "Labels": {"a": "b"},
                "ExposedPorts": {"80/tcp": {}},
            },
            "rootfs": {"type": "layers", "diff_ids": [dgst(b"a"), dgst(b"b")]},
            "history": [{"created_by": "x", "empty_layer": True}],
        }
    ).encode()
    config = images.ImageConfig.parse(raw)
    assert config.config.entrypoint == ("/bin/sh", "-c")
    assert config.config.cmd == ("echo hi",)
    assert config.config.env == ("PATH=/bin",)
    assert config.config.user == "0:0"
    assert config.config.exposed_ports == {"80/tcp": {}}
    assert config.diff_ids == (dgst(b"a"), dgst(b"b"))
    assert config.history[0].empty_layer
    assert config.platform == Platform(os="linux", architecture="amd64")
    assert images.ImageConfig.parse(config.to_json()) == config
    with pytest.raises(errdefs.InvalidArgument, match=r"rootfs\.diff_ids\[0\]"):
        images.ImageConfig.parse(b'{"rootfs": {"type": "layers", "diff_ids": ["nope"]}}')
    with pytest.raises(errdefs.InvalidArgument, match=r"config\.Cmd\[0\]: expected string"):
        images.ImageConfig.parse(b'{"config": {"Cmd": [1]}}')
    with pytest.raises(errdefs.InvalidArgument, match=r"rootfs\.type"):
        images.ImageConfig.parse(b'{"rootfs": {"type": "tarball"}}')


def test_descriptor_api_conversion_and_urls() -> None:
    desc = images.Descriptor.from_dict(
        {
            "mediaType": images.MEDIA_TYPE_OCI_LAYER_GZIP,
            "digest": L0.digest,
            "size": 2,
            "urls": ["https://example.com/l0"],
            "annotations": {"k": "v"},
        }
    )
    assert desc.urls == ("https://example.com/l0",)
    wire = desc.to_api()
    assert (wire.media_type, wire.digest, wire.size, wire.annotations) == (
        desc.media_type,
        desc.digest,
        2,
        {"k": "v"},
    )
    assert images.Descriptor.from_api(wire).digest == desc.digest


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
