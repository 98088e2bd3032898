from __future__ import annotations

import os
from pathlib import Path

import pytest

from pycontainerd import oci
from pycontainerd.api import errdefs

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1001::/home/alice:/bin/sh
broken:x:notanumber:1::/:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
alice:x:1001:
staff:x:50:alice,bob
video:x:44:alice
wheel:x:10:root
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def _spec() -> oci.Spec:
    return oci.default_spec("default", "c1")


def test_replace_or_append_env() -> None:
    assert oci.replace_or_append_env(["A=1", "B=2", "C=3"], ["B=x", "D=4", "C"]) == [
        "A=1",
        "B=x",
        "D=4",
    ]
    spec = oci.apply(_spec(), oci.with_default_path_env())
    oci.with_env(["PATH=/bin", "FOO=bar"])(spec)
    assert spec["process"]["env"] == ["PATH=/bin", "FOO=bar"]


def test_with_env_file(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("A=1\nB=two words\n")
    spec = _spec()
    oci.with_env_file(env)(spec)
    assert spec["process"]["env"] == ["A=1", "B=two words"]
    with pytest.raises(errdefs.NotFound):
        oci.with_env_file(tmp_path / "missing")(spec)


def test_process_options() -> None:
    spec = oci.apply(
        _spec(),
        oci.with_process_args("sh", "-c", "true"),
        oci.with_process_cwd("/work"),
        oci.with_hostname("box"),
        oci.with_tty(80, 24),
        oci.with_rootfs_readonly(),
    )
    assert spec["process"]["args"] == ["sh", "-c", "true"]
    assert spec["process"]["cwd"] == "/work"
    assert spec["process"]["terminal"] is True
    assert spec["process"]["consoleSize"] == {"height": 24, "width": 80}
    assert spec["hostname"] == "box"
    assert spec["root"] == {"path": "rootfs", "readonly": True}


def test_resources() -> None:
    spec = oci.apply(
        _spec(),
        oci.with_memory_limit(64 << 20),
        oci.with_cpus(1.5),
        oci.with_pids_limit(20),
        oci.with_cpuset_cpus("0"),
    )
    resources = spec["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["cpu"] == {"quota": 150000, "period": 100000, "cpus": "0"}
    assert resources["pids"] == {"limit": 20}
    assert resources["devices"] == [{"allow": False, "access": "rwm"}]
    with pytest.raises(errdefs.InvalidArgument):
        oci.with_cpus(0)


def test_namespaces() -> None:
    spec = oci.apply(
        _spec(),
        oci.with_host_namespace("network"),
        oci.with_linux_namespace("ipc", "/proc/1/ns/ipc"),
        oci.with_linux_namespace("user"),
    )
    assert spec["linux"]["namespaces"] == [
        {"type": "pid"},
        {"type": "ipc", "path": "/proc/1/ns/ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "user"},
    ]


def test_privileged() -> None:
    spec = oci.apply(_spec(), oci.with_seccomp_default(), oci.with_privileged())
    caps = spec["process"]["capabilities"]
    assert "CAP_SYS_ADMIN" in caps["bounding"] and caps["bounding"] == caps["effective"]
    assert caps["bounding"][0] == "CAP_CHOWN"
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "seccomp" not in spec["linux"]
    sysfs = next(m for m in spec["mounts"] if m["type"] == "sysfs")
    assert "ro" not in sysfs["options"]


def test_with_mounts() -> None:
    extra = {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"]}
    spec = oci.apply(_spec(), oci.with_mounts([extra]))
    assert spec["mounts"][-1] == extra
    assert len(spec["mounts"]) == 8


@pytest.mark.parametrize(
    ("user", "uid", "gid", "gids"),
    [
        ("0", 0, 0, [0]),
        ("1000", 1000, 1001, [1001]),
        ("4242", 4242, 0, [0]),
        ("alice", 1000, 1001, [1001]),
        ("alice:staff", 1000, 50, [50]),
        ("1000:44", 1000, 44, [44]),
        ("daemon:10", 1, 10, [10]),
        ("7:staff", 7, 50, [50]),
    ],
)
def test_with_user(rootfs: Path, user: str, uid: int, gid: int, gids: list[int]) -> None:
    spec = _spec()
    oci.with_user(user, rootfs)(spec)
    assert spec["process"]["user"] == {"uid": uid, "gid": gid, "additionalGids": gids}


def test_with_user_errors(rootfs: Path) -> None:
    with pytest.raises(errdefs.NotFound):
        oci.with_user("nobody", rootfs)(_spec())
    with pytest.raises(errdefs.NotFound):
        oci.with_user("alice:nogroup", rootfs)(_spec())
    with pytest.raises(errdefs.InvalidArgument, match="uid out of range"):
        oci.with_user("4294967296", rootfs)(_spec())
    with pytest.raises(errdefs.InvalidArgument):
        oci.with_user("a:b:c", rootfs)(_spec())
    with pytest.raises(errdefs.InvalidArgument, match="rootfs absolute path"):
        oci.with_user("alice")(_spec())


def test_with_user_reads_root_path_of_spec(rootfs: Path) -> None:
    spec = _spec()
    spec["root"]["path"] = str(rootfs)
    oci.with_user("alice")(spec)
    assert spec["process"]["user"]["uid"] == 1000


def test_user_lookup_does_not_escape_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "host-passwd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    # An absolute link and a relative one climbing above the root: both stay inside.
    os.symlink(str(outside), root / "etc" / "passwd")
    os.symlink("../../../../host-passwd", root / "etc" / "group")
    assert oci.rootfs_users(root) == []
    assert oci.rootfs_groups(root) == []
    (root / "host-passwd").write_text("inside:x:5:5::/:/bin/sh\n")
    assert [u.name for u in oci.rootfs_users(root)] == []  # absolute target re-rooted
    os.unlink(root / "etc" / "passwd")
    os.symlink("/host-passwd", root / "etc" / "passwd")
    assert [u.name for u in oci.rootfs_users(root)] == ["inside"]
    # ../../../../host-passwd climbed no higher than the rootfs' own /host-passwd.
    assert [(g.name, g.gid) for g in oci.rootfs_groups(root)] == [("inside", 5)]


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink("passwd", root / "etc" / "passwd")
    with pytest.raises(errdefs.InvalidArgument, match="symbolic links"):
        oci.rootfs_users(root)


def test_with_image_config(rootfs: Path) -> None:
    config = {
        "os": "linux",
        "config": {
            "Entrypoint": ["/entry.sh"],
            "Cmd": ["serve", "--port", "80"],
            "Env": ["PATH=/usr/bin:/bin", "LANG=C"],
            "WorkingDir": "/srv",
            "User": "alice",
        },
    }
    spec = _spec()
    oci.with_env(["LANG=C.UTF-8", "EXTRA=1"])(spec)
    oci.with_image_config(config, rootfs)(spec)
    process = spec["process"]
    assert process["args"] == ["/entry.sh", "serve", "--port", "80"]
    assert process["env"] == ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "EXTRA=1"]
    assert process["cwd"] == "/srv"
    assert process["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [1001, 50, 44]}


def test_with_image_config_defaults(rootfs: Path) -> None:
    spec = _spec()
    oci.with_image_config({"Cmd": ["sh"]}, rootfs)(spec)
    process = spec["process"]
    assert process["args"] == ["sh"]
    assert process["cwd"] == "/"
    assert process["env"] == [oci.DEFAULT_PATH_ENV]
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}


def test_directory_symlink_is_re_rooted(tmp_path: Path) -> None:
    host_etc = tmp_path / "host-etc"
    host_etc.mkdir()
    (host_etc / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    (root / "real-etc").mkdir(parents=True)
    (root / "real-etc" / "passwd").write_text("good:x:7:7::/:/bin/sh\n")
    os.symlink(str(host_etc), root / "etc")  # /etc -> <host>/host-etc: re-rooted, missing
    assert oci.rootfs_users(root) == []
    os.unlink(root / "etc")
    os.symlink("../../real-etc", root / "etc")  # climbs above / and lands on /real-etc
    assert [(u.name, u.uid) for u in oci.rootfs_users(root)] == [("good", 7)]
