"""``pyctr snapshots``, shaped like ``ctr snapshots``.

snapshots [--snapshotter NAME] ACTION     (default $PYCONTAINERD_SNAPSHOTTER or overlayfs)
  ls [FILTER...]                          KEY PARENT KIND
  prepare [--target T] [--mounts] KEY [PARENT]
  view [--target T] [--mounts] KEY [PARENT]
                                          with --mounts (or --target), print the
                                          mount commands, as ``mounts`` does
  mounts TARGET KEY                       ``mount -t TYPE SOURCE TARGET -o OPTIONS``
  commit NAME KEY
  rm KEY...
  usage [-b] [KEY...]                     KEY SIZE INODES (every snapshot without KEY)
  tree                                    each snapshot under its parent, indented
  info KEY                                the snapshot as JSON
  label KEY [KEY=VALUE...]                KEY= removes a label
  cleanup                                 reclaim the space of removed snapshots

Like ctr's, the snapshots ``prepare``, ``view`` and ``commit`` create carry
``containerd.io/gc.root``, so the garbage collector leaves them alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.snapshot_values import Info
from pycontainerd.api.types import Mount
from pycontainerd.client import Client

from ._commands import Output, _fmt_labels, _human, _labels

GC_ROOT = "containerd.io/gc.root"


def _root_label() -> dict[str, str]:
    return {GC_ROOT: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def info_doc(info: Info) -> dict[str, object]:
    """A snapshot as a JSON document (the kind as its wire string)."""
    return {
        "name": info.name,
        "parent": info.parent,
        "kind": info.kind.value,
        "labels": dict(info.labels),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    }


def _join(*parts: str) -> str:
    """Go's ``filepath.Join``: empty parts ignored, the result cleaned, ``""`` if all empty."""
    kept = [p for p in parts if p]
    return os.path.normpath(os.path.join(*kept)) if kept else ""


def mount_commands(target: str, mounts: Sequence[Mount]) -> list[str]:
    """ctr's ``printMounts``: one ``mount`` command line per mount."""
    return [
        f"mount -t {m.type} {m.source} {_join(target, m.target)} -o {','.join(m.options)}"
        for m in mounts
    ]


def tree_lines(infos: Sequence[Info]) -> list[str]:
    """ctr's ``snapshots tree``: roots flush left, children ``\\_`` two spaces deeper."""
    children: dict[str, list[str]] = {}
    names = {i.name for i in infos}
    roots: list[str] = []
    for info in sorted(infos, key=lambda i: i.name):
        if info.parent and info.parent in names:
            children.setdefault(info.parent, []).append(info.name)
        else:
            roots.append(info.name)
    lines: list[str] = []

    def visit(name: str, level: int) -> None:
        prefix = "  " * level + ("\\_" if level else "")
        lines.append(f"{prefix} {name}")
        for child in children.get(name, []):
            visit(child, level + 1)

    for root in roots:
        visit(root, 0)
    return lines


def _create(client: Client, args: argparse.Namespace, out: Output, sn_name: str) -> None:
    sn = client.snapshots(sn_name)
    create = sn.prepare if args.action == "prepare" else sn.view
    mounts = create(args.key, args.parent, _root_label())
    if out.json_mode:
        out.json(mounts)
    elif args.mounts or args.target:
        for line in mount_commands(args.target, mounts):
            out.line(line)


def snapshots(client: Client, args: argparse.Namespace, out: Output) -> None:
    sn, action = client.snapshots(args.snapshotter), args.action
    if action in ("ls", "list"):
        infos = list(sn.walk(args.filters))
        if out.json_mode:
            out.json([info_doc(i) for i in infos])
        else:
            rows = [[i.name, i.parent, i.kind.name.capitalize()] for i in infos]
            out.table(["KEY", "PARENT", "KIND"], rows)
    elif action in ("prepare", "view"):
        _create(client, args, out, args.snapshotter)
    elif action in ("mounts", "m", "mount"):
        mounts = sn.mounts(args.key)
        if out.json_mode:
            out.json(mounts)
        else:
            for line in mount_commands(args.target, mounts):
                out.line(line)
    elif action == "commit":
        sn.commit(args.name, args.key, _root_label())
    elif action in ("rm", "delete", "del", "remove"):
        failed: errdefs.ErrdefsError | None = None
        for key in args.keys:
            try:
                sn.remove(key)
            except errdefs.ErrdefsError as exc:
                failed = exc
                out.stream.flush()
                print(f"pyctr: {key}: {exc.code}: {exc.message}", file=sys.stderr)
        if failed is not None:
            raise failed
    elif action == "usage":
        keys = args.keys or [i.name for i in sn.walk()]
        usages = [(key, sn.usage(key)) for key in keys]
        if out.json_mode:
            out.json({key: u for key, u in usages})
        else:
            size = (lambda n: str(n)) if args.bytes else _human
            rows = [[key, size(u.size), str(u.inodes)] for key, u in usages]
            out.table(["KEY", "SIZE", "INODES"], rows)
    elif action == "tree":
        infos = list(sn.walk())
        if out.json_mode:
            out.json([info_doc(i) for i in infos])
        else:
            for line in tree_lines(infos):
                out.line(line)
    elif action == "info":
        out.json(info_doc(sn.stat(args.key)))
    elif action == "label":
        labels = _labels(args.labels)
        info = sn.stat(args.key)
        updated = sn.update(attrs.evolve(info, labels=labels), [f"labels.{k}" for k in labels])
        if out.json_mode:
            out.json(info_doc(updated))
        else:
            out.line(_fmt_labels(dict(updated.labels)))
    elif action == "cleanup":
        sn.cleanup()


COMMANDS = {"snapshots": snapshots, "snapshot": snapshots}
