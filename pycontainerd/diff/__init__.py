"""The differ: apply layer blobs onto snapshot mounts, and produce layers from
the difference of two mounts (containerd ``diff/apply``, ``diff/walking``).

No actors, no RPC: the daemon's ``diff.*`` service calls it from worker threads.
"""

from ._walking import LAYER_GZIP as LAYER_GZIP
from ._walking import LAYER_TAR as LAYER_TAR
from ._walking import LAYER_ZSTD as LAYER_ZSTD
from ._walking import UNCOMPRESSED_LABEL as UNCOMPRESSED_LABEL
from ._walking import ContentAccess as ContentAccess
from ._walking import WalkingDiffer as WalkingDiffer
