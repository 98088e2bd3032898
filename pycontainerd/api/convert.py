"""Strict, bounded (un)structuring of wire maps into the attrs classes of ``api/``.

Types are strict: no conversion happens (``12`` is not a ``str``, ``"false"``
is not a ``bool``, ``1.5`` is not an ``int``); a value that does not fit is an
``InvalidArgument`` naming the field path (``namespace.labels['a']``).
Unknown keys are ignored for forward compatibility; absent fields take their
zero values (every field of a request class has a default).

Requests are also bounded (:mod:`.bounds`): integers within their protobuf
type (``int64`` unless the field says ``uint32``, ...), strings, lists and maps
within their caps. Checking costs at most what the request's size does and
stops at the first bad item of a list or map, so that the answer to a 1M-item
list of wrong things is one short message, not a million.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from . import errdefs
from .bounds import INT_RANGES, KEY, MAX_ITEMS, MAX_STRING, Bounds

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]

MAX_MESSAGES = 4
"""Field errors reported in one ``InvalidArgument`` (the rest are counted)."""
MAX_MESSAGE_LENGTH = 240
"""Characters of one field error (a quoted value is cut)."""


def _strict(kind: type, name: str, *, reject: tuple[type, ...] = ()) -> Hook:
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, kind) or isinstance(value, reject):
            raise TypeError(f"expected {name}, got {_describe(value)}")
        return value

    return hook


def _int(int_type: str) -> Hook:
    low, high = INT_RANGES[int_type]

    def hook(value: Any, _: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"expected int, got {_describe(value)}")
        if not low <= value <= high:
            raise ValueError(f"{value} out of range for {int_type} [{low}, {high}]")
        return value

    return hook


def _str(max_length: int | None) -> Hook:
    def hook(value: Any, _: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected str, got {_describe(value)}")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"string of {len(value)} characters, at most {max_length}")
        return value

    return hook


def _float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected number, got {_describe(value)}")
    return float(value)


def _describe(value: Any) -> str:
    if value is None:
        return "nil"
    return {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        bytes: "bin",
        dict: "map",
        list: "array",
    }.get(type(value), type(value).__name__)


def _guard(kind: type | tuple[type, ...], name: str, inner: Hook) -> Hook:
    def hook(value: Any, type_: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {_describe(value)}")
        return inner(value, type_)

    return hook


class _Key:
    """A map key as an error path shows it: its repr, cut short."""

    __slots__ = ("text",)

    def __init__(self, key: object) -> None:
        text = repr(key) if isinstance(key, str | int) else f"<{_describe(key)}>"
        self.text = text if len(text) <= 40 else text[:37] + "..."

    def __repr__(self) -> str:
        return self.text


def _item_failed(exc: Exception, index: int | _Key, elem: Any, type_: Any) -> Exception:
    note = IterableValidationNote(f"Structuring {type_} @ {index!r}", index, elem)  # type: ignore[arg-type]
    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
    return IterableValidationError("invalid item", [exc], type_)


def _hook_for(conv: cattrs.Converter, type_: Any) -> Hook:
    try:
        hook: Hook = conv.get_structure_hook(type_)
    except RecursionError:  # a recursive type: bind late
        return conv.structure
    return hook


def _list(conv: cattrs.Converter, type_: Any, max_items: int | None, item: Hook | None) -> Hook:
    args = get_args(type_)
    elem = args[0] if args else Any
    handler = item or _hook_for(conv, elem)

    def hook(value: Any, _: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected array, got {_describe(value)}")
        if max_items is not None and len(value) > max_items:
            raise ValueError(f"array of {len(value)} items, at most {max_items}")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(handler(v, elem))
            except Exception as exc:
                raise _item_failed(exc, i, elem, type_) from None
        return out

    return hook


def _map(conv: cattrs.Converter, type_: Any, max_items: int | None) -> Hook:
    args = get_args(type_)
    key_type, val_type = args if len(args) == 2 else (Any, Any)
    key_hook, val_hook = _hook_for(conv, key_type), _hook_for(conv, val_type)

    def hook(value: Any, _: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected map, got {_describe(value)}")
        if max_items is not None and len(value) > max_items:
            raise ValueError(f"map of {len(value)} entries, at most {max_items}")
        out = {}
        for k, v in value.items():
            try:
                key = key_hook(k, key_type)
            except Exception as exc:
                raise _item_failed(exc, _Key(k), key_type, type_) from None
            try:
                out[key] = val_hook(v, val_type)
            except Exception as exc:
                raise _item_failed(exc, _Key(k), val_type, type_) from None
        return out

    return hook


def _optional(inner: Hook) -> Hook:
    def hook(value: Any, type_: Any) -> Any:
        return None if value is None else inner(value, type_)

    return hook


def _field_hook(conv: cattrs.Converter, type_: Any, b: Bounds, bounded: bool) -> Hook:
    """The hook of one field with its own :class:`Bounds`."""
    args = get_args(type_)
    if get_origin(type_) in (typing.Union, type(int | None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return _optional(_field_hook(conv, rest[0], b, bounded))
    if type_ is int:
        return _int(b.int_type)
    if type_ is str:
        return _str(b.max_length if bounded else None)
    if get_origin(type_) is list:
        elem = args[0] if args else Any
        item = None
        if elem is str and b.max_item_length is not None:
            item = _str(b.max_item_length if bounded else None)
        elif elem is int:
            item = _int(b.int_type)
        cap = b.max_length if b.max_length is not None else MAX_ITEMS
        return _list(conv, type_, cap if bounded else None, item)
    if get_origin(type_) is dict:
        cap = b.max_length if b.max_length is not None else MAX_ITEMS
        return _map(conv, type_, cap if bounded else None)
    raise TypeError(f"bounds on a field of type {type_!r}")


def _class(conv: cattrs.Converter, cls: type, bounded: bool) -> Hook:
    hints = typing.get_type_hints(cls)
    overrides: dict[str, Any] = {
        f.name: override(struct_hook=_field_hook(conv, hints[f.name], f.metadata[KEY], bounded))
        for f in attrs.fields(cls)
        if KEY in f.metadata
    }
    return _guard(Mapping, "map", make_dict_structure_fn(cls, conv, **overrides))


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _is_dict(type_: Any) -> bool:
    return get_origin(type_) is dict


def _make(*, bounded: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    # Containers must already be the right container: a str is not a list, a list
    # is not a map, and a map is needed for every attrs class.
    conv.register_structure_hook_factory(attrs.has, lambda cls: _class(conv, cls, bounded))
    cap = MAX_ITEMS if bounded else None
    conv.register_structure_hook_factory(_is_list, lambda t: _list(conv, t, cap, None))
    conv.register_structure_hook_factory(_is_dict, lambda t: _map(conv, t, cap))
    conv.register_structure_hook(str, _str(MAX_STRING if bounded else None))
    conv.register_structure_hook(int, _int("int64"))
    conv.register_structure_hook(bool, _strict(bool, "bool"))
    conv.register_structure_hook(bytes, _strict(bytes, "bin"))
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(datetime, _strict(datetime, "timestamp"))
    conv.register_unstructure_hook(datetime, lambda v: v)
    conv.register_unstructure_hook(bytes, lambda v: v)
    return conv


CONVERTER = _make(bounded=True)
"""Requests: strict and bounded."""
_RESPONSES = _make(bounded=False)


def _path(path: str) -> str:
    # cattrs reports "$.namespace.labels['a']"; the wire says "namespace.labels['a']"
    return path[2:] if path.startswith("$.") else path.lstrip("$") or "request"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 3] + "..."


def _structure(conv: cattrs.Converter, obj: Any, cls: type[T]) -> T:
    if not isinstance(obj, Mapping):
        raise errdefs.InvalidArgument(f"request: expected map, got {_describe(obj)}")
    try:
        return conv.structure(obj, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="$", format_exception=_format)
        shown = [_cut(_relabel(m)) for m in messages[:MAX_MESSAGES]]
        if len(messages) > MAX_MESSAGES:
            shown.append(f"and {len(messages) - MAX_MESSAGES} more")
        raise errdefs.InvalidArgument("; ".join(shown)) from None
    except (TypeError, ValueError) as exc:
        raise errdefs.InvalidArgument(_cut(f"request: {exc}")) from None


def structure_request(obj: Any, cls: type[T]) -> T:
    """Turn a decoded request map into ``cls``, checking the bounds of :mod:`.bounds`.

    Raises:
        errdefs.InvalidArgument: ``obj`` is not a map, or a field has the wrong
            type or is out of bounds; the message names the field path and is
            short whatever the request.
    """
    return _structure(CONVERTER, obj, cls)


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError | ValueError) and str(exc):
        return _cut(str(exc))
    return f"invalid value for type {getattr(type_, '__name__', type_)}"


def _relabel(message: str) -> str:
    text, sep, path = message.rpartition(" @ ")
    if not sep:
        return message
    return f"{_path(path)}: {text}"


def structure(obj: Any, cls: type[T]) -> T:
    """Like :func:`structure_request` without the size caps: for responses and
    nested objects on the client side (a listing may hold 100 000 items)."""
    return _structure(_RESPONSES, obj, cls)


class Plain:
    """A response already in wire form (maps, lists, str, int, bytes, datetimes):
    :func:`unstructure` passes it through untouched. For large replies built
    straight from storage rows (``content.list`` of 10 000 blobs)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def unstructure(obj: Any) -> Any:
    """An attrs instance (or list/dict of them) as plain msgpack-able data."""
    if isinstance(obj, Plain):
        return obj.value
    return CONVERTER.unstructure(obj)
