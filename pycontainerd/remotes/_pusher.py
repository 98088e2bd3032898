"""Pushing blobs and manifests (``remotes/docker/pusher.go``, ``remotes/handlers.go``).

A blob push::

    HEAD blobs/<dgst>                         200 -> "exists" (nothing sent)
    POST blobs/uploads/?mount=<dgst>&from=<repo>
                                              201 -> "mounted" (cross-repo mount)
                                              202 -> Location (upload session)
    PUT  <Location>&digest=<dgst>  <body>     201 -> "pushed"        (monolithic)
      or PATCH <Location> <chunk> ... 202, then PUT <Location>&digest=<dgst>
                                                                     (chunked, large blobs)

A manifest push is ``HEAD manifests/<tag|dgst>`` (exists when the digest
matches) then ``PUT manifests/<tag|dgst>`` with its media type. Callers push
children before parents; :func:`push_order` sorts a set of descriptors that way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Literal

import httpx

from pycontainerd.api import errdefs
from pycontainerd.images import Descriptor, is_index, is_known_config, is_layer, is_manifest

from . import reference
from ._request import Transport, header_digest, status_error
from .hosts import RegistryHost

PushStatus = Literal["exists", "mounted", "pushed"]


def push_order(descs: Iterable[Descriptor]) -> list[Descriptor]:
    """Blobs (layers, configs, others) first, then manifests, then indexes; stable."""

    def rank(desc: Descriptor) -> int:
        if is_index(desc.media_type):
            return 2
        if is_manifest(desc.media_type):
            return 1
        return 0

    return sorted(descs, key=rank)


def push_ref_key(desc: Descriptor) -> str:
    """containerd's ``remotes.MakeRefKey``: ``manifest-|index-|layer-|config-|unknown-<dgst>``."""
    if is_manifest(desc.media_type):
        kind = "manifest"
    elif is_index(desc.media_type):
        kind = "index"
    elif is_layer(desc.media_type):
        kind = "layer"
    elif is_known_config(desc.media_type):
        kind = "config"
    else:
        kind = "unknown"
    return f"{kind}-{desc.digest}"


async def _as_chunks(source: AsyncIterable[bytes] | bytes) -> AsyncGenerator[bytes, None]:
    """Non-empty chunks of ``source``; an async source is closed when this is."""
    if isinstance(source, bytes):
        yield source
        return
    try:
        async for chunk in source:
            if chunk:
                yield chunk
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


class Pusher:
    """Pushes content into one repository on one host (``resolver.pusher(ref)``)."""

    def __init__(
        self,
        transport: Transport,
        host: RegistryHost,
        spec: reference.Spec,
        *,
        chunk_threshold: int,
        chunk_size: int,
    ) -> None:
        self._transport = transport
        self.host = host
        self._spec = spec
        self._repo = spec.repository
        self._scopes = (f"repository:{self._repo}:pull,push",)
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size

    async def _send(
        self,
        method: str,
        url: str,
        *,
        scopes: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
    ) -> httpx.Response:
        return await self._transport.send(
            self.host,
            method,
            url,
            scopes=self._scopes if scopes is None else scopes,
            headers=headers,
            params=params,
            content=content,
        )

    async def _exists(self, path: str, accept: str | None = None) -> httpx.Response | None:
        headers = {"Accept": accept} if accept else {}
        response = await self._send("HEAD", f"/{self._repo}/{path}", headers=headers)
        if response.status_code == 200:
            return response
        if response.status_code == 404:
            return None
        raise status_error(response, f"HEAD {self._spec.hostname}/{self._repo}/{path}")

    async def push_blob(
        self,
        desc: Descriptor,
        source: AsyncIterable[bytes] | bytes,
        mount_from: Sequence[str] = (),
    ) -> PushStatus:
        """Push one blob unless the registry has it; try a cross-repo mount first.

        ``source`` (bytes, or an async iterable this call consumes and
        always closes) must yield exactly ``desc.size`` bytes. ``mount_from``
        lists repositories on this registry known to hold the blob (from its
        ``containerd.io/distribution.source.<host>`` label); the first one
        other than this repository is tried.

        Raises:
            errdefs.FailedPrecondition: ``source`` did not yield ``desc.size``
                bytes, or the registry computed another digest.
            errdefs.PermissionDenied / Unavailable / InvalidArgument: the
                registry refused (its error code is in the message).
        """
        try:
            return await self._push_blob(desc, source, mount_from)
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    async def _push_blob(
        self,
        desc: Descriptor,
        source: AsyncIterable[bytes] | bytes,
        mount_from: Sequence[str],
    ) -> PushStatus:
        what = f"{self._spec.hostname}/{self._repo}@{desc.digest}"
        if await self._exists(f"blobs/{desc.digest}") is not None:
            return "exists"
        location = ""
        candidates = [repo for repo in mount_from if repo != self._repo]
        if candidates:
            from_repo = candidates[0]
            try:
                response = await self._send(
                    "POST",
                    f"/{self._repo}/blobs/uploads/",
                    params={"mount": desc.digest, "from": from_repo},
                    scopes=(*self._scopes, f"repository:{from_repo}:pull"),
                )
            except errdefs.PermissionDenied:
                # no pull access to the source repository: upload instead
                response = None
            if response is not None:
                if response.status_code == 201:
                    return "mounted"
                if response.status_code in (200, 202, 204):
                    location = response.headers.get("location", "")
                elif response.status_code != 401:
                    raise status_error(response, f"mount {what} from {from_repo}")
        if not location:
            response = await self._send("POST", f"/{self._repo}/blobs/uploads/")
            if response.status_code not in (200, 202, 204):
                raise status_error(response, f"start upload of {what}")
            location = response.headers.get("location", "")
        if not location:
            raise errdefs.Unknown(f"start upload of {what}: no Location in the response")
        url = self._absolute(location)
        if desc.size > self.chunk_threshold:
            url = await self._patch_chunks(url, desc, source, what)
            response = await self._send(
                "PUT", self._with_digest(url, desc.digest), content=b"", headers=_octets(0)
            )
        else:
            if isinstance(source, bytes):
                if len(source) != desc.size:
                    raise errdefs.FailedPrecondition(
                        f"{what}: source gave {len(source)} bytes, expected {desc.size}"
                    )
                body: bytes | _Counted = source  # bytes can be replayed on a retry
            else:
                body = _Counted(_as_chunks(source), desc.size, what)
            response = await self._send(
                "PUT", self._with_digest(url, desc.digest), content=body, headers=_octets(desc.size)
            )
        return self._committed(response, desc, what)

    async def _patch_chunks(
        self, url: str, desc: Descriptor, source: AsyncIterable[bytes] | bytes, what: str
    ) -> str:
        offset = 0
        pending = bytearray()

        async def patch(data: bytes) -> str:
            nonlocal offset
            headers = _octets(len(data))
            headers["Content-Range"] = f"{offset}-{offset + len(data) - 1}"
            response = await self._send("PATCH", url, content=data, headers=headers)
            if response.status_code not in (200, 202, 204):
                raise status_error(response, f"upload chunk at {offset} of {what}")
            offset += len(data)
            return self._absolute(response.headers.get("location", url))

        async with aclosing(_as_chunks(source)) as chunks:
            async for chunk in chunks:
                pending += chunk
                if offset + len(pending) > desc.size:
                    raise errdefs.FailedPrecondition(
                        f"{what}: source larger than {desc.size} bytes"
                    )
                while len(pending) >= self.chunk_size:
                    url = await patch(bytes(pending[: self.chunk_size]))
                    del pending[: self.chunk_size]
        if pending:
            url = await patch(bytes(pending))
        if offset != desc.size:
            raise errdefs.FailedPrecondition(f"{what}: source gave {offset} of {desc.size} bytes")
        return url

    def _absolute(self, location: str) -> str:
        base = httpx.URL(self._transport.base_url(self.host))
        return str(base.join(location))

    @staticmethod
    def _with_digest(url: str, digest: str) -> str:
        return str(httpx.URL(url).copy_merge_params({"digest": digest}))

    def _committed(self, response: httpx.Response, desc: Descriptor, what: str) -> PushStatus:
        if response.status_code not in (200, 201, 202, 204):
            raise status_error(response, f"commit {what}")
        found = header_digest(response)
        if found and found != desc.digest:
            raise errdefs.FailedPrecondition(f"{what}: got digest {found}, expected {desc.digest}")
        return "pushed"

    async def push_manifest(
        self, desc: Descriptor, data: bytes, tag: str | None = None
    ) -> PushStatus:
        """Push a manifest or index, by ``tag`` when given, else by digest.

        Returns ``"exists"`` when the registry already has it under that name
        with the same digest.

        Raises:
            errdefs.FailedPrecondition: ``data`` is not ``desc.size`` bytes, or
                the registry computed another digest.
            errdefs.InvalidArgument: the registry rejected the manifest
                (e.g. ``MANIFEST_BLOB_UNKNOWN``: push children first).
        """
        if len(data) != desc.size:
            raise errdefs.FailedPrecondition(
                f"manifest {desc.digest}: {len(data)} bytes, descriptor says {desc.size}"
            )
        name = tag or desc.digest
        what = f"{self._spec.hostname}/{self._repo}:{name}"
        existing = await self._exists(f"manifests/{name}", f"{desc.media_type}, */*")
        if existing is not None and (not tag or header_digest(existing) == desc.digest):
            return "exists"
        response = await self._send(
            "PUT",
            f"/{self._repo}/manifests/{name}",
            content=data,
            headers={"Content-Type": desc.media_type},
        )
        return self._committed(response, desc, what)


def _octets(size: int) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Content-Length": str(size)}


class _Counted:
    """An upload body that refuses to send more or fewer bytes than declared."""

    def __init__(self, source: AsyncGenerator[bytes, None], size: int, what: str) -> None:
        self._source = source
        self._size = size
        self._what = what

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        sent = 0
        async with aclosing(self._source) as source:
            async for chunk in source:
                sent += len(chunk)
                if sent > self._size:
                    raise errdefs.FailedPrecondition(
                        f"{self._what}: source larger than {self._size} bytes"
                    )
                yield chunk
        if sent != self._size:
            raise errdefs.FailedPrecondition(
                f"{self._what}: source gave {sent} bytes, expected {self._size}"
            )
