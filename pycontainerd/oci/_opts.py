"""Spec options, like the Go client's ``oci.SpecOpts`` (``oci/spec_opts.go``).

Every ``with_*`` function returns a :data:`SpecOpt`: a callable that edits a
spec in place and raises an errdefs error when it cannot::

    spec = default_spec("default", "web")
    apply(spec, with_image_config(config, rootfs=root), with_tty(), with_memory_limit(64 << 20))

Options that read the container's users (:func:`with_user`,
:func:`with_image_config`) need the rootfs as a mounted directory: pass it as
``rootfs``, or set an absolute ``root.path`` in the spec (containerd requires
the same when no snapshot is given).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pycontainerd.api import errdefs

from ._seccomp import default_seccomp_profile
from ._spec import ALL_CAPABILITIES, CAPABILITY_SETS, DEFAULT_PATH_ENV, Spec
from ._user import rootfs_groups, rootfs_users

SpecOpt = Callable[[Spec], None]
"""One spec option: edits the spec in place."""

_MAX_ID = 2**31 - 1  # runc requires ids <= MaxInt32


def apply(spec: Spec, *opts: SpecOpt) -> Spec:
    """Apply ``opts`` to ``spec`` in order and return it (``oci.ApplyOpts``)."""
    for opt in opts:
        opt(spec)
    return spec


def compose(*opts: SpecOpt) -> SpecOpt:
    """One option applying ``opts`` in order (``oci.Compose``)."""

    def opt(spec: Spec) -> None:
        apply(spec, *opts)

    return opt


def _process(spec: Spec) -> dict[str, Any]:
    process: dict[str, Any] = spec.setdefault("process", {})
    process.setdefault("user", {"uid": 0, "gid": 0})
    return process


def _linux(spec: Spec) -> dict[str, Any]:
    linux: dict[str, Any] = spec.setdefault("linux", {})
    return linux


def _resources(spec: Spec) -> dict[str, Any]:
    resources: dict[str, Any] = _linux(spec).setdefault("resources", {})
    return resources


def replace_or_append_env(defaults: Sequence[str], overrides: Iterable[str]) -> list[str]:
    """containerd's ``replaceOrAppendEnvValues``: override by key, ``KEY`` alone unsets."""
    results = list(defaults)
    index = {e.partition("=")[0]: i for i, e in enumerate(results)}
    for value in overrides:
        key, eq, _ = value.partition("=")
        if not eq:
            if key in index:
                results[index[key]] = ""
            continue
        if key in index:
            results[index[key]] = value
        else:
            index[key] = len(results)
            results.append(value)
    return [e for e in results if e]


def with_process_args(*args: str) -> SpecOpt:
    """Replace ``process.args``."""

    def opt(spec: Spec) -> None:
        _process(spec)["args"] = list(args)

    return opt


def with_env(env: Iterable[str]) -> SpecOpt:
    """Merge ``KEY=value`` entries into ``process.env`` by key (``KEY`` alone unsets it)."""
    values = list(env)

    def opt(spec: Spec) -> None:
        if values:
            process = _process(spec)
            process["env"] = replace_or_append_env(process.get("env") or [], values)

    return opt


def with_default_path_env() -> SpecOpt:
    """Set containerd's default ``PATH`` (``WithDefaultPathEnv``)."""
    return with_env([DEFAULT_PATH_ENV])


def with_env_file(path: str | os.PathLike[str]) -> SpecOpt:
    """:func:`with_env` with the lines of the file at ``path`` (``WithEnvFile``).

    Raises:
        errdefs.NotFound: the file does not exist (when applied).
    """

    def opt(spec: Spec) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise errdefs.NotFound(f"env file {os.fspath(path)!r} not found") from None
        with_env(lines)(spec)

    return opt


def with_process_cwd(cwd: str) -> SpecOpt:
    """Set ``process.cwd``."""

    def opt(spec: Spec) -> None:
        _process(spec)["cwd"] = cwd

    return opt


def with_hostname(name: str) -> SpecOpt:
    """Set ``hostname`` (the container has its own uts namespace by default)."""

    def opt(spec: Spec) -> None:
        spec["hostname"] = name

    return opt


def with_tty(width: int = 0, height: int = 0) -> SpecOpt:
    """Give the process a terminal (``WithTTY``; a size as ``WithTTYSize``)."""

    def opt(spec: Spec) -> None:
        process = _process(spec)
        process["terminal"] = True
        if width or height:
            process["consoleSize"] = {"height": height, "width": width}

    return opt


def with_rootfs_readonly() -> SpecOpt:
    """Mount the rootfs read-only (``root.readonly``)."""

    def opt(spec: Spec) -> None:
        spec.setdefault("root", {"path": "rootfs"})["readonly"] = True

    return opt


def with_mounts(mounts: Iterable[Mapping[str, Any]]) -> SpecOpt:
    """Append OCI mounts (``{destination, type, source, options}``) (``WithMounts``)."""
    extra = [dict(m) for m in mounts]

    def opt(spec: Spec) -> None:
        spec.setdefault("mounts", []).extend(dict(m) for m in extra)

    return opt


def with_memory_limit(limit: int) -> SpecOpt:
    """Set ``linux.resources.memory.limit`` in bytes."""

    def opt(spec: Spec) -> None:
        _resources(spec).setdefault("memory", {})["limit"] = limit

    return opt


def with_cpu_cfs(quota: int, period: int) -> SpecOpt:
    """Set the CFS ``quota`` and ``period`` in microseconds (``WithCPUCFS``)."""

    def opt(spec: Spec) -> None:
        cpu = _resources(spec).setdefault("cpu", {})
        cpu["quota"] = quota
        cpu["period"] = period

    return opt


def with_cpus(cpus: float, period: int = 100_000) -> SpecOpt:
    """Limit the container to ``cpus`` CPUs of time (quota = cpus x period, as ``--cpus``).

    Raises:
        errdefs.InvalidArgument: ``cpus`` is not positive.
    """
    if cpus <= 0:
        raise errdefs.InvalidArgument(f"cpus must be positive, got {cpus}")
    return with_cpu_cfs(round(cpus * period), period)


def with_cpuset_cpus(cpus: str) -> SpecOpt:
    """Pin to the CPUs of a cpuset list such as ``0-1`` (containerd ``WithCPUs``)."""

    def opt(spec: Spec) -> None:
        _resources(spec).setdefault("cpu", {})["cpus"] = cpus

    return opt


def with_pids_limit(limit: int) -> SpecOpt:
    """Set ``linux.resources.pids.limit``."""

    def opt(spec: Spec) -> None:
        _resources(spec)["pids"] = {"limit": limit}

    return opt


def with_host_namespace(ns: str) -> SpecOpt:
    """Share the host's ``ns`` namespace (``network``, ``pid``...): drop it from the spec."""

    def opt(spec: Spec) -> None:
        linux = _linux(spec)
        linux["namespaces"] = [n for n in linux.get("namespaces") or [] if n.get("type") != ns]

    return opt


def with_linux_namespace(ns: str, path: str = "") -> SpecOpt:
    """Set namespace ``ns`` (``path``: join that one, such as ``/var/run/netns/x``)."""

    def opt(spec: Spec) -> None:
        entry: dict[str, str] = {"type": ns}
        if path:
            entry["path"] = path
        linux = _linux(spec)
        spaces = list(linux.get("namespaces") or [])
        for i, n in enumerate(spaces):
            if n.get("type") == ns:
                spaces[i] = entry
                break
        else:
            spaces.append(entry)
        linux["namespaces"] = spaces

    return opt


def with_capabilities(caps: Iterable[str]) -> SpecOpt:
    """Set bounding, permitted and effective capabilities to ``caps`` (``WithCapabilities``)."""
    names = list(caps)

    def opt(spec: Spec) -> None:
        process = _process(spec)
        process["capabilities"] = {s: list(names) for s in CAPABILITY_SETS}

    return opt


def _host_capabilities() -> list[str]:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        return list(ALL_CAPABILITIES)
    return list(ALL_CAPABILITIES[: last + 1])


def with_all_devices_allowed() -> SpecOpt:
    """Allow every device in the device cgroup (``WithAllDevicesAllowed``)."""

    def opt(spec: Spec) -> None:
        _resources(spec)["devices"] = [{"allow": True, "access": "rwm"}]

    return opt


def with_seccomp_default() -> SpecOpt:
    """containerd's default seccomp profile (``seccomp.WithDefaultProfile``).

    Apply after the capability options: the profile depends on them.
    """

    def opt(spec: Spec) -> None:
        _linux(spec)["seccomp"] = default_seccomp_profile(spec)

    return opt


def with_seccomp_unconfined() -> SpecOpt:
    """Remove any seccomp profile (``WithSeccompUnconfined``)."""

    def opt(spec: Spec) -> None:
        _linux(spec).pop("seccomp", None)

    return opt


def _writable(spec: Spec, type_: str) -> None:
    for m in spec.get("mounts") or []:
        if m.get("type") == type_:
            m["options"] = [o for o in m.get("options") or [] if o != "ro"]


def with_privileged() -> SpecOpt:
    """Privileged: every capability the kernel knows, every device, nothing masked.

    containerd's ``WithPrivileged`` (all current capabilities, no masked or
    read-only paths, writable sysfs and cgroupfs, no seccomp) plus
    ``WithAllDevicesAllowed``, as ``ctr run --privileged`` composes them.
    """

    def opt(spec: Spec) -> None:
        with_capabilities(_host_capabilities())(spec)
        linux = _linux(spec)
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        _writable(spec, "sysfs")
        _writable(spec, "cgroup")
        with_seccomp_unconfined()(spec)
        with_all_devices_allowed()(spec)

    return opt


def _rootfs(spec: Spec, rootfs: str | os.PathLike[str] | None) -> str:
    if rootfs is not None:
        return os.fspath(rootfs)
    path = (spec.get("root") or {}).get("path", "")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise errdefs.InvalidArgument("rootfs absolute path is required")
    return path


def _parse_id(text: str, what: str, userstr: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    if not 0 <= value <= _MAX_ID:
        raise errdefs.InvalidArgument(f"invalid USER value {userstr!r}: {what} out of range")
    return value


def _set_user(spec: Spec, uid: int, gid: int) -> None:
    user = _process(spec)["user"]
    user["uid"], user["gid"] = uid, gid
    extra = [g for g in user.get("additionalGids") or [] if g != gid]
    user["additionalGids"] = [gid, *extra]


def with_user(userstr: str, rootfs: str | os.PathLike[str] | None = None) -> SpecOpt:
    """Run as ``uid``, ``uid:gid``, ``name`` or ``name:group`` (containerd ``WithUser``).

    Names are looked up in the rootfs' ``/etc/passwd`` and ``/etc/group``
    (read without following symlinks out of it). A numeric uid alone takes
    its primary gid from ``/etc/passwd``, or 0 when it is not listed.

    Raises:
        errdefs.InvalidArgument: malformed or out-of-range ids, or no
            absolute rootfs to read names from.
        errdefs.NotFound: the user or group name does not exist.
    """

    def opt(spec: Spec) -> None:
        parts = userstr.split(":")
        if len(parts) > 2 or not parts[0]:
            raise errdefs.InvalidArgument(f"invalid USER value {userstr!r}")
        _process(spec)["user"]["additionalGids"] = []
        uid = _parse_id(parts[0], "uid", userstr)
        if len(parts) == 1:
            root = _rootfs(spec, rootfs)
            users = rootfs_users(root)
            if uid is not None:
                found = [u for u in users if u.uid == uid]
                _set_user(spec, uid, found[0].gid if found else 0)
                return
            named = [u for u in users if u.name == parts[0]]
            if not named:
                raise errdefs.NotFound(f"no users found for {parts[0]!r} in rootfs /etc/passwd")
            _set_user(spec, named[0].uid, named[0].gid)
            return
        gid = _parse_id(parts[1], "gid", userstr)
        if uid is not None and gid is not None:
            _set_user(spec, uid, gid)
            return
        root = _rootfs(spec, rootfs)
        if uid is None:
            named = [u for u in rootfs_users(root) if u.name == parts[0]]
            if not named:
                raise errdefs.NotFound(f"no users found for {parts[0]!r} in rootfs /etc/passwd")
            uid = named[0].uid
        if gid is None:
            groups = [g for g in rootfs_groups(root) if g.name == parts[1]]
            if not groups:
                raise errdefs.NotFound(f"no groups found for {parts[1]!r} in rootfs /etc/group")
            gid = groups[0].gid
        _set_user(spec, uid, gid)

    return opt


def with_additional_gids(user: str, rootfs: str | os.PathLike[str] | None = None) -> SpecOpt:
    """Add the groups that list ``user`` (a name or uid) as a member (``WithAdditionalGIDs``)."""

    def opt(spec: Spec) -> None:
        root = _rootfs(spec, rootfs)
        name = user
        if user.isdigit():
            named = [u for u in rootfs_users(root) if u.uid == int(user)]
            if not named:
                return
            name = named[0].name
        spec_user = _process(spec)["user"]
        gids = list(spec_user.get("additionalGids") or [])
        for group in rootfs_groups(root):
            if name in group.members and group.gid not in gids:
                gids.append(group.gid)
        if spec_user["gid"] not in gids:
            gids.insert(0, spec_user["gid"])
        spec_user["additionalGids"] = gids

    return opt


def with_image_config(
    config: Mapping[str, Any], rootfs: str | os.PathLike[str] | None = None
) -> SpecOpt:
    """Take the process from an OCI image config (``WithImageConfig``).

    ``config`` is the image config document (``{"config": {...}, "os": ...}``)
    or its ``config`` object. Args = Entrypoint + Cmd, env = the image's
    (or the default ``PATH``) overridden by the spec's, cwd = WorkingDir or
    ``/``, then ``User`` through :func:`with_user` and its groups.

    Raises:
        errdefs.InvalidArgument: as :func:`with_user`.
        errdefs.NotFound: as :func:`with_user`.
    """
    inner = config.get("config", config)
    image: Mapping[str, Any] = inner if isinstance(inner, Mapping) else {}

    def opt(spec: Spec) -> None:
        process = _process(spec)
        defaults = list(image.get("Env") or []) or [DEFAULT_PATH_ENV]
        process["env"] = replace_or_append_env(defaults, process.get("env") or [])
        process["args"] = [*(image.get("Entrypoint") or []), *(image.get("Cmd") or [])]
        process["cwd"] = image.get("WorkingDir") or "/"
        user = image.get("User") or ""
        if user:
            with_user(user, rootfs)(spec)
            with_additional_gids(str(process["user"]["uid"]), rootfs)(spec)
        else:
            with_additional_gids("root", rootfs)(spec)

    return opt
