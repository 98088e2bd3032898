"""OCI layer archives: compression, apply (unpack) and diff (containerd ``archive/``).

Synchronous, streaming code with no actors and no RPC: the daemon's diff service
calls it from worker threads, reading layer blobs from the content store and
writing into mounted snapshots. Unpacking a blob::

    with store.reader_at(digest) as ra, decompress_stream(SequentialReader(ra)) as tar:
        result = apply_layer(tar, Path(mountpoint))   # result.diff_id == "sha256:..."

Producing one (the walking differ)::

    result = compress(lambda w: write_diff(lower, upper, w), blob, "gzip")
"""

from ._apply import NAME_MAX as NAME_MAX
from ._apply import OVERLAY_OPAQUE_XATTR as OVERLAY_OPAQUE_XATTR
from ._apply import PATH_MAX as PATH_MAX
from ._apply import WHITEOUT_OPAQUE as WHITEOUT_OPAQUE
from ._apply import WHITEOUT_PREFIX as WHITEOUT_PREFIX
from ._apply import ApplyResult as ApplyResult
from ._apply import ConvertWhiteout as ConvertWhiteout
from ._apply import apply_layer as apply_layer
from ._apply import clean_name as clean_name
from ._changes import Change as Change
from ._changes import ChangeKind as ChangeKind
from ._changes import changes as changes
from ._changes import overlay_upper_changes as overlay_upper_changes
from ._changes import read_xattrs as read_xattrs
from ._changes import same_file as same_file
from ._compression import MEDIA_TYPES as MEDIA_TYPES
from ._compression import Compression as Compression
from ._compression import DecompressedStream as DecompressedStream
from ._compression import RandomAccess as RandomAccess
from ._compression import SequentialReader as SequentialReader
from ._compression import compress_stream as compress_stream
from ._compression import decompress_stream as decompress_stream
from ._compression import detect as detect
from ._compression import media_type_compression as media_type_compression
from ._diff import DiffResult as DiffResult
from ._diff import compress as compress
from ._diff import write_changes as write_changes
from ._diff import write_diff as write_diff
from ._diff import write_overlay_diff as write_overlay_diff
from ._readable import Readable as Readable
from ._tarstream import TarEntry as TarEntry
from ._tarstream import TarReader as TarReader
