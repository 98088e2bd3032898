"""The transfer service (``transfer.{pull,push,import,export}``).

containerd 1.7's ``Transfer`` takes typed ``source``/``destination`` Any
messages; here each direction is its own method with a flat request. The
progress of a job streams as ``stream.item`` notifications carrying
containerd's ``types.transfer.Progress``.
"""

from __future__ import annotations

import attrs

from .images import Image
from .types import Descriptor


@attrs.frozen(kw_only=True)
class Progress:
    """containerd's ``Progress{event, name, parents, progress, total, desc}``.

    ``event`` is what happened (``Resolving from``, ``waiting``, ``downloading``,
    ``already exists``, ``complete``, ``extracting``, ``unpacked``, ``saved``,
    ``Completed pull from``...), ``name`` the object it happened to (a blob
    ref such as ``layer-sha256:...``, an image name), ``parents`` the refs of
    the objects that led to it, ``progress``/``total`` bytes done and expected.
    """

    event: str = ""
    name: str = ""
    parents: list[str] = attrs.field(factory=list)
    progress: int = 0
    total: int = 0
    desc: Descriptor | None = None


@attrs.frozen(kw_only=True)
class Auth:
    """Credentials for the registry of one call (never logged)."""

    username: str = ""
    password: str = ""


@attrs.frozen(kw_only=True)
class PullRequest:
    ref: str = ""
    platforms: list[str] = attrs.field(factory=list)
    """Platform specifiers (``linux/amd64``); empty = the daemon's host platform."""
    all_platforms: bool = False
    unpack: bool = True
    snapshotter: str = ""
    """Default: ``overlayfs``."""
    plain_http: bool = False
    hosts_dir: str = ""
    """A ``certs.d`` directory of ``hosts.toml`` files; default: the daemon's."""
    auth: Auth | None = None
    max_concurrent_downloads: int = 3


@attrs.frozen(kw_only=True)
class PullResponse:
    image: Image = attrs.field(factory=Image)


@attrs.frozen(kw_only=True)
class PushRequest:
    ref: str = ""
    source_ref: str = ""
    """The local image to push; default: ``ref``."""
    platforms: list[str] = attrs.field(factory=list)
    """Push only these platforms' manifests; empty = everything the image references."""
    plain_http: bool = False
    hosts_dir: str = ""
    auth: Auth | None = None


@attrs.frozen(kw_only=True)
class PushResponse:
    image: Image = attrs.field(factory=Image)
    """The local image that was pushed."""


@attrs.frozen(kw_only=True)
class ImportRequest:
    path: str = ""
    """An OCI image layout or docker-save tarball on the daemon's host."""
    base_name: str = ""
    """Names images whose ``index.json`` entry only has an
    ``org.opencontainers.image.ref.name`` tag."""
    platforms: list[str] = attrs.field(factory=list)
    all_platforms: bool = False
    unpack: bool = True
    snapshotter: str = ""


@attrs.frozen(kw_only=True)
class ImportResponse:
    images: list[Image] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class ExportRequest:
    path: str = ""
    """The tarball to write on the daemon's host (replaced if it exists)."""
    refs: list[str] = attrs.field(factory=list)
    platforms: list[str] = attrs.field(factory=list)
    all_platforms: bool = False


@attrs.frozen(kw_only=True)
class ExportResponse:
    images: list[Image] = attrs.field(factory=list)
    """The images written."""
