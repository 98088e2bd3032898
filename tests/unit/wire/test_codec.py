"""The sans-IO codec, with bytes only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.rpc import Meta
from pycontainerd.wire._codec import (
    Decoder,
    Encoder,
    Notification,
    ProtocolError,
    Request,
    Response,
    parse_meta,
)

STREAM = (
    msgpack.packb([0, 1, "version.version", [{}]])
    + msgpack.packb([0, 2, "namespaces.get", [{"name": "a"}, {"namespace": "x"}]])
    + msgpack.packb([2, "call.cancel", [1]])
    + msgpack.packb([1, 3, None, {"ok": True}])
)
EXPECTED = [
    Request(1, "version.version", {}, None),
    Request(2, "namespaces.get", {"name": "a"}, {"namespace": "x"}),
    Notification("call.cancel", [1]),
    Response(3, None, {"ok": True}),
]


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_every_split_point_decodes_the_same(split: int) -> None:
    dec = Decoder()
    out: list[Any] = []
    for part in (STREAM[:split], STREAM[split:]):
        dec.feed(part)
        out.extend(dec)
    assert out == EXPECTED


def test_byte_by_byte() -> None:
    dec = Decoder()
    out: list[Any] = []
    for i in range(len(STREAM)):
        dec.feed(STREAM[i : i + 1])
        out.extend(dec)
    assert out == EXPECTED


def test_method_as_bin_is_accepted() -> None:
    dec = Decoder()
    dec.feed(msgpack.packb([0, 9, b"version.version", [{}]], use_bin_type=True))
    assert list(dec) == [Request(9, "version.version", {}, None)]


@pytest.mark.parametrize(
    ("value", "msgid"),
    [
        ("hello", None),
        (42, None),
        ({"method": "x"}, None),
        ([], None),
        ([0, 1, "m"], None),
        ([7, 1, "m", [{}]], None),
        ([0, -1, "m", [{}]], None),
        ([0, 2**32, "m", [{}]], None),
        ([0, "one", "m", [{}]], None),
        ([0, True, "m", [{}]], None),
        ([True, 1, "m", [{}]], None),
        ([0, 1, 12, [{}]], 1),
        ([0, 1, b"\xff\xfe", [{}]], 1),
        ([0, 1, "m", {"not": "a list"}], 1),
        ([0, 1, "m", []], 1),
        ([0, 1, "m", [{}, {}, {}]], 1),
        ([2, 5, []], None),
    ],
)
def test_malformed_envelopes(value: Any, msgid: int | None) -> None:
    dec = Decoder()
    dec.feed(msgpack.packb(value, use_bin_type=True))
    with pytest.raises(ProtocolError) as info:
        list(dec)
    assert info.value.msgid == msgid
    assert info.value.fatal is (msgid is None)
    assert isinstance(info.value.error, errdefs.InvalidArgument)


def test_envelope_error_does_not_lose_the_following_messages() -> None:
    dec = Decoder()
    dec.feed(msgpack.packb([0, 1, "m", []]) + msgpack.packb([0, 2, "m", [{}]]))
    with pytest.raises(ProtocolError):
        next(dec)
    assert next(dec) == Request(2, "m", {}, None)


def test_bytes_that_are_not_msgpack_break_the_stream() -> None:
    dec = Decoder()
    dec.feed(b"\xc1\xc1 GET / HTTP/1.1\r\n")
    with pytest.raises(ProtocolError) as info:
        list(dec)
    assert info.value.fatal and "not msgpack" in str(info.value)
    with pytest.raises(ProtocolError):
        dec.feed(msgpack.packb([0, 1, "m", [{}]]))


def test_oversized_frame_answers_its_msgid() -> None:
    dec = Decoder(max_message_size=1000)
    frame = msgpack.packb([0, 7, "m", [{"data": b"x" * 5000}]], use_bin_type=True)
    dec.feed(msgpack.packb([0, 1, "m", [{}]]) + frame[:100])
    assert list(dec) == [Request(1, "m", {}, None)]
    with pytest.raises(ProtocolError) as info:
        dec.feed(frame[100:])
    assert info.value.msgid == 7
    assert isinstance(info.value.error, errdefs.ResourceExhausted)


def test_oversized_garbage_has_no_msgid() -> None:
    dec = Decoder(max_message_size=100)
    with pytest.raises(ProtocolError) as info:
        dec.feed(b"\xda\xff\xff" + b"a" * 200)
    assert info.value.msgid is None


def test_timestamps_round_trip_as_ext_minus_one() -> None:
    when = datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC)
    frame = Encoder().response(4, None, {"at": when})
    assert b"\xd7\xff" in frame or b"\xc7\x0c\xff" in frame  # timestamp64 / timestamp96
    dec = Decoder()
    dec.feed(frame)
    assert list(dec) == [Response(4, None, {"at": when})]


def test_encoder_shapes() -> None:
    enc = Encoder()
    assert msgpack.unpackb(enc.request(1, "m", {"a": 1}, None)) == [0, 1, "m", [{"a": 1}]]
    assert msgpack.unpackb(enc.request(1, "m", {}, {"namespace": "n"})) == [
        0,
        1,
        "m",
        [{}, {"namespace": "n"}],
    ]
    err = msgpack.unpackb(enc.error(2, errdefs.NotFound("gone")))
    assert err == [1, 2, {"code": "NotFound", "message": "gone"}, None]
    assert msgpack.unpackb(enc.notification("stream.item", [3, {}])) == [
        2,
        "stream.item",
        [3, {}],
    ]
    assert msgpack.unpackb(enc.request(1, "m", {"b": b"\x00"}, None))[3][0]["b"] == b"\x00"


def test_parse_meta_is_strict() -> None:
    assert parse_meta(None) == Meta()
    assert parse_meta({"namespace": "a", "lease": "l", "timeout": 2}) == Meta(
        namespace="a", lease="l", timeout=2.0
    )
    assert parse_meta({"namespace": ""}) == Meta()
    for bad, key in [
        ({"namespace": 5}, "meta.namespace"),
        ({"lease": b"x"}, "meta.lease"),
        ({"timeout": "1"}, "meta.timeout"),
        ({"timeout": True}, "meta.timeout"),
        ({"timeout": -1}, "meta.timeout"),
        ([], "meta"),
    ]:
        with pytest.raises(errdefs.InvalidArgument, match=key):
            parse_meta(bad)
