"""The OCI distribution client: references, hosts, auth, resolve, fetch, push.

containerd's ``remotes/docker`` on httpx (HTTP/1.1 keep-alive, run under trio
through anyio). Stores-level: no actors; the daemon's transfer service drives
it. Entry point: :class:`Resolver`.
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
from ._resolver import ACCEPT_MANIFESTS as ACCEPT_MANIFESTS
from ._resolver import Resolver as Resolver
from .hosts import HostsConfig as HostsConfig
from .hosts import RegistryHost as RegistryHost
