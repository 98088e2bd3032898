"""The OCI distribution client: references, hosts, auth, resolve, fetch, push.

containerd's ``remotes/docker`` on httpx (HTTP/1.1 keep-alive, run under trio
through anyio). Store level: no actors; the daemon's transfer service drives
it. A pull, with the content store doing the verifying commit::

    async with Resolver(HostsConfig(certs_dir), credentials) as resolver:
        name, target = await resolver.resolve("registry.example/app:1")
        fetcher = resolver.fetcher(name)
        chosen = await images.resolve_platform(fetcher.fetch_bytes, target, matcher)
        for layer in chosen.manifest.layers:
            async with await fetcher.fetch(layer, offset=already_written) as stream:
                async for chunk in stream:
                    ...  # content writer; commit(size, digest) checks both

and a push, children first::

    pusher = resolver.pusher("registry.example/app:2")
    for desc in push_order(descs):
        if images.is_manifest(desc.media_type) or images.is_index(desc.media_type):
            await pusher.push_manifest(desc, data, tag="2" if desc == target else None)
        else:
            sources = images.distribution_sources(labels, "registry.example")
            await pusher.push_blob(desc, stream, mount_from=sources)
"""

from . import hosts as hosts
from . import reference as reference
from ._auth import Authorizer as Authorizer
from ._auth import Challenge as Challenge
from ._auth import Credentials as Credentials
from ._auth import docker_config_credentials as docker_config_credentials
from ._auth import parse_challenges as parse_challenges
from ._auth import static_credentials as static_credentials
from ._fetcher import BlobStream as BlobStream
from ._fetcher import Fetcher as Fetcher
from ._fetcher import VerifiedStream as VerifiedStream
from ._fetcher import read_all as read_all
from ._fetcher import verify as verify
from ._pusher import Pusher as Pusher
from ._pusher import PushStatus as PushStatus
from ._pusher import push_order as push_order
from ._pusher import push_ref_key as push_ref_key
from ._request import MAX_RETRIES as MAX_RETRIES
from ._request import Transport as Transport
from ._request import default_tls_context as default_tls_context
from ._resolver import ACCEPT_MANIFESTS as ACCEPT_MANIFESTS
from ._resolver import Resolver as Resolver
from .hosts import HostsConfig as HostsConfig
from .hosts import RegistryHost as RegistryHost
