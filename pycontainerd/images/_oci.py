"""OCI image structures, strictly parsed from JSON (``image-spec/specs-go/v1``).

Parsing never trusts a registry: every field is type-checked and a wrong one
is reported by its JSON path (``manifests[1].platform.architecture``). The same
classes serialize back to canonical JSON (``to_json``) for building images.
Docker schema 2 manifests and manifest lists share these shapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api import types as api_types
from pycontainerd.api.types import Platform

MAX_MANIFEST_SIZE = 4 * 1048 * 1048
"""containerd's ``MaxManifestSize`` (sic: 1048, not 1024)."""

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_digest(digest: str, field: str = "digest") -> str:
    """Check ``algorithm:encoded`` (hex of the right length for sha256/384/512).

    Raises:
        errdefs.InvalidArgument: naming ``field``.
    """
    if not _DIGEST_RE.match(digest):
        raise errdefs.InvalidArgument(f"{field}: invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    length = _HEX_LENGTHS.get(algorithm)
    if length is not None and (len(encoded) != length or encoded.strip("0123456789abcdef") != ""):
        raise errdefs.InvalidArgument(f"{field}: invalid {algorithm} digest {digest!r}")
    return digest


def _type_error(field: str, expected: str, value: object) -> errdefs.InvalidArgument:
    return errdefs.InvalidArgument(f"{field}: expected {expected}, got {type(value).__name__}")


def _obj(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(field, "object", value)
    return value


def _str(doc: dict[str, Any], key: str, field: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise errdefs.InvalidArgument(f"{field}{key}: required")
        return ""
    if not isinstance(value, str):
        raise _type_error(field + key, "string", value)
    return value


def _int(doc: dict[str, Any], key: str, field: str) -> int:
    value = doc.get(key)
    if value is None:
        raise errdefs.InvalidArgument(f"{field}{key}: required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(field + key, "integer", value)
    return value


def _str_list(doc: dict[str, Any], key: str, field: str) -> list[str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(field + key, "array", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _type_error(f"{field}{key}[{i}]", "string", item)
    return list(value)


def _str_map(doc: dict[str, Any], key: str, field: str) -> dict[str, str]:
    value = doc.get(key)
    if value is None:
        return {}
    for k, v in _obj(value, field + key).items():
        if not isinstance(v, str):
            raise _type_error(f"{field}{key}.{k}", "string", v)
    return dict(value)


def _set_map(doc: dict[str, Any], key: str, field: str) -> dict[str, dict[str, Any]]:
    value = doc.get(key)
    if value is None:
        return {}
    for k, v in _obj(value, field + key).items():
        _obj(v, f"{field}{key}.{k}")
    return dict(value)


def _load(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_SIZE:
        raise errdefs.InvalidArgument(
            f"{what} of {len(data)} bytes exceeds the maximum of {MAX_MANIFEST_SIZE} bytes"
        )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errdefs.InvalidArgument(f"{what}: malformed JSON: {exc}") from exc
    return _obj(doc, what)


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def parse_platform(value: object, field: str) -> Platform:
    """A JSON ``platform`` object.

    Raises:
        errdefs.InvalidArgument: naming the wrong field.
    """
    doc = _obj(value, field)
    prefix = field + "."
    _str_list(doc, "os.features", prefix)
    return Platform(
        os=_str(doc, "os", prefix),
        architecture=_str(doc, "architecture", prefix),
        variant=_str(doc, "variant", prefix),
        os_version=_str(doc, "os.version", prefix),
    )


def platform_to_dict(platform: Platform) -> dict[str, Any]:
    """The JSON ``platform`` object (empty fields omitted, ``os``/``architecture`` kept)."""
    doc: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.os_version:
        doc["os.version"] = platform.os_version
    if platform.variant:
        doc["variant"] = platform.variant
    return doc


@attrs.frozen(kw_only=True)
class Descriptor:
    """An OCI content descriptor: ``api.types.Descriptor`` plus ``urls`` and ``platform``."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = attrs.field(factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""

    @classmethod
    def from_dict(cls, value: object, field: str = "descriptor") -> Descriptor:
        """Parse a JSON descriptor object.

        Raises:
            errdefs.InvalidArgument: naming the wrong field.
        """
        doc = _obj(value, field)
        prefix = field + "."
        size = _int(doc, "size", prefix)
        if size < 0:
            raise errdefs.InvalidArgument(f"{prefix}size: must not be negative")
        platform = doc.get("platform")
        return cls(
            media_type=_str(doc, "mediaType", prefix),
            digest=validate_digest(_str(doc, "digest", prefix, required=True), prefix + "digest"),
            size=size,
            urls=tuple(_str_list(doc, "urls", prefix) or ()),
            annotations=_str_map(doc, "annotations", prefix),
            platform=None if platform is None else parse_platform(platform, prefix + "platform"),
            artifact_type=_str(doc, "artifactType", prefix),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in image-spec field order, empty optionals omitted."""
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        doc["size"] = self.size
        if self.urls:
            doc["urls"] = list(self.urls)
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        if self.platform is not None:
            doc["platform"] = platform_to_dict(self.platform)
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        return doc

    def to_api(self) -> api_types.Descriptor:
        """The wire descriptor (no urls, no platform)."""
        return api_types.Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=self.size,
            annotations=dict(self.annotations),
        )

    @classmethod
    def from_api(cls, desc: api_types.Descriptor) -> Descriptor:
        """From a wire descriptor."""
        return cls(
            media_type=desc.media_type,
            digest=desc.digest,
            size=desc.size,
            annotations=dict(desc.annotations),
        )


def _descriptors(doc: dict[str, Any], key: str) -> tuple[Descriptor, ...]:
    value = doc.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _type_error(key, "array", value)
    return tuple(Descriptor.from_dict(item, f"{key}[{i}]") for i, item in enumerate(value))


def _schema_version(doc: dict[str, Any]) -> int:
    version = _int(doc, "schemaVersion", "")
    if version != 2:
        raise errdefs.InvalidArgument(f"schemaVersion: expected 2, got {version}")
    return version


@attrs.frozen(kw_only=True)
class Manifest:
    """An OCI image manifest or a Docker schema 2 manifest."""

    media_type: str = ""
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] = attrs.field(factory=dict)
    subject: Descriptor | None = None
    artifact_type: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse manifest JSON.

        Raises:
            errdefs.InvalidArgument: over ``MAX_MANIFEST_SIZE``, malformed JSON,
                ``schemaVersion`` not 2, or a wrong field (named in the message).
        """
        doc = _load(data, "manifest")
        _schema_version(doc)
        if "manifests" in doc:
            raise errdefs.InvalidArgument("manifests: an image manifest has no manifests field")
        if "config" not in doc:
            raise errdefs.InvalidArgument("config: required")
        subject = doc.get("subject")
        return cls(
            media_type=_str(doc, "mediaType", ""),
            config=Descriptor.from_dict(doc["config"], "config"),
            layers=_descriptors(doc, "layers"),
            annotations=_str_map(doc, "annotations", ""),
            subject=None if subject is None else Descriptor.from_dict(subject, "subject"),
            artifact_type=_str(doc, "artifactType", ""),
        )

    def to_json(self) -> bytes:
        """Canonical compact JSON."""
        doc: dict[str, Any] = {"schemaVersion": 2}
        if self.media_type:
            doc["mediaType"] = self.media_type
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        doc["config"] = self.config.to_dict()
        doc["layers"] = [layer.to_dict() for layer in self.layers]
        if self.subject is not None:
            doc["subject"] = self.subject.to_dict()
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return _dump(doc)


@attrs.frozen(kw_only=True)
class Index:
    """An OCI image index or a Docker manifest list."""

    media_type: str = ""
    manifests: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] = attrs.field(factory=dict)
    subject: Descriptor | None = None
    artifact_type: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Index:
        """Parse index JSON.

        Raises:
            errdefs.InvalidArgument: over ``MAX_MANIFEST_SIZE``, malformed JSON,
                ``schemaVersion`` not 2, or a wrong field (named in the message).
        """
        doc = _load(data, "index")
        _schema_version(doc)
        if "config" in doc or "layers" in doc:
            raise errdefs.InvalidArgument("config: an index has no config or layers field")
        subject = doc.get("subject")
        return cls(
            media_type=_str(doc, "mediaType", ""),
            manifests=_descriptors(doc, "manifests"),
            annotations=_str_map(doc, "annotations", ""),
            subject=None if subject is None else Descriptor.from_dict(subject, "subject"),
            artifact_type=_str(doc, "artifactType", ""),
        )

    def to_json(self) -> bytes:
        """Canonical compact JSON."""
        doc: dict[str, Any] = {"schemaVersion": 2}
        if self.media_type:
            doc["mediaType"] = self.media_type
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        doc["manifests"] = [m.to_dict() for m in self.manifests]
        if self.subject is not None:
            doc["subject"] = self.subject.to_dict()
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return _dump(doc)


@attrs.frozen(kw_only=True)
class ContainerConfig:
    """The ``config`` section of an image config: how to run the image."""

    user: str = ""
    exposed_ports: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    working_dir: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)
    stop_signal: str = ""

    @classmethod
    def from_dict(cls, value: object) -> ContainerConfig:
        doc = _obj(value, "config")
        entrypoint = _str_list(doc, "Entrypoint", "config.")
        cmd = _str_list(doc, "Cmd", "config.")
        return cls(
            user=_str(doc, "User", "config."),
            exposed_ports=_set_map(doc, "ExposedPorts", "config."),
            env=tuple(_str_list(doc, "Env", "config.") or ()),
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            cmd=None if cmd is None else tuple(cmd),
            volumes=_set_map(doc, "Volumes", "config."),
            working_dir=_str(doc, "WorkingDir", "config."),
            labels=_str_map(doc, "Labels", "config."),
            stop_signal=_str(doc, "StopSignal", "config."),
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, value in (
            ("User", self.user),
            ("ExposedPorts", self.exposed_ports),
            ("Env", list(self.env)),
            ("Entrypoint", None if self.entrypoint is None else list(self.entrypoint)),
            ("Cmd", None if self.cmd is None else list(self.cmd)),
            ("Volumes", self.volumes),
            ("WorkingDir", self.working_dir),
            ("Labels", self.labels),
            ("StopSignal", self.stop_signal),
        ):
            if value:
                doc[key] = value
        return doc


@attrs.frozen(kw_only=True)
class History:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False


@attrs.frozen(kw_only=True)
class ImageConfig:
    """An image config: platform, run config, and the layers' ``rootfs.diff_ids``."""

    architecture: str
    os: str
    os_version: str = ""
    variant: str = ""
    created: str = ""
    author: str = ""
    config: ContainerConfig = attrs.field(factory=ContainerConfig)
    diff_ids: tuple[str, ...] = ()
    history: tuple[History, ...] = ()

    @property
    def platform(self) -> Platform:
        """The platform the config declares (not normalized)."""
        return Platform(
            os=self.os,
            architecture=self.architecture,
            variant=self.variant,
            os_version=self.os_version,
        )

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        """Parse image config JSON.

        Raises:
            errdefs.InvalidArgument: malformed JSON, ``rootfs.type`` not
                ``layers``, an invalid diff ID, or a wrong field (named).
        """
        doc = _load(data, "image config")
        rootfs = _obj(doc.get("rootfs", {}), "rootfs")
        rootfs_type = _str(rootfs, "type", "rootfs.")
        if rootfs_type not in ("layers", ""):
            raise errdefs.InvalidArgument(f"rootfs.type: expected 'layers', got {rootfs_type!r}")
        diff_ids = _str_list(rootfs, "diff_ids", "rootfs.") or []
        for i, diff_id in enumerate(diff_ids):
            validate_digest(diff_id, f"rootfs.diff_ids[{i}]")
        history_value = doc.get("history") or []
        if not isinstance(history_value, list):
            raise _type_error("history", "array", history_value)
        history = []
        for i, item in enumerate(history_value):
            entry = _obj(item, f"history[{i}]")
            empty = entry.get("empty_layer", False)
            if not isinstance(empty, bool):
                raise _type_error(f"history[{i}].empty_layer", "boolean", empty)
            history.append(
                History(
                    created=_str(entry, "created", f"history[{i}]."),
                    created_by=_str(entry, "created_by", f"history[{i}]."),
                    comment=_str(entry, "comment", f"history[{i}]."),
                    empty_layer=empty,
                )
            )
        config = doc.get("config")
        return cls(
            architecture=_str(doc, "architecture", ""),
            os=_str(doc, "os", ""),
            os_version=_str(doc, "os.version", ""),
            variant=_str(doc, "variant", ""),
            created=_str(doc, "created", ""),
            author=_str(doc, "author", ""),
            config=ContainerConfig() if config is None else ContainerConfig.from_dict(config),
            diff_ids=tuple(diff_ids),
            history=tuple(history),
        )

    def to_json(self) -> bytes:
        """Canonical compact JSON."""
        doc: dict[str, Any] = {}
        if self.created:
            doc["created"] = self.created
        if self.author:
            doc["author"] = self.author
        doc["architecture"] = self.architecture
        doc["os"] = self.os
        if self.os_version:
            doc["os.version"] = self.os_version
        if self.variant:
            doc["variant"] = self.variant
        doc["config"] = self.config.to_dict()
        doc["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        if self.history:
            doc["history"] = [
                {
                    k: v
                    for k, v in (
                        ("created", h.created),
                        ("created_by", h.created_by),
                        ("comment", h.comment),
                        ("empty_layer", h.empty_layer),
                    )
                    if v
                }
                for h in self.history
            ]
        return _dump(doc)
