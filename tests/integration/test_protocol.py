"""A client written from docs/protocol.md and docs/schema.json alone (stock msgpack
over a plain socket) calls every method they list."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import oci
from tests import imagebuild

from .daemon import REPO, DaemonProcess, RawConnection
from .remotes.registry import RegistryProcess

NOW = datetime.now(UTC)


TASK_SPEC = oci.apply(
    oci.default_spec("doc", "doc-ctr"),
    oci.with_default_path_env(),
    oci.with_process_args("sleep", "30"),
)


def _busybox_rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    for d in ("proc", "sys", "dev", "run", "tmp", "etc"):
        (root / d).mkdir(exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "sleep", "true"):
        if not (root / "bin" / applet).is_symlink():
            (root / "bin" / applet).symlink_to("busybox")


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BLOB = b"documented blob " * 100_000  # 1.6 MB: content.read streams it in two items
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
ROOT = {"containerd.io/gc.root": NOW.isoformat()}
SN = {"snapshotter": "overlayfs"}
LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_TAR = _tar({"hello.txt": b"hello from a layer\n"})
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER_TAR).hexdigest()
IMAGE = imagebuild.busybox_image()

# One call per documented method: (request, meta namespace or None).
CALLS: dict[str, tuple[dict[str, Any], str | None]] = {
    "version.version": ({}, None),
    "namespaces.create": ({"namespace": {"name": "doc", "labels": {"a": "1"}}}, None),
    "namespaces.get": ({"name": "doc"}, None),
    "namespaces.list": ({}, None),
    "namespaces.update": (
        {
            "namespace": {"name": "doc", "labels": {"b": "2"}},
            "update_mask": {"paths": ["labels.b"]},
        },
        None,
    ),
    "introspection.plugins": ({"filters": ['type=="io.containerd.grpc.v1"']}, None),
    "introspection.server": ({}, None),
    "events.publish": ({"topic": "/doc/published", "event": {"x": 1}}, "doc"),
    "events.forward": (
        {
            "envelope": {
                "timestamp": NOW,
                "namespace": "doc",
                "topic": "/doc/forwarded",
                "event": {},
            }
        },
        None,
    ),
    "content.write": (
        {
            "action": "commit",
            "ref": "doc-blob",
            "offset": 0,
            "data": BLOB,
            "total": len(BLOB),
            "expected": DIGEST,
            "labels": ROOT,
        },
        "doc",
    ),
    "content.info": ({"digest": DIGEST}, "doc"),
    "content.update": (
        {"info": {"digest": DIGEST, "labels": {"k": "v"}}, "update_mask": {"paths": ["labels.k"]}},
        "doc",
    ),
    "content.list": ({"filters": ["labels.k==v"]}, "doc"),
    "content.read": ({"digest": DIGEST, "offset": 0, "size": 0}, "doc"),
    "content.status": ({"ref": "doc-pending"}, "doc"),
    "content.list_statuses": ({"filters": ['ref=="doc-pending"']}, "doc"),
    "content.abort": ({"ref": "doc-pending"}, "doc"),
    "leases.create": ({"id": "doc-lease", "labels": {"purpose": "doc"}}, "doc"),
    "leases.add_resource": (
        {"id": "doc-lease", "resource": {"id": DIGEST, "type": "content"}},
        "doc",
    ),
    "leases.list_resources": ({"id": "doc-lease"}, "doc"),
    "leases.list": ({"filters": ["labels.purpose==doc"]}, "doc"),
    "leases.delete_resource": (
        {"id": "doc-lease", "resource": {"id": DIGEST, "type": "content"}},
        "doc",
    ),
    "leases.delete": ({"id": "doc-lease", "sync": True}, "doc"),
    "diff.apply": (
        {
            "diff": {"media_type": LAYER, "digest": LAYER_DIGEST, "size": len(LAYER_TAR)},
            "mounts": [{"type": "bind", "source": "@DIR@/lower", "options": ["rw", "rbind"]}],
        },
        "doc",
    ),
    "diff.diff": (
        {
            "left": [],
            "right": [{"type": "bind", "source": "@DIR@/lower", "options": ["ro", "rbind"]}],
            "media_type": LAYER,
        },
        "doc",
    ),
    "images.create": (
        {
            "image": {
                "name": "doc/image:1",
                "labels": {"a": "b"},
                "target": {"media_type": MANIFEST, "digest": DIGEST, "size": len(BLOB)},
            }
        },
        "doc",
    ),
    "images.get": ({"name": "doc/image:1"}, "doc"),
    "images.list": ({"filters": ["labels.a==b"]}, "doc"),
    "images.update": (
        {
            "image": {"name": "doc/image:1", "labels": {"c": "d"}},
            "update_mask": {"paths": ["labels.c"]},
        },
        "doc",
    ),
    "images.delete": ({"name": "doc/image:1", "sync": True}, "doc"),
    "transfer.import": (
        {"path": "@DIR@/doc.tar", "base_name": "doc/busybox", "unpack": False},
        "doc",
    ),
    "transfer.export": ({"path": "@DIR@/out.tar", "refs": ["doc/busybox:latest"]}, "doc"),
    "transfer.push": (
        {"ref": "@REGISTRY@/doc/busybox:2", "source_ref": "doc/busybox:latest", "plain_http": True},
        "doc",
    ),
    "transfer.pull": ({"ref": "@REGISTRY@/doc/busybox:2", "plain_http": True}, "doc"),
    "content.delete": ({"digest": DIGEST}, "doc"),
    "snapshots.prepare": ({**SN, "key": "doc-active", "parent": "", "labels": ROOT}, "doc"),
    "snapshots.mounts": ({**SN, "key": "doc-active"}, "doc"),
    "snapshots.usage": ({**SN, "key": "doc-active"}, "doc"),
    "snapshots.commit": ({**SN, "name": "doc-layer", "key": "doc-active", "labels": ROOT}, "doc"),
    "snapshots.view": ({**SN, "key": "doc-view", "parent": "doc-layer", "labels": ROOT}, "doc"),
    "snapshots.stat": ({**SN, "key": "doc-view"}, "doc"),
    "snapshots.update": (
        {
            **SN,
            "info": {"name": "doc-view", "labels": {"k": "v"}},
            "update_mask": {"paths": ["labels.k"]},
        },
        "doc",
    ),
    "snapshots.list": ({**SN, "filters": ["labels.k==v"]}, "doc"),
    "snapshots.remove": ({**SN, "key": "doc-view"}, "doc"),
    "snapshots.cleanup": (SN, "doc"),
    "containers.create": (
        {
            "container": {
                "id": "doc-ctr",
                "runtime": {"name": "io.containerd.runc.v2"},
                "spec": {
                    "type_url": "types.containerd.io/opencontainers/runtime-spec/1/Spec",
                    "value": TASK_SPEC,
                },
            }
        },
        "doc",
    ),
    "containers.get": ({"id": "doc-ctr"}, "doc"),
    "containers.list": ({"filters": ["id==doc-ctr"]}, "doc"),
    "containers.list_stream": ({"filters": []}, "doc"),
    "containers.update": (
        {
            "container": {"id": "doc-ctr", "labels": {"k": "v"}},
            "update_mask": {"paths": ["labels.k"]},
        },
        "doc",
    ),
    "tasks.create": (
        {
            "container_id": "doc-ctr",
            "rootfs": [{"type": "bind", "source": "@DIR@/rootfs", "options": ["rbind", "ro"]}],
        },
        "doc",
    ),
    "tasks.start": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.get": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.list": ({}, "doc"),
    "tasks.list_pids": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.update": (
        {
            "container_id": "doc-ctr",
            "resources": {
                "type_url": "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                "value": {"memory": {"limit": 64 << 20}},
            },
        },
        "doc",
    ),
    "tasks.metrics": ({"filters": ["id==doc-ctr"]}, "doc"),
    "tasks.pause": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.resume": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.exec": (
        {
            "container_id": "doc-ctr",
            "exec_id": "doc-exec",
            "spec": {
                "type_url": "types.containerd.io/opencontainers/runtime-spec/1/Process",
                "value": {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"]},
            },
        },
        "doc",
    ),
    "tasks.close_io": ({"container_id": "doc-ctr", "exec_id": "doc-exec", "stdin": True}, "doc"),
    "tasks.resize_pty": (
        {"container_id": "doc-ctr", "exec_id": "doc-exec", "width": 80, "height": 24},
        "doc",
    ),
    "tasks.delete_process": ({"container_id": "doc-ctr", "exec_id": "doc-exec"}, "doc"),
    "tasks.kill": ({"container_id": "doc-ctr", "signal": 9}, "doc"),
    "tasks.wait": ({"container_id": "doc-ctr"}, "doc"),
    "tasks.delete": ({"container_id": "doc-ctr"}, "doc"),
    "containers.delete": ({"id": "doc-ctr"}, "doc"),
    "debug.actors": ({}, None),
    "namespaces.delete": ({"name": "scratch"}, None),
}


def _schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "docs" / "schema.json").read_text())
    return doc


@pytest.fixture
def registry(daemon: DaemonProcess) -> Iterator[RegistryProcess]:
    """A registry for transfer.push/pull, and the tarball transfer.import reads."""
    (daemon.base / "registry").mkdir()
    layout = daemon.base / "layout"
    IMAGE.write_oci_layout(layout)
    with tarfile.open(daemon.base / "doc.tar", "w") as tar:
        for name in ("oci-layout", "index.json"):
            tar.add(layout / name, arcname=name)
        for blob in sorted((layout / "blobs" / "sha256").iterdir()):
            tar.add(blob, arcname=f"blobs/sha256/{blob.name}")
    proc = RegistryProcess(daemon.base / "registry")
    yield proc
    proc.close()


def test_every_documented_method_answers(daemon: DaemonProcess, registry: RegistryProcess) -> None:
    methods = _schema()["methods"]
    assert set(methods) == set(CALLS) | {"events.subscribe"}
    with RawConnection(daemon.address) as c:
        c.call("namespaces.create", {"namespace": {"name": "scratch"}})
        answers = {}
        streamed: dict[str, list[Any]] = {}
        for name, (request, namespace) in CALLS.items():
            needs_ns = methods[name]["namespaced"]
            assert needs_ns == (namespace is not None), name
            if name == "tasks.create":  # a busybox root filesystem
                _busybox_rootfs(daemon.base / "rootfs")
            if name.startswith(
                ("diff.", "transfer.", "tasks.")
            ):  # paths of the test's, its registry
                text = json.dumps(request).replace("@DIR@", str(daemon.base))
                request = json.loads(text.replace("@REGISTRY@", registry.host))
                if name == "diff.apply":
                    (daemon.base / "lower").mkdir(exist_ok=True)
                    layer = {
                        "action": "commit",
                        "ref": "doc-layer",
                        "data": LAYER_TAR,
                        "expected": LAYER_DIGEST,
                        "labels": ROOT,
                    }
                    c.call("content.write", layer, "doc")
            if name == "content.status":  # an ingest to look at: opened, never written
                c.call("content.write", {"action": "stat", "ref": "doc-pending", "total": 9}, "doc")
            if "stream_item" in methods[name]:  # content.read, containers.list_stream
                msgid = c.send_request(name, request, {"namespace": namespace})
                items = []
                for msg in c.messages():
                    if msg[0] == 2:
                        assert msg[1] == "stream.item" and msg[2][0] == msgid
                        items.append(msg[2][1])
                    else:
                        assert msg[:3] == [1, msgid, None]
                        answers[name] = msg[3]
                        break
                streamed[name] = items
                continue
            answers[name] = c.call(name, request, namespace)
        assert [i["offset"] for i in streamed["content.read"]] == [0, 1 << 20]
        assert b"".join(i["data"] for i in streamed["content.read"]) == BLOB
        assert [i["container"]["id"] for i in streamed["containers.list_stream"]] == ["doc-ctr"]
        assert answers["containers.get"]["container"]["spec"]["value"] == TASK_SPEC
        assert answers["tasks.get"]["process"]["status"] == "running"
        assert [t["container_id"] for t in answers["tasks.list"]["tasks"]] == ["doc-ctr"]
        assert answers["tasks.start"]["pid"] == answers["tasks.create"]["pid"]
        assert [m["id"] for m in answers["tasks.metrics"]["metrics"]] == ["doc-ctr"]
        assert answers["tasks.wait"]["exit_status"] == 137
        assert answers["tasks.delete"]["exit_status"] == 137
        assert answers["containers.update"]["container"]["labels"] == {"k": "v"}
        assert answers["content.write"]["digest"] == DIGEST
        assert answers["content.write"]["offset"] == len(BLOB)
        assert answers["content.info"]["info"]["size"] == len(BLOB)
        assert answers["content.update"]["info"]["labels"] == {**ROOT, "k": "v"}
        assert [i["digest"] for i in answers["content.list"]["info"]] == [DIGEST]
        assert answers["content.status"]["status"]["total"] == 9
        assert [s["ref"] for s in answers["content.list_statuses"]["statuses"]] == ["doc-pending"]
        assert answers["leases.list_resources"]["resources"] == [{"id": DIGEST, "type": "content"}]
        assert [x["id"] for x in answers["leases.list"]["leases"]] == ["doc-lease"]
        assert answers["diff.apply"]["applied"]["digest"] == LAYER_DIGEST
        assert (daemon.base / "lower" / "hello.txt").read_bytes() == b"hello from a layer\n"
        assert answers["diff.diff"]["diff"]["media_type"] == LAYER
        assert answers["images.get"]["image"]["target"]["digest"] == DIGEST
        assert [i["name"] for i in answers["images.list"]["images"]] == ["doc/image:1"]
        assert answers["images.update"]["image"]["labels"] == {"a": "b", "c": "d"}
        assert answers["namespaces.update"]["namespace"]["labels"] == {"a": "1", "b": "2"}
        assert {p["id"] for p in answers["introspection.plugins"]["plugins"]} >= {"namespaces"}
        assert answers["namespaces.delete"] == {}
        target = IMAGE.target.desc.digest
        assert [i["target"]["digest"] for i in answers["transfer.import"]["images"]] == [target]
        assert [i["name"] for i in answers["transfer.export"]["images"]] == ["doc/busybox:latest"]
        assert (daemon.base / "out.tar").stat().st_size > 0
        assert answers["transfer.push"]["image"]["target"]["digest"] == target
        assert answers["transfer.pull"]["image"]["target"]["digest"] == target
        events = [i["event"] for i in streamed["transfer.pull"]]
        assert events[-1] == f"Completed pull from {registry.host}/doc/busybox:2"
        assert "saved" in events
        assert [m["type"] for m in answers["snapshots.prepare"]["mounts"]] == ["bind"]
        assert answers["snapshots.mounts"]["mounts"] == answers["snapshots.prepare"]["mounts"]
        assert set(answers["snapshots.usage"]) == {"size", "inodes"}
        assert answers["snapshots.commit"] == answers["snapshots.remove"] == {}
        stat = answers["snapshots.stat"]["info"]
        assert (stat["name"], stat["parent"], stat["kind"]) == ("doc-view", "doc-layer", "view")
        assert answers["snapshots.update"]["info"]["labels"] == {**ROOT, "k": "v"}
        assert [i["name"] for i in answers["snapshots.list"]["info"]] == ["doc-view"]
        assert answers["snapshots.view"]["mounts"][0]["options"] == ["ro", "rbind"]

        sub = c.send_request("events.subscribe", {"filters": ['namespace=="doc"'], "since": 0})
        topics = []
        for msg in c.messages():
            assert msg[0] == 2 and msg[1] == "stream.item" and msg[2][0] == sub
            topics.append(msg[2][1]["topic"])
            if len(topics) == 4:
                break
        assert topics == [
            "/namespaces/create",
            "/namespaces/update",
            "/doc/published",
            "/doc/forwarded",
        ]
        c.send([2, "call.cancel", [sub]])
        end = c.next_message()
        while end[0] == 2:  # later events of "doc" (/content/delete) already on their way
            assert end[1] == "stream.item" and end[2][0] == sub
            end = c.next_message()
        assert end[:2] == [1, sub] and end[2]["code"] == "Canceled"
