"""Images as the Go client has them: ``client.pull`` → :class:`Image`.

    with Client() as c:
        img = c.pull("127.0.0.1:5000/app:1", plain_http=True, progress=print)
        img.config().config.cmd        # ("/bin/sh",)
        img.rootfs()                   # chain IDs = the snapshot names
        img.unpack("native")           # client-side, like Go's Image.Unpack
        c.push("127.0.0.1:5000/other:1", source_ref=img.name, plain_http=True)
        c.export("/tmp/app.tar", [img.name])
        c.import_("/tmp/app.tar")

Pull, push, import and export are ``transfer.*`` jobs in the daemon, run
under a lease this client holds while it waits (the Go client's
``WithLease``); progress items reach ``progress`` as they stream.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pycontainerd import images
from pycontainerd.api import convert, errdefs
from pycontainerd.api import images as api_images
from pycontainerd.api import transfer as api
from pycontainerd.api.content_values import Info
from pycontainerd.images import platforms

if TYPE_CHECKING:
    from ._session import Session

ProgressCallback = Callable[[api.Progress], None]
REF_LABEL = "containerd.io/snapshot.ref"


def _descriptor(d: images.Descriptor, *, detect: bool = False) -> dict[str, Any]:
    """A wire descriptor; ``detect``: Docker's plain ``diff.tar`` sent without a
    media type, so that the differ detects its compression as containerd does."""
    plain = d.media_type in (
        images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
        images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN,
    )
    return {
        "media_type": "" if detect and plain else d.media_type,
        "digest": d.digest,
        "size": d.size,
        "annotations": dict(d.annotations),
    }


class Image:
    """A local image and the client it came through (the Go client's ``Image``).

    Args:
        client: the client.
        image: the image record.
        platform: the platform its methods look at (default: the host's).
    """

    def __init__(self, client: Session, image: api_images.Image, platform: str = "") -> None:
        self.client = client
        self.record = image
        self.matcher = platforms.only(
            platforms.parse(platform) if platform else platforms.default_platform()
        )

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def target(self) -> images.Descriptor:
        return images.Descriptor.from_api(self.record.target)

    @property
    def labels(self) -> Mapping[str, str]:
        return self.record.labels

    def __repr__(self) -> str:
        return f"<Image {self.name!r} {self.record.target.digest}>"

    def read_blob(self, desc: images.Descriptor) -> bytes:
        """A manifest, index or config of this image, whole."""
        if desc.size > images.MAX_MANIFEST_SIZE:
            raise errdefs.ResourceExhausted(f"{desc.digest}: {desc.size} bytes")
        return b"".join(self.client.content.read(desc.digest))

    def walk(self) -> Iterator[images.Descriptor]:
        """The descriptors of the platform's image, from the target down (``images.Walk``)."""
        todo = [self.target]
        while todo:
            desc = todo.pop(0)
            yield desc
            if images.is_index(desc.media_type):
                index = images.Index.parse(self.read_blob(desc))
                todo.extend(images.candidates(index, self.matcher)[:1])
            elif images.is_manifest(desc.media_type):
                todo.extend(images.children(desc, self.read_blob(desc)))

    def manifest(self) -> tuple[images.Descriptor, images.Manifest]:
        """The platform's manifest.

        Raises:
            errdefs.NotFound: "no match for platform in manifest", or missing content.
        """
        for desc in self.walk():
            if images.is_manifest(desc.media_type):
                return desc, images.Manifest.parse(self.read_blob(desc))
        raise errdefs.NotFound(f"image {self.name!r}: no match for platform in manifest")

    def config(self) -> images.ImageConfig:
        """The platform's image configuration."""
        _, manifest = self.manifest()
        return images.ImageConfig.parse(self.read_blob(manifest.config))

    def rootfs(self) -> list[str]:
        """The chain IDs of its layers: the names of its unpacked snapshots (``RootFS``)."""
        return images.chain_ids(self.config().diff_ids)

    def size(self) -> int:
        """Bytes of the target, the platform's manifest, config and layers (``Size``)."""
        return sum(d.size for d in self.walk())

    def is_unpacked(self, snapshotter: str = "overlayfs") -> bool:
        """Whether the top snapshot of its chain exists in ``snapshotter``."""
        chain = self.rootfs()
        try:
            self.client.snapshots(snapshotter).stat(chain[-1])
        except errdefs.NotFound:
            return False
        return True

    def unpack(self, snapshotter: str = "overlayfs") -> list[str]:
        """Apply its layers into ``snapshotter`` (Go's ``Image.Unpack``); returns the chain IDs.

        Runs here, over ``snapshots.*`` and ``diff.apply``, under a lease.

        Raises:
            errdefs.DataLoss: "wrong diff id calculated on extraction".
        """
        _, manifest = self.manifest()
        config = images.ImageConfig.parse(self.read_blob(manifest.config))
        diff_ids = list(config.diff_ids)
        if len(diff_ids) != len(manifest.layers):
            raise errdefs.InvalidArgument("mismatched image rootfs and manifest layers")
        chain = images.chain_ids(diff_ids)
        with self.client.with_lease() as lease:
            sn = self.client.snapshots(snapshotter)
            sn.lease = lease
            parent = ""
            for i, layer in enumerate(manifest.layers):
                try:
                    sn.stat(chain[i])
                except errdefs.NotFound:
                    self._apply(sn, layer, diff_ids[i], chain[i], parent, lease)
                parent = chain[i]
            if chain:
                self._label(
                    manifest.config.digest,
                    f"containerd.io/gc.ref.snapshot.{snapshotter}",
                    chain[-1],
                )
        return chain

    def _apply(
        self,
        sn: Any,
        layer: images.Descriptor,
        diff_id: str,
        chain_id: str,
        parent: str,
        lease: str,
    ) -> None:
        key = f"extract-{time.time_ns()}-{secrets.token_urlsafe(6)} {chain_id}"
        labels = {REF_LABEL: chain_id}
        try:
            mounts = sn.prepare(key, parent, labels)
        except errdefs.AlreadyExists:
            return
        done = False
        try:
            resp = self.client.conn.call(
                "diff.apply",
                {
                    "diff": _descriptor(layer, detect=True),
                    "mounts": [convert.unstructure(m) for m in mounts],
                },
                namespace=self.client.namespace,
                lease=lease,
            )
            applied = resp["applied"]["digest"]
            if applied != diff_id:
                raise errdefs.DataLoss(f"wrong diff id calculated on extraction {diff_id!r}")
            try:
                sn.commit(chain_id, key, labels)
                done = True
            except errdefs.AlreadyExists:
                pass
            self._label(layer.digest, images.LABEL_UNCOMPRESSED, diff_id)
        finally:
            if not done:
                with contextlib.suppress(errdefs.ErrdefsError):
                    sn.remove(key)

    def _label(self, digest: str, key: str, value: str) -> None:
        info = self.client.content.info(digest)
        self.client.content.update(
            Info(
                digest=digest,
                size=info.size,
                created_at=info.created_at,
                updated_at=info.updated_at,
                labels={key: value},
            ),
            [f"labels.{key}"],
        )


def run_transfer(
    client: Session,
    method: str,
    request: dict[str, Any],
    progress: ProgressCallback | None,
) -> Any:
    """Call a ``transfer.*`` method under a lease; progress items to ``progress``."""
    with client.with_lease() as lease:
        stream = client.conn.stream(method, request, namespace=client.namespace, lease=lease)
        with stream:
            for item in stream:
                if progress is not None:
                    progress(convert.structure(item, api.Progress))
        return stream.result


def auth_map(user: str | tuple[str, str] | None) -> dict[str, str] | None:
    """``user:password`` (or a pair) as the request's ``auth``."""
    if user is None:
        return None
    if isinstance(user, tuple):
        username, password = user
    else:
        username, _, password = user.partition(":")
    return {"username": username, "password": password}


def platform_list(platform: str | Sequence[str] | None) -> list[str]:
    if platform is None:
        return []
    return [platform] if isinstance(platform, str) else list(platform)
