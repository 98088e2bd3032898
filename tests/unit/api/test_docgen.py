from __future__ import annotations

from pycontainerd.api import docgen
from pycontainerd.api.methods import METHODS


def test_checked_in_docs_are_current() -> None:
    assert docgen.main(["--check"]) == 0


def test_schema_covers_every_method_and_type() -> None:
    schema = docgen.schema()
    assert set(schema["methods"]) == set(METHODS)
    sub = schema["methods"]["events.subscribe"]
    assert sub["stream_item"] == {"$ref": "#/$defs/Envelope"}
    assert sub["namespaced"] is False
    assert schema["methods"]["events.publish"]["namespaced"] is True
    env = schema["$defs"]["Envelope"]["properties"]
    int64 = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
    assert env["sequence"] == int64
    kill = schema["$defs"]["KillRequest"]["properties"]["signal"]
    assert (kill["format"], kill["minimum"], kill["maximum"]) == ("uint32", 0, 2**32 - 1)
    assert env["timestamp"]["anyOf"][1] == {"type": "null"}
    since = schema["$defs"]["SubscribeRequest"]["properties"]["since"]
    assert "replay" in since["description"]


def test_protocol_md_documents_framing_errors_and_each_method() -> None:
    text = docgen.protocol_md()
    assert "[0, msgid, method, params]" in text
    assert "`NotImplemented`" in text and "`ResourceExhausted`" in text
    for name in METHODS:
        assert f"### `{name}`" in text
    assert "| `update_mask` | [FieldMask](#fieldmask) or nil |" in text
    limits = text[text.index("## Limits") : text.index("## Namespaces")]
    assert "262 144 values" in limits and "1 048 576 bytes" in limits
