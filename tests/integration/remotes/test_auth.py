"""Basic (htpasswd) and bearer-token auth against real registries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from pycontainerd.api import errdefs
from pycontainerd.remotes import (
    Authorizer,
    Resolver,
    docker_config_credentials,
    read_all,
    static_credentials,
    verify,
)
from tests import imagebuild

from .conftest import PASSWORD, USER
from .registry import RegistryProcess, TokenServer


async def test_basic_auth(basic_registry: RegistryProcess) -> None:
    image = imagebuild.build_image([imagebuild.files_layer({"basic": b"auth\n"})])
    ref = f"{basic_registry.host}/private/app:1"
    async with Resolver() as anonymous:
        with pytest.raises(errdefs.PermissionDenied, match="requires credentials"):
            await anonymous.resolve(ref)
    async with Resolver(credentials=(USER, "wrong")) as wrong:
        with pytest.raises(errdefs.PermissionDenied):
            await wrong.resolve(ref)
    async with Resolver(credentials=(USER, PASSWORD)) as resolver:
        target = await imagebuild.push_image(resolver, ref, image)
        name, desc = await resolver.resolve(ref)
        assert desc.digest == target.digest
        layer = image.layers[0].desc
        stream = await resolver.fetcher(name).fetch(layer)
        async with verify(stream, layer) as checked:
            assert await read_all(checked, 1 << 20) == image.layers[0].data


async def test_bearer_token_auth(
    token_registry: RegistryProcess, token_server: TokenServer, tmp_path: Path
) -> None:
    image = imagebuild.build_image([imagebuild.files_layer({"bearer": b"token\n"})])
    ref = f"{token_registry.host}/secure/app:1"
    async with Resolver() as anonymous:
        with pytest.raises(errdefs.PermissionDenied, match="token request denied"):
            await anonymous.resolve(ref)
    assert token_server.grants[-1][:2] == ("GET", "anonymous")

    async with Resolver(credentials=(USER, "wrong")) as wrong:
        with pytest.raises(errdefs.PermissionDenied):
            await wrong.resolve(ref)
    # POST with the password was refused (401), then GET with Basic was tried
    assert [g[:2] for g in token_server.grants[-2:]] == [("POST", "password"), ("GET", "basic")]

    token_server.grants.clear()
    async with Resolver(credentials=(USER, PASSWORD)) as resolver:
        await imagebuild.push_image(resolver, ref, image)
        push_grants = list(token_server.grants)
        assert push_grants[0][:2] == ("POST", "password")
        assert "repository:secure/app:pull,push" in push_grants[0][2]
        # one token per scope set, reused for every blob and the manifest
        assert len(push_grants) == 1
        name, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest
        stream = await resolver.fetcher(name).fetch(image.configs[0].desc)
        async with verify(stream, image.configs[0].desc) as checked:
            assert await read_all(checked, 1 << 20) == image.configs[0].data
        pull_scopes = {tuple(g[2]) for g in token_server.grants[1:]}
        assert ("repository:secure/app:pull",) in pull_scopes
        assert len(token_server.grants) == 2

    # credentials from a docker config.json
    config = tmp_path / "config.json"
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    async with Resolver(credentials=docker_config_credentials(config)) as resolver:
        _, desc = await resolver.resolve(ref)
        assert desc.digest == image.target.desc.digest


async def test_token_cache_expires(
    token_registry: RegistryProcess, token_server: TokenServer
) -> None:
    # the Authorizer alone, on a fake clock, against the real registry's challenge
    now = [1000.0]
    async with httpx.AsyncClient() as client:
        challenge = await client.get(f"http://{token_registry.host}/v2/")
        assert challenge.status_code == 401
        authorizer = Authorizer(client, static_credentials(USER, PASSWORD), clock=lambda: now[0])
        assert await authorizer.authorize(token_registry.host, ["repository:a:pull"]) is None
        authorizer.add_responses(token_registry.host, challenge, authorized=False)
        token_server.grants.clear()
        first = await authorizer.authorize(token_registry.host, ["repository:a:pull"])
        assert first is not None and first.startswith("Bearer ")
        assert await authorizer.authorize(token_registry.host, ["repository:a:pull"]) == first
        assert len(token_server.grants) == 1
        # another scope set is another token
        await authorizer.authorize(token_registry.host, ["repository:b:pull"])
        assert len(token_server.grants) == 2
        # past expires_in the token is fetched again, and the registry accepts it
        now[0] += token_server.expires_in + 1
        fresh = await authorizer.authorize(token_registry.host, ["repository:a:pull"])
        assert len(token_server.grants) == 3
        assert fresh is not None
        response = await client.get(
            f"http://{token_registry.host}/v2/a/tags/list", headers={"Authorization": fresh}
        )
        assert response.status_code in (200, 404)  # authorized: the repo may not exist
        # the same challenge again after we sent our token: access denied, not a loop
        with pytest.raises(errdefs.PermissionDenied):
            authorizer.add_responses(token_registry.host, challenge, authorized=True)
