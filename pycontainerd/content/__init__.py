"""The local content-addressed store (no actors, no RPC) and the content interfaces."""

from ._copy import copy as copy
from ._interfaces import Info as Info
from ._interfaces import Ingester as Ingester
from ._interfaces import IngestManager as IngestManager
from ._interfaces import Manager as Manager
from ._interfaces import Provider as Provider
from ._interfaces import ReaderAt as ReaderAt
from ._interfaces import Status as Status
from ._interfaces import Store as Store
from ._interfaces import Writer as Writer
from ._local import CHUNK as CHUNK
from ._local import FileReaderAt as FileReaderAt
from ._local import LocalStore as LocalStore
from ._local import LocalWriter as LocalWriter
from ._local import MemoryLabelStore as MemoryLabelStore
from ._local import RWLock as RWLock
from ._local import check_digest as check_digest
from ._local import info_fields as info_fields
from ._local import resource_exhausted as resource_exhausted
