"""Registry hosts: which servers serve a registry name, how to reach them.

containerd's ``remotes/docker/config/hosts.go`` and ``docs/hosts.md``. For a
reference host (``docker.io``, ``localhost:5000``) the config directory is
searched in this order and the first directory that exists wins::

    <config_path>/<host>_<port>_/hosts.toml     (only when there is a port)
    <config_path>/<host:port>/hosts.toml
    <config_path>/_default/hosts.toml

A directory without ``hosts.toml`` may hold Docker-style ``*.crt`` (CAs) and
``*.cert``/``*.key`` (client) files for the default server. A ``hosts.toml``
lists ``[host."<url>"]`` mirrors, tried in file order, then
the ``server`` (the upstream, tried last)::

    server = "https://registry.example.com"
    [host."http://127.0.0.1:5001"]
      capabilities = ["pull", "resolve"]
      skip_verify = true
      ca = "certs/ca.pem"            # relative to the hosts directory
      client = [["client.pem", "client.key"]]
      header = { x-custom = "1" }
      override_path = false          # else "/v2" is appended to the path

Without a file: ``docker.io`` is ``https://registry-1.docker.io``; a localhost
registry with a port other than 443 is tried over https first and falls back
to plain http on a TLS error (port 80: plain http only); anything else is https.
``plain_http=True`` forces plain http for hosts without a file.
"""

from __future__ import annotations

import ipaddress
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from pycontainerd.api import errdefs

from .reference import DOCKER_HOST, DOCKER_REGISTRY_HOST

CAP_PULL = "pull"
CAP_RESOLVE = "resolve"
CAP_PUSH = "push"
ALL_CAPABILITIES = frozenset({CAP_PULL, CAP_RESOLVE, CAP_PUSH})


@attrs.frozen(kw_only=True)
class RegistryHost:
    """One server for a registry: where it is, what it may do, how to talk TLS to it."""

    scheme: str = "https"
    host: str
    path: str = "/v2"
    capabilities: frozenset[str] = ALL_CAPABILITIES
    skip_verify: bool = False
    ca: tuple[Path, ...] = ()
    client_certs: tuple[tuple[Path, Path | None], ...] = ()
    headers: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    http_fallback: bool = False
    """Try https, and on a TLS error switch to plain http (``docker.NewHTTPFallback``)."""

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    def base_url(self, scheme: str | None = None) -> str:
        """``<scheme>://<host><path>``, e.g. ``https://registry-1.docker.io/v2``."""
        return f"{scheme or self.scheme}://{self.host}{self.path}"


def is_localhost(host: str) -> bool:
    """``localhost`` or a loopback IP, with or without a port (``docker.IsLocalhost``)."""
    name = _split_host_port(host)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_host_port(host: str) -> tuple[str, str]:
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def default_server(host: str, *, plain_http: bool = False) -> RegistryHost:
    """The server of ``host`` when no ``hosts.toml`` names one."""
    if host == DOCKER_HOST:
        return RegistryHost(host=DOCKER_REGISTRY_HOST, scheme="http" if plain_http else "https")
    if plain_http:
        return RegistryHost(host=host, scheme="http")
    if is_localhost(host):
        port = _split_host_port(host)[1]
        if port in ("", "443"):
            return RegistryHost(host=host, scheme="https", skip_verify=True)
        if port == "80":
            return RegistryHost(host=host, scheme="http")
        # "http" with skip_verify is explicit TLS on a non-80 port: https first, then http
        return RegistryHost(host=host, scheme="https", skip_verify=True, http_fallback=True)
    return RegistryHost(host=host, scheme="https")


def host_directories(config_path: Path, host: str) -> list[Path]:
    """The directories searched for ``host``'s ``hosts.toml``, in order."""
    dirs = []
    name, port = _split_host_port(host)
    if port:
        dirs.append(config_path / f"{name}_{port}_")
    dirs.append(config_path / host)
    dirs.append(config_path / "_default")
    return dirs


def config_hosts(
    host: str, config_path: Path | None = None, *, plain_http: bool = False
) -> list[RegistryHost]:
    """The servers for a reference host, mirrors first, upstream last (``ConfigureHosts``).

    Raises:
        errdefs.InvalidArgument: a ``hosts.toml`` that does not parse or has a
            wrong type for a known key.
    """
    if config_path is not None:
        for directory in host_directories(config_path, host):
            if not directory.is_dir():
                continue
            path = directory / "hosts.toml"
            if path.is_file():
                return load_hosts_toml(path, host, plain_http=plain_http)
            return [load_cert_files(directory, default_server(host, plain_http=plain_http))]
    return [default_server(host, plain_http=plain_http)]


def load_cert_files(directory: Path, server: RegistryHost) -> RegistryHost:
    """Docker's ``certs.d`` layout, used when a host directory has no ``hosts.toml``.

    ``*.crt`` are CAs; ``<name>.cert`` is a client certificate whose key is
    ``<name>.key``.

    Raises:
        errdefs.InvalidArgument: a ``.cert`` without its ``.key``.
    """
    cas: list[Path] = []
    clients: list[tuple[Path, Path | None]] = []
    for entry in sorted(directory.iterdir()):
        if entry.suffix == ".crt":
            cas.append(entry)
        elif entry.suffix == ".cert":
            key = entry.with_suffix(".key")
            if not key.is_file():
                raise errdefs.InvalidArgument(
                    f"missing key {key.name} for client certificate {entry}"
                )
            clients.append((entry, key))
    if not cas and not clients:
        return server
    return attrs.evolve(server, ca=tuple(cas), client_certs=tuple(clients))


def load_hosts_toml(path: Path, host: str, *, plain_http: bool = False) -> list[RegistryHost]:
    """Parse one ``hosts.toml`` for reference host ``host``.

    Raises:
        errdefs.InvalidArgument: bad TOML, or a key with the wrong type (named).
    """
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise errdefs.InvalidArgument(f"{path}: {exc}") from exc
    base = path.parent
    hosts: list[RegistryHost] = []
    tables = doc.get("host", {})
    if not isinstance(tables, dict):
        raise errdefs.InvalidArgument(f"{path}: host: expected a table of tables")
    for url, table in tables.items():  # TOML tables keep file order
        if not isinstance(table, dict):
            raise errdefs.InvalidArgument(f"{path}: host.{url!r}: expected a table")
        hosts.append(_host_from(url, table, base, f"{path}: host.{url!r}"))
    server = doc.get("server")
    if server is None:
        upstream = default_server(host, plain_http=plain_http)
        hosts.append(_apply(upstream, doc, base, f"{path}"))
    else:
        if not isinstance(server, str):
            raise errdefs.InvalidArgument(f"{path}: server: expected a string")
        hosts.append(_host_from(server, doc, base, f"{path}: server"))
    return hosts


def _host_from(url: str, table: Mapping[str, Any], base: Path, where: str) -> RegistryHost:
    if "://" not in url:
        url = "https://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errdefs.InvalidArgument(f"{where}: invalid host URL {url!r}")
    override_path = _get(table, "override_path", bool, where, False)
    path = parts.path.rstrip("/")
    if not override_path and not path.endswith("/v2"):
        path = path + "/v2"
    host = RegistryHost(scheme=parts.scheme, host=parts.netloc, path=path)
    host = _apply(host, table, base, where)
    port = _split_host_port(host.host)[1]
    explicit_tls = host.skip_verify or bool(host.ca) or bool(host.client_certs)
    if host.scheme == "http" and explicit_tls and port not in ("", "80"):
        host = attrs.evolve(host, scheme="https", http_fallback=True)
    return host


def _get(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind):
        raise errdefs.InvalidArgument(f"{where}: {key}: expected {kind.__name__}")
    return value


def _paths(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise errdefs.InvalidArgument(f"{where}: {key}: expected a path or a list of paths")


def _apply(host: RegistryHost, table: Mapping[str, Any], base: Path, where: str) -> RegistryHost:
    changes: dict[str, Any] = {}
    if "capabilities" in table:
        caps = table["capabilities"]
        if not isinstance(caps, list) or not all(c in ALL_CAPABILITIES for c in caps):
            raise errdefs.InvalidArgument(
                f"{where}: capabilities: expected a list of pull, resolve, push"
            )
        changes["capabilities"] = frozenset(caps)
    if "skip_verify" in table:
        changes["skip_verify"] = _get(table, "skip_verify", bool, where, False)
    if "ca" in table:
        changes["ca"] = tuple(base / p for p in _paths(table["ca"], "ca", where))
    if "client" in table:
        changes["client_certs"] = _client_certs(table["client"], base, where)
    if "header" in table:
        headers = _get(table, "header", dict, where, {})
        out: dict[str, tuple[str, ...]] = {}
        for name, value in headers.items():
            out[name] = tuple(_paths(value, f"header.{name}", where))
        changes["headers"] = out
    return attrs.evolve(host, **changes)


def _client_certs(value: Any, base: Path, where: str) -> tuple[tuple[Path, Path | None], ...]:
    if isinstance(value, str):
        return ((base / value, None),)
    if not isinstance(value, list):
        raise errdefs.InvalidArgument(f"{where}: client: expected a path or a list")
    out: list[tuple[Path, Path | None]] = []
    for item in value:
        if isinstance(item, str):
            out.append((base / item, None))
        elif (
            isinstance(item, list) and len(item) in (1, 2) and all(isinstance(p, str) for p in item)
        ):
            out.append((base / item[0], base / item[1] if len(item) == 2 else None))
        else:
            raise errdefs.InvalidArgument(f"{where}: client: expected paths or [cert, key] pairs")
    return tuple(out)


@attrs.frozen
class HostsConfig:
    """Where the resolver finds hosts: a ``hosts.toml`` directory, and the plain-http default.

    Calling it returns :func:`config_hosts` for a reference host.
    """

    config_path: Path | None = None
    plain_http: bool = False

    def __call__(self, host: str) -> list[RegistryHost]:
        return config_hosts(host, self.config_path, plain_http=self.plain_http)
