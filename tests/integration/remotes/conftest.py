from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import imagebuild
from tests.requirements import require

from .registry import REGISTRY_BIN, RegistryProcess, TokenServer, htpasswd_line, make_tls

USER, PASSWORD = "tester", "s3cret-pw"


def _need_registry() -> None:
    require(REGISTRY_BIN, "docker-registry")


@pytest.fixture(autouse=True)
def _remove_tmp_path(tmp_path: Path) -> Iterator[None]:
    """Tests here write layouts, certificates and hosts.toml files: none outlive the test."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("remotes", numbered=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[RegistryProcess]:
    """An anonymous registry (plain http on 127.0.0.1)."""
    _need_registry()
    base = workdir / "plain"
    base.mkdir()
    proc = RegistryProcess(base)
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def basic_registry(workdir: Path) -> Iterator[RegistryProcess]:
    """A registry behind htpasswd (basic) auth for USER/PASSWORD."""
    _need_registry()
    base = workdir / "basic"
    base.mkdir()
    (base / "htpasswd").write_text(htpasswd_line(USER, PASSWORD))
    proc = RegistryProcess(
        base, auth={"htpasswd": {"realm": "pycontainerd", "path": base / "htpasswd"}}
    )
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def tls_registry(workdir: Path) -> Iterator[tuple[RegistryProcess, Path]]:
    """A registry serving https with a certificate from a test CA; yields (registry, ca.pem)."""
    _need_registry()
    base = workdir / "tls"
    base.mkdir()
    ca, cert, key = make_tls(base)
    proc = RegistryProcess(base, tls=(cert, key))
    yield proc, ca
    proc.close()


@pytest.fixture(scope="module")
def token_server(workdir: Path) -> Iterator[TokenServer]:
    base = workdir / "token"
    base.mkdir()
    server = TokenServer(base, USER, PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="module")
def token_registry(workdir: Path, token_server: TokenServer) -> Iterator[RegistryProcess]:
    """A registry behind bearer-token auth issued by ``token_server``."""
    _need_registry()
    base = workdir / "bearer"
    base.mkdir()
    proc = RegistryProcess(base, auth=token_server.registry_auth())
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def image() -> imagebuild.BuiltImage:
    """Busybox for linux/amd64 and linux/arm64 (an index), gzip layers."""
    return imagebuild.busybox_image(
        for_platforms=("linux/amd64", "linux/arm64"), extra_files={"etc/motd": b"hello\n"}
    )
