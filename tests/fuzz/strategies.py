"""Hypothesis strategies for the wire fuzzer, shaped from ``docs/schema.json``.

Every method's request is drawn from its JSON Schema: values of the right type
(often from a pool of names that exist in the daemon, so requests get past
validation), wrong types, edge numbers (NaN, infinities, int64/uint64 bounds),
huge strings, lists and maps (built at encoding time: see :class:`Huge`), deep
nesting (:class:`Deep`, written as raw bytes, deeper than a msgpack packer
allows), and random ``meta``.

Host safety: whatever is drawn goes through :func:`sanitize`, which points every
host path of a request (tarballs, stdio URIs, mount sources, runtime binaries,
``hosts_dir``) into the run's sandbox directory (:class:`Sandboxed`), drops OCI
hooks, sysctls and cgroup paths, and keeps ``meta.namespace`` under ``fz`` (so a
task's default cgroup ``<namespace>/<id>`` is never a host cgroup). ``tasks.kill``
takes no pid: it reaches only the processes of a task the fuzzer created.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import attrs
import msgpack
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "docs" / "schema.json").read_text())
METHODS: tuple[str, ...] = tuple(sorted(SCHEMA["methods"]))
MAX_MESSAGE_SIZE = 16 << 20
"""The daemon's message cap (``wire/_codec.py``)."""

Strategy = st.SearchStrategy[Any]


class _NoMeta:
    def __repr__(self) -> str:
        return "NO_META"


NO_META: Any = _NoMeta()
"""Send ``params`` as ``[request]`` (no meta)."""


# -- markers built at encoding time ------------------------------------------------


@attrs.frozen
class Huge:
    """A large value, built only when the request is packed (its repr stays short)."""

    kind: str  # str | bin | ints | strs | map
    n: int
    """About the packed size in bytes."""

    def build(self) -> Any:
        if self.kind == "str":
            return "a" * self.n
        if self.kind == "bin":
            return b"\0" * self.n
        if self.kind == "ints":
            return [7] * self.n
        if self.kind == "strs":
            return ["a"] * (self.n // 2)
        return {f"k{i:07}": "" for i in range(self.n // 10)}


@attrs.frozen
class Deep:
    """``depth`` nested arrays (or maps), written as raw msgpack bytes."""

    kind: str  # list | map
    depth: int

    def raw(self) -> bytes:
        if self.kind == "list":
            return b"\x91" * self.depth + b"\xc0"
        return b"\x81\xa1k" * self.depth + b"\xc0"


@attrs.frozen
class Sandboxed:
    """A host path pointed into the run's sandbox directory: ``prefix + sandbox/slug``."""

    prefix: str
    slug: str


@attrs.frozen
class Truncated:
    """The first ``keep`` bytes of the packed ``value`` (then the frame stops)."""

    value: Any
    keep: int


class Packer:
    """Packs fuzzer values (with markers) into msgpack bytes."""

    def __init__(self, sandbox: Path) -> None:
        self.sandbox = sandbox

    def pack(self, obj: Any) -> bytes:
        deep: dict[bytes, bytes] = {}

        def default(value: Any) -> Any:
            if isinstance(value, Huge):
                return value.build()
            if isinstance(value, Sandboxed):
                return f"{value.prefix}{self.sandbox}/{value.slug}"
            if isinstance(value, Deep):
                token = f"\0deep{len(deep)}\0"
                deep[msgpack.packb(token)] = value.raw()
                return token
            if isinstance(value, Truncated):
                raise TypeError("a Truncated value is a whole frame")
            raise TypeError(f"cannot pack {type(value).__name__}")

        if isinstance(obj, Truncated):
            return self.pack(obj.value)[: obj.keep]
        data: bytes = msgpack.packb(obj, use_bin_type=True, datetime=True, default=default)
        for token, raw in deep.items():
            data = data.replace(token, raw, 1)
        return data


# -- leaves ------------------------------------------------------------------------

INT_EDGES = [
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -(2**31),
    -(2**63),
]
"""msgpack carries -2**63 .. 2**64-1; 2**64 itself goes as a float (below)."""
FLOAT_EDGES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 2.0**64, 0.5]
HUGE_SIZES = [1 << 10] * 8 + [1 << 14] * 4 + [1 << 16] * 3 + [1 << 20] * 2 + [4 << 20]
HUGE_SIZES_OVER = [MAX_MESSAGE_SIZE - 4096, MAX_MESSAGE_SIZE + 64]
DEPTHS = [8, 64, 400, 1000, 3000, 100_000]

SPECIAL_STRINGS = [
    "",
    ".",
    "..",
    "../..",
    "/",
    "//",
    "a" * 300,
    "\x00",
    "é\u202e",
    "%s%n",
    "${HOME}",
    " ",
    ",",
    '"',
    "||",
    "^(a+)+$",
]
REDOS = ["(a+)+$", "^(a+)+$", "(a|aa)+$", "(a*)*$", "^(([a-z])+.)+[A-Z]([a-z])+$"]
REDOS_NAME = "fz/" + "a" * 24 + "!"
"""An image name the ``REDOS`` patterns backtrack on (2**24 steps with Python's ``re``)."""
BLOB = b"pycontainerd fuzz blob\n"
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
HEX64 = "0123456789abcdef" * 4


def weighted(*branches: tuple[int, Strategy]) -> Strategy:
    """One of ``branches``, each drawn in proportion to its weight.

    (``st.one_of`` does not weigh repeated branches: it tends to treat them as one.)
    """
    pool = [strategy for weight, strategy in branches for _ in range(weight)]
    return st.sampled_from(pool).flatmap(_same)


def _same(strategy: Strategy) -> Strategy:
    return strategy


@functools.cache
def text() -> Strategy:
    return st.one_of(
        st.text(max_size=12),
        st.text(alphabet="abcxyz019._-/:", max_size=24),
        st.sampled_from(SPECIAL_STRINGS),
    )


@functools.cache
def integers() -> Strategy:
    return st.one_of(
        st.integers(-5, 1000),
        st.sampled_from(INT_EDGES),
        st.integers(-(2**63), 2**64 - 1),
    )


@functools.cache
def floats() -> Strategy:
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=True, allow_infinity=True))


@functools.cache
def timestamps() -> Strategy:
    return st.builds(
        msgpack.Timestamp,
        st.integers(-(2**33), 2**34 - 1),
        st.integers(0, 999_999_999),
    )


@functools.cache
def scalars() -> Strategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        integers(),
        floats(),
        text(),
        st.binary(max_size=16),
        timestamps(),
    )


@functools.cache
def any_value() -> Strategy:
    """Any msgpack value of modest size (maps with non-str keys included)."""
    keys = st.one_of(text(), st.integers(-2, 2**32), st.binary(max_size=4))
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=8,
    )


@functools.cache
def huge(kind: str) -> Strategy:
    return st.builds(Huge, st.just(kind), st.sampled_from(HUGE_SIZES))


@functools.cache
def deep() -> Strategy:
    return st.builds(Deep, st.sampled_from(["list", "map"]), st.sampled_from(DEPTHS))


@functools.cache
def wrong() -> Strategy:
    """A value of any type; now and then a huge or deep one."""
    return weighted(
        (60, any_value()),
        (1, st.sampled_from(["str", "bin", "ints", "strs", "map"]).flatmap(huge)),
        (1, deep()),
    )


# -- pools: names that exist in the daemon or mean something to it ---------------

SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
MINIMAL_SPEC = {
    "ociVersion": "1.1.0",
    "process": {"args": ["/nonexistent"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
    "root": {"path": "rootfs"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]},
}
FILTERS = [
    "",
    "name==fz/img:1",
    'name~="^(a+)+$"',
    "name~=fz",
    "labels.a==b",
    'labels."a.b"!=c',
    "id==c1,runtime.name==io.containerd.runc.v2",
    "topic~=/tasks/.*",
    "namespace==fz",
    "digest==" + BLOB_DIGEST,
    "size==23",
    "a==b||c==d",
    "labels.",
    "==",
    "~=[",
    '"unterminated',
    *[f"name~={r}" for r in REDOS],
    *[f"topic~={r}" for r in REDOS],
]
POOLS: dict[str, list[Any]] = {
    "id": ["c1", "c2", "fz-x", "l1", "ns.a", ""],
    "container_id": ["c1", "c2", "nope", ""],
    "exec_id": ["", "e1", "e2", "../e"],
    "name": ["fz/img:1", "fz/img:2", REDOS_NAME, "fz", "fz2", "base", "c1", ""],
    "key": ["active", "base", "k1", "k2", "view1", ""],
    "parent": ["", "base", "active", "nope"],
    "snapshot_key": ["active", "k1", ""],
    "snapshotter": ["overlayfs", "native", "btrfs", "nope", ""],
    "ref": ["ref1", "ref2", "127.0.0.1:1/fz/img:1", "127.0.0.1:5000/../../etc/passwd:latest"],
    "source_ref": ["fz/img:1", "nope", ""],
    "refs": [["fz/img:1"], [], ["nope", "fz/img:1"]],
    "base_name": ["fz/imported", "", "127.0.0.1:1/x"],
    "digest": [BLOB_DIGEST, "sha256:" + HEX64, "sha256:xyz", "md5:abc", "sha512:" + HEX64 * 2],
    "expected": [BLOB_DIGEST, "", "sha256:" + HEX64],
    "media_type": [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/octet-stream",
    ],
    "type_url": [SPEC_TYPE, PROCESS_TYPE, "types.containerd.io/x", ""],
    "topic": ["/fz/x", "/tasks/exit", "x", "/", "//", "/a/b/c"],
    "action": ["stat", "write", "commit", "", "STAT"],
    "filters": [[f] for f in FILTERS] + [[], FILTERS[:4]],
    "filter": FILTERS,
    "paths": [["labels"], ["labels.a"], ["spec"], ["target"], ["name"], ["kind"], []],
    "signal": [0, 1, 9, 15, 19, 64, 65, -1, 2**31, 2**63 - 1],
    "platforms": [["linux/amd64"], ["linux/arm64/v8"], ["windows"], ["linux/amd64/v2/x"], [""]],
    "since": [0, 1, 2, 2**63 - 1, 10**9, -1, None],
    "offset": [0, 1, 22, 23, 24, -1, 2**63 - 1],
    "size": [0, 23, -1, 1, 2**63 - 1, 2**63],
    "total": [0, 23, -1, 2**63 - 1],
    "data": [BLOB, b"", b"x"],
    "lease": ["l1", "l2", ""],
    "labels": [
        {"a": "b"},
        {"containerd.io/gc.ref.content.x": BLOB_DIGEST},
        {"containerd.io/gc.expire": "2000-01-01T00:00:00Z"},
        {"containerd.io/gc.expire": "garbage"},
        {"containerd.io/snapshot.ref": "base"},
        {"": ""},
    ],
    "type": ["content", "ingests", "snapshots/overlayfs", "bind", "tmpfs", "overlay", "nope"],
    "options": [["ro"], ["rbind", "rw"], ["nosuid", "nodev"], []],
    "value": [MINIMAL_SPEC, {"args": ["/nonexistent"], "cwd": "/"}, {}],
}
"""Values by property name, whatever the message (a pool is a hint, not a type)."""


# -- host safety -------------------------------------------------------------------

PATH_KEYS = frozenset(
    {
        "path",
        "hosts_dir",
        "runtime_path",
        "stdin",
        "stdout",
        "stderr",
        "source",
        "binary_name",
        "root",
        "criu_path",
        "criu_image_path",
        "criu_work_path",
        "shim_cgroup",
        "work_dir",
    }
)
DROP_KEYS = frozenset({"hooks", "cgroupsPath", "sysctl", "systemd_cgroup"})
URI_PREFIXES = ("file://", "binary://", "fifo://")
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def slug(value: str) -> str:
    s = _SLUG.sub("_", value)[:40]
    return s or "_"


def _sandboxed(value: str) -> Sandboxed:
    for prefix in URI_PREFIXES:
        if value.startswith(prefix):
            return Sandboxed(prefix, slug(value[len(prefix) :]))
    return Sandboxed("", slug(value))


def sanitize(obj: Any) -> Any:
    """``obj`` with every host path sandboxed and host-reaching spec keys dropped."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if k in DROP_KEYS:
                continue
            if k in PATH_KEYS and isinstance(v, str) and v:
                out[k] = _sandboxed(v)
            elif k == "target" and isinstance(v, str):
                out[k] = slug(v)
            elif k == "options" and isinstance(v, list):
                out[k] = [o.replace("/", "_") if isinstance(o, str) else sanitize(o) for o in v]
            else:
                out[k] = sanitize(v)
        return out
    if isinstance(obj, list):
        return [sanitize(v) for v in obj]
    return obj


def sanitize_namespace(value: Any) -> Any:
    """Non-empty namespaces start with ``fz``: never a host cgroup's parent."""
    if isinstance(value, str) and value and not value.startswith("fz"):
        return "fz" + value
    return value


# -- schema-shaped requests --------------------------------------------------------

_cache: dict[tuple[str, bool], Strategy] = {}
NAMES = ["fz-a", "x1", "a.b", "c1"]
"""Plain identifiers, for strings without a pool in a well-formed request."""


def _typed(node: dict[str, Any], depth: int, valid: bool = False) -> Strategy:
    """A value of ``node``'s type (a wrong one only below, in :func:`value_for`).

    ``valid``: well-formed throughout (pool values, identifiers, small numbers), so
    that requests get past validation into the services.
    """
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if (name, valid) not in _cache:
            _cache[name, valid] = st.deferred(
                lambda: _typed(SCHEMA["$defs"][name], depth + 1, valid)
            )
        return _cache[name, valid]
    if "anyOf" in node:
        return st.one_of(*[_typed(alt, depth, valid) for alt in node["anyOf"]])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "string":
        return st.sampled_from(NAMES) if valid else weighted((40, text()), (1, huge("str")))
    if kind == "integer":
        return st.integers(0, 100) if valid else integers()
    if kind == "number":
        return st.floats(0, 100) if valid else st.one_of(integers(), floats())
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        item = value_for("", node.get("items", {}), depth + 1, valid)
        if valid:
            return st.lists(item, max_size=2)
        return weighted((80, st.lists(item, max_size=4)), (1, huge("ints")), (1, huge("strs")))
    if kind == "object":
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        if props:
            fields = {k: value_for(k, v, depth + 1, valid) for k, v in props.items()}
            if valid:  # every field present: empty ones are what validation refuses first
                return st.fixed_dictionaries(fields)
            return st.fixed_dictionaries({}, optional=fields)
        if extra is not None:
            values = value_for("", extra if isinstance(extra, dict) else {}, depth + 1, valid)
            keys = st.sampled_from(["a", "a.b", "containerd.io/x"])
            if valid:
                return st.dictionaries(keys, values, max_size=2)
            keys = st.one_of(text(), keys)
            return weighted((40, st.dictionaries(keys, values, max_size=4)), (1, huge("map")))
        return st.just({})
    if "msgpack Timestamp" in node.get("description", ""):
        return timestamps() if valid else st.one_of(timestamps(), st.none())
    return st.just({}) if valid else any_value()


def value_for(name: str, node: dict[str, Any], depth: int = 0, valid: bool = False) -> Strategy:
    """A value for property ``name``: typed, from its pool, or of a wrong type."""
    typed = _typed(node, depth, valid)
    if name in POOLS:
        pool = st.sampled_from(POOLS[name])
        return (
            weighted((1, typed), (3, pool))
            if valid
            else weighted((10, typed), (10, pool), (1, wrong()))
        )
    return typed if valid else weighted((15, typed), (1, wrong()))


@functools.cache
def request_for(method: str) -> Strategy:
    """``params[0]`` of ``method``: mostly a map shaped by its schema, sanitized."""
    node = SCHEMA["methods"][method]["request"]
    return weighted((20, _typed(node, 0)), (10, _typed(node, 0, True)), (1, wrong())).map(sanitize)


@functools.cache
def meta_values() -> Strategy:
    """A sent ``params[1]``: a map with random keys, or a wrong type."""
    namespace = weighted(
        (30, st.just("fz")),
        (2, st.sampled_from(["fz2", "", "fz/..", "fz bad", "fz" + "a" * 100, "fz.a-b_c"])),
        (1, text()),
        (1, wrong()),
    ).map(sanitize_namespace)
    timeout = st.one_of(
        st.sampled_from([0.001, 0.05, 0.5, 2.0, 5]),
        st.sampled_from([0, -1, math.nan, math.inf, -math.inf, 1e308, 2**63, 2**64 - 1]),
        st.sampled_from([True, "1", None, [1]]),
        floats(),
    )
    lease = weighted((8, st.sampled_from(["l1", "l2", ""])), (1, text()), (1, wrong()))
    maps = st.fixed_dictionaries(
        {"namespace": namespace},
        optional={"lease": lease, "timeout": timeout, "extra": scalars()},
    )
    without_ns = st.fixed_dictionaries({}, optional={"timeout": timeout, "lease": lease})
    return weighted((30, maps), (2, without_ns), (1, wrong()))


@functools.cache
def meta() -> Strategy:
    """``params[1]``: absent (``NO_META``), a map with random keys, or a wrong type."""
    return weighted((15, meta_values()), (1, st.just(NO_META)))


@attrs.frozen
class Call:
    """One request: ``[0, msgid, method, [request(, meta)]]``."""

    method: Any
    request: Any
    meta: Any = NO_META
    msgid: int | None = None
    """``None``: the worker picks a fresh one."""

    def params(self) -> list[Any]:
        return [self.request] if self.meta is NO_META else [self.request, self.meta]


CLOSE_MODES = ["read"] * 10 + ["after_send", "mid_frame", "half_close", "cancel"]
"""How a case ends: read every reply; close right after sending; close in the
middle of the last frame; shut down writing and read; send ``call.cancel`` at once."""


@attrs.frozen
class RequestCase:
    """Well-formed requests sent back to back on one connection."""

    calls: tuple[Call, ...]
    close: str = "read"


@attrs.frozen
class FrameCase:
    """Arbitrary frames: ``bytes`` as they are, anything else packed."""

    frames: tuple[Any, ...]
    close: str = "read"


Case = RequestCase | FrameCase


def _transfer_timeout(method: str, m: Any) -> Any:
    """transfer.* with no timeout gets a short one: a random host is never waited for."""
    if method.startswith("transfer.") and isinstance(m, dict) and "timeout" not in m:
        return {**m, "timeout": 2.0}
    return m


@functools.cache
def call_for(method: str) -> Strategy:
    return st.builds(
        Call,
        st.just(method),
        request_for(method),
        meta().map(lambda m: _transfer_timeout(method, m)),
        weighted((40, st.none()), (1, st.sampled_from([0, 2**32 - 1]))),
    )


@functools.cache
def request_case(methods: st.SearchStrategy[str] | None = None) -> Strategy:
    """1-4 calls of random methods (or of ``methods``), and a close mode."""
    chosen = methods if methods is not None else st.sampled_from(METHODS)
    return st.builds(
        RequestCase,
        st.lists(chosen.flatmap(call_for), min_size=1, max_size=4).map(tuple),
        st.sampled_from(CLOSE_MODES),
    )


@functools.cache
def _envelope() -> Strategy:
    """An envelope, valid or broken in one place."""
    method = weighted(
        (12, st.sampled_from(METHODS)), (1, text()), (1, wrong()), (1, st.just(b"\xff\xfe"))
    )
    msgid = weighted(
        (8, st.integers(0, 2**32 - 1)),
        (1, st.sampled_from([-1, 2**32, 2**63, 2**64 - 1, True, None, "1", 1.0])),
    )
    params = weighted(
        (2, st.tuples(st.just({})).map(list)),
        (4, st.tuples(st.just({}), meta_values()).map(list)),
        (1, st.lists(any_value(), max_size=3)),
        (1, wrong()),
    )
    request = st.tuples(st.just(0), msgid, method, params).map(list)
    return weighted(
        (12, request),
        (1, st.tuples(st.just(0), msgid, method).map(list)),  # wrong arity
        (1, st.tuples(st.just(0), msgid, method, params, scalars()).map(list)),
        (1, st.tuples(st.just(1), msgid, any_value(), any_value()).map(list)),  # a response
        (2, st.tuples(st.just(2), method, any_value()).map(list)),  # a notification
        (
            2,
            st.tuples(
                st.just(2), st.just("call.cancel"), st.lists(st.integers(0, 2**32), max_size=2)
            ).map(list),
        ),
        (1, st.tuples(st.sampled_from([3, -1, True, "0", None]), msgid, method, params).map(list)),
        (1, st.lists(any_value(), max_size=5)),
        (1, any_value()),
        (1, deep()),
    )


@functools.cache
def _frame() -> Strategy:
    return weighted(
        (12, _envelope()),
        (1, st.binary(max_size=64)),  # random bytes
        (1, st.builds(Truncated, _envelope(), st.integers(0, 40))),  # truncated msgpack
        (1, st.sampled_from([b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdb\x7f\xff\xff\xff"])),
    )


@functools.cache
def frame_case() -> Strategy:
    """1-5 random frames on one connection."""
    frames = st.lists(_frame(), min_size=1, max_size=5).map(
        lambda fs: tuple(sanitize(f) if isinstance(f, list) else f for f in fs)
    )
    return st.builds(FrameCase, frames, st.sampled_from(CLOSE_MODES))


@functools.cache
def over_cap_case() -> Strategy:
    """A request just under or just over the 16 MiB message cap."""
    sizes = st.sampled_from(HUGE_SIZES_OVER)
    return st.builds(
        lambda n, m: RequestCase(
            (Call(m, {"topic": "/fz/big", "event": {"b": Huge("bin", n)}}, {"namespace": "fz"}),)
        ),
        sizes,
        st.sampled_from(["events.publish", "content.list", "version.version"]),
    )


@functools.cache
def case() -> Strategy:
    """Any case, mostly schema-shaped requests."""
    return weighted((8, request_case()), (2, frame_case()))


def summarize(obj: Any, limit: int = 600) -> str:
    """A repr short enough for a report line."""
    text_ = repr(obj)
    return text_ if len(text_) <= limit else text_[: limit - 20] + f"... ({len(text_)} chars)"


def parse_case(text_: str) -> Case:
    """A case back from its repr (as a violation shows it), to replay it."""
    names = {
        "RequestCase": RequestCase,
        "FrameCase": FrameCase,
        "Call": Call,
        "Huge": Huge,
        "Deep": Deep,
        "Sandboxed": Sandboxed,
        "Truncated": Truncated,
        "NO_META": NO_META,
        "Timestamp": msgpack.Timestamp,
        "nan": math.nan,
        "inf": math.inf,
    }
    found = eval(text_, {"__builtins__": {}}, names)
    if not isinstance(found, RequestCase | FrameCase):
        raise ValueError(f"not a case: {text_[:80]}")
    return found
