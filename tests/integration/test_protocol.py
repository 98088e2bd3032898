"""A client written from docs/protocol.md and docs/schema.json alone (stock msgpack
over a plain socket) calls every method they list."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from .daemon import REPO, DaemonProcess, RawConnection

NOW = datetime.now(UTC)
BLOB = b"documented blob " * 100_000  # 1.6 MB: content.read streams it in two items
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
ROOT = {"containerd.io/gc.root": NOW.isoformat()}

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
    "content.delete": ({"digest": DIGEST}, "doc"),
    "debug.actors": ({}, None),
    "namespaces.delete": ({"name": "scratch"}, None),
}


def _schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "docs" / "schema.json").read_text())
    return doc


def test_every_documented_method_answers(daemon: DaemonProcess) -> None:
    methods = _schema()["methods"]
    assert set(methods) == set(CALLS) | {"events.subscribe"}
    with RawConnection(daemon.address) as c:
        c.call("namespaces.create", {"namespace": {"name": "scratch"}})
        answers = {}
        for name, (request, namespace) in CALLS.items():
            needs_ns = methods[name]["namespaced"]
            assert needs_ns == (namespace is not None), name
            if name == "content.status":  # an ingest to look at: opened, never written
                c.call("content.write", {"action": "stat", "ref": "doc-pending", "total": 9}, "doc")
            if "stream_item" in methods[name]:  # content.read
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
                assert [i["offset"] for i in items] == [0, 1 << 20]
                assert b"".join(i["data"] for i in items) == BLOB
                continue
            answers[name] = c.call(name, request, namespace)
        assert answers["content.write"]["digest"] == DIGEST
        assert answers["content.write"]["offset"] == len(BLOB)
        assert answers["content.info"]["info"]["size"] == len(BLOB)
        assert answers["content.update"]["info"]["labels"] == {**ROOT, "k": "v"}
        assert [i["digest"] for i in answers["content.list"]["info"]] == [DIGEST]
        assert answers["content.status"]["status"]["total"] == 9
        assert [s["ref"] for s in answers["content.list_statuses"]["statuses"]] == ["doc-pending"]
        assert answers["leases.list_resources"]["resources"] == [{"id": DIGEST, "type": "content"}]
        assert [x["id"] for x in answers["leases.list"]["leases"]] == ["doc-lease"]
        assert answers["namespaces.update"]["namespace"]["labels"] == {"a": "1", "b": "2"}
        assert {p["id"] for p in answers["introspection.plugins"]["plugins"]} >= {"namespaces"}
        assert answers["namespaces.delete"] == {}

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
