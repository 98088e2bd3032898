"""Transfers: pull, push, import, export and unpack of images (containerd's
``core/transfer/local``, ``pkg/unpack``, ``images/archive``).

Async orchestration over the synchronous stores, run in the daemon: every
store call goes to a worker thread, every job holds a lease while it runs and
reports containerd ``Progress`` items. No actors here: the daemon's transfer
service builds :class:`Stores` for the call's namespace and awaits these::

    stores = Stores(namespace="default", runner=runner, content=content_for,
                    snapshotter=snapshotter_for, differ=differ)
    async with Resolver(HostsConfig(certs_dir), ("user", "pw")) as resolver:
        image = await pull(stores, resolver, "registry.example/app:1",
                           matcher=platforms.only(platforms.default_platform()),
                           progress=send)
    await export(stores, Path("/tmp/app.tar"), [image.name], matcher=...)
"""

from ._archive import ANNOTATION_IMAGE_NAME as ANNOTATION_IMAGE_NAME
from ._archive import ANNOTATION_REF_NAME as ANNOTATION_REF_NAME
from ._job import DEFAULT_SNAPSHOTTER as DEFAULT_SNAPSHOTTER
from ._job import LEASE_EXPIRY as LEASE_EXPIRY
from ._job import Job as Job
from ._job import ProgressFn as ProgressFn
from ._job import Stores as Stores
from ._job import open_job as open_job
from ._local import export as export
from ._local import import_ as import_
from ._local import unpack as unpack
from ._remote import PlatformManifest as PlatformManifest
from ._remote import pull as pull
from ._remote import push as push
from ._remote import walk as walk
from ._unpack import GC_REF_SNAPSHOT as GC_REF_SNAPSHOT
from ._unpack import REF_LABEL as REF_LABEL
from ._unpack import unpack_image as unpack_image
