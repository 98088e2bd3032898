"""A client written from docs/protocol.md and docs/schema.json alone (stock msgpack
over a plain socket) calls every method they list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .daemon import REPO, DaemonProcess, RawConnection

NOW = datetime.now(UTC)

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
            answers[name] = c.call(name, request, namespace)
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
        assert end[:2] == [1, sub] and end[2]["code"] == "Canceled"
