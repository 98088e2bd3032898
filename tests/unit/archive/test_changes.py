from __future__ import annotations

import os
from pathlib import Path

import pytest

from pycontainerd.archive import changes, overlay_upper_changes, read_xattrs, same_file

T = 1_700_000_000


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for root in (lower, upper):
        (root / "a/b").mkdir(parents=True)
        (root / "a/b/f").write_bytes(b"same")
        (root / "a.txt").write_bytes(b"text")
        (root / "gone/deep").mkdir(parents=True)
        (root / "gone/deep/x").write_bytes(b"x")
        (root / "swap").mkdir()
        (root / "swap/child").write_bytes(b"c")
        for path in sorted(root.rglob("*"), reverse=True):
            os.utime(path, (T, T))
    return lower, upper


def kinds(lower: Path, upper: Path) -> list[tuple[str, str]]:
    return [(c.kind, c.path) for c in changes(lower, upper)]


def test_identical_trees_have_no_changes(trees: tuple[Path, Path]) -> None:
    assert kinds(*trees) == []


def test_kinds_and_order(trees: tuple[Path, Path]) -> None:
    lower, upper = trees
    (upper / "a/b/new").write_bytes(b"n")
    (upper / "a/b/f").write_bytes(b"diff")  # same size, same second: content decides
    os.utime(upper / "a/b/f", (T, T))
    os.utime(upper / "a/b", (T, T))
    os.rename(upper / "gone", upper / "gone-tmp")
    (upper / "gone-tmp/deep/x").unlink()
    os.rmdir(upper / "gone-tmp/deep")
    os.rmdir(upper / "gone-tmp")
    (upper / "swap/child").unlink()
    os.rmdir(upper / "swap")
    (upper / "swap").write_bytes(b"now a file")
    assert kinds(lower, upper) == [
        ("modify", "/a/b/f"),
        ("add", "/a/b/new"),
        ("delete", "/gone"),  # one deletion for the whole subtree
        ("modify", "/swap"),  # a file now: the old children are not listed
    ]


def test_children_sort_before_longer_siblings(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    (upper / "a/b").mkdir(parents=True)
    (upper / "a.txt").write_bytes(b"")
    (upper / "a-").write_bytes(b"")
    assert [p for _, p in kinds(lower, upper)] == ["/a", "/a/b", "/a-", "/a.txt"]


def test_mode_and_xattr_changes_modify_directories(trees: tuple[Path, Path]) -> None:
    lower, upper = trees
    os.chmod(upper / "a", 0o700)
    os.setxattr(upper / "a/b", "user.tag", b"1")
    assert kinds(lower, upper) == [("modify", "/a"), ("modify", "/a/b")]
    assert read_xattrs(str(upper / "a/b")) == {"user.tag": b"1"}


def test_hardlinked_unchanged_files_are_reported(trees: tuple[Path, Path]) -> None:
    lower, upper = trees
    os.link(lower / "a.txt", lower / "a.link")
    os.link(upper / "a.txt", upper / "a.link")
    assert kinds(lower, upper) == [("unmodified", "/a.link"), ("unmodified", "/a.txt")]


def test_same_file_nanoseconds(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"1234")
    b.write_bytes(b"5678")
    os.utime(a, ns=(T * 10**9 + 5, T * 10**9 + 5))
    os.utime(b, ns=(T * 10**9 + 5, T * 10**9 + 5))
    # both keep nanoseconds and agree: trusted without reading content (continuity)
    assert same_file(str(a), os.lstat(a), str(b), os.lstat(b))
    os.utime(b, ns=(T * 10**9 + 6, T * 10**9 + 6))
    assert not same_file(str(a), os.lstat(a), str(b), os.lstat(b))


def test_overlay_upper_without_whiteouts(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hosts").write_bytes(b"h")
    os.setxattr(tmp_path / "etc", "user.x", b"1")
    found = [(c.kind, c.path, c.opaque) for c in overlay_upper_changes(tmp_path)]
    assert found == [("modify", "/etc", False), ("modify", "/etc/hosts", False)]
