"""Registry authorization: challenges, bearer tokens, basic auth, credentials.

containerd's ``remotes/docker/authorizer.go``, ``auth/fetch.go`` and
``auth/parse.go``. A request goes out with whatever authorization the host
already has; a ``401`` carries ``WWW-Authenticate`` challenges, which
:meth:`Authorizer.add_responses` turns into a handler for that host::

    GET /v2/app/manifests/1   ->  401  WWW-Authenticate: Bearer realm="https://auth/token",
                                        service="registry",scope="repository:app:pull"
    POST https://auth/token  grant_type=password&username=..&password=..&service=registry
                             &scope=repository:app:pull&client_id=containerd-client
        (404/401/400, or 405 with a username: GET https://auth/token?service=..&scope=..
         with Basic credentials; anonymous: the same GET without them)
    GET /v2/app/manifests/1   Authorization: Bearer <token>   ->  200

Tokens are cached per host and scope set until ``expires_in`` runs out.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx

from pycontainerd.api import errdefs

Credentials = Callable[[str], "tuple[str, str] | None"]
"""Host → ``(username, secret)``; an empty username means ``secret`` is a refresh token."""

CLIENT_ID = "containerd-client"
DEFAULT_EXPIRES_IN = 60
MIN_EXPIRES_IN = 5


@attrs.frozen
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict)


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (``auth.ParseAuthHeader``).

    Each value is ``Scheme k=v, k="quoted, value", ...``; several challenges may
    share one value (``Basic realm="x", Bearer realm="y"``). Unparseable pieces
    are skipped, as Go's parser does.
    """
    out: list[Challenge] = []
    for value in values:
        out.extend(_parse_one(value))
    return out


def _parse_one(value: str) -> list[Challenge]:
    found: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    current: dict[str, str] | None = None
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        start = i
        while i < n and value[i] not in " \t,=":
            i += 1
        token = value[start:i]
        if not token:
            break
        j = i
        while j < n and value[j] in " \t":
            j += 1
        if j < n and value[j] == "=" and current is not None:
            i = j + 1
            while i < n and value[i] in " \t":
                i += 1
            if i < n and value[i] == '"':
                i += 1
                chars = []
                while i < n and value[i] != '"':
                    if value[i] == "\\" and i + 1 < n:
                        i += 1
                    chars.append(value[i])
                    i += 1
                i += 1
                param = "".join(chars)
            else:
                start = i
                while i < n and value[i] not in " \t,":
                    i += 1
                param = value[start:i]
            current[token.lower()] = param
        else:
            current = {}
            found.append((token.lower(), current))
            i = j
    return [Challenge(scheme, params) for scheme, params in found]


def static_credentials(username: str, secret: str) -> Credentials:
    """The same credentials for every host."""

    def lookup(host: str) -> tuple[str, str]:
        return username, secret

    return lookup


def docker_config_credentials(path: Path) -> Credentials:
    """Credentials from a docker ``config.json`` (``auths.<host>.auth`` or username/password).

    ``registry-1.docker.io`` also looks up ``https://index.docker.io/v1/``; an
    ``identitytoken`` is returned as a refresh token (empty username).

    Raises:
        errdefs.InvalidArgument: the file is not JSON, or an ``auth`` value is
            not base64 of ``user:password``.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errdefs.InvalidArgument(f"{path}: {exc}") from exc
    auths = doc.get("auths", {}) if isinstance(doc, dict) else {}
    if not isinstance(auths, dict):
        raise errdefs.InvalidArgument(f"{path}: auths: expected an object")
    table: dict[str, tuple[str, str]] = {}
    for key, entry in auths.items():
        if isinstance(entry, dict):
            creds = _entry_credentials(entry, f"{path}: auths.{key}")
            if creds is not None:
                table[_config_key(key)] = creds

    def lookup(host: str) -> tuple[str, str] | None:
        if host in ("registry-1.docker.io", "docker.io"):
            return table.get("index.docker.io") or table.get(host)
        return table.get(host)

    return lookup


def _config_key(key: str) -> str:
    host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return "index.docker.io" if host in ("index.docker.io", "docker.io") else host


def _entry_credentials(entry: Mapping[str, Any], where: str) -> tuple[str, str] | None:
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return "", token
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise errdefs.InvalidArgument(f"{where}.auth: invalid base64: {exc}") from exc
        if not sep:
            raise errdefs.InvalidArgument(f"{where}.auth: expected user:password")
        return user, password
    username, secret = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(secret, str) and username:
        return username, secret
    return None


def basic_header(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@attrs.define
class _Handler:
    """How to authorize requests to one host, from its last challenge."""

    scheme: str
    realm: str = ""
    service: str = ""
    scopes: tuple[str, ...] = ()
    username: str = ""
    secret: str = ""
    refresh_token: str = ""
    tokens: dict[tuple[str, ...], tuple[str, float]] = attrs.field(factory=dict)


class Authorizer:
    """Per-host authorization state (``dockerAuthorizer``).

    Args:
        client: the HTTP client for token realms when the caller passes none.
        credentials: host → ``(username, secret)``, or ``None`` for anonymous.
        clock: seconds, monotonic (tests pass a fake).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: Credentials | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._clock = clock
        self._handlers: dict[str, _Handler] = {}

    async def authorize(
        self, host: str, scopes: Iterable[str], client: httpx.AsyncClient | None = None
    ) -> str | None:
        """The ``Authorization`` header for a request to ``host``, or ``None``.

        A token is fetched with ``client`` (the registry host's, so that its
        TLS settings apply to the realm too) when none is cached.

        Raises:
            errdefs.PermissionDenied: the token server refused the credentials.
            errdefs.Unavailable: the token server could not be reached.
        """
        handler = self._handlers.get(host)
        if handler is None:
            return None
        if handler.scheme == "basic":
            return basic_header(handler.username, handler.secret)
        key = tuple(sorted({*handler.scopes, *scopes}))
        cached = handler.tokens.get(key)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return "Bearer " + cached[0]
        token, expires_in = await self._fetch_token(handler, key, client or self._client)
        handler.tokens[key] = (token, now + expires_in)
        return "Bearer " + token

    def add_responses(self, host: str, response: httpx.Response, authorized: bool) -> None:
        """Learn from a ``401``: set up (or give up on) the host's handler.

        ``authorized`` says whether the failed request carried our authorization.

        Raises:
            errdefs.PermissionDenied: the same challenge was already answered and
                failed again (``ErrInvalidAuthorization``), or basic auth was
                asked for without credentials.
            errdefs.NotImplemented_: no supported challenge scheme.
        """
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        creds = self._credentials(host) if self._credentials is not None else None
        for challenge in challenges:
            if challenge.scheme == "bearer":
                realm = challenge.params.get("realm", "")
                if not realm:
                    continue
                service = challenge.params.get("service", "")
                scopes = tuple(s for s in challenge.params.get("scope", "").split(" ") if s)
                previous = self._handlers.get(host)
                if (
                    authorized
                    and previous is not None
                    and previous.scheme == "bearer"
                    and previous.realm == realm
                    and previous.service == service
                    and (set(scopes) <= set(previous.scopes) or "error" in challenge.params)
                ):
                    raise errdefs.PermissionDenied(
                        f"authorization failed for {host}: "
                        f"{challenge.params.get('error', 'access denied')}"
                    )
                handler = _Handler(scheme="bearer", realm=realm, service=service, scopes=scopes)
                if creds is not None:
                    if creds[0]:
                        handler.username, handler.secret = creds
                    else:
                        handler.refresh_token = creds[1]
                self._handlers[host] = handler
                return
            if challenge.scheme == "basic":
                if creds is None or not creds[0]:
                    raise errdefs.PermissionDenied(f"{host}: basic auth requires credentials")
                previous = self._handlers.get(host)
                if authorized and previous is not None and previous.scheme == "basic":
                    raise errdefs.PermissionDenied(
                        f"authorization failed for {host}: invalid username or password"
                    )
                self._handlers[host] = _Handler(scheme="basic", username=creds[0], secret=creds[1])
                return
        raise errdefs.NotImplemented_(f"{host}: failed to find a supported auth scheme")

    async def _fetch_token(
        self, handler: _Handler, scopes: tuple[str, ...], client: httpx.AsyncClient
    ) -> tuple[str, float]:
        if handler.refresh_token or handler.secret:
            response = await self._post_token(handler, scopes, client)
            if response.status_code in (400, 401, 404) or (
                response.status_code == 405 and handler.username
            ):
                response = await self._get_token(handler, scopes, client)
        else:
            response = await self._get_token(handler, scopes, client)
        if response.status_code in (401, 403):
            raise errdefs.PermissionDenied(
                f"{handler.realm}: token request denied ({response.status_code})"
            )
        if not response.is_success:
            raise errdefs.Unavailable(
                f"{handler.realm}: unexpected status {response.status_code} fetching a token"
            )
        try:
            doc = response.json()
        except ValueError as exc:
            raise errdefs.Unavailable(f"{handler.realm}: invalid token response: {exc}") from exc
        if not isinstance(doc, dict):
            raise errdefs.Unavailable(f"{handler.realm}: invalid token response")
        token = doc.get("access_token") or doc.get("token")
        if not isinstance(token, str) or not token:
            raise errdefs.PermissionDenied(
                f"{handler.realm}: authorization server did not return a token"
            )
        expires_in = doc.get("expires_in")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = DEFAULT_EXPIRES_IN
        return token, float(max(expires_in, MIN_EXPIRES_IN))

    async def _post_token(
        self, handler: _Handler, scopes: tuple[str, ...], client: httpx.AsyncClient
    ) -> httpx.Response:
        form = {"scope": " ".join(scopes), "service": handler.service, "client_id": CLIENT_ID}
        if handler.refresh_token:
            form["grant_type"] = "refresh_token"
            form["refresh_token"] = handler.refresh_token
        else:
            form["grant_type"] = "password"
            form["username"] = handler.username
            form["password"] = handler.secret
            form["access_type"] = "offline"
        return await _send(client, "POST", handler.realm, data=form)

    async def _get_token(
        self, handler: _Handler, scopes: tuple[str, ...], client: httpx.AsyncClient
    ) -> httpx.Response:
        params: list[tuple[str, str]] = []
        if handler.service:
            params.append(("service", handler.service))
        params += [("scope", s) for s in scopes]
        headers = {}
        if handler.username:
            headers["Authorization"] = basic_header(handler.username, handler.secret)
        return await _send(client, "GET", handler.realm, params=params, headers=headers)


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return await client.request(method, url, **kwargs)
    except (httpx.TransportError, httpx.TooManyRedirects) as exc:
        raise errdefs.Unavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
