"""``images.*``: the image store in the daemon, its events, filters, and
``sync`` deletion collecting the image's content."""

from __future__ import annotations

import hashlib
import json

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.types import Descriptor
from pycontainerd.client import Client

from .daemon import DaemonProcess

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _put(c: Client, data: bytes, labels: dict[str, str] | None = None) -> Descriptor:
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with c.content.writer(f"img-{d}") as w:
        w.write(data)
        w.commit(len(data), d, labels)
    return Descriptor(media_type=MANIFEST, digest=d, size=len(data))


def test_create_get_list_update_delete_with_events(daemon: DaemonProcess) -> None:
    with Client(daemon.address, namespace="imgs") as c:
        with c.with_lease():
            config = _put(c, b'{"config": true}')
            manifest = _put(
                c,
                json.dumps({"config": config.digest}).encode(),
                {"containerd.io/gc.ref.content.config": config.digest},
            )
            created = c.images.create("example.com/app:1", manifest, {"team": "a"})
        assert created.target.digest == manifest.digest
        assert created.created_at == created.updated_at
        with pytest.raises(errdefs.AlreadyExists):
            c.images.create("example.com/app:1", manifest)
        with pytest.raises(errdefs.InvalidArgument):
            c.images.create("bad", Descriptor(media_type=MANIFEST, digest="sha256:zz", size=1))
        with pytest.raises(errdefs.InvalidArgument):
            c.images.create("", manifest)
        c.images.create("example.com/app:2", manifest)
        assert [i.name for i in c.images.list()] == ["example.com/app:1", "example.com/app:2"]
        assert [i.name for i in c.images.list(["labels.team==a"])] == ["example.com/app:1"]
        assert len(c.images.list([f"target.digest=={manifest.digest}"])) == 2
        assert c.images.list(['name~="app:2$"'])[0].name == "example.com/app:2"
        updated = c.images.update("example.com/app:1", labels={"team": "b"}, paths=["labels.team"])
        assert updated.labels == {"team": "b"}
        assert updated.updated_at is not None and created.updated_at is not None
        assert updated.updated_at > created.updated_at
        with pytest.raises(errdefs.InvalidArgument):
            c.images.update("example.com/app:1", paths=["name"])
        # the collector keeps what an image references, through the gc.ref labels
        c.leases.delete(c.leases.create().id, sync=True)
        assert c.content.info(config.digest).size == len(b'{"config": true}')
        c.images.delete("example.com/app:1")
        c.images.delete("example.com/app:2", sync=True)
        for d in (manifest.digest, config.digest):
            with pytest.raises(errdefs.NotFound):
                c.content.info(d)
        with pytest.raises(errdefs.NotFound):
            c.images.get("example.com/app:1")
        with pytest.raises(errdefs.NotFound):
            c.images.delete("example.com/app:1")
        topics = []
        for e in c.subscribe(['namespace=="imgs",topic~="/images/"'], since=0):
            topics.append((e.topic, e.event.get("name")))
            if e.topic == "/images/delete" and e.event.get("name") == "example.com/app:2":
                break
        assert topics == [
            ("/images/create", "example.com/app:1"),
            ("/images/create", "example.com/app:2"),
            ("/images/update", "example.com/app:1"),
            ("/images/delete", "example.com/app:1"),
            ("/images/delete", "example.com/app:2"),
        ]
