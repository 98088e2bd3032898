"""The issue's example, verbatim but for the registry's address, blocking and async."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from pycontainerd import oci
from pycontainerd.remotes import Resolver
from pycontainerd.wire import AsyncClient
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import REGISTRY_BIN, RegistryProcess
from tests.requirements import require

from .conftest import built_image

SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


@pytest.fixture(scope="module")
def registry_ref(cbase: Path) -> Iterator[str]:
    require(REGISTRY_BIN, "docker-registry")
    (cbase / "registry").mkdir()
    registry = RegistryProcess(cbase / "registry")
    ref = f"{registry.host}/library/busybox:latest"

    async def push() -> None:
        async with Resolver(plain_http=True) as resolver:
            await imagebuild.push_image(resolver, ref, built_image())

    try:
        trio.run(push)
        yield ref
    finally:
        registry.close()


def test_the_issue_example(
    cdaemon: DaemonProcess, registry_ref: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from pycontainerd.client import Client, cio

    with Client(cdaemon.address, namespace="default") as c:
        image = c.pull(registry_ref, plain_http=True)
        ctr = c.new_container("hello", image=image, args=["echo", "hi"])
        task = ctr.new_task(cio.stdio(stdin=False))  # pytest's stdin cannot be read
        task.start()
        status = task.wait()  # .code, .exited_at
        task.delete()
        ctr.delete()
        c.images.delete(image.name)
    assert status.code == 0 and status.exited_at is not None
    sys.stdout.flush()
    assert capfd.readouterr().out.endswith("hi\n")


async def test_the_same_with_the_async_client(cdaemon: DaemonProcess, image_name: str) -> None:
    """An ``AsyncClient`` runs a container through raw calls with the same helpers
    (``oci`` specs, ``cio`` stdio)."""
    from pycontainerd.client import cio

    out = io.BytesIO()
    async with await AsyncClient.connect(cdaemon.address, namespace="async") as c:
        spec = oci.default_spec("async", "hello")
        oci.apply(
            spec, oci.with_default_path_env(), oci.with_process_args("sh", "-c", "echo hi; exit 2")
        )
        rootfs = str(cdaemon.base / "async-rootfs")
        layer = built_image()
        for blob in layer.layers:
            with tarfile.open(fileobj=io.BytesIO(imagebuild.decompress(blob.data))) as tar:
                tar.extractall(rootfs, filter="tar")
        await c.call(
            "containers.create",
            {
                "container": {
                    "id": "hello",
                    "runtime": {"name": "io.containerd.runc.v2"},
                    "spec": {
                        "type_url": "types.containerd.io/opencontainers/runtime-spec/1/Spec",
                        "value": spec,
                    },
                }
            },
        )
        pio = cio.with_streams(None, out, out)("hello")
        try:
            mounts = [{"type": "bind", "source": rootfs, "options": ["rbind"]}]
            await c.call(
                "tasks.create", {"container_id": "hello", "rootfs": mounts, **pio.config.fields()}
            )
            await c.call("tasks.start", {"container_id": "hello"})
            status = await c.call("tasks.wait", {"container_id": "hello"})
            await c.call("tasks.delete", {"container_id": "hello"})
            await trio.to_thread.run_sync(pio.wait)
        finally:
            pio.close()
        await c.call("containers.delete", {"id": "hello"})
    assert status["exit_status"] == 2
    assert out.getvalue() == b"hi\n"


async def test_the_example_with_the_async_containers(
    cdaemon: DaemonProcess, image_name: str
) -> None:
    from pycontainerd.api import errdefs
    from pycontainerd.client import aio, cio

    out = io.BytesIO()
    async with await AsyncClient.connect(cdaemon.address, namespace="default") as c:
        ctr = await aio.new_container(
            c, "hello-async", image=image_name, args=["sh", "-c", 'echo "$GREETING"; cat; exit 3']
        )
        with pytest.raises(errdefs.AlreadyExists):
            await aio.new_container(c, "hello-async", image=image_name)
        r, w = os.pipe()
        with os.fdopen(r, "rb") as stdin:
            task = await ctr.new_task(cio.with_streams(stdin, out, out))
            await task.start()
            probe = await task.exec("probe", {"args": ["/bin/true"], "cwd": "/"}, cio.null())
            await probe.start()
            assert (await probe.wait()).code == 0
            await probe.delete()
            with pytest.raises(errdefs.FailedPrecondition):
                await ctr.delete()
            await task.close_io()
            status = await task.wait()
        assert (await task.delete()).code == 3
        await (await aio.load_container(c, "hello-async")).delete()
        os.close(w)
        with pytest.raises(errdefs.NotFound):
            await c.call("snapshots.stat", {"snapshotter": "overlayfs", "key": "hello-async"})
    assert status.code == 3 and status.exited_at is not None
    assert out.getvalue() == b"from-image\n"
