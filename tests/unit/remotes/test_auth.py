from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import Challenge, docker_config_credentials, parse_challenges


# containerd remotes/docker/auth/parse_test.go cases
def test_parse_bearer() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert parse_challenges([header]) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull",
            },
        )
    ]


def test_parse_several_challenges_and_quoting() -> None:
    got = parse_challenges(
        [
            'Basic realm="Registry Realm", Bearer realm="https://a/t", error="insufficient_scope"',
            'BEARER realm="quoted \\"x\\", y",scope=unquoted',
        ]
    )
    assert [c.scheme for c in got] == ["basic", "bearer", "bearer"]
    assert got[0].params == {"realm": "Registry Realm"}
    assert got[1].params == {"realm": "https://a/t", "error": "insufficient_scope"}
    assert got[2].params == {"realm": 'quoted "x", y', "scope": "unquoted"}


def test_parse_garbage_is_skipped() -> None:
    assert parse_challenges(["", " , ,"]) == []
    assert parse_challenges(["Negotiate"]) == [Challenge("negotiate", {})]


def test_docker_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {
                        "auth": base64.b64encode(b"hub:secret:with:colons").decode()
                    },
                    "localhost:5000": {"username": "u", "password": "p"},
                    "ghcr.io": {"identitytoken": "refresh-me"},
                    "empty.example": {},
                }
            }
        )
    )
    creds = docker_config_credentials(config)
    assert creds("registry-1.docker.io") == ("hub", "secret:with:colons")
    assert creds("localhost:5000") == ("u", "p")
    assert creds("ghcr.io") == ("", "refresh-me")
    assert creds("empty.example") is None
    assert creds("nowhere.example") is None


def test_docker_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(errdefs.InvalidArgument):
        docker_config_credentials(bad)
    bad.write_text(json.dumps({"auths": {"h": {"auth": "!!!"}}}))
    with pytest.raises(errdefs.InvalidArgument, match="invalid base64"):
        docker_config_credentials(bad)
    bad.write_text(json.dumps({"auths": {"h": {"auth": base64.b64encode(b"nocolon").decode()}}}))
    with pytest.raises(errdefs.InvalidArgument, match="user:password"):
        docker_config_credentials(bad)
