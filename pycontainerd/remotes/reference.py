"""Image references as containerd parses them (``reference/reference.go``).

A reference is ``host[:port]/path[:tag][@digest]``: the *locator* is
``host/path`` and the *object* is ``tag``, ``tag@digest`` or ``@digest``.
containerd's core requires the host and never expands short names; clients do
that with :func:`normalize_docker` (``ubuntu`` → ``docker.io/library/ubuntu:latest``).

A reference resolved against a registry goes through :func:`parse_remote`
first: the distribution grammar (containerd's ``reference/docker``), so that no
``..``, empty or encoded path component, and no host that is not a host name,
reaches a URL::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ host [ ":" port ] "/" ] component ( "/" component )*   (<= 255)
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from pycontainerd.api import errdefs
from pycontainerd.images import validate_digest

_SPLIT_RE = re.compile(r"[:@]")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(
    rf"^(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_DIGEST_GRAMMAR_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
)
NAME_MAX_LENGTH = 255
"""The longest ``host/path`` (distribution's ``NameTotalLengthMax``)."""
_MAX_LENGTH = 1024
"""Longer than any name, tag and digest together: refused before any parsing."""

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


def _shown(ref: str) -> str:
    return repr(ref if len(ref) <= 300 else ref[:300] + "...")


def parse_remote(ref: str) -> Spec:
    """Parse a reference to resolve against a registry: :func:`parse`, after
    checking it against the distribution grammar (module docstring).

    Every remote operation (resolve, fetch, push) parses its reference here,
    so a reference that could leave the registry's ``/v2/<name>/`` path
    (``host/../../etc/passwd``) is refused before a request is made.

    Raises:
        errdefs.InvalidArgument: not a reference by the grammar: no host, a
            path component that is empty, ``.``, ``..``, upper case or has
            other characters, a name longer than 255, a bad tag or digest.
    """
    if not isinstance(ref, str):
        raise errdefs.InvalidArgument(f"reference: expected a string, not {type(ref).__name__}")
    if len(ref) > _MAX_LENGTH:
        raise errdefs.InvalidArgument(
            f"invalid reference {_shown(ref)}: {len(ref)} characters, more than {_MAX_LENGTH}"
        )
    name, at, digest = ref.partition("@")
    host, slash, path = name.partition("/")
    if not slash or not _HOST_RE.fullmatch(host):
        raise errdefs.InvalidArgument(
            f"invalid reference {_shown(ref)}: it must start with a registry host "
            "(a domain name or [IPv6] address, an optional :port) and '/'"
        )
    path, colon, tag = path.partition(":")
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise errdefs.InvalidArgument(
                f"invalid reference {_shown(ref)}: path component {_shown(component)}: "
                "must be lowercase alphanumerics separated by '.', '_', '__' or '-'"
            )
    if len(host) + 1 + len(path) > NAME_MAX_LENGTH:
        raise errdefs.InvalidArgument(
            f"invalid reference {_shown(ref)}: the name is longer than {NAME_MAX_LENGTH}"
        )
    if colon and not _TAG_RE.fullmatch(tag):
        raise errdefs.InvalidArgument(
            f"invalid reference {_shown(ref)}: invalid tag {_shown(tag)} "
            "(up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')"
        )
    if at:
        validate_digest(digest, f"reference {_shown(ref)}")
        if not _DIGEST_GRAMMAR_RE.fullmatch(digest):
            raise errdefs.InvalidArgument(
                f"invalid reference {_shown(ref)}: invalid digest {_shown(digest)}"
            )
    return parse(ref)


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
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise errdefs.InvalidArgument(
                f"invalid reference {ref!r}: repository name must be lowercase "
                f"alphanumerics separated by '.', '_', '__' or '-'"
            )
    if tag and not _TAG_RE.fullmatch(tag):
        raise errdefs.InvalidArgument(f"invalid reference {ref!r}: invalid tag {tag!r}")
    if at:
        validate_digest(digest, f"reference {ref!r}")
        return f"{domain}/{remainder}@{digest}"
    return f"{domain}/{remainder}:{tag or 'latest'}"
