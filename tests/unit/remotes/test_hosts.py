from __future__ import annotations

from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import HostsConfig, hosts


def test_defaults_without_config() -> None:
    [docker] = hosts.config_hosts("docker.io")
    assert docker.base_url() == "https://registry-1.docker.io/v2"
    assert docker.capabilities == hosts.ALL_CAPABILITIES
    [remote] = hosts.config_hosts("ghcr.io")
    assert (remote.scheme, remote.http_fallback, remote.skip_verify) == ("https", False, False)
    [local] = hosts.config_hosts("localhost:5000")
    assert (local.scheme, local.http_fallback, local.skip_verify) == ("https", True, True)
    [loop] = hosts.config_hosts("127.0.0.1:5000")
    assert loop.http_fallback
    [port80] = hosts.config_hosts("localhost:80")
    assert (port80.scheme, port80.http_fallback) == ("http", False)
    [port443] = hosts.config_hosts("localhost")
    assert (port443.scheme, port443.http_fallback) == ("https", False)
    [plain] = hosts.config_hosts("ghcr.io", plain_http=True)
    assert plain.base_url() == "http://ghcr.io/v2"
    [ipv6] = hosts.config_hosts("[::1]:5000")
    assert ipv6.http_fallback


def test_lookup_order(tmp_path: Path) -> None:
    for name, server in [
        ("reg.example_5000_", "https://first"),
        ("reg.example:5000", "https://second"),
        ("_default", "https://third"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "hosts.toml").write_text(f'server = "{server}"\n')
    cfg = HostsConfig(tmp_path)
    assert [h.host for h in cfg("reg.example:5000")] == ["first"]
    (tmp_path / "reg.example_5000_" / "hosts.toml").unlink()
    (tmp_path / "reg.example_5000_").rmdir()
    assert [h.host for h in cfg("reg.example:5000")] == ["second"]
    assert [h.host for h in cfg("other.example")] == ["third"]
    assert hosts.host_directories(tmp_path, "a.b") == [tmp_path / "a.b", tmp_path / "_default"]


def test_hosts_toml(tmp_path: Path) -> None:
    d = tmp_path / "docker.io"
    d.mkdir()
    (d / "hosts.toml").write_text(
        """
server = "https://registry-1.docker.io"
capabilities = ["pull", "resolve", "push"]

[host."https://mirror-b.example/base"]
  capabilities = ["pull"]
  ca = "certs/ca.pem"
  header = { x-one = "1", x-many = ["a", "b"] }

[host."http://127.0.0.1:5001"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  client = [["c.pem", "c.key"], "both.pem"]

[host."http://plain.example"]
  override_path = true

[host."https://already.example/v2"]
"""
    )
    got = HostsConfig(tmp_path)("docker.io")
    assert [h.base_url() for h in got] == [
        "https://mirror-b.example/base/v2",
        "https://127.0.0.1:5001/v2",
        "http://plain.example",
        "https://already.example/v2",
        "https://registry-1.docker.io/v2",
    ]
    mirror, local, plain, _, server = got
    assert mirror.capabilities == frozenset({"pull"})
    assert mirror.ca == (d / "certs/ca.pem",)
    assert mirror.headers == {"x-one": ("1",), "x-many": ("a", "b")}
    # http + explicit TLS on a non-80 port: https first, then http
    assert (local.http_fallback, local.skip_verify) == (True, True)
    assert local.client_certs == ((d / "c.pem", d / "c.key"), (d / "both.pem", None))
    assert not local.can("push")
    assert plain.scheme == "http" and not plain.http_fallback
    assert server.can("push")


def test_hosts_toml_without_server_uses_default(tmp_path: Path) -> None:
    d = tmp_path / "localhost:5000"
    d.mkdir()
    (d / "hosts.toml").write_text('[host."http://localhost:6000"]\ncapabilities = ["pull"]\n')
    got = HostsConfig(tmp_path)("localhost:5000")
    assert [h.host for h in got] == ["localhost:6000", "localhost:5000"]
    assert got[0].scheme == "http" and got[1].http_fallback


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("server = ", "hosts.toml"),
        ("server = 5", "server: expected a string"),
        ('[host."https://m"]\ncapabilities = ["fly"]', "capabilities"),
        ('[host."https://m"]\nskip_verify = "yes"', "skip_verify: expected bool"),
        ('[host."https://m"]\nca = 5', "ca: expected a path"),
        ('[host."https://m"]\nclient = [[1, 2]]', "client"),
        ('[host."ftp://m"]', "invalid host URL"),
    ],
)
def test_hosts_toml_errors(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "_default").mkdir()
    (tmp_path / "_default" / "hosts.toml").write_text(text)
    with pytest.raises(errdefs.InvalidArgument, match=match):
        hosts.config_hosts("x.example", tmp_path)


def test_is_localhost() -> None:
    assert hosts.is_localhost("localhost")
    assert hosts.is_localhost("127.0.0.2:80")
    assert hosts.is_localhost("[::1]:5000")
    assert not hosts.is_localhost("example.com:5000")


def test_docker_cert_files_without_hosts_toml(tmp_path: Path) -> None:
    d = tmp_path / "reg.example"
    d.mkdir()
    for name in ("ca.crt", "client.cert", "client.key", "README"):
        (d / name).write_text("x")
    [server] = HostsConfig(tmp_path)("reg.example")
    assert server.base_url() == "https://reg.example/v2"
    assert server.ca == (d / "ca.crt",)
    assert server.client_certs == ((d / "client.cert", d / "client.key"),)
    (d / "client.key").unlink()
    with pytest.raises(errdefs.InvalidArgument, match="missing key"):
        HostsConfig(tmp_path)("reg.example")
    # an empty directory still wins over _default, with plain defaults
    (tmp_path / "_default").mkdir()
    (tmp_path / "_default" / "hosts.toml").write_text('server = "https://elsewhere"')
    (tmp_path / "empty.example").mkdir()
    [plain] = HostsConfig(tmp_path)("empty.example")
    assert (plain.host, plain.ca) == ("empty.example", ())
