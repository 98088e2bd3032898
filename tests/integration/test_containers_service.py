"""``containers.*``: container metadata in the daemon, one actor per container."""

from __future__ import annotations

import hashlib

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client
from pycontainerd.wire import Client as Connection

from .daemon import DaemonProcess, RawConnection, RemoteError

SPEC = {"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}


def test_create_get_list_update_delete(daemon: DaemonProcess) -> None:
    with Client(daemon.address, namespace="ctrs") as c:
        made = c.containers.create(
            "web-1",
            spec=SPEC,
            image="example.com/web:1",
            labels={"tier": "front"},
            runtime_options={"binary_name": "runc"},
        )
        assert made.runtime.name == "io.containerd.runc.v2"
        assert made.spec is not None and made.spec.value == SPEC
        assert made.runtime.options is not None
        assert made.runtime.options.value == {"binary_name": "runc"}
        got = c.containers.get("web-1")
        assert got == made
        c.containers.create("db-1", spec=SPEC, labels={"tier": "back"})
        assert [x.id for x in c.containers.list()] == ["db-1", "web-1"]
        assert [x.id for x in c.containers.list(["labels.tier==front"])] == ["web-1"]
        assert [x.id for x in c.containers.list(['image~="web"'])] == ["web-1"]
        assert [x.id for x in c.containers.list(["runtime.name==io.containerd.runc.v2"])] == [
            "db-1",
            "web-1",
        ]
        streamed = Connection(daemon.address, namespace="ctrs")
        with streamed, streamed.stream("containers.list_stream", {"filters": []}) as items:
            assert [i["container"]["id"] for i in items] == ["db-1", "web-1"]
        labelled = c.containers.label("web-1", {"tier": "", "env": "prod"})
        assert labelled.labels == {"env": "prod"}
        assert labelled.updated_at is not None and made.updated_at is not None
        assert labelled.updated_at > made.updated_at
        updated = c.containers.update({"id": "web-1", "image": "example.com/web:2"}, ["image"])
        assert updated.image == "example.com/web:2" and updated.labels == {"env": "prod"}
        with pytest.raises(errdefs.InvalidArgument, match="immutable"):
            c.containers.update(
                {"id": "web-1", "runtime": {"name": "other"}, "spec": {"type_url": "x"}}
            )
        with pytest.raises(errdefs.InvalidArgument):
            c.containers.update({"id": "web-1"}, ["runtime"])
        c.containers.delete("web-1")
        with pytest.raises(errdefs.NotFound):
            c.containers.get("web-1")
        with pytest.raises(errdefs.NotFound):
            c.containers.delete("web-1")
        with pytest.raises(errdefs.FailedPrecondition, match="containers"):
            c.namespaces.delete("ctrs")
        c.containers.delete("db-1")
        c.namespaces.delete("ctrs")
        topics = []
        for e in c.subscribe(['namespace=="ctrs",topic~="/containers/"'], since=0):
            topics.append((e.topic, e.event["id"]))
            if e.topic == "/containers/delete" and e.event["id"] == "db-1":
                break
        assert topics == [
            ("/containers/create", "web-1"),
            ("/containers/create", "db-1"),
            ("/containers/update", "web-1"),
            ("/containers/update", "web-1"),
            ("/containers/delete", "web-1"),
            ("/containers/delete", "db-1"),
        ]


def test_bad_containers_are_refused(daemon: DaemonProcess) -> None:
    with RawConnection(daemon.address) as c:
        cases = [
            ({"id": "bad/id", "runtime": {"name": "r"}, "spec": {"type_url": "t"}}, "identifier"),
            ({"id": "ok", "spec": {"type_url": "t"}}, "runtime"),
            ({"id": "ok", "runtime": {"name": "r"}}, "spec"),
            (
                {"id": "ok", "runtime": {"name": "r"}, "spec": {}, "snapshot_key": "k"},
                "snapshot",
            ),
            ({"id": "ok", "runtime": {"name": 5}}, "runtime.name"),
        ]
        for container, words in cases:
            with pytest.raises(RemoteError) as err:
                c.call("containers.create", {"container": container}, "ctrs-bad")
            assert err.value.code == "InvalidArgument", container
            assert words in (err.value.message or ""), (container, err.value.message)
        c.call(
            "containers.create",
            {"container": {"id": "dup", "runtime": {"name": "r"}, "spec": {"type_url": "t"}}},
            "ctrs-bad",
        )
        with pytest.raises(RemoteError) as err:
            c.call(
                "containers.create",
                {"container": {"id": "dup", "runtime": {"name": "r"}, "spec": {"type_url": "t"}}},
                "ctrs-bad",
            )
        assert err.value.code == "AlreadyExists"


def test_a_container_keeps_what_its_labels_reference(daemon: DaemonProcess) -> None:
    data = b"checkpoint of a container"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with Client(daemon.address, namespace="ctrs-gc") as c:
        with c.with_lease():
            with c.content.writer("ref") as w:
                w.write(data)
                w.commit(len(data), digest)
            c.containers.create(
                "holder", spec=SPEC, labels={"containerd.io/gc.ref.content": digest}
            )
        c.leases.delete(c.leases.create().id, sync=True)
        assert c.content.info(digest).size == len(data)
        c.containers.delete("holder")
        c.leases.delete(c.leases.create().id, sync=True)
        with pytest.raises(errdefs.NotFound):
            c.content.info(digest)
