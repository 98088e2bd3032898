"""The arguments of ``pyctr snapshots`` (kept apart from the commands so that
building the parser imports nothing heavy)."""

from __future__ import annotations

import os
from typing import Any

SNAPSHOTTER_ENV = "PYCONTAINERD_SNAPSHOTTER"


def add_parsers(sub: Any) -> None:
    """Register ``snapshots`` (alias ``snapshot``) on ``pyctr``'s subparsers."""
    sn = sub.add_parser("snapshots", aliases=["snapshot"], help="manage snapshots")
    sn.add_argument(
        "--snapshotter",
        default=os.environ.get(SNAPSHOTTER_ENV) or "overlayfs",
        help=f"the snapshotter (${SNAPSHOTTER_ENV}, default overlayfs)",
    )
    sn_sub = sn.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sn_sub.add_parser("ls", aliases=["list"], help="list snapshots")
    ls.add_argument("filters", nargs="*", metavar="FILTER")
    for name, what in (("prepare", "an active snapshot"), ("view", "a read-only view")):
        p = sn_sub.add_parser(name, help=f"create {what} of PARENT")
        p.add_argument("--target", default="", help="print the mount commands for TARGET")
        p.add_argument("--mounts", action="store_true", help="print the mount commands")
        p.add_argument("key")
        p.add_argument("parent", nargs="?", default="")
    mo = sn_sub.add_parser("mounts", aliases=["m", "mount"], help="mount commands for KEY")
    mo.add_argument("target")
    mo.add_argument("key")
    co = sn_sub.add_parser("commit", help="commit the active snapshot KEY as NAME")
    co.add_argument("name")
    co.add_argument("key")
    rm = sn_sub.add_parser("rm", aliases=["delete", "del", "remove"], help="remove snapshots")
    rm.add_argument("keys", nargs="+", metavar="KEY")
    us = sn_sub.add_parser("usage", help="disk usage of snapshots (all without KEY)")
    us.add_argument("-b", action="store_true", dest="bytes", help="sizes in bytes")
    us.add_argument("keys", nargs="*", metavar="KEY")
    sn_sub.add_parser("tree", help="the snapshots as a tree of parents")
    inf = sn_sub.add_parser("info", help="a snapshot as JSON")
    inf.add_argument("key")
    lb = sn_sub.add_parser("label", help="set labels of a snapshot (KEY= removes one)")
    lb.add_argument("key")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    sn_sub.add_parser("cleanup", help="reclaim the space of removed snapshots")
