from __future__ import annotations

import json
from pathlib import Path

import pytest

from pycontainerd import oci
from pycontainerd.api import errdefs


def test_default_spec_matches_containerd() -> None:
    spec = oci.default_spec("default", "redis")
    assert spec["ociVersion"] == "1.0.2-dev"
    assert spec["root"] == {"path": "rootfs"}
    process = spec["process"]
    assert process["cwd"] == "/"
    assert process["noNewPrivileges"] is True
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["args"] == []
    assert process["env"] == []
    oci.with_default_path_env()(spec)
    assert process["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    assert process["capabilities"] == {"bounding": caps, "permitted": caps, "effective": caps}
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    linux = spec["linux"]
    assert linux["cgroupsPath"] == "/default/redis"
    assert linux["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert linux["namespaces"] == [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "network"},
    ]
    assert linux["maskedPaths"][0] == "/proc/acpi"
    assert linux["maskedPaths"][-1] == "/proc/scsi"
    assert len(linux["maskedPaths"]) == 11
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]


def test_default_mounts_table() -> None:
    mounts = {m["destination"]: m for m in oci.default_spec("ns", "id")["mounts"]}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"]
    assert mounts["/dev/pts"] == {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    }
    assert mounts["/dev/shm"]["source"] == "shm"
    assert mounts["/sys"]["options"] == ["nosuid", "noexec", "nodev", "ro"]


def test_default_specs_are_independent() -> None:
    a = oci.default_spec("ns", "a")
    b = oci.default_spec("ns", "b")
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"][0]["options"].append("ro")
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in a["process"]["capabilities"]["effective"]
    assert b["mounts"][0]["options"] == ["nosuid", "noexec", "nodev"]


def test_default_spec_needs_namespace_and_id() -> None:
    with pytest.raises(errdefs.InvalidArgument):
        oci.default_spec("", "id")
    with pytest.raises(errdefs.InvalidArgument):
        oci.default_spec("ns", "")


def test_write_and_read_spec(tmp_path: Path) -> None:
    spec = oci.default_spec("ns", "id")
    oci.write_spec(spec, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_bytes()) == spec
    assert oci.read_spec(tmp_path / "config.json") == spec
    with pytest.raises(errdefs.NotFound):
        oci.read_spec(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(errdefs.InvalidArgument):
        oci.read_spec(tmp_path / "bad.json")
