"""What we build and push is what real tools (umoci, skopeo) read, and the reverse."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pycontainerd import images
from pycontainerd.images import platforms
from pycontainerd.remotes import Resolver, read_all, verify
from tests import imagebuild
from tests.requirements import require

from .registry import RegistryProcess


def tool(name: str) -> str:
    path = require(name, name)
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def test_umoci_unpacks_the_oci_layout(tmp_path: Path) -> None:
    umoci = tool("umoci")
    image = imagebuild.busybox_image(extra_files={"etc/motd": b"from pycontainerd\n"})
    layout = image.write_oci_layout(tmp_path / "layout", tag="v1")
    assert "v1" in run(umoci, "ls", "--layout", str(layout)).split()
    bundle = tmp_path / "bundle"
    run(umoci, "unpack", "--image", f"{layout}:v1", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin/busybox").read_bytes() == imagebuild.BUSYBOX.read_bytes()
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    assert (rootfs / "etc/motd").read_text() == "from pycontainerd\n"
    assert os.stat(rootfs / "tmp").st_mode & 0o7777 == 0o1777
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/sh"]


async def test_skopeo_copies_what_we_push_and_we_pull_what_skopeo_pushes(
    registry: RegistryProcess, image: imagebuild.BuiltImage, tmp_path: Path
) -> None:
    skopeo = tool("skopeo")
    ref = f"{registry.host}/interop/ours:1"
    async with Resolver() as resolver:
        await imagebuild.push_image(resolver, ref, image)
    raw = run(skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{ref}")
    assert raw.encode() == image.target.data
    # skopeo verifies every digest while copying all platforms out
    out = tmp_path / "copied"
    run(skopeo, "copy", "--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:copied")
    index = images.Index.parse((out / "index.json").read_bytes())
    assert index.manifests[0].digest == image.target.desc.digest

    # and the reverse: skopeo pushes an OCI layout, we resolve and fetch it
    single = imagebuild.busybox_image(compression="zstd", extra_files={"z": b"zstd\n"})
    layout = single.write_oci_layout(tmp_path / "layout", tag="z")
    theirs = f"{registry.host}/interop/theirs:z"
    run(skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:z", f"docker://{theirs}")
    async with Resolver() as resolver:
        name, desc = await resolver.resolve(theirs)
        stream = await resolver.fetcher(name).fetch(desc)
        async with verify(stream, desc) as checked:
            manifest = images.Manifest.parse(await read_all(checked, 1 << 20))
        config_stream = await resolver.fetcher(name).fetch(manifest.config)
        async with verify(config_stream, manifest.config) as checked:
            config = images.ImageConfig.parse(await read_all(checked, 1 << 20))
        assert platforms.only(platforms.default_platform()).match(config.platform)
        assert config.diff_ids == tuple(
            imagebuild.digest_of(imagebuild.decompress(single.blob(layer.digest)))
            for layer in manifest.layers
        )
        assert [layer.media_type for layer in manifest.layers] == [
            images.MEDIA_TYPE_OCI_LAYER_ZSTD
        ] * 2
