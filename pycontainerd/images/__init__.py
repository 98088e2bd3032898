"""Images as pure logic: media types, OCI structures, platforms, chain IDs, GC labels.

Nothing here does IO: callers pass blob bytes in (from the content store or a
registry) and get descriptors, platforms and labels out. containerd's
``images``, ``platforms`` and ``image-spec/identity`` packages.
"""

from . import platforms as platforms
from ._image import MAX_INDEX_DEPTH as MAX_INDEX_DEPTH
from ._image import PlatformImage as PlatformImage
from ._image import candidates as candidates
from ._image import chain_id as chain_id
from ._image import chain_ids as chain_ids
from ._image import child_labels as child_labels
from ._image import children as children
from ._image import distribution_source_key as distribution_source_key
from ._image import distribution_source_label as distribution_source_label
from ._image import distribution_sources as distribution_sources
from ._image import is_child_kind as is_child_kind
from ._image import matches_platform as matches_platform
from ._image import merge_distribution_source as merge_distribution_source
from ._image import platform_label as platform_label
from ._image import resolve_platform as resolve_platform
from ._image import select_manifest as select_manifest
from ._mediatypes import *  # noqa: F403 - the media type constants and predicates
from ._oci import MAX_MANIFEST_SIZE as MAX_MANIFEST_SIZE
from ._oci import ContainerConfig as ContainerConfig
from ._oci import Descriptor as Descriptor
from ._oci import History as History
from ._oci import ImageConfig as ImageConfig
from ._oci import Index as Index
from ._oci import Manifest as Manifest
from ._oci import parse_platform as parse_platform
from ._oci import platform_to_dict as platform_to_dict
from ._oci import validate_digest as validate_digest
from .platforms import MatchComparer as MatchComparer
from .platforms import Matcher as Matcher
from .platforms import PlatformMatcher as PlatformMatcher
