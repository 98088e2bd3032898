"""https registries: a CA from hosts.toml, skip_verify, and refusing an unknown CA."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import HostsConfig, Resolver
from tests import imagebuild

from .registry import RegistryProcess


async def test_tls_with_ca_from_hosts_toml(
    tls_registry: tuple[RegistryProcess, Path], tmp_path: Path
) -> None:
    registry, ca = tls_registry
    image = imagebuild.build_image([imagebuild.files_layer({"tls": b"secure\n"})])
    certs = tmp_path / "certs.d"
    (certs / registry.host).mkdir(parents=True)
    shutil.copy(ca, certs / registry.host / "ca.pem")
    (certs / registry.host / "hosts.toml").write_text(
        f'server = "https://{registry.host}"\nca = "ca.pem"\n'
    )
    ref = f"{registry.host}/tls/app:1"
    async with Resolver(HostsConfig(certs)) as resolver:
        assert resolver.hosts(registry.host)[0].ca == (certs / registry.host / "ca.pem",)
        await imagebuild.push_image(resolver, ref, image)
        _, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest

    # Docker's certs.d layout (ca.crt, no hosts.toml) works the same
    (certs / registry.host / "hosts.toml").unlink()
    (certs / registry.host / "ca.pem").rename(certs / registry.host / "ca.crt")
    async with Resolver(HostsConfig(certs)) as resolver:
        _, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest

    # an unknown CA is refused; skip_verify accepts it
    other = tmp_path / "other.d" / registry.host
    other.mkdir(parents=True)
    (other / "hosts.toml").write_text(f'server = "https://{registry.host}"\n')
    async with Resolver(HostsConfig(tmp_path / "other.d"), backoff=0.001) as resolver:
        with pytest.raises(errdefs.Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await resolver.resolve(ref)
    (other / "hosts.toml").write_text(f'server = "https://{registry.host}"\nskip_verify = true\n')
    async with Resolver(HostsConfig(tmp_path / "other.d")) as resolver:
        _, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest
    # the no-config default for a loopback registry tries https first and keeps it
    async with Resolver() as resolver:
        _, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest
        assert resolver.transport.base_url(resolver.hosts(registry.host)[0]).startswith("https")
