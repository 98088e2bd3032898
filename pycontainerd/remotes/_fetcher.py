"""Fetching blobs and manifests by descriptor (``remotes/docker/fetcher.go``).

:meth:`Fetcher.fetch` tries ``desc.urls`` first, then every ``pull`` host:
``GET manifests/<digest>`` for manifests and indexes, ``GET blobs/<digest>``
otherwise, resuming at ``offset`` with ``Range: bytes=<offset>-``. It does not
check what it returns: the content store verifies digest and size while
committing, and :func:`verify` wraps a stream for callers that commit nowhere,
so that a registry serving the wrong bytes is caught before they are used::

    stream = await fetcher.fetch(desc)
    async with verify(stream, desc) as checked:
        async for chunk in checked:
            ...              # raises DataLoss / FailedPrecondition at a lie
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol

import httpx

from pycontainerd.api import errdefs
from pycontainerd.images import MAX_MANIFEST_SIZE, Descriptor, is_index, is_manifest

from ._request import Transport, namespace_params, status_error, too_many_redirects
from .hosts import CAP_PULL, RegistryHost

READ_CHUNK = 64 * 1024


class BlobStream:
    """The body of one fetch: an async iterator of bytes that must be closed.

    Use as ``async with stream: async for chunk in stream``. Transport errors
    while reading become ``errdefs.Unavailable`` (resume with an offset).
    """

    def __init__(self, response: httpx.Response, *, skip: int = 0, what: str = "") -> None:
        self.response = response
        self._skip = skip
        self._what = what
        self._chunks = response.aiter_raw(READ_CHUNK)

    def __aiter__(self) -> BlobStream:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except httpx.TransportError as exc:
                raise errdefs.Unavailable(f"{self._what}: reading body: {exc}") from exc
            except httpx.StreamClosed as exc:
                raise StopAsyncIteration from exc
            if self._skip:
                # the server ignored Range: drop what the caller already has
                dropped = min(self._skip, len(chunk))
                self._skip -= dropped
                chunk = chunk[dropped:]
            if chunk:
                return chunk

    async def aclose(self) -> None:
        """Close the body (and the connection if it was not read to the end)."""
        close = getattr(self._chunks, "aclose", None)
        try:
            if close is not None:
                await close()
        finally:
            await self.response.aclose()

    async def __aenter__(self) -> BlobStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class VerifiedStream:
    """Passes bytes through while checking them against a descriptor.

    Raises (while iterating):
        errdefs.DataLoss: more bytes than ``desc.size`` (raised before the
            excess is handed out), or fewer at the end (truncated).
        errdefs.FailedPrecondition: the digest of the bytes is not ``desc.digest``.
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        desc: Descriptor,
        *,
        offset: int = 0,
        hasher: Hasher | None = None,
    ) -> None:
        algorithm, _, self._expected = desc.digest.partition(":")
        if hasher is None:
            if offset:
                raise errdefs.InvalidArgument("verify from an offset needs the hash of the prefix")
            try:
                hasher = hashlib.new(algorithm)
            except ValueError as exc:
                raise errdefs.NotImplemented_(f"unsupported digest algorithm {algorithm}") from exc
        self._source = source
        self._desc = desc
        self._hasher = hasher
        self.offset = offset

    def __aiter__(self) -> VerifiedStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._source.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        if self.offset + len(chunk) > self._desc.size:
            raise errdefs.DataLoss(
                f"{self._desc.digest}: more than the expected {self._desc.size} bytes"
            )
        self.offset += len(chunk)
        self._hasher.update(chunk)
        return chunk

    def _finish(self) -> None:
        if self.offset != self._desc.size:
            raise errdefs.DataLoss(
                f"{self._desc.digest}: truncated: got {self.offset} of {self._desc.size} bytes"
            )
        actual = self._hasher.hexdigest()
        if actual != self._expected:
            raise errdefs.FailedPrecondition(
                f"unexpected digest {self._desc.digest.split(':')[0]}:{actual}, "
                f"expected {self._desc.digest}"
            )

    async def aclose(self) -> None:
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> VerifiedStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def verify(
    source: AsyncIterator[bytes],
    desc: Descriptor,
    *,
    offset: int = 0,
    hasher: Hasher | None = None,
) -> VerifiedStream:
    """Wrap ``source`` to check size and digest against ``desc`` (see :class:`VerifiedStream`).

    To verify a resumed fetch pass ``offset`` and a ``hasher`` already fed
    with the first ``offset`` bytes.

    Raises:
        errdefs.InvalidArgument: ``offset`` without ``hasher``.
        errdefs.NotImplemented_: an unknown digest algorithm.
    """
    return VerifiedStream(source, desc, offset=offset, hasher=hasher)


async def read_all(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """Read a whole (small) stream, at most ``limit`` bytes.

    Raises:
        errdefs.ResourceExhausted: the stream is longer than ``limit``.
    """
    parts: list[bytes] = []
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise errdefs.ResourceExhausted(f"content larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class Fetcher:
    """Fetches content of one repository (``resolver.fetcher(ref)``)."""

    def __init__(
        self,
        transport: Transport,
        hosts: Sequence[RegistryHost],
        repository: str,
        namespace: str,
    ) -> None:
        self._transport = transport
        self._hosts = [h for h in hosts if h.can(CAP_PULL)]
        self._repository = repository
        self._namespace = namespace
        self._scopes = (f"repository:{repository}:pull",)

    async def fetch(self, desc: Descriptor, offset: int = 0) -> BlobStream:
        """Open the content of ``desc`` from ``offset`` (the caller closes the stream).

        Raises:
            errdefs.NotFound: no URL and no host has it.
            errdefs.OutOfRange: ``offset`` is beyond the content.
            errdefs.Unavailable / PermissionDenied: the first non-404 failure
                when no source succeeded.
            errdefs.Unknown: a host redirected more than ``MAX_REDIRECTS`` times.
        """
        if offset < 0 or (desc.size and offset > desc.size):
            raise errdefs.OutOfRange(f"offset {offset} outside 0..{desc.size}")
        headers = {"Accept": f"{desc.media_type}, */*", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        first_error: errdefs.ErrdefsError | None = None
        for url in desc.urls:
            stream, error = await self._open_url(url, headers, offset, desc.digest)
            if stream is not None:
                return stream
            first_error = first_error or error
        kind = "manifests" if is_manifest(desc.media_type) or is_index(desc.media_type) else "blobs"
        for n, host in enumerate(self._hosts):
            params = namespace_params(host, self._namespace)
            what = f"{host.host}/{self._repository}@{desc.digest}"
            response = await self._transport.send(
                host,
                "GET",
                f"/{self._repository}/{kind}/{desc.digest}",
                scopes=self._scopes,
                headers=headers,
                params=params,
                stream=True,
                last_host=n == len(self._hosts) - 1,
            )
            stream, error = await self._accept(response, offset, what)
            if stream is not None:
                return stream
            if first_error is None and not isinstance(error, errdefs.NotFound):
                first_error = error
        if first_error is not None:
            raise first_error
        raise errdefs.NotFound(
            f"could not fetch content descriptor {desc.digest} ({desc.media_type}) from remote"
        )

    async def fetch_bytes(self, desc: Descriptor, limit: int = MAX_MANIFEST_SIZE) -> bytes:
        """Fetch a small blob whole (manifest, index, config), verified against ``desc``.

        Composes with :func:`pycontainerd.images.resolve_platform` as its reader.

        Raises:
            errdefs.ResourceExhausted: ``desc.size`` is over ``limit``.
            errdefs.DataLoss / FailedPrecondition: the bytes are not ``desc``'s.
            errdefs.NotFound, Unavailable, ...: as :meth:`fetch`.
        """
        if desc.size > limit:
            raise errdefs.ResourceExhausted(f"{desc.digest}: {desc.size} bytes, limit {limit}")
        stream = await self.fetch(desc)
        async with verify(stream, desc) as checked:
            return await read_all(checked, limit)

    async def _open_url(
        self, url: str, headers: dict[str, str], offset: int, digest: str
    ) -> tuple[BlobStream | None, errdefs.ErrdefsError | None]:
        if not url.startswith(("http://", "https://")):
            return None, None
        client = self._transport.default_client
        try:
            request = client.build_request("GET", url, headers=headers)
            response = await client.send(request, stream=True)
        except httpx.TooManyRedirects as exc:
            return None, too_many_redirects("GET", url, exc)
        except httpx.TransportError as exc:
            return None, errdefs.Unavailable(f"{url}: {exc}")
        return await self._accept(response, offset, f"{url} ({digest})")

    async def _accept(
        self, response: httpx.Response, offset: int, what: str
    ) -> tuple[BlobStream | None, errdefs.ErrdefsError | None]:
        status = response.status_code
        if status == 206 or (status == 200 and not offset):
            return BlobStream(response, what=what), None
        if status == 200:
            return BlobStream(response, skip=offset, what=what), None
        try:
            await response.aread()
        except httpx.TransportError:
            pass
        finally:
            await response.aclose()
        return None, status_error(response, what)
