"""Push, resolve and fetch against a real docker-registry (distribution 2.8)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.images import platforms
from pycontainerd.remotes import ACCEPT_MANIFESTS, HostsConfig, Resolver, read_all, verify
from tests import imagebuild

from .registry import RegistryProcess

LIMIT = 64 * 1024 * 1024


async def fetch_verified(resolver: Resolver, ref: str, desc: images.Descriptor) -> bytes:
    stream = await resolver.fetcher(ref).fetch(desc)
    async with verify(stream, desc) as checked:
        return await read_all(checked, LIMIT)


def blob_desc(data: bytes, media_type: str = images.MEDIA_TYPE_OCI_LAYER) -> images.Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return images.Descriptor(media_type=media_type, digest=digest, size=len(data))


async def test_push_then_pull_a_two_platform_index(
    registry: RegistryProcess, image: imagebuild.BuiltImage
) -> None:
    ref = f"{registry.host}/test/busybox:multi"
    async with Resolver() as resolver:
        target = await imagebuild.push_image(resolver, ref, image)

        name, desc = await resolver.resolve(ref)
        assert name == ref
        assert (desc.digest, desc.size, desc.media_type) == (
            target.digest,
            target.size,
            images.MEDIA_TYPE_OCI_INDEX,
        )
        index = images.Index.parse(await fetch_verified(resolver, name, desc))
        assert len(index.manifests) == 2
        for spec in ("linux/amd64", "linux/arm64"):
            chosen = images.select_manifest(index, platforms.only(platforms.parse(spec)))
            assert chosen.platform is not None
            assert platforms.format(chosen.platform) == spec
            data = await fetch_verified(resolver, name, chosen)
            kids = images.children(chosen, data)
            config = images.ImageConfig.parse(await fetch_verified(resolver, name, kids[0]))
            assert f"{config.os}/{config.architecture}" == spec
            assert len(config.diff_ids) == len(kids) - 1 == 2
            for layer, diff_id in zip(kids[1:], config.diff_ids, strict=True):
                blob = await fetch_verified(resolver, name, layer)
                assert blob == image.blob(layer.digest)
                assert imagebuild.digest_of(imagebuild.decompress(blob)) == diff_id

        # by digest: a manifest resolves on manifests/, a config falls back to blobs/
        manifest = image.manifests[0].desc
        _, by_digest = await resolver.resolve(f"{registry.host}/test/busybox@{manifest.digest}")
        assert (by_digest.digest, by_digest.media_type) == (manifest.digest, manifest.media_type)
        config_desc = image.configs[0].desc
        _, found = await resolver.resolve(f"{registry.host}/test/busybox@{config_desc.digest}")
        assert (found.digest, found.size) == (config_desc.digest, config_desc.size)

        # a second push finds everything in place
        pusher = resolver.pusher(ref)
        assert await pusher.push_blob(image.layers[0].desc, image.layers[0].data) == "exists"
        assert await pusher.push_manifest(target, image.target.data, tag="multi") == "exists"


async def test_resolve_platform_straight_from_the_registry(
    registry: RegistryProcess, image: imagebuild.BuiltImage
) -> None:
    ref = f"{registry.host}/test/platform:1"
    async with Resolver() as resolver:
        await imagebuild.push_image(resolver, ref, image)
        name, target = await resolver.resolve(ref)
        fetcher = resolver.fetcher(name)
        chosen = await images.resolve_platform(
            fetcher.fetch_bytes, target, platforms.only(platforms.parse("linux/arm64"))
        )
        assert (chosen.config.os, chosen.config.architecture) == ("linux", "arm64")
        assert chosen.desc.digest in {m.desc.digest for m in image.manifests}
        with pytest.raises(errdefs.ResourceExhausted):
            await fetcher.fetch_bytes(chosen.manifest.layers[0], limit=100)


async def test_zstd_docker_flavours_and_tags(registry: RegistryProcess) -> None:
    layer = imagebuild.files_layer({"hello.txt": b"zstd world\n"}, compression="zstd")
    image = imagebuild.build_image([layer], cmd=["/bin/cat", "/hello.txt"])
    docker = imagebuild.build_image(
        [imagebuild.files_layer({"a": b"a"}, flavour="docker")], flavour="docker"
    )
    async with Resolver() as resolver:
        await imagebuild.push_image(resolver, f"{registry.host}/test/zstd:v1", image)
        await imagebuild.push_image(resolver, f"{registry.host}/test/docker:v1", docker)
        _, desc = await resolver.resolve(f"{registry.host}/test/zstd:v1")
        assert desc.media_type == images.MEDIA_TYPE_OCI_MANIFEST
        manifest = images.Manifest.parse(
            await fetch_verified(resolver, f"{registry.host}/test/zstd", desc)
        )
        assert manifest.layers[0].media_type == images.MEDIA_TYPE_OCI_LAYER_ZSTD
        assert images.diff_compression(manifest.layers[0].media_type) == "zstd"
        _, ddesc = await resolver.resolve(f"{registry.host}/test/docker:v1")
        assert ddesc.media_type == images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST
        # retag: same manifest under a new tag is a PUT, not "exists"
        pusher = resolver.pusher(f"{registry.host}/test/zstd")
        assert await pusher.push_manifest(desc, image.target.data, tag="v2") == "pushed"
        _, v2 = await resolver.resolve(f"{registry.host}/test/zstd:v2")
        assert v2.digest == desc.digest


async def test_range_resume(registry: RegistryProcess, image: imagebuild.BuiltImage) -> None:
    ref = f"{registry.host}/test/range"
    layer = image.layers[0]
    async with Resolver() as resolver:
        await resolver.pusher(ref).push_blob(layer.desc, layer.data)
        offset = layer.desc.size // 3
        stream = await resolver.fetcher(ref).fetch(layer.desc, offset=offset)
        assert stream.response.status_code == 206
        prefix = hashlib.sha256(layer.data[:offset])
        async with verify(stream, layer.desc, offset=offset, hasher=prefix) as checked:
            rest = await read_all(checked, LIMIT)
        assert rest == layer.data[offset:]
        with pytest.raises(errdefs.OutOfRange):
            await resolver.fetcher(ref).fetch(layer.desc, offset=layer.desc.size + 1)


async def test_cross_repo_mount(registry: RegistryProcess) -> None:
    data = os.urandom(4096)
    desc = blob_desc(data)
    async with Resolver() as resolver:
        assert await resolver.pusher(f"{registry.host}/mount/src").push_blob(desc, data) == (
            "pushed"
        )

        dst = resolver.pusher(f"{registry.host}/mount/dst")
        assert await dst.push_blob(desc, data, mount_from=["mount/dst", "mount/src"]) == "mounted"
        assert await fetch_verified(resolver, f"{registry.host}/mount/dst", desc) == data
        # mounting from a repository without the blob falls back to an upload
        other = os.urandom(2048)
        odesc = blob_desc(other)
        third = resolver.pusher(f"{registry.host}/mount/third")
        assert await third.push_blob(odesc, other, mount_from=["mount/src"]) == "pushed"


async def test_chunked_upload(registry: RegistryProcess) -> None:
    data = os.urandom(300 * 1024 + 17)
    desc = blob_desc(data)
    ref = f"{registry.host}/test/chunked"

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 10_000):
            yield data[i : i + 10_000]

    async with Resolver(chunk_threshold=100 * 1024, chunk_size=64 * 1024) as resolver:
        assert await resolver.pusher(ref).push_blob(desc, pieces()) == "pushed"
        assert await fetch_verified(resolver, ref, desc) == data
        # a source shorter than the descriptor is refused before the commit
        short = blob_desc(os.urandom(200 * 1024))
        with pytest.raises(errdefs.FailedPrecondition, match="source gave"):
            await resolver.pusher(ref).push_blob(short, data[: 150 * 1024])
        with pytest.raises(errdefs.NotFound):
            await resolver.resolve(f"{ref}@{short.digest}")


async def test_monolithic_upload_checks_size(registry: RegistryProcess) -> None:
    data = os.urandom(1000)
    ref = f"{registry.host}/test/mono"
    async with Resolver() as resolver:
        wrong = images.Descriptor(
            media_type=images.MEDIA_TYPE_OCI_LAYER, digest=blob_desc(data).digest, size=999
        )
        with pytest.raises(errdefs.FailedPrecondition):
            await resolver.pusher(ref).push_blob(wrong, data)
        # a streamed source that ends early or runs long is refused mid-upload

        async def stream(data: bytes) -> AsyncIterator[bytes]:
            for i in range(0, len(data), 300):
                yield data[i : i + 300]

        exact = blob_desc(data)
        with pytest.raises(errdefs.FailedPrecondition, match="source gave 999 bytes"):
            await resolver.pusher(ref).push_blob(exact, stream(data[:999]))
        with pytest.raises(errdefs.FailedPrecondition, match="source larger"):
            await resolver.pusher(ref).push_blob(exact, stream(data + b"x"))
        assert await resolver.pusher(ref).push_blob(exact, stream(data)) == "pushed"
        # already there: the source is closed unread
        assert await resolver.pusher(ref).push_blob(exact, stream(data)) == "exists"
        # bytes that do not hash to the digest: the registry refuses them
        lie = blob_desc(os.urandom(1000))
        with pytest.raises(errdefs.InvalidArgument, match="DIGEST_INVALID"):
            await resolver.pusher(ref).push_blob(lie, data)


async def test_manifest_before_its_blobs_is_refused(registry: RegistryProcess) -> None:
    image = imagebuild.build_image([imagebuild.files_layer({"x": os.urandom(64)})])
    async with Resolver() as resolver:
        pusher = resolver.pusher(f"{registry.host}/test/orphan")
        with pytest.raises(errdefs.InvalidArgument, match="MANIFEST_BLOB_UNKNOWN"):
            await pusher.push_manifest(image.target.desc, image.target.data, tag="t")


async def test_not_found(registry: RegistryProcess) -> None:
    async with Resolver() as resolver:
        with pytest.raises(errdefs.NotFound, match="not found"):
            await resolver.resolve(f"{registry.host}/test/missing:nope")
        with pytest.raises(errdefs.NotFound):
            await resolver.fetcher(f"{registry.host}/test/missing").fetch(blob_desc(b"nope"))
        with pytest.raises(errdefs.InvalidArgument, match="object required"):
            await resolver.resolve(f"{registry.host}/test/missing")
        with pytest.raises(errdefs.InvalidArgument, match="invalid sha256 digest"):
            await resolver.resolve(f"{registry.host}/test/missing@sha256:abcdef")


async def test_mirror_fallback_via_hosts_toml(
    registry: RegistryProcess, image: imagebuild.BuiltImage, tmp_path: Path
) -> None:
    from .registry import FakeServer, reply

    mirror = FakeServer(lambda request, method, path: reply(request, 404))
    try:
        directory = tmp_path / "certs.d" / "mirrored.example"
        directory.mkdir(parents=True)
        (directory / "hosts.toml").write_text(
            f'server = "http://{registry.host}"\n'
            f'[host."http://{mirror.host}"]\n  capabilities = ["pull", "resolve"]\n'
            '  header = { x-mirror-token = "abc", x-many = ["1", "2"] }\n'
        )
        async with Resolver() as pusher_side:
            await imagebuild.push_image(pusher_side, f"{registry.host}/library/bb:1", image)
        async with Resolver(HostsConfig(tmp_path / "certs.d")) as resolver:
            name, desc = await resolver.resolve("mirrored.example/library/bb:1")
            assert desc.digest == image.target.desc.digest
            data = await fetch_verified(resolver, name, desc)
            assert json.loads(data)["manifests"]
        paths = [path for _, path, _ in mirror.requests]
        headers = {k.lower(): v for k, v in mirror.requests[0][2].items()}
        assert headers["x-mirror-token"] == "abc"
        assert headers["x-many"] == "1, 2"
        assert headers["user-agent"].startswith("pycontainerd/")
        assert headers["accept"] == ACCEPT_MANIFESTS
        assert paths[0] == "/v2/library/bb/manifests/1?ns=mirrored.example"
        assert any("/manifests/sha256:" in p for p in paths)
    finally:
        mirror.close()
