"""Resolving references to descriptors, and the entry point of the registry client.

containerd's ``remotes/docker/resolver.go``. A :class:`Resolver` owns the
HTTP clients and the authorization state; it hands out a :class:`Fetcher`
or a :class:`Pusher` per repository::

    async with Resolver(HostsConfig(Path("/etc/containerd/certs.d"))) as resolver:
        name, desc = await resolver.resolve("docker.io/library/busybox:latest")
        stream = await resolver.fetcher(name).fetch(desc)

Resolving a tag asks the hosts with ``resolve`` for ``HEAD manifests/<tag>``;
resolving a digest asks the ``pull`` hosts for ``HEAD manifests/<digest>``,
then ``HEAD blobs/<digest>``. Paths are the outer loop, hosts the inner: any
error moves to the next host, and the first non-404 error is raised only if
no path on no host answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from types import TracebackType

import httpx

from pycontainerd.api import errdefs
from pycontainerd.images import (
    MAX_MANIFEST_SIZE,
    MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST,
    MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST,
    MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    validate_digest,
)

from . import reference
from ._auth import Credentials, static_credentials
from ._fetcher import Fetcher
from ._pusher import Pusher
from ._request import (
    Transport,
    content_length,
    header_digest,
    media_type_of,
    namespace_params,
    status_error,
)
from .hosts import CAP_PULL, CAP_PUSH, CAP_RESOLVE, HostsConfig, RegistryHost

ACCEPT_MANIFESTS = ", ".join(
    [
        MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST,
        MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST,
        MEDIA_TYPE_OCI_MANIFEST,
        MEDIA_TYPE_OCI_INDEX,
        "*/*",
    ]
)
"""containerd's ``Accept`` for resolve (``resolver.go``)."""

HostsFunc = Callable[[str], Sequence[RegistryHost]]


class Resolver:
    """The registry client: resolve references, fetch and push content.

    Args:
        hosts: reference host → servers (a :class:`HostsConfig`, or any
            callable); default: ``HostsConfig(plain_http=plain_http)``.
        credentials: ``(username, secret)`` for every host, or a callable
            host → credentials (e.g. :func:`docker_config_credentials`).
        plain_http: with the default ``hosts``, talk plain http.
        headers: extra headers on every request.
        max_concurrency: connections per TLS configuration.
        timeout: seconds per connect/read/write.
        backoff: first retry delay (seconds), doubling per retry.
        chunk_threshold: blobs larger than this are pushed in PATCH chunks.
        chunk_size: size of those chunks.
    """

    def __init__(
        self,
        hosts: HostsFunc | None = None,
        credentials: Credentials | tuple[str, str] | None = None,
        *,
        plain_http: bool = False,
        headers: dict[str, str] | None = None,
        max_concurrency: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.1,
        chunk_threshold: int = 64 * 1024 * 1024,
        chunk_size: int = 16 * 1024 * 1024,
    ) -> None:
        if isinstance(credentials, tuple):
            credentials = static_credentials(*credentials)
        self._hosts: HostsFunc = hosts or HostsConfig(plain_http=plain_http)
        self.transport = Transport(
            credentials,
            headers=headers,
            max_concurrency=max_concurrency,
            timeout=timeout,
            backoff=backoff,
        )
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.transport.aclose()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def hosts(self, ref_host: str) -> list[RegistryHost]:
        """The servers for a reference host, in the order they are tried."""
        return list(self._hosts(ref_host))

    async def resolve(self, ref: str) -> tuple[str, Descriptor]:
        """Resolve a reference to ``(name, descriptor)`` (``Resolver.Resolve``).

        Raises:
            errdefs.InvalidArgument: the reference is not one by the
                distribution grammar (:func:`reference.parse_remote`: checked
                before any request), has no object, or its digest is malformed.
            errdefs.NotFound: ``"<ref>: not found"`` when every host said 404.
            errdefs.FailedPrecondition: a registry's digest contradicts the reference.
            errdefs.PermissionDenied, Unavailable, ...: the first other failure.
        """
        spec = reference.parse_remote(ref)
        tag, digest = spec.tag, spec.digest
        if not tag and not digest:
            raise errdefs.InvalidArgument(f"{ref}: object required (a tag or a digest)")
        if digest:
            validate_digest(digest, f"reference {ref!r}")
        if digest:
            paths = [f"manifests/{digest}", f"blobs/{digest}"]
            capability = CAP_PULL
        else:
            paths = [f"manifests/{tag}"]
            capability = CAP_RESOLVE
        hosts = [h for h in self.hosts(spec.hostname) if h.can(capability)]
        if not hosts:
            raise errdefs.NotFound(f"{ref}: no {capability} hosts")
        scopes = (f"repository:{spec.repository}:pull",)
        first_error: errdefs.ErrdefsError | None = None
        for path in paths:
            for host in hosts:
                response = await self.transport.send(
                    host,
                    "HEAD",
                    f"/{spec.repository}/{path}",
                    scopes=scopes,
                    headers={"Accept": ACCEPT_MANIFESTS},
                    params=namespace_params(host, spec.hostname),
                    last_host=host is hosts[-1],
                )
                if response.status_code == 404:
                    continue
                if response.status_code > 399:
                    first_error = first_error or status_error(response, f"{ref} on {host.host}")
                    continue
                desc = await self._describe(host, spec, path, response, digest, scopes)
                return str(spec), desc
        if first_error is not None:
            raise first_error
        raise errdefs.NotFound(f"{ref}: not found")

    async def _describe(
        self,
        host: RegistryHost,
        spec: reference.Spec,
        path: str,
        response: httpx.Response,
        digest: str,
        scopes: tuple[str, ...],
    ) -> Descriptor:
        media_type = media_type_of(response)
        if media_type == "text/plain" or not media_type:
            media_type = MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST
        found = header_digest(response)
        if digest and found and found != digest:
            raise errdefs.FailedPrecondition(
                f"{spec}: {found!r} in Docker-Content-Digest, not {digest!r}"
            )
        size = content_length(response) if response.request.method == "HEAD" else -1
        if found and size > 0:
            return Descriptor(
                media_type=media_type,
                digest=validate_digest(found, "Docker-Content-Digest"),
                size=size,
            )
        # no digest or no length: GET the manifest and hash it
        body = await self._get_body(host, spec, path, scopes)
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        if digest and computed != digest:
            raise errdefs.FailedPrecondition(f"{spec}: content digest {computed}, not {digest}")
        return Descriptor(media_type=media_type, digest=digest or computed, size=len(body))

    async def _get_body(
        self, host: RegistryHost, spec: reference.Spec, path: str, scopes: tuple[str, ...]
    ) -> bytes:
        response = await self.transport.send(
            host,
            "GET",
            f"/{spec.repository}/{path}",
            scopes=scopes,
            headers={"Accept": ACCEPT_MANIFESTS},
            params=namespace_params(host, spec.hostname),
            stream=True,
        )
        try:
            if response.status_code != 200:
                await response.aread()
                raise status_error(response, f"{spec} on {host.host}")
            if content_length(response) > MAX_MANIFEST_SIZE:
                raise errdefs.InvalidArgument(f"{spec}: manifest over {MAX_MANIFEST_SIZE} bytes")
            parts: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > MAX_MANIFEST_SIZE:
                    raise errdefs.InvalidArgument(
                        f"{spec}: manifest over {MAX_MANIFEST_SIZE} bytes"
                    )
                parts.append(chunk)
            return b"".join(parts)
        except httpx.TransportError as exc:
            raise errdefs.Unavailable(f"{spec}: {exc}") from exc
        finally:
            await response.aclose()

    def fetcher(self, ref: str) -> Fetcher:
        """A :class:`Fetcher` for the repository of ``ref`` (the object is ignored).

        Raises:
            errdefs.InvalidArgument: the reference is not one by the
                distribution grammar (:func:`reference.parse_remote`).
        """
        spec = reference.parse_remote(ref)
        return Fetcher(self.transport, self.hosts(spec.hostname), spec.repository, spec.hostname)

    def pusher(self, ref: str) -> Pusher:
        """A :class:`Pusher` to the first ``push`` host of ``ref``'s registry.

        Raises:
            errdefs.InvalidArgument: the reference is not one by the
                distribution grammar (:func:`reference.parse_remote`).
            errdefs.NotFound: no host may be pushed to.
        """
        spec = reference.parse_remote(ref)
        hosts = [h for h in self.hosts(spec.hostname) if h.can(CAP_PUSH)]
        if not hosts:
            raise errdefs.NotFound(f"{ref}: no push hosts")
        return Pusher(
            self.transport,
            hosts[0],
            spec,
            chunk_threshold=self.chunk_threshold,
            chunk_size=self.chunk_size,
        )
