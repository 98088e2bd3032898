from __future__ import annotations

from typing import Any

from pycontainerd import oci


def _names(profile: dict[str, Any]) -> set[str]:
    return {n for rule in profile["syscalls"] for n in rule["names"]}


def _rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_default_profile_shape_amd64() -> None:
    spec = oci.default_spec("ns", "id")
    profile = oci.default_seccomp_profile(spec, goarch="amd64", kernel_release="6.1.0")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    first = profile["syscalls"][0]
    assert first["action"] == "SCMP_ACT_ALLOW"
    assert "args" not in first
    for name in ("read", "write", "openat", "execve", "exit_group", "futex", "epoll_pwait"):
        assert name in first["names"]
    for name in ("mount", "umount2", "reboot", "kexec_load", "init_module", "bpf", "unshare"):
        assert name not in _names(profile)
    names = _names(profile)
    assert {"arch_prctl", "modify_ldt", "ptrace", "process_vm_readv", "chroot"} <= names


def test_socket_refuses_af_alg_and_af_vsock() -> None:
    profile = oci.default_seccomp_profile(oci.default_spec("ns", "id"), goarch="amd64")
    args = [r["args"][0] for r in _rules_for(profile, "socket")]
    assert args == [
        {"index": 0, "value": 38, "op": "SCMP_CMP_LT"},
        {"index": 0, "value": 39, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 40, "op": "SCMP_CMP_GT"},
    ]
    personalities = [r["args"][0]["value"] for r in _rules_for(profile, "personality")]
    assert personalities == [0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF]


def test_without_sys_admin_clone_is_filtered_and_clone3_is_enosys() -> None:
    profile = oci.default_seccomp_profile(oci.default_spec("ns", "id"), goarch="amd64")
    (clone,) = _rules_for(profile, "clone")
    assert clone["args"] == [
        {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    ]
    (clone3,) = _rules_for(profile, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    s390 = oci.default_seccomp_profile(oci.default_spec("ns", "id"), goarch="s390x")
    assert _rules_for(s390, "clone")[0]["args"][0]["index"] == 1


def test_capabilities_unlock_syscalls() -> None:
    spec = oci.default_spec("ns", "id")
    oci.with_capabilities([*oci.DEFAULT_UNIX_CAPS, "CAP_SYS_ADMIN", "CAP_SYS_TIME"])(spec)
    profile = oci.default_seccomp_profile(spec, goarch="amd64")
    names = _names(profile)
    assert {"mount", "umount2", "setns", "unshare", "settimeofday", "clock_settime"} <= names
    clone_rules = _rules_for(profile, "clone")
    assert all("args" not in r for r in clone_rules)  # CAP_SYS_ADMIN: clone unrestricted
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in _rules_for(profile, "clone3"))


def test_old_kernel_has_no_ptrace_and_arm64_arches() -> None:
    spec = oci.default_spec("ns", "id")
    old = oci.default_seccomp_profile(spec, goarch="arm64", kernel_release="4.4.0-generic")
    assert "ptrace" not in _names(old)
    assert old["architectures"] == ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]
    assert {"arm_fadvise64_64", "set_tls"} <= _names(old)


def test_with_seccomp_default_and_unconfined() -> None:
    spec = oci.default_spec("ns", "id")
    oci.with_seccomp_default()(spec)
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    oci.with_seccomp_unconfined()(spec)
    assert "seccomp" not in spec["linux"]
