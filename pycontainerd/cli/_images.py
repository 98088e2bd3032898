"""``pyctr images``, shaped like ``ctr images``.

images ACTION
  ls [-q] [FILTER...]                      REF TYPE DIGEST SIZE PLATFORMS LABELS (-q: names)
  pull [--platform P]... [--all-platforms] [--skip-unpack] [--snapshotter S]
       [--plain-http] [--user U[:P]] [--hosts-dir D] [--print-chainid] REF
  push [--platform P]... [--plain-http] [--user U[:P]] [--hosts-dir D] REMOTE [LOCAL]
  rm [--sync] REF...
  tag [--force] SOURCE TARGET...
  check [-q] [--snapshotter S] [FILTER...]  REF TYPE DIGEST STATUS SIZE UNPACKED
  import [--base-name B] [--platform P]... [--all-platforms] [--no-unpack] IN
  export [--platform P]... [--all-platforms] OUT REF...
  usage [--snapshotter S] REF              KEY SIZE INODES of the image's snapshots
  label REF [KEY=VALUE...]                 KEY= removes a label
  mount [--rw] [--snapshotter S] REF TARGET  the image's rootfs on TARGET (a view, or with
                                           --rw an active snapshot), held by a lease TARGET
  unmount TARGET                           unmount, remove the snapshot and the lease

Pull, push, import and export print their progress: a live display on a
terminal, one plain line per item otherwise. Import and export paths are
files on the daemon's host (made absolute here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import IO

from pycontainerd import images as oci
from pycontainerd.api import errdefs
from pycontainerd.api.transfer import Progress
from pycontainerd.client import Client, Image
from pycontainerd.images import platforms

from ._commands import Output, _fmt_labels, _human, _labels

EXPIRE_LABEL = "containerd.io/gc.expire"


class ProgressDisplay:
    """ctr's progress: one line per object, redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], live: bool) -> None:
        self.stream = stream
        self.live = live
        self.rows: dict[str, str] = {}
        self._drawn = 0

    def __call__(self, item: Progress) -> None:
        amount = f"{_human(item.progress)}/{_human(item.total)}" if item.total else ""
        text = f"{item.name or '':<80} {item.event:<16} {amount}".rstrip()
        if not self.live:
            self.stream.write(f"{item.event}\t{item.name}\t{item.progress}\t{item.total}\n")
            self.stream.flush()
            return
        self.rows[item.name or item.event] = text
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F")
        for row in self.rows.values():
            self.stream.write("\x1b[2K" + row + "\n")
        self._drawn = len(self.rows)
        self.stream.flush()


def _display(out: Output) -> Callable[[Progress], None] | None:
    if out.json_mode:

        def as_json(item: Progress) -> None:
            out.json(item)

        return as_json
    return ProgressDisplay(out.stream, out.stream.isatty())


def _platforms(image: Image) -> list[str]:
    """The platforms of an image's manifests (an index's entries, or the config's)."""
    target = image.target
    if oci.is_index(target.media_type):
        index = oci.Index.parse(image.read_blob(target))
        return sorted({oci.platform_label(d) for d in index.manifests})
    try:
        config = image.config()
    except errdefs.NotFound:
        return []
    return [platforms.format(config.platform)]


def _kind(media_type: str) -> str:
    return media_type.rsplit("/", 1)[-1]


def _ls(client: Client, args: argparse.Namespace, out: Output) -> None:
    records = client.images.list(args.filters)
    if args.quiet:
        for rec in records:
            out.line(rec.name)
        return
    if out.json_mode:
        out.json(records)
        return
    rows = []
    for rec in records:
        image = Image(client, rec)
        try:
            size = _human(image.size())
        except errdefs.NotFound:
            size = "-"
        rows.append(
            [
                rec.name,
                rec.target.media_type,
                rec.target.digest,
                size,
                ",".join(_platforms(image)),
                _fmt_labels(dict(rec.labels)) or "-",
            ]
        )
    out.table(["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"], rows)


def _tag(client: Client, args: argparse.Namespace, out: Output) -> None:
    source = client.images.get(args.source)
    for target in args.targets:
        try:
            client.images.create(target, source.target, source.labels)
        except errdefs.AlreadyExists:
            if not args.force:
                raise
            client.images.update(target, target=source.target, paths=["target"])
        out.line(target)


def _check(client: Client, args: argparse.Namespace, out: Output) -> None:
    docs: list[dict[str, str | int | bool]] = []
    for rec in client.images.list(args.filters):
        image = Image(client, rec)
        try:
            size, status = image.size(), "complete"
            for desc in image.walk():
                client.content.info(desc.digest)
        except errdefs.NotFound:
            size, status = 0, "incomplete"
        try:
            unpacked = image.is_unpacked(args.snapshotter)
        except errdefs.NotFound:
            unpacked = False
        docs.append(
            {
                "ref": rec.name,
                "type": rec.target.media_type,
                "digest": rec.target.digest,
                "status": status,
                "size": size,
                "unpacked": unpacked,
            }
        )
    if args.quiet:
        for doc in docs:
            if doc["status"] == "complete":
                out.line(str(doc["ref"]))
    elif out.json_mode:
        out.json(docs)
    else:
        rows = [
            [
                str(d["ref"]),
                str(d["type"]),
                str(d["digest"]),
                str(d["status"]),
                _human(int(d["size"])),
                str(d["unpacked"]).lower(),
            ]
            for d in docs
        ]
        out.table(["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"], rows)


def _usage(client: Client, args: argparse.Namespace, out: Output) -> None:
    image = client.image(args.ref)
    sn = client.snapshots(args.snapshotter)
    usages = [(key, sn.usage(key)) for key in image.rootfs()]
    if out.json_mode:
        out.json({key: u for key, u in usages})
    else:
        rows = [[key, _human(u.size), str(u.inodes)] for key, u in usages]
        out.table(["KEY", "SIZE", "INODES"], rows)


def _label(client: Client, args: argparse.Namespace, out: Output) -> None:
    labels = _labels(args.labels)
    rec = client.images.update(args.ref, labels=labels, paths=[f"labels.{k}" for k in labels])
    if out.json_mode:
        out.json(rec)
    else:
        out.line(_fmt_labels(dict(rec.labels)))


def _mount(client: Client, args: argparse.Namespace, out: Output) -> None:
    """ctr's ``images mount``: a lease named TARGET holds the snapshot TARGET."""
    from pycontainerd.mount import mount_all

    target = os.path.abspath(args.target)
    expire = (datetime.now(UTC) + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.leases.create(target, {EXPIRE_LABEL: expire})
    try:
        image = client.image(args.ref, args.platform)
        if not image.is_unpacked(args.snapshotter):
            image.unpack(args.snapshotter)
        sn = client.snapshots(args.snapshotter)
        sn.lease = target
        top = image.rootfs()[-1]
        mounts = sn.prepare(target, top) if args.rw else sn.view(target, top)
        mount_all(mounts, target)
    except BaseException:
        client.leases.delete(target)
        raise
    out.line(target)


def _unmount(client: Client, args: argparse.Namespace, out: Output) -> None:
    from pycontainerd.mount import unmount_all

    target = os.path.abspath(args.target)
    unmount_all(target)
    with contextlib.suppress(errdefs.NotFound):
        client.snapshots(args.snapshotter).remove(target)
    with contextlib.suppress(errdefs.NotFound):
        client.leases.delete(target)
    out.line(target)


def _transfers(client: Client, args: argparse.Namespace, out: Output) -> None:
    action, progress = args.action, _display(out)
    if action == "pull":
        image = client.pull(
            args.ref,
            platform=args.platform,
            all_platforms=args.all_platforms,
            unpack=not args.skip_unpack,
            snapshotter=args.snapshotter,
            plain_http=args.plain_http,
            hosts_dir=args.hosts_dir,
            user=args.user,
            progress=progress,
        )
        if args.print_chainid:
            out.line(f"image chain ID: {image.rootfs()[-1]}")
    elif action == "push":
        client.push(
            args.remote,
            source_ref=args.local,
            platform=args.platform,
            plain_http=args.plain_http,
            hosts_dir=args.hosts_dir,
            user=args.user,
            progress=progress,
        )
    elif action == "import":
        imported = client.import_(
            args.input,
            base_name=args.base_name,
            platform=args.platform,
            all_platforms=args.all_platforms,
            unpack=not args.no_unpack,
            snapshotter=args.snapshotter,
            progress=progress,
        )
        for image in imported:
            out.line(f"{image.name} {image.target.digest}")
    else:
        client.export(
            args.output,
            args.refs,
            platform=args.platform,
            all_platforms=args.all_platforms,
            progress=progress,
        )


def images(client: Client, args: argparse.Namespace, out: Output) -> None:
    action = args.action
    if action in ("ls", "list"):
        _ls(client, args, out)
    elif action in ("rm", "remove", "delete", "del"):
        for i, ref in enumerate(args.refs):
            client.images.delete(ref, sync=args.sync and i == len(args.refs) - 1)
            out.line(ref)
    elif action == "tag":
        _tag(client, args, out)
    elif action == "check":
        _check(client, args, out)
    elif action == "usage":
        _usage(client, args, out)
    elif action == "label":
        _label(client, args, out)
    elif action == "mount":
        _mount(client, args, out)
    elif action in ("unmount", "umount"):
        _unmount(client, args, out)
    else:
        _transfers(client, args, out)


COMMANDS = {"images": images, "image": images, "i": images}
