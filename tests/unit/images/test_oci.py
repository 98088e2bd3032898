"""Strict parsing of OCI manifests, indexes, configs and descriptors."""

from __future__ import annotations

import hashlib
import json

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.api.types import Platform


def dgst(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


L0 = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_LAYER_GZIP, digest=dgst(b"0"), size=2)


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
