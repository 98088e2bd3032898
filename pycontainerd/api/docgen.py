"""Generate ``docs/protocol.md`` and ``docs/schema.json`` from :data:`METHODS`.

python -m pycontainerd.api.docgen           # write both
python -m pycontainerd.api.docgen --check   # exit 1 if either is stale (CI)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from . import errdefs
from .methods import METHODS

DOCS = Path(__file__).resolve().parents[2] / "docs"

_SCALARS: dict[Any, tuple[str, dict[str, Any]]] = {
    str: ("str", {"type": "string"}),
    int: ("int", {"type": "integer"}),
    bool: ("bool", {"type": "boolean"}),
    float: ("float", {"type": "number"}),
    bytes: ("bin", {"description": "msgpack bin"}),
    datetime: ("timestamp", {"description": "msgpack Timestamp (ext type -1)"}),
    typing.Any: ("any", {}),
}


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in _args(tp)


def _inner(tp: Any) -> Any:
    rest = [a for a in _args(tp) if a is not type(None)]
    return rest[0]


def _fields(cls: type) -> list[tuple[str, Any, str]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in attrs.fields(cls):
        doc = ""
        out.append((f.name, hints[f.name], doc))
    return out


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal after a field) from the source."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for prev, node in itertools.pairwise(body):
        if (
            isinstance(prev, ast.AnnAssign)
            and isinstance(prev.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[prev.target.id] = " ".join(node.value.value.split())
    return docs


class _Collector:
    def __init__(self) -> None:
        self.classes: dict[str, type] = {}

    def visit(self, tp: Any) -> None:
        if tp in _SCALARS or tp is type(None):
            return
        if _is_optional(tp):
            self.visit(_inner(tp))
        elif typing.get_origin(tp) in (list, dict, typing.Literal):
            for a in _args(tp):
                if typing.get_origin(tp) is not typing.Literal:
                    self.visit(a)
        elif attrs.has(tp):
            if tp.__name__ not in self.classes:
                self.classes[tp.__name__] = tp
                for _, ftp, _ in _fields(tp):
                    self.visit(ftp)
        else:
            raise TypeError(f"docgen: unsupported type {tp!r}")


def _md_type(tp: Any) -> str:
    if tp in _SCALARS:
        return _SCALARS[tp][0]
    if _is_optional(tp):
        return f"{_md_type(_inner(tp))} or nil"
    origin = typing.get_origin(tp)
    if origin is list:
        return f"[{_md_type(_args(tp)[0])}]"
    if origin is dict:
        k, v = _args(tp)
        return f"map<{_md_type(k)}, {_md_type(v)}>"
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' for a in _args(tp))
    return f"[{tp.__name__}](#{tp.__name__.lower()})"


def _schema_type(tp: Any) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp][1])
    if _is_optional(tp):
        return {"anyOf": [_schema_type(_inner(tp)), {"type": "null"}]}
    origin = typing.get_origin(tp)
    if origin is list:
        return {"type": "array", "items": _schema_type(_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_type(_args(tp)[1])}
    if origin is typing.Literal:
        return {"enum": list(_args(tp))}
    return {"$ref": f"#/$defs/{tp.__name__}"}


def _int_range(cls: type, name: str, tp: Any) -> dict[str, Any]:
    """``minimum``/``maximum`` of an integer field: its protobuf type's range."""
    from . import bounds

    if (_inner(tp) if _is_optional(tp) else tp) is not int:
        return {}
    meta = attrs.fields_dict(cls)[name].metadata.get(bounds.KEY)
    int_type = meta.int_type if isinstance(meta, bounds.Bounds) else "int64"
    low, high = bounds.INT_RANGES[int_type]
    return {"minimum": low, "maximum": high, "format": int_type}


def _class_schema(cls: type) -> dict[str, Any]:
    docs = _field_docs(cls)
    props = {}
    for name, tp, _ in _fields(cls):
        prop = _schema_type(tp)
        if not _is_optional(tp):
            prop.update(_int_range(cls, name, tp))
        elif rng := _int_range(cls, name, tp):
            prop["anyOf"][0].update(rng)
        if docs.get(name):
            prop["description"] = docs[name]
        props[name] = prop
    out: dict[str, Any] = {"type": "object", "properties": props}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        out["description"] = " ".join(cls.__doc__.split())
    return out


def _collect() -> _Collector:
    col = _Collector()
    for m in METHODS.values():
        col.visit(m.request)
        col.visit(m.response)
        if m.stream is not None:
            col.visit(m.stream)
    return col


def schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) of every method's request, response and stream item."""
    col = _collect()
    methods = {}
    for m in METHODS.values():
        entry: dict[str, Any] = {
            "namespaced": m.namespaced,
            "request": _schema_type(m.request),
            "response": _schema_type(m.response),
        }
        if m.stream is not None:
            entry["stream_item"] = _schema_type(m.stream)
        if m.doc:
            entry["description"] = m.doc
        methods[m.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pycontainerd msgpack-RPC methods",
        "methods": methods,
        "$defs": {name: _class_schema(cls) for name, cls in sorted(col.classes.items())},
    }


def _limits() -> dict[str, int]:
    from . import bounds
    from .events import MAX_EVENT_SIZE

    return {
        "max_values": bounds.MAX_VALUES,
        "max_items": bounds.MAX_ITEMS,
        "max_string": bounds.MAX_STRING,
        "max_filters": bounds.MAX_FILTERS,
        "max_filter_length": bounds.MAX_FILTER_LENGTH,
        "max_event": MAX_EVENT_SIZE,
    }


_INTRO = """\
# pycontainerd protocol

Generated from `pycontainerd/api/` by `python -m pycontainerd.api.docgen`; do not
edit by hand. A JSON Schema of every method is beside it in `schema.json`.

## Transport and framing

A Unix stream socket (default `/run/pycontainerd/pycontainerd.sock`, mode 0660,
group configurable). Both directions carry msgpack objects back to back, as the
[msgpack-RPC specification](https://github.com/msgpack-rpc/msgpack-rpc/blob/master/spec.md)
says; any stock msgpack library can speak it:

| Message | Shape |
|---|---|
| request | `[0, msgid, method, params]` (`msgid` a uint32 you choose) |
| response | `[1, msgid, error, result]` |
| notification | `[2, method, params]` |

`params` is `[request]` or `[request, meta]`. `request` is a map whose keys are
containerd's protobuf field names. `meta` is a map with optional keys
`namespace` (str), `lease` (str) and `timeout` (seconds, a finite number above
0 and at most 2592000, 30 days; the call is cancelled after it with
`DeadlineExceeded`; any other value is `InvalidArgument`). Many requests may be
in flight on one connection; responses come in any order. Requests on one
connection reach their object in the order they were sent.

Strings are msgpack `str` (a method name may also be `bin`), binary data is
`bin`, times are msgpack Timestamps (ext type -1). Types are strict: `12` is
not a `str` and `"false"` is not a `bool`. Unknown keys are ignored; absent
fields take their zero value (`""`, `0`, `false`, `[]`, `{}`, nil).

One message is at most 16 MiB. Bytes that are not msgpack, or a malformed
envelope, get an error response when a `msgid` can be read; the connection is
closed otherwise. A message begun must arrive whole within 30 seconds, and the
begun, unfinished messages of all connections together may hold at most 64 MiB
(`[rpc] frame_timeout` and `partial_frame_budget`): past either, the request
being received gets `DeadlineExceeded` or `ResourceExhausted` and its
connection is closed. A connection that sends nothing is never timed out.

## Errors

`error` is nil or `{"code": CODE, "message": str}`. CODE is one of:

{codes}

An unknown method is `NotImplemented`; a request that does not fit the schema is
`InvalidArgument` and the message names the field path (`namespace.labels['a']`).
A message is at most 64 KiB of UTF-8; a longer one is cut and ends with
`... (truncated)`.

## Limits

A request is refused, never half-served, when it goes past one of these; the
message names the field or the limit:

- one message: 16 MiB (`[rpc] max_recv_message_size`); `ResourceExhausted`,
  and the connection is closed;
- what one request decodes to: {max_values} values (array items, map entries,
  arrays and maps) and {max_items} items an array or map; `ResourceExhausted`,
  and the connection is closed;
- a `str` field: {max_string} characters; a list or map field: {max_items}
  items; `filters`: {max_filters} strings of at most {max_filter_length}
  characters; `InvalidArgument`;
- an integer field: its protobuf type's range (`schema.json` gives each
  field's `format`, `minimum` and `maximum`); `InvalidArgument`;
- a client's event (`events.publish`, `events.forward`): {max_event} bytes
  msgpack-encoded (`ResourceExhausted`), its maps keyed by strings
  (`InvalidArgument`);
- `meta.timeout`: finite, above 0, at most 30 days; `InvalidArgument`;
- an error's message: 64 KiB of UTF-8, then cut, ending with `... (truncated)`.

## Namespaces

Methods marked *namespaced* need `meta.namespace` (an identifier:
`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters); without it the
answer is `FailedPrecondition` "namespace is required".

## Streams and cancellation

A server stream sends its items as notifications `[2, "stream.item", [msgid, item]]`
and ends with the ordinary response to `msgid`. Cancel any call with the
notification `[2, "call.cancel", [msgid]]`; its response is then `Canceled`.
A client that stops reading a stream is ended with `ResourceExhausted`.

## Filters

`filters` are containerd's: each string is selectors joined by `,` (AND):
`field`, `field==value`, `field!=value`, `field~=regexp`, values quoted with
`"..."` when they hold `,` or spaces, field paths like `labels."a.b"`. Several
strings are OR-ed. `||` is not accepted.

## Methods

"""


def protocol_md() -> str:
    """The protocol reference as Markdown."""
    col = _collect()
    codes = "\n".join(f"- `{code}`" for code in errdefs.CODES)
    intro = _INTRO.replace("{codes}", codes)
    for key, value in _limits().items():
        intro = intro.replace("{" + key + "}", f"{value:,}".replace(",", " "))
    out = [intro]
    out.append("| Method | Request | Response | Namespaced |\n|---|---|---|---|\n")
    for m in METHODS.values():
        resp = _md_type(m.response)
        if m.stream is not None:
            resp = f"stream of {_md_type(m.stream)}, then {resp}"
        anchor = m.name.replace(".", "")
        out.append(
            f"| [`{m.name}`](#{anchor}) | {_md_type(m.request)} | {resp} | "
            f"{'yes' if m.namespaced else 'no'} |\n"
        )
    for m in METHODS.values():
        out.append(f"\n### `{m.name}`\n\n{m.doc}\n\n")
        out.append(f"- request: {_md_type(m.request)}\n- response: {_md_type(m.response)}\n")
        if m.stream is not None:
            out.append(f"- stream items: {_md_type(m.stream)}\n")
        out.append(f"- namespaced: {'yes' if m.namespaced else 'no'}\n")
    out.append("\n## Types\n")
    for name, cls in sorted(col.classes.items()):
        docs = _field_docs(cls)
        out.append(f"\n### {name}\n\n")
        if cls.__doc__ and not cls.__doc__.startswith(name + "("):
            out.append(" ".join(cls.__doc__.split()) + "\n\n")
        fields = _fields(cls)
        if not fields:
            out.append("The empty map `{}`.\n")
            continue
        out.append("| Field | Type | Notes |\n|---|---|---|\n")
        for fname, ftp, _ in fields:
            out.append(f"| `{fname}` | {_md_type(ftp)} | {docs.get(fname, '')} |\n")
    return "".join(out)


def outputs() -> dict[Path, str]:
    return {
        DOCS / "protocol.md": protocol_md(),
        DOCS / "schema.json": json.dumps(schema(), indent=2, sort_keys=True) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pycontainerd.api.docgen")
    parser.add_argument("--check", action="store_true", help="fail if the docs are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        names = ", ".join(str(p) for p in stale)
        print(f"stale: {names}; run python -m pycontainerd.api.docgen", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
