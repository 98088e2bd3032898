"""Requests to registry hosts: TLS per host, auth on 401, retries, errdefs at the edge.

containerd's ``remotes/docker/resolver.go`` ``request.doWithRetries``. One
:class:`Transport` belongs to a resolver and owns its HTTP clients (one per TLS
configuration, HTTP/1.1 keep-alive, at most ``max_concurrency`` connections
each) and its :class:`~pycontainerd.remotes.Authorizer`. :meth:`Transport.send`
retries, at most :data:`MAX_RETRIES` extra attempts per request:

- ``401``: the authorizer learns the challenge, the request is re-sent;
- ``405`` on ``HEAD .../manifests/``: re-sent as ``GET`` (broken registries);
- ``408``, ``429``, ``502``, ``503``, ``504`` and connection errors: re-sent
  after an exponential backoff (``Retry-After`` honoured, capped);
- ``500`` on a ``GET``: re-sent once after the backoff, as containerd 2's
  ``retryRequest`` does (not when the previous answer was a 500 too, and only
  on the last host tried, so that a failing mirror falls through to the next
  one). Not on a ``HEAD``: distribution answers 500 for deterministic
  failures there (``HEAD manifests/<digest of a config>``);
- redirects are followed, at most :data:`MAX_REDIRECTS` (``307`` to blob
  storage); a longer chain is an error, as containerd's "stopped after 10
  redirects";
- a TLS error on a host with ``http_fallback``: that host is plain http from
  now on (``docker.NewHTTPFallback``).

Streamed request bodies cannot be replayed, so they get no retries.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

import httpx
import trio

import pycontainerd
from pycontainerd.api import errdefs

from ._auth import Authorizer, Credentials
from .hosts import RegistryHost

MAX_RETRIES = 5
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
USER_AGENT = f"pycontainerd/{pycontainerd.__version__}"
MAX_BACKOFF = 2.0
MAX_REDIRECTS = 10
"""containerd's ``CheckRedirect`` limit."""

TLSKey = tuple[bool, tuple[str, ...], tuple[tuple[str, str | None], ...]]


def _tls_key(host: RegistryHost) -> TLSKey:
    return (
        host.skip_verify,
        tuple(str(p) for p in host.ca),
        tuple((str(c), None if k is None else str(k)) for c, k in host.client_certs),
    )


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The system's verifying context, made once: loading the CA bundle costs
    ~0.1 s, and a context can be shared by every connection. The daemon makes
    it in a worker thread at start, so that the first pull does not hold the
    event loop for it."""
    return ssl.create_default_context()


_default_context = default_tls_context


def _ssl_context(key: TLSKey) -> ssl.SSLContext:
    skip_verify, cas, clients = key
    if not skip_verify and not cas and not clients:
        return _default_context()
    ctx = ssl.create_default_context()
    try:
        for ca in cas:
            ctx.load_verify_locations(cafile=ca)
        for cert, keyfile in clients:
            ctx.load_cert_chain(cert, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise errdefs.InvalidArgument(f"invalid TLS configuration: {exc}") from exc
    if skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    """The exception and its causes, ``Type: message`` joined, empty messages skipped."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = str(seen)
        parts.append(f"{type(seen).__name__}: {text}" if text else type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)


def _registry_message(response: httpx.Response) -> str:
    """``code: message`` of a distribution error body, or the status text."""
    try:
        doc = response.json()
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return "; ".join(
                f"{e.get('code', '')}: {e.get('message', '')}"
                for e in errors
                if isinstance(e, dict)
            )
    except (ValueError, httpx.ResponseNotRead):
        pass
    return response.reason_phrase or str(response.status_code)


def status_error(response: httpx.Response, what: str) -> errdefs.ErrdefsError:
    """The errdefs error for an unexpected status (the one place statuses become errors)."""
    code = response.status_code
    message = f"{what}: unexpected status {code}: {_registry_message(response)}"
    if code == 404:
        return errdefs.NotFound(message)
    if code in (401, 403):
        return errdefs.PermissionDenied(message)
    if code in (400, 405, 411, 413, 422):
        return errdefs.InvalidArgument(message)
    if code == 416:
        return errdefs.OutOfRange(message)
    if code == 429:
        return errdefs.ResourceExhausted(message)
    if code in (408, 502, 503, 504) or code >= 500:
        return errdefs.Unavailable(message)
    return errdefs.Unknown(message)


class Transport:
    """HTTP clients, authorization and the retry loop shared by resolve, fetch and push.

    Args:
        credentials: host → ``(username, secret)`` or ``None`` (anonymous).
        headers: sent with every request (after the host's own headers).
        max_concurrency: connections per client (containerd's
            ``MaxConcurrentDownloads`` default is 3).
        timeout: seconds for connect/read/write of one request.
        backoff: first retry delay in seconds; doubles per retry, capped at
            :data:`MAX_BACKOFF`.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_concurrency: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.1,
    ) -> None:
        self._backoff = backoff
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._limits = httpx.Limits(
            max_connections=max_concurrency, max_keepalive_connections=max_concurrency
        )
        self._timeout = httpx.Timeout(timeout, pool=None)
        self._clients: dict[TLSKey, httpx.AsyncClient] = {}
        self._plain: set[str] = set()
        self._token_client = self._new_client(_default_context())
        self.authorizer = Authorizer(self._token_client, credentials)

    def _new_client(self, ctx: ssl.SSLContext) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=ctx,
            limits=self._limits,
            timeout=self._timeout,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            trust_env=False,
        )

    @property
    def default_client(self) -> httpx.AsyncClient:
        """The client with default TLS settings (token realms, ``desc.urls``)."""
        return self._token_client

    def client(self, host: RegistryHost) -> httpx.AsyncClient:
        """The client whose TLS settings fit ``host``."""
        key = _tls_key(host)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._new_client(_ssl_context(key))
        return client

    def base_url(self, host: RegistryHost) -> str:
        """``host``'s base URL, plain http once its https fallback happened."""
        scheme = "http" if host.host in self._plain else host.scheme
        return host.base_url(scheme)

    async def aclose(self) -> None:
        """Close every client (idle keep-alive connections included)."""
        clients = [*self._clients.values(), self._token_client]
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def send(
        self,
        host: RegistryHost,
        method: str,
        url: str,
        *,
        scopes: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        stream: bool = False,
        last_host: bool = True,
    ) -> httpx.Response:
        """Send one request to ``host`` with auth and retries; any status is returned.

        ``url`` is either a path under the host's base URL (``/app/blobs/...``)
        or an absolute URL (an upload ``Location``); absolute URLs to another
        origin are sent without our authorization. With ``stream=True`` the
        caller must ``aclose()`` the response. ``last_host=False`` when the
        caller tries another host after this one (no retry of a ``500``).

        Raises:
            errdefs.Unavailable: connection errors, after the retries.
            errdefs.Unknown: more than :data:`MAX_REDIRECTS` redirects.
            errdefs.PermissionDenied: authorization failed (see ``Authorizer``);
                a ``401`` with no scheme we speak is returned as is.
        """
        scopes = tuple(scopes)
        replayable = not isinstance(content, AsyncIterable)
        attempt = 0
        previous = 0
        while True:
            full = url if "://" in url else self.base_url(host) + url
            same_origin = httpx.URL(full).netloc.decode() == host.host
            client = self.client(host)
            auth = None
            if same_origin:
                auth = await self.authorizer.authorize(host.host, scopes, client)
            request_headers: dict[str, str] = {}
            for name, values in host.headers.items():
                request_headers[name] = ", ".join(values)
            request_headers.update(self._headers)
            request_headers.update(headers or {})
            if auth is not None:
                request_headers["Authorization"] = auth
            request = client.build_request(
                method, full, headers=request_headers, params=params, content=content
            )
            try:
                response = await client.send(request, stream=stream)
            except httpx.TooManyRedirects as exc:
                raise too_many_redirects(method, full, exc) from exc
            except httpx.TransportError as exc:
                if host.http_fallback and full.startswith("https://") and _is_tls_error(exc):
                    self._plain.add(host.host)
                    continue
                tls_error = _is_tls_error(exc)
                if replayable and attempt < MAX_RETRIES and not tls_error:
                    attempt += 1
                    await trio.sleep(min(MAX_BACKOFF, self._backoff * 2.0 ** (attempt - 1)))
                    continue
                raise errdefs.Unavailable(f"{method} {full}: {_describe(exc)}") from exc
            if attempt >= MAX_RETRIES or not replayable:
                if response.status_code == 401 and same_origin and not replayable:
                    # learn the challenge for the next request; this one cannot be re-sent
                    await response.aclose()
                    with contextlib.suppress(errdefs.NotImplemented_):
                        self.authorizer.add_responses(host.host, response, auth is not None)
                return response
            if response.status_code == 401 and same_origin:
                await response.aclose()
                try:
                    self.authorizer.add_responses(host.host, response, auth is not None)
                except errdefs.NotImplemented_:
                    return response  # no scheme we speak: the caller sees the 401
            elif response.status_code == 405 and method == "HEAD" and "/manifests/" in full:
                await response.aclose()
                method = "GET"
            elif response.status_code in RETRY_STATUSES or (
                response.status_code == 500 and method == "GET" and last_host and previous != 500
            ):
                await response.aclose()
                await trio.sleep(_backoff(response, self._backoff * 2.0**attempt))
            else:
                return response
            previous = response.status_code
            attempt += 1


def too_many_redirects(method: str, url: str, exc: httpx.TooManyRedirects) -> errdefs.Unknown:
    """The error for a redirect chain over :data:`MAX_REDIRECTS` (a loop, usually)."""
    location = ""
    with contextlib.suppress(RuntimeError):
        location = str(exc.request.url)
    last = f" (last at {location})" if location and location != url else ""
    return errdefs.Unknown(f"{method} {url}: stopped after {MAX_REDIRECTS} redirects{last}")


def _backoff(response: httpx.Response, delay: float) -> float:
    retry_after = str(response.headers.get("retry-after", ""))
    if retry_after.isdigit():
        return min(MAX_BACKOFF, float(retry_after))
    return min(MAX_BACKOFF, delay)


def header_digest(response: httpx.Response) -> str:
    """``Docker-Content-Digest``, or ``""``."""
    return str(response.headers.get("docker-content-digest", "")).strip()


def media_type_of(response: httpx.Response) -> str:
    """Content-Type without parameters."""
    return str(response.headers.get("content-type", "")).split(";", 1)[0].strip()


def content_length(response: httpx.Response) -> int:
    """Content-Length, or -1 when absent or not a number."""
    value = str(response.headers.get("content-length", ""))
    return int(value) if value.isdigit() else -1


def query(params: Mapping[str, Any]) -> dict[str, str]:
    """Drop empty values from a query mapping."""
    return {k: str(v) for k, v in params.items() if v not in (None, "")}


def namespace_params(host: RegistryHost, ref_host: str) -> dict[str, str]:
    """``{"ns": ref_host}`` for a mirror (``docker.io`` on ``registry-1`` is no mirror)."""
    if host.host == ref_host or (ref_host == "docker.io" and host.host == "registry-1.docker.io"):
        return {}
    return {"ns": ref_host}
