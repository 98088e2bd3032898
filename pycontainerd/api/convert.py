"""Strict (un)structuring of wire maps into the attrs classes of ``api/``.

Types are strict: no conversion happens (``12`` is not a ``str``, ``"false"``
is not a ``bool``, ``1.5`` is not an ``int``); a value that does not fit is an
``InvalidArgument`` naming the field path (``namespace.labels['a']``).
Unknown keys are ignored for forward compatibility; absent fields take their
zero values (every field of a request class has a default).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.gen import make_dict_structure_fn

from . import errdefs

T = TypeVar("T")


def _strict(kind: type, name: str, *, reject: tuple[type, ...] = ()) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, kind) or isinstance(value, reject):
            raise TypeError(f"expected {name}, got {_describe(value)}")
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


def _guard(kind: type | tuple[type, ...], name: str, inner: Any) -> Any:
    def hook(value: Any, type_: Any) -> Any:
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {_describe(value)}")
        return inner(value, type_)

    return hook


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _is_dict(type_: Any) -> bool:
    return get_origin(type_) is dict


def _make() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    # Containers must already be the right container: a str is not a list, a list
    # is not a map, and a map is needed for every attrs class.
    conv.register_structure_hook_factory(
        attrs.has,
        lambda cls: _guard(Mapping, "map", make_dict_structure_fn(cls, conv)),
    )
    conv.register_structure_hook_factory(
        _is_list,
        lambda t: _guard((list, tuple), "array", list_structure_factory(t, conv)),
    )
    conv.register_structure_hook_factory(
        _is_dict,
        lambda t: _guard(Mapping, "map", mapping_structure_factory(t, conv)),
    )
    conv.register_structure_hook(str, _strict(str, "str"))
    conv.register_structure_hook(int, _strict(int, "int", reject=(bool,)))
    conv.register_structure_hook(bool, _strict(bool, "bool"))
    conv.register_structure_hook(bytes, _strict(bytes, "bin"))
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(datetime, _strict(datetime, "timestamp"))
    conv.register_unstructure_hook(datetime, lambda v: v)
    conv.register_unstructure_hook(bytes, lambda v: v)
    return conv


CONVERTER = _make()


def _path(path: str) -> str:
    # cattrs reports "$.namespace.labels['a']"; the wire says "namespace.labels['a']"
    return path[2:] if path.startswith("$.") else path.lstrip("$") or "request"


def structure_request(obj: Any, cls: type[T]) -> T:
    """Turn a decoded request map into ``cls``.

    Raises:
        errdefs.InvalidArgument: ``obj`` is not a map, or a field has the wrong
            type; the message names the field path.
    """
    if not isinstance(obj, Mapping):
        raise errdefs.InvalidArgument(f"request: expected map, got {_describe(obj)}")
    try:
        return CONVERTER.structure(obj, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="$", format_exception=_format)
        raise errdefs.InvalidArgument("; ".join(_relabel(m) for m in messages)) from None
    except (TypeError, ValueError) as exc:
        raise errdefs.InvalidArgument(f"request: {exc}") from None


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError | ValueError) and str(exc):
        return str(exc)
    return f"invalid value for type {getattr(type_, '__name__', type_)}"


def _relabel(message: str) -> str:
    text, sep, path = message.rpartition(" @ ")
    if not sep:
        return message
    return f"{_path(path)}: {text}"


def structure(obj: Any, cls: type[T]) -> T:
    """Like :func:`structure_request`, for responses and nested objects on the client side."""
    return structure_request(obj, cls)


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
