"""containerd's default Linux OCI runtime spec (``oci/spec.go``, ``oci/mounts.go``).

A spec is the OCI runtime-spec JSON document as a plain ``dict``: the same keys
(``ociVersion``, ``process``, ``root``, ``mounts``, ``linux``...) that runc
reads from ``config.json``. :func:`default_spec` builds containerd's
``populateDefaultUnixSpec`` for one container (args and env empty: add
``with_default_path_env()`` or ``with_image_config(...)``);
the ``with_*`` options in this package edit it in place, as the Go client's
``SpecOpts`` do::

    spec = default_spec("default", "redis")
    with_process_args("redis-server", "--port", "7000")(spec)
    write_spec(spec, bundle / "config.json")
"""

from __future__ import annotations

import json
import os
from typing import Any

from pycontainerd.api import errdefs

Spec = dict[str, Any]
"""An OCI runtime spec document (``config.json``) as a map."""

OCI_VERSION = "1.0.2-dev"
"""``specs.Version`` of the runtime-spec that containerd 1.6 vendors."""

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The ``PATH`` that ``WithDefaultPathEnv`` (``oci.defaultUnixEnv``) sets."""

DEFAULT_UNIX_CAPS: tuple[str, ...] = (
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
)
"""``oci.defaultUnixCaps``, in containerd's order."""

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

DEFAULT_NAMESPACES: tuple[str, ...] = ("pid", "ipc", "uts", "mount", "network")
"""``oci.defaultUnixNamespaces``: no user and no cgroup namespace."""

CAPABILITY_SETS: tuple[str, ...] = ("bounding", "permitted", "effective")
"""The sets containerd fills (not ``inheritable`` nor ``ambient``)."""

ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
"""Every capability by number (``capability.List()``), CAP_CHOWN = 0 first."""


def default_mounts() -> list[dict[str, Any]]:
    """``oci.defaultMounts``: proc, /dev tmpfs, devpts, shm, mqueue, sysfs (ro), /run."""
    return [
        _mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        _mount(
            "/dev/pts",
            "devpts",
            "devpts",
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ),
        _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        _mount("/run", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
    ]


def _mount(destination: str, type_: str, source: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": type_, "source": source, "options": list(options)}


def default_spec(namespace: str, id: str) -> Spec:
    """containerd's default Linux spec for container ``id`` in ``namespace``.

    ``populateDefaultUnixSpec``: root ``rootfs``,
    cwd ``/``, uid/gid 0, ``noNewPrivileges``, the 14 default capabilities in
    bounding/permitted/effective, ``RLIMIT_NOFILE`` 1024, the default mounts,
    masked and read-only paths, every device denied, ``cgroupsPath``
    ``/<namespace>/<id>`` and new pid, ipc, uts, mount and network namespaces.

    Raises:
        errdefs.InvalidArgument: ``namespace`` or ``id`` is empty.
    """
    if not namespace:
        raise errdefs.InvalidArgument("namespace is required")
    if not id:
        raise errdefs.InvalidArgument("container id is required")
    caps = list(DEFAULT_UNIX_CAPS)
    return {
        "ociVersion": OCI_VERSION,
        "root": {"path": "rootfs"},
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": [],
            "env": [],
            "cwd": "/",
            "capabilities": {name: list(caps) for name in CAPABILITY_SETS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "mounts": default_mounts(),
        "linux": {
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
            "cgroupsPath": f"/{namespace}/{id}",
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in DEFAULT_NAMESPACES],
        },
    }


def spec_bytes(spec: Spec) -> bytes:
    """``config.json`` bytes of ``spec`` (compact JSON, as containerd marshals it)."""
    return json.dumps(spec, separators=(",", ":")).encode()


def write_spec(spec: Spec, path: str | os.PathLike[str]) -> None:
    """Write ``spec`` as ``config.json`` at ``path`` (mode 0666 & ~umask, as containerd)."""
    with open(path, "wb") as f:
        f.write(spec_bytes(spec))


def read_spec(path: str | os.PathLike[str]) -> Spec:
    """Read a ``config.json``.

    Raises:
        errdefs.NotFound: no file at ``path``.
        errdefs.InvalidArgument: the file is not a JSON object.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise errdefs.NotFound(f"OCI spec {os.fspath(path)!r} not found") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise errdefs.InvalidArgument(f"OCI spec {os.fspath(path)!r}: {exc}") from None
    if not isinstance(doc, dict):
        raise errdefs.InvalidArgument(f"OCI spec {os.fspath(path)!r} is not a JSON object")
    return doc
