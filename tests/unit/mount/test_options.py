"""Mount option handling without mounting: flags, overlay compaction, read-only rewrites."""

from __future__ import annotations

from pycontainerd import mount
from pycontainerd.api.types import Mount
from pycontainerd.mount import _linux


def test_parse_mount_options() -> None:
    flags, data = mount.parse_mount_options(["ro", "rbind", "nosuid", "size=65536k", "mode=755"])
    assert flags == _linux.MS_RDONLY | _linux.MS_BIND | _linux.MS_REC | _linux.MS_NOSUID
    assert data == "size=65536k,mode=755"
    flags, data = mount.parse_mount_options(["ro", "rw", "index=off"])
    assert (flags, data) == (0, "index=off")  # the later of ro/rw wins
    flags, _ = mount.parse_mount_options(["rprivate"])
    assert flags == _linux.MS_PRIVATE | _linux.MS_REC


def test_compact_lowerdir_option() -> None:
    root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
    options = [
        "index=off",
        f"lowerdir={root}/12/fs:{root}/1/fs",
        "workdir=/w",
    ]
    chdir, compacted = mount.compact_lowerdir_option(options)
    assert chdir == root + "/"
    assert compacted == ["index=off", "workdir=/w", "lowerdir=12/fs:1/fs"]


def test_compact_lowerdir_option_leaves_what_it_cannot_help() -> None:
    single = ["lowerdir=/a/b/fs"]
    assert mount.compact_lowerdir_option(single) == ("", single)
    top_level = ["lowerdir=/a/fs:/b/fs"]
    assert mount.compact_lowerdir_option(top_level) == ("", top_level)
    relative = ["lowerdir=a/fs:a/gs"]
    assert mount.compact_lowerdir_option(relative) == ("", relative)
    none = ["upperdir=/u"]
    assert mount.compact_lowerdir_option(none) == ("", none)


def test_read_only_overlay_stacks_upper_on_lowers() -> None:
    m = Mount(
        type="overlay",
        source="overlay",
        options=["index=off", "workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"],
    )
    ro = mount.read_only(m)
    assert ro.options == ["index=off", "lowerdir=/s/2/fs:/s/1/fs"]
    assert m.options[1] == "workdir=/s/2/work"  # the input is untouched


def test_read_only_bind_has_one_ro() -> None:
    m = Mount(type="bind", source="/s", options=["rw", "rbind", "ro"])
    assert mount.read_only(m).options == ["rbind", "ro"]
    assert mount.read_only_mounts([m, m]) == [mount.read_only(m)] * 2
