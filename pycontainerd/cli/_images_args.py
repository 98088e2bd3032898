"""The arguments of ``pyctr images`` (apart from the commands: building the
parser imports nothing heavy). Order and flags as ``ctr images``."""

from __future__ import annotations

import os
from typing import Any

SNAPSHOTTER_ENV = "PYCONTAINERD_SNAPSHOTTER"


def _registry_flags(p: Any) -> None:
    p.add_argument("--plain-http", action="store_true", help="talk plain http to the registry")
    p.add_argument("--user", "-u", default=None, help="USER[:PASSWORD] for the registry")
    p.add_argument("--hosts-dir", default="", help="a certs.d directory of hosts.toml files")
    p.add_argument(
        "--platform", action="append", default=[], help="platform (os/arch[/variant]); repeatable"
    )


def _snapshotter(p: Any) -> None:
    p.add_argument(
        "--snapshotter",
        default=os.environ.get(SNAPSHOTTER_ENV) or "overlayfs",
        help=f"the snapshotter to unpack into (${SNAPSHOTTER_ENV}, default overlayfs)",
    )


def add_parsers(sub: Any) -> None:
    """Register ``images`` (aliases ``image``, ``i``) on ``pyctr``'s subparsers."""
    im = sub.add_parser("images", aliases=["image", "i"], help="manage images")
    im_sub = im.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = im_sub.add_parser("ls", aliases=["list"], help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only the image names")
    ls.add_argument("filters", nargs="*", metavar="FILTER")

    pull = im_sub.add_parser("pull", help="pull an image from a registry (and unpack it)")
    _registry_flags(pull)
    _snapshotter(pull)
    pull.add_argument("--all-platforms", action="store_true", help="pull every platform")
    pull.add_argument("--skip-unpack", action="store_true", help="do not unpack the layers")
    pull.add_argument("--print-chainid", action="store_true", help="print the image's chain ID")
    pull.add_argument("ref")

    push = im_sub.add_parser("push", help="push a local image to a registry")
    _registry_flags(push)
    push.add_argument("remote", help="the reference to push to")
    push.add_argument("local", nargs="?", default="", help="the local image (default REMOTE)")

    rm = im_sub.add_parser("rm", aliases=["remove", "delete", "del"], help="remove images")
    rm.add_argument("--sync", action="store_true", help="collect garbage before returning")
    rm.add_argument("refs", nargs="+", metavar="REF")

    tag = im_sub.add_parser("tag", help="name an image's target anew")
    tag.add_argument("--force", action="store_true", help="replace an existing target name")
    tag.add_argument("source")
    tag.add_argument("targets", nargs="+", metavar="TARGET")

    check = im_sub.add_parser("check", help="whether images' content is complete and unpacked")
    _snapshotter(check)
    check.add_argument("-q", "--quiet", action="store_true", help="print only the complete names")
    check.add_argument("filters", nargs="*", metavar="FILTER")

    imp = im_sub.add_parser("import", help="import an OCI layout or docker-save tarball")
    _snapshotter(imp)
    imp.add_argument("--base-name", default="", help="name images tagged only by ref.name")
    imp.add_argument("--platform", action="append", default=[], help="platform; repeatable")
    imp.add_argument("--all-platforms", action="store_true", help="import every platform")
    imp.add_argument("--no-unpack", action="store_true", help="do not unpack the images")
    imp.add_argument("input", metavar="IN")

    exp = im_sub.add_parser("export", help="export images to an OCI layout tarball")
    exp.add_argument("--platform", action="append", default=[], help="platform; repeatable")
    exp.add_argument("--all-platforms", action="store_true", help="export every platform")
    exp.add_argument("output", metavar="OUT")
    exp.add_argument("refs", nargs="+", metavar="REF")

    usage = im_sub.add_parser("usage", help="disk usage of an image's snapshots")
    _snapshotter(usage)
    usage.add_argument("ref")

    mnt = im_sub.add_parser("mount", help="mount an image's rootfs on TARGET (unpacked first)")
    _snapshotter(mnt)
    mnt.add_argument("--platform", default="", help="the image's platform (default: the host's)")
    mnt.add_argument("--rw", action="store_true", help="an active (writable) snapshot, not a view")
    mnt.add_argument("ref")
    mnt.add_argument("target")

    umnt = im_sub.add_parser("unmount", aliases=["umount"], help="unmount TARGET and remove it")
    _snapshotter(umnt)
    umnt.add_argument("target")

    label = im_sub.add_parser("label", help="set labels of an image (KEY= removes one)")
    label.add_argument("ref")
    label.add_argument("labels", nargs="*", metavar="KEY=VALUE")
