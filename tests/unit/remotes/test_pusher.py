"""Push order and ref keys (no network)."""

from __future__ import annotations

from pycontainerd import images
from pycontainerd.remotes import push_order, push_ref_key

LAYER = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_LAYER_GZIP, digest="sha256:5", size=100)


def test_push_order_and_ref_keys() -> None:
    index = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_INDEX, digest="sha256:1", size=1)
    manifest = images.Descriptor(
        media_type=images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST, digest="sha256:2", size=1
    )
    config = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_CONFIG, digest="sha256:3", size=1)
    layer = LAYER
    other = images.Descriptor(media_type="application/x", digest="sha256:4", size=1)
    assert push_order([index, manifest, config, layer, other]) == [
        config,
        layer,
        other,
        manifest,
        index,
    ]
    assert [push_ref_key(d) for d in (index, manifest, config, layer, other)] == [
        "index-sha256:1",
        "manifest-sha256:2",
        "config-sha256:3",
        f"layer-{layer.digest}",
        "unknown-sha256:4",
    ]
