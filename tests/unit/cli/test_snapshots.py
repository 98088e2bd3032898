"""``pyctr snapshots`` output helpers: ctr's mount command lines and tree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pycontainerd.api.types import Mount
from pycontainerd.cli import _parser
from pycontainerd.cli._snapshots import info_doc, mount_commands, tree_lines
from pycontainerd.snapshots import Info, Kind

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _info(name: str, parent: str = "", kind: Kind = Kind.COMMITTED) -> Info:
    return Info(kind=kind, name=name, parent=parent, created_at=NOW, updated_at=NOW)


def test_mount_commands_join_targets_like_go() -> None:
    mounts = [
        Mount(type="overlay", source="overlay", options=["index=off", "lowerdir=/a:/b"]),
        Mount(type="bind", source="/src", target="sub/dir", options=["ro", "rbind"]),
    ]
    assert mount_commands("/mnt/x/", mounts) == [
        "mount -t overlay overlay /mnt/x -o index=off,lowerdir=/a:/b",
        "mount -t bind /src /mnt/x/sub/dir -o ro,rbind",
    ]
    assert mount_commands("", mounts[:1]) == [
        "mount -t overlay overlay  -o index=off,lowerdir=/a:/b"
    ]


def test_tree_indents_children_under_parents() -> None:
    infos = [
        _info("l2", "l1"),
        _info("ctr", "l2", Kind.ACTIVE),
        _info("l1"),
        _info("view", "l1", Kind.VIEW),
        _info("other"),
        _info("orphan", "removed-parent", Kind.ACTIVE),
    ]
    assert tree_lines(infos) == [
        " l1",
        "  \\_ l2",
        "    \\_ ctr",
        "  \\_ view",
        " orphan",
        " other",
    ]


def test_info_doc_uses_wire_kinds() -> None:
    doc = info_doc(_info("v", "p", Kind.VIEW))
    assert doc["kind"] == "view" and doc["parent"] == "p" and doc["created_at"] == NOW


def test_parser_takes_ctr_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYCONTAINERD_SNAPSHOTTER", raising=False)
    args = _parser().parse_args(["snapshots", "--snapshotter", "native", "prepare", "k", "p"])
    assert (args.snapshotter, args.action, args.key, args.parent) == ("native", "prepare", "k", "p")
    args = _parser().parse_args(["snapshot", "mounts", "/mnt", "k"])
    assert (args.snapshotter, args.target, args.key) == ("overlayfs", "/mnt", "k")
    args = _parser().parse_args(["snapshots", "usage", "-b"])
    assert args.bytes and args.keys == []
    with pytest.raises(SystemExit):
        _parser().parse_args(["snapshots", "commit", "only-name"])
