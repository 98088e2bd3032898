"""Image references as containerd parses them (``reference/reference.go``).

A reference is ``host[:port]/path[:tag][@digest]``: the *locator* is
``host/path`` and the *object* is ``tag``, ``tag@digest`` or ``@digest``.
containerd's core requires the host and never expands short names; clients do
that with :func:`normalize_docker` (``ubuntu`` → ``docker.io/library/ubuntu:latest``).
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from pycontainerd.api import errdefs
from pycontainerd.images import validate_digest

_SPLIT_RE = re.compile(r"[:@]")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")

DOCKER_HOST = "docker.io"
DOCKER_REGISTRY_HOST = "registry-1.docker.io"


@attrs.frozen
class Spec:
    """A parsed reference: ``locator`` (``host/path``) and ``object`` (``tag[@digest]``)."""

    locator: str
    object: str = ""

    @property
    def hostname(self) -> str:
        """The registry host as written (``docker.io``, ``localhost:5000``)."""
        return self.locator.split("/", 1)[0]

    @property
    def repository(self) -> str:
        """The path inside the registry (``library/ubuntu``)."""
        return self.locator.split("/", 1)[1] if "/" in self.locator else ""

    @property
    def tag(self) -> str:
        """The tag, or ``""``."""
        return self.object.split("@", 1)[0]

    @property
    def digest(self) -> str:
        """The digest, or ``""``."""
        return self.object.split("@", 1)[1] if "@" in self.object else ""

    def __str__(self) -> str:
        if not self.object:
            return self.locator
        if self.object.startswith("@"):
            return self.locator + self.object
        return f"{self.locator}:{self.object}"


def parse(ref: str) -> Spec:
    """Parse a reference the way containerd does (``reference.Parse``): no normalization.

    A query string is dropped; the object is kept as written (tags and
    digests are checked when used, e.g. by ``Resolver.resolve``). Unlike
    containerd, a reference without a repository path is refused here.

    Raises:
        errdefs.InvalidArgument: ``://`` in it, no host, user info in the
            host, or an empty repository.
    """
    if "://" in ref:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: no scheme allowed")
    try:
        url = urllib.parse.urlsplit("dummy://" + ref)
        host = url.netloc
        _ = url.port  # validates the port
    except ValueError as exc:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: {exc}") from exc
    if not host:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: hostname required")
    if "@" in host:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: user info in the host")
    path = url.path
    obj = ""
    match = _SPLIT_RE.search(path)
    if match is not None:
        obj = path[match.start() :]
        if obj.startswith(":"):
            obj = obj[1:]
        path = path[: match.start()]
    repo = "/".join(p for p in path.split("/") if p)
    if not repo:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: repository required")
    return Spec(locator=f"{host}/{repo}", object=obj)


def registry_host(hostname: str) -> str:
    """The host serving a reference's registry: ``docker.io`` → ``registry-1.docker.io``."""
    return DOCKER_REGISTRY_HOST if hostname == DOCKER_HOST else hostname


def normalize_docker(ref: str) -> str:
    """Docker's familiar names made full (``ParseDockerRef``), for clients.

    ``ubuntu`` → ``docker.io/library/ubuntu:latest``; ``me/app`` →
    ``docker.io/me/app:latest``; ``localhost:5000/app@sha256:...`` unchanged;
    a reference with both tag and digest keeps only the digest.

    Raises:
        errdefs.InvalidArgument: upper case or invalid repository components,
            an invalid tag or digest.
    """
    if "://" in ref:
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: no scheme allowed")
    name, at, digest = ref.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_HOST, name
    if domain == "index.docker.io":
        domain = DOCKER_HOST
    tag = ""
    last_colon = remainder.rfind(":")
    if last_colon > remainder.rfind("/"):
        remainder, tag = remainder[:last_colon], remainder[last_colon + 1 :]
    if domain == DOCKER_HOST and "/" not in remainder:
        remainder = "library/" + remainder
    for component in remainder.split("/"):
        if not _PATH_COMPONENT_RE.match(component):
            raise errdefs.InvalidArgument(
                f"invalid reference {ref!r}: repository name must be lowercase "
                f"alphanumerics separated by '.', '_', '__' or '-'"
            )
    if tag and not _TAG_RE.match(tag):
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: invalid tag {tag!r}")
    if at:
        validate_digest(digest, f"reference {ref!r}")
        return f"{domain}/{remainder}@{digest}"
    return f"{domain}/{remainder}:{tag or 'latest'}"
