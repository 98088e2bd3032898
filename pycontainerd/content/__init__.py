"""The local content-addressed store (no actors, no RPC)."""

from ._local import Info as Info
from ._local import LocalStore as LocalStore
from ._local import Status as Status
from ._local import Writer as Writer
from ._local import check_digest as check_digest
