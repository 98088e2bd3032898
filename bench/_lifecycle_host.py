"""The lifecycle benchmark's host side: the busybox layer, the spec, the ``runc run``
floor, and removing what a failed run leaves (shims, their containers, cgroups).

- :func:`busybox_layer` writes the one-layer image both daemons get: an
  uncompressed OCI layer tar of ``/bin/busybox`` with the applets the benchmark
  runs, deterministic (mtime 0, root-owned), and its descriptor.
- :func:`default_spec` is containerd's default spec (``pycontainerd.oci``) running
  ``true``, the document both clients send (the cgroups path and hostname per
  container).
- :func:`runc_floor` times plain ``runc run`` of an equivalent bundle (the same
  spec, the layer extracted into a directory): the floor no daemon can beat.
- :func:`shim_cold_start` times a bare shim process of each daemon.
- :func:`kill_shims`, :func:`remove_run_dirs` and :func:`remove_cgroups` clean up
  after a run, also a failed one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import _peers

import pycontainerd
from pycontainerd import oci
from pycontainerd.runtime import shim_command

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
APPLETS = ("true", "sleep", "sh")
DIRS = ("bin", "dev", "etc", "proc", "root", "run", "sys", "tmp")
FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": b"root:x:0:\n",
}
FLOOR_CGROUP_PARENT = "bench-lifecycle-runc"


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime = 0
    info.uname = info.gname = "root"
    return info


def busybox_layer(directory: Path, busybox: Path = Path("/bin/busybox")) -> dict[str, Any]:
    """Write ``directory/layer.tar`` and its descriptor ``directory/layer.json``.

    Returns:
        The descriptor: ``path``, ``digest`` (also the DiffID: uncompressed),
        ``size``, ``media_type``.

    Raises:
        FileNotFoundError: ``busybox`` is missing (``apt-get install busybox-static``).
    """
    path = directory / "layer.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            mode = 0o1777 if d == "tmp" else 0o700 if d == "root" else 0o755
            tar.addfile(_info(d, tarfile.DIRTYPE, mode))
        data = busybox.read_bytes()
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for applet in APPLETS:
            tar.addfile(_info(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, content in FILES.items():
            info = _info(name, tarfile.REGTYPE, 0o644, len(content))
            tar.addfile(info, io.BytesIO(content))
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    desc = {
        "path": str(path),
        "digest": f"sha256:{h.hexdigest()}",
        "size": path.stat().st_size,
        "media_type": LAYER_MEDIA_TYPE,
    }
    (directory / "layer.json").write_text(json.dumps(desc))
    return desc


def default_spec(directory: Path, namespace: str) -> Path:
    """containerd's default spec running ``true``, written to ``directory/spec.json``."""
    spec = oci.default_spec(namespace, "template")
    oci.apply(spec, oci.with_default_path_env(), oci.with_process_args("true"))
    path = directory / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def runc_floor(
    directory: Path, layer: dict[str, Any], spec_path: Path, runs: int, warmup: int
) -> dict[str, Any]:
    """``runc run`` of ``true`` in a bundle like the daemons' (the layer as a plain
    directory, the same spec), ``warmup + runs`` times in sequence.

    Returns:
        ``samples_ms`` (the timed runs) and runc's version line.

    Raises:
        RuntimeError: runc is missing or a run failed.
    """
    runc = shutil.which("runc")
    if runc is None:
        raise RuntimeError("runc not found: apt-get install runc")
    bundle, state = directory / "floor-bundle", directory / "floor-runc-root"
    (bundle / "rootfs").mkdir(parents=True)
    state.mkdir()
    with tarfile.open(layer["path"]) as tar:
        tar.extractall(bundle / "rootfs", filter="tar")
    template = json.loads(spec_path.read_text())
    samples: list[float] = []
    try:
        for i in range(warmup + runs):
            cid = f"floor-{os.getpid()}-{i}"
            spec = dict(template, hostname=cid)
            spec["linux"] = dict(template["linux"], cgroupsPath=f"/{FLOOR_CGROUP_PARENT}/{cid}")
            (bundle / "config.json").write_text(json.dumps(spec))
            t0 = time.perf_counter_ns()
            done = subprocess.run(
                [runc, "--root", str(state), "run", "--bundle", str(bundle), cid],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            elapsed = (time.perf_counter_ns() - t0) / 1e6
            if done.returncode != 0:
                raise RuntimeError(f"runc run {cid}: exit {done.returncode}: {done.stderr!r}")
            if i >= warmup:
                samples.append(elapsed)
    finally:
        for left in os.listdir(state):
            subprocess.run([runc, "--root", str(state), "delete", "-f", left], capture_output=True)
    version = subprocess.run([runc, "--version"], capture_output=True, text=True).stdout
    return {"samples_ms": samples, "runc": version.splitlines()[0] if version else "?"}


def shim_cold_start(runs: int = 10) -> dict[str, dict[str, Any]]:
    """Wall time of one shim process doing nothing but start (a task's creation starts
    two: ``start`` and the long-running one): pycontainerd's interpreter importing
    ``pycontainerd.shim._main`` with the shim's command and environment, and
    ``containerd-shim-runc-v2 -v``.

    Raises:
        BenchError: a command failed or ``containerd-shim-runc-v2`` is missing.
    """
    go_shim = shutil.which("containerd-shim-runc-v2")
    if go_shim is None:
        raise _peers.BenchError("containerd-shim-runc-v2 not found: apt-get install containerd")
    python = shim_command()[:2]  # the interpreter and -S, as the daemon runs the shim
    package_parent = str(Path(pycontainerd.__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join([package_parent, *(p for p in sys.path if p)])  # as the daemon
    imports = [*python, "-c", "import pycontainerd.shim._main"]
    return {
        "pycontainerd": _peers.cold_start(["env", f"PYTHONPATH={pythonpath}", *imports], runs),
        "containerd": _peers.cold_start([go_shim, "-v"], runs),
    }


# --------------------------------------------------------------------------- cleanup
def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        if int(data[data.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry))
    return out


def kill_shims(base: Path) -> list[int]:
    """SIGKILL every shim started for the daemon under ``base`` (an argument of its
    command line is a path there: containerd's ``-address``, pycontainerd's
    ``-bundle``) and the processes under it (the containers); the shims' pids."""
    prefix, killed = str(base).rstrip("/") + "/", []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        argv = _argv(int(entry))
        is_shim = bool(argv) and (
            os.path.basename(argv[0]).startswith("containerd-shim") or "pycontainerd.shim" in argv
        )
        if not is_shim or not any(a.startswith(prefix) for a in argv[1:]):
            continue
        for pid in [*_children(int(entry)), int(entry)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        killed.append(int(entry))
    return killed


def remove_run_dirs(base: Path, namespace: str) -> list[str]:
    """Remove the empty directories under ``/run`` the daemon under ``base`` made for the
    run: containerd's runc root for ``namespace`` (``/run/containerd/runc/<ns>``, shared
    by every containerd, so only when empty; pycontainerd keeps every runtime path,
    shim sockets included, under its state directory); the directories removed."""
    candidates = [Path("/run/containerd/runc") / namespace]
    removed = []
    for d in candidates:
        try:
            d.rmdir()
            removed.append(str(d))
        except OSError:
            continue
    return removed


def remove_cgroups(parents: list[str]) -> list[str]:
    """Remove the (empty) cgroup directories ``/sys/fs/cgroup[/<controller>]/<parent>``
    and their empty children runc left; the directories removed."""
    removed = []
    root = Path("/sys/fs/cgroup")
    bases = [root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]
    for base in bases:
        for parent in parents:
            top = base / parent
            if not top.is_dir():
                continue
            for sub in sorted(top.iterdir(), reverse=True):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                        removed.append(str(sub))
                    except OSError:
                        continue
            try:
                top.rmdir()
                removed.append(str(top))
            except OSError:
                continue
    return removed
