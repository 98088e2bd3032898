"""One daemon and registries per module; images built and pushed once."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from pycontainerd.client import Client
from pycontainerd.remotes import Resolver
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import (
    REGISTRY_BIN,
    RegistryProcess,
    TokenServer,
    htpasswd_line,
)
from tests.requirements import require

USER, PASSWORD = "puller", "pw-for-tests"
MULTI = "test/multi:1"
ZSTD = "test/zstd:1"


def _need_registry() -> None:
    require(REGISTRY_BIN, "docker-registry")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("xfer", numbered=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[RegistryProcess]:
    _need_registry()
    (workdir / "plain").mkdir()
    proc = RegistryProcess(workdir / "plain")
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def multi_image() -> imagebuild.BuiltImage:
    """Busybox for linux/amd64 and linux/arm64 (an index over the same gzip layers)."""
    return imagebuild.busybox_image(
        for_platforms=("linux/amd64", "linux/arm64"), extra_files={"etc/motd": b"hello\n"}
    )


@pytest.fixture(scope="module")
def zstd_image() -> imagebuild.BuiltImage:
    return imagebuild.busybox_image(compression="zstd", extra_files={"etc/zstd": b"z\n"})


def push(
    host: str, ref: str, image: imagebuild.BuiltImage, user: tuple[str, str] | None = None
) -> None:
    async def run() -> None:
        async with Resolver(credentials=user, plain_http=True) as resolver:
            await imagebuild.push_image(resolver, f"{host}/{ref}", image)

    trio.run(run)


@pytest.fixture(scope="module")
def pushed(
    registry: RegistryProcess,
    multi_image: imagebuild.BuiltImage,
    zstd_image: imagebuild.BuiltImage,
) -> RegistryProcess:
    push(registry.host, MULTI, multi_image)
    push(registry.host, ZSTD, zstd_image)
    return registry


@pytest.fixture(scope="module")
def daemon(workdir: Path) -> Iterator[DaemonProcess]:
    (workdir / "d").mkdir()
    proc = DaemonProcess(workdir / "d").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


@pytest.fixture
def client(daemon: DaemonProcess, request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client in a namespace of the test's own (dropped at the end)."""
    namespace = "t-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")
    with Client(daemon.address, namespace=namespace) as c:
        yield c
        for image in c.images.list():
            c.images.delete(image.name)
        c.leases.delete(c.leases.create().id, sync=True)


@pytest.fixture(scope="module")
def basic_registry(workdir: Path, multi_image: imagebuild.BuiltImage) -> Iterator[RegistryProcess]:
    _need_registry()
    base = workdir / "basic"
    base.mkdir()
    (base / "htpasswd").write_text(htpasswd_line(USER, PASSWORD))
    proc = RegistryProcess(
        base, auth={"htpasswd": {"realm": "pycontainerd", "path": base / "htpasswd"}}
    )
    push(proc.host, MULTI, multi_image, (USER, PASSWORD))
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def token_registry(workdir: Path, multi_image: imagebuild.BuiltImage) -> Iterator[RegistryProcess]:
    _need_registry()
    base = workdir / "token"
    base.mkdir()
    server = TokenServer(base, USER, PASSWORD)
    proc = RegistryProcess(base, auth=server.registry_auth())
    try:
        push(proc.host, MULTI, multi_image, (USER, PASSWORD))
        yield proc
    finally:
        proc.close()
        server.close()
