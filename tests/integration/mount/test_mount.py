"""mount(2)/umount2(2) for real: binds, read-only, overlays past a page of options, temp mounts."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import mount
from pycontainerd.api import errdefs
from pycontainerd.api.types import Mount


def _points_under(base: Path) -> list[str]:
    prefix = os.path.realpath(base)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split(" ", 5)[4] for line in f]
    inside = [p for p in points if p == prefix or p.startswith(prefix + "/")]
    return sorted(inside, key=len, reverse=True)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        for point in _points_under(tmp_path):
            mount.unmount_all(point, mount.MNT_DETACH)


def _dirs(base: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        (base / name).mkdir(parents=True)
        out.append(base / name)
    return out


def test_bind_rw_then_unmount(base: Path) -> None:
    src, dst = _dirs(base, "src", "dst")
    (src / "f").write_text("hello")
    mount.mount_all([Mount(type="bind", source=str(src), options=["rw", "rbind"])], dst)
    assert mount.is_mountpoint(dst)
    assert (dst / "f").read_text() == "hello"
    (dst / "g").write_text("through")
    assert (src / "g").read_text() == "through"
    mount.unmount(dst)
    assert not mount.is_mountpoint(dst)
    assert os.listdir(dst) == []


def test_bind_ro_is_remounted_read_only(base: Path) -> None:
    src, dst = _dirs(base, "src", "dst")
    mount.mount(Mount(type="bind", source=str(src), options=["ro", "rbind"]), dst)
    with pytest.raises(OSError) as info:
        (dst / "x").write_text("no")
    assert info.value.errno == errno.EROFS
    assert "ro" in _options_of(dst)
    mount.unmount_all(dst)


def _options_of(point: Path) -> list[str]:
    want = os.path.realpath(point)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields[4] == want:
                return fields[5].split(",")
    raise AssertionError(f"{point} is not mounted")


def test_unmount_all_pops_every_layer(base: Path) -> None:
    a, b, dst = _dirs(base, "a", "b", "dst")
    (a / "from-a").touch()
    (b / "from-b").touch()
    mount.mount(Mount(type="bind", source=str(a), options=["rbind"]), dst)
    mount.mount(Mount(type="bind", source=str(b), options=["rbind"]), dst)
    assert os.listdir(dst) == ["from-b"]
    mount.unmount_all(dst)
    assert not mount.is_mountpoint(dst)
    assert os.listdir(dst) == []


def test_unmount_of_nothing_is_fine(base: Path) -> None:
    (plain,) = _dirs(base, "plain")
    mount.unmount(plain)
    mount.unmount_all(plain)
    mount.unmount_all(base / "does-not-exist")


def test_mount_errors_name_target_and_options(base: Path) -> None:
    (dst,) = _dirs(base, "dst")
    missing = Mount(type="bind", source=str(base / "missing"), options=["rbind"])
    with pytest.raises(errdefs.NotFound) as info:
        mount.mount(missing, dst)
    assert str(dst) in str(info.value)
    assert "rbind" in str(info.value)
    with pytest.raises(errdefs.NotFound):
        mount.mount(Mount(type="nosuchfs", source="none"), dst)
    (lower,) = _dirs(base, "lower")
    bad = Mount(type="overlay", source="overlay", options=[f"lowerdir={lower}", "nosuchopt=1"])
    with pytest.raises(errdefs.InvalidArgument, match="nosuchopt"):
        mount.mount(bad, dst)
    assert not mount.is_mountpoint(dst)


def test_propagation_flag_is_applied(base: Path) -> None:
    src, dst = _dirs(base, "src", "dst")
    mount.mount(Mount(type="bind", source=str(src), options=["rbind", "rprivate"]), dst)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        (line,) = [ln for ln in f if ln.split()[4] == os.path.realpath(dst)]
    optional = line.split(" - ")[0].split()[6:]
    assert not any(o.startswith("shared:") for o in optional)
    mount.unmount_all(dst)


def _layers(base: Path, count: int, width: int) -> list[Path]:
    layers = []
    for i in range(count):
        layer = base / "snapshots" / f"{i:0{width}d}" / "fs"
        layer.mkdir(parents=True)
        (layer / f"file-{i}").write_text(str(i))
        layers.append(layer)
    (layers[0] / "shadowed").write_text("bottom")
    (layers[-1] / "shadowed").write_text("top")
    return list(reversed(layers))  # immediate parent first


def test_overlay_lowerdir_longer_than_a_page(base: Path) -> None:
    deep = base / ("d" * 60) / ("e" * 60)
    lowers = _layers(deep, 128, 3)
    option = "lowerdir=" + ":".join(map(str, lowers))
    assert len(option) > mount.PAGE_SIZE
    upper, work = _dirs(base, "upper", "work")
    m = Mount(
        type="overlay",
        source="overlay",
        options=["index=off", f"workdir={work}", f"upperdir={upper}", option],
    )
    cwd = os.getcwd()
    with mount.with_temp_mount([m], temp_dir=base) as root:
        names = set(os.listdir(root))
        assert {f"file-{i}" for i in range(128)} <= names
        assert Path(root, "shadowed").read_text() == "top"
        Path(root, "new").write_text("upper")
    assert os.getcwd() == cwd
    assert (upper / "new").read_text() == "upper"
    assert _points_under(base) == []
    assert [p for p in os.listdir(base) if p.startswith("containerd-mount")] == []


def test_compaction_does_not_move_other_threads(base: Path) -> None:
    lowers = _layers(base / ("x" * 100), 64, 2)
    option = "lowerdir=" + ":".join(map(str, lowers))
    assert len(option) > mount.PAGE_SIZE
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(os.getcwd())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        (dst,) = _dirs(base, "dst")
        mount.mount(Mount(type="overlay", source="overlay", options=[option]), dst)
        assert len(os.listdir(dst)) == 65  # 64 files and shadowed
        mount.unmount_all(dst)
    finally:
        stop.set()
        watcher.join()
    assert set(seen) == {os.getcwd()}


def test_options_too_long_even_compacted(base: Path) -> None:
    # No common parent below "/" to compact against: the kernel would refuse.
    lowers = [f"/{'z' * 200}{i}/fs" for i in range(30)]
    (dst,) = _dirs(base, "dst")
    m = Mount(type="overlay", source="overlay", options=["lowerdir=" + ":".join(lowers)])
    with pytest.raises(errdefs.InvalidArgument, match="page"):
        mount.mount(m, dst)


def test_with_temp_mount_cleans_up_on_error(base: Path) -> None:
    (src,) = _dirs(base, "src")
    (src / "f").write_text("x")
    seen: list[str] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        mount.with_temp_mount(
            [Mount(type="bind", source=str(src), options=["rbind"])], temp_dir=base
        ) as root,
    ):
        seen.append(root)
        assert Path(root, "f").read_text() == "x"
        raise RuntimeError("boom")
    assert not os.path.exists(seen[0])
    assert _points_under(base) == []


def test_readonly_temp_mount_of_an_overlay(base: Path) -> None:
    lower, upper, work = _dirs(base, "lower", "upper", "work")
    (lower / "l").write_text("lower")
    (upper / "u").write_text("upper")
    m = Mount(
        type="overlay",
        source="overlay",
        options=[f"workdir={work}", f"upperdir={upper}", f"lowerdir={lower}"],
    )
    with mount.with_readonly_temp_mount([m], temp_dir=base) as root:
        assert sorted(os.listdir(root)) == ["l", "u"]
        with pytest.raises(OSError) as info:
            Path(root, "new").write_text("x")
        assert info.value.errno == errno.EROFS
    assert _points_under(base) == []


def test_lookup_finds_the_covering_mount(base: Path) -> None:
    src, dst = _dirs(base, "src", "dst")
    (src / "sub").mkdir()
    mount.mount(Mount(type="bind", source=str(src), options=["rbind"]), dst)
    point, fstype, _ = mount.lookup(dst / "sub")
    assert point == os.path.realpath(dst)
    assert fstype == mount.lookup(base)[1]
    mount.unmount_all(dst)
