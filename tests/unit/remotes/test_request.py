"""Status codes become errdefs in one place; distribution error bodies are quoted."""

from __future__ import annotations

import httpx
import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import hosts
from pycontainerd.remotes._request import (
    content_length,
    header_digest,
    media_type_of,
    namespace_params,
    status_error,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, errdefs.NotFound),
        (401, errdefs.PermissionDenied),
        (403, errdefs.PermissionDenied),
        (400, errdefs.InvalidArgument),
        (416, errdefs.OutOfRange),
        (429, errdefs.ResourceExhausted),
        (500, errdefs.Unavailable),
        (503, errdefs.Unavailable),
        (418, errdefs.Unknown),
    ],
)
def test_status_error(status: int, kind: type[errdefs.ErrdefsError]) -> None:
    error = status_error(httpx.Response(status), "GET x")
    assert type(error) is kind
    assert f"unexpected status {status}" in str(error)


def test_status_error_quotes_the_registry() -> None:
    body = {"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"}]}
    error = status_error(httpx.Response(400, json=body), "PUT m")
    assert "MANIFEST_BLOB_UNKNOWN: blob unknown to registry" in str(error)


def test_headers() -> None:
    response = httpx.Response(
        200,
        headers={
            "Content-Type": "application/vnd.oci.image.index.v1+json; charset=utf-8",
            "Docker-Content-Digest": " sha256:abc ",
            "Content-Length": "12",
        },
    )
    assert media_type_of(response) == "application/vnd.oci.image.index.v1+json"
    assert header_digest(response) == "sha256:abc"
    assert content_length(response) == 12
    assert content_length(httpx.Response(200, headers={"Content-Length": "x"})) == -1


def test_mirrors_get_the_namespace() -> None:
    upstream = hosts.RegistryHost(host="registry-1.docker.io")
    mirror = hosts.RegistryHost(host="mirror.example")
    assert namespace_params(upstream, "docker.io") == {}
    assert namespace_params(mirror, "docker.io") == {"ns": "docker.io"}
    assert namespace_params(hosts.RegistryHost(host="ghcr.io"), "ghcr.io") == {}
