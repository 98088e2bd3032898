from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.convert import structure_request, unstructure
from pycontainerd.api.events import ForwardRequest, SubscribeRequest
from pycontainerd.api.namespaces import UpdateNamespaceRequest
from pycontainerd.api.types import Empty, Envelope, FieldMask, Namespace


def test_absent_fields_take_zero_values_and_unknown_keys_are_ignored() -> None:
    req = structure_request({"future_field": 1}, UpdateNamespaceRequest)
    assert req == UpdateNamespaceRequest(namespace=Namespace(name="", labels={}), update_mask=None)
    assert structure_request({}, Empty) == Empty()


def test_nested_values_structure() -> None:
    req = structure_request(
        {"namespace": {"name": "a", "labels": {"k": "v"}}, "update_mask": {"paths": ["labels.k"]}},
        UpdateNamespaceRequest,
    )
    assert req.namespace.labels == {"k": "v"}
    assert req.update_mask == FieldMask(paths=["labels.k"])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "request: expected map, got array"),
        ({"namespace": "x"}, "namespace: expected map, got str"),
        ({"namespace": {"name": 12}}, "namespace.name: expected str, got int"),
        ({"namespace": {"name": True}}, "namespace.name: expected str, got bool"),
        ({"namespace": {"labels": []}}, "namespace.labels: expected map, got array"),
        ({"namespace": {"labels": {"a": 1}}}, "namespace.labels['a']: expected str, got int"),
        ({"update_mask": {"paths": "labels.a"}}, "update_mask.paths: expected array, got str"),
        ({"update_mask": {"paths": [None]}}, "update_mask.paths[0]: expected str, got nil"),
    ],
)
def test_wrong_types_name_the_field(obj: object, message: str) -> None:
    with pytest.raises(errdefs.InvalidArgument) as info:
        structure_request(obj, UpdateNamespaceRequest)
    assert message in str(info.value)


def test_no_conversion_between_scalars() -> None:
    for bad in ("5", 5.0, True, False):
        with pytest.raises(errdefs.InvalidArgument, match="since"):
            structure_request({"since": bad}, SubscribeRequest)
    assert structure_request({"since": None}, SubscribeRequest).since is None
    assert structure_request({"since": 0}, SubscribeRequest).since == 0


def test_timestamps_must_be_timestamps() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    env = structure_request({"envelope": {"timestamp": when}}, ForwardRequest).envelope
    assert env.timestamp == when
    with pytest.raises(errdefs.InvalidArgument, match=r"envelope\.timestamp"):
        structure_request({"envelope": {"timestamp": "2026-01-02"}}, ForwardRequest)


def test_unstructure_keeps_bytes_and_datetimes() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    env = Envelope(sequence=3, timestamp=when, namespace="n", topic="/a", event={"b": b"\x00"})
    assert unstructure(env) == {
        "sequence": 3,
        "timestamp": when,
        "namespace": "n",
        "topic": "/a",
        "event": {"b": b"\x00"},
    }
