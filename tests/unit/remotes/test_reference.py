from __future__ import annotations

import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import reference

DIGEST = "sha256:" + "a" * 64


# containerd reference_test.go TestReferenceParser, condensed
@pytest.mark.parametrize(
    ("ref", "locator", "obj", "tag", "digest", "hostname", "repo"),
    [
        ("docker.io/library/redis:foo", "docker.io/library/redis", "foo", "foo", "", "docker.io",
         "library/redis"),
        ("docker.io/library/redis", "docker.io/library/redis", "", "", "", "docker.io",
         "library/redis"),
        ("localhost:5000/a/b:1.0", "localhost:5000/a/b", "1.0", "1.0", "", "localhost:5000",
         "a/b"),
        (f"127.0.0.1:5000/a@{DIGEST}", "127.0.0.1:5000/a", f"@{DIGEST}", "", DIGEST,
         "127.0.0.1:5000", "a"),
        (f"example.com/a/b:t@{DIGEST}", "example.com/a/b", f"t@{DIGEST}", "t", DIGEST,
         "example.com", "a/b"),
        ("example.com//a//b:t", "example.com/a/b", "t", "t", "", "example.com", "a/b"),
    ],
)  # fmt: skip
def test_parse(
    ref: str, locator: str, obj: str, tag: str, digest: str, hostname: str, repo: str
) -> None:
    spec = reference.parse(ref)
    assert spec.locator == locator
    assert spec.object == obj
    assert (spec.tag, spec.digest) == (tag, digest)
    assert (spec.hostname, spec.repository) == (hostname, repo)
    assert reference.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "https://docker.io/library/redis",
        "/library/redis",
        "docker.io",
        "docker.io/",
        "docker.io/a:bad tag!",
        "docker.io/a@sha256:abc",
        "docker.io/a@nodigest",
        "host:notaport/a",
    ],
)
def test_parse_rejects(ref: str) -> None:
    with pytest.raises(errdefs.InvalidArgument):
        reference.parse(ref)


def test_registry_host() -> None:
    assert reference.registry_host("docker.io") == "registry-1.docker.io"
    assert reference.registry_host("ghcr.io") == "ghcr.io"


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("me/app", "docker.io/me/app:latest"),
        ("docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
        ("index.docker.io/me/app:1", "docker.io/me/app:1"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        ("ghcr.io/o/r", "ghcr.io/o/r:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
    ],
)
def test_normalize_docker(short: str, full: str) -> None:
    assert reference.normalize_docker(short) == full
    assert reference.parse(full).hostname == full.split("/", 1)[0]


@pytest.mark.parametrize("bad", ["Ubuntu", "docker.io/UPPER/x", "a//b", "x:bad tag", "x@sha256:1"])
def test_normalize_docker_rejects(bad: str) -> None:
    with pytest.raises(errdefs.InvalidArgument):
        reference.normalize_docker(bad)
