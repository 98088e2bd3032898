"""The unpack benchmark's phases, shared by both per-daemon clients (stdlib only).

A client script (``_unpack_containerd.py`` under the gRPC venv,
``_unpack_pycontainerd.py`` under the project venv) implements :class:`Driver`
for its daemon's API and hands it to :func:`main`; the phases below then drive
both daemons the same way. Each phase is one client process with one
connection and prints one JSON line.

Phases (argv):

    ingest --layers FILE
        A lease (``containerd.io/gc.expire`` in 2 hours), and every layer blob
        of FILE (``bench/unpack.py``'s JSON) written and committed under it
        with its expected digest and size, labelled
        ``containerd.io/uncompressed=<DiffID>`` as a pull does. Prints the lease.
    unpack --layers FILE --lease ID --run N --snapshots-dir DIR [--manifest OUT]
        Timed: every layer in chain order, ``Prepare(key, parent=previous
        ChainID)``, ``Apply(layer, mounts)``, ``Commit(ChainID, key)`` under
        the lease; the applied digest must equal the DiffID. Then, untimed,
        the committed chain removed top-down and garbage collected (a
        throw-away lease deleted synchronously) and the snapshotter cleaned
        up. DIR (the snapshotter's ``snapshots`` directory) must be empty
        before the run. With ``--manifest``, after the clock stops, every
        snapshot's directory is described into OUT (:func:`manifest`), bottom
        layer first, to compare what the two daemons wrote.
    release --lease ID
        The lease deleted synchronously: the daemon collects the blobs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

NAMESPACE = "bench"
SNAPSHOTTER = "overlayfs"
EXPIRE_LABEL = "containerd.io/gc.expire"
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
CHUNK = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Driver(Protocol):
    """One daemon's content, lease, snapshot and diff API, as the phases need it."""

    about: dict[str, str]
    lease: str | None
    """Sent with every call below when set (a client's ``WithLease``)."""

    def create_lease(self, labels: dict[str, str]) -> str:
        """A new lease's id."""

    def delete_lease(self, lease: str, sync: bool) -> None:
        """Delete ``lease``; with ``sync``, collect garbage before returning."""

    def write_blob(self, path: Path, digest: str, size: int, labels: dict[str, str]) -> None:
        """Write the file at ``path`` in 1 MiB chunks and commit it as ``digest``."""

    def prepare(self, key: str, parent: str) -> Any:
        """``Snapshots.Prepare`` on :data:`SNAPSHOTTER`; the mounts, as the API has them."""

    def apply(self, layer: dict[str, Any], mounts: Any) -> str:
        """``Diff.Apply`` of the layer descriptor onto ``mounts``; the applied digest."""

    def commit(self, name: str, key: str) -> None:
        """``Snapshots.Commit``."""

    def remove(self, key: str) -> None:
        """``Snapshots.Remove``."""

    def cleanup(self) -> None:
        """``Snapshots.Cleanup``: reclaim the removed snapshots' directories."""


def cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (all its threads), each with those of
    its children that ended (a daemon may gunzip in a child process)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    utime, stime, cutime, cstime = (int(x) for x in data[data.rindex(")") + 2 :].split()[11:15])
    return (utime + cutime) / CLK_TCK, (stime + cstime) / CLK_TCK


def _expire(hours: float) -> str:
    when = datetime.now(UTC) + timedelta(hours=hours)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _layers(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        data: list[dict[str, Any]] = json.load(f)["layers"]
    return data


def descriptor(layer: dict[str, Any]) -> dict[str, Any]:
    """The OCI descriptor of a layer entry of the layers file."""
    return {"media_type": layer["media_type"], "digest": layer["digest"], "size": layer["size"]}


def manifest(root: Path) -> list[str]:
    """One line per entry under ``root`` (an overlay upper directory), sorted by path:
    type, mode, owner, size, mtime (not for directories' own times nor the root),
    SHA-256 of file contents, symlink targets, device numbers (whiteouts are 0/0
    character devices), ``trusted.overlay.*`` xattrs and hardlink groups."""
    lines: list[str] = []
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            fields = [rel, oct(st.st_mode), f"{st.st_uid}:{st.st_gid}"]
            if stat.S_ISREG(kind):
                first = inodes.setdefault((st.st_dev, st.st_ino), rel)
                with open(path, "rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                fields += [str(st.st_size), str(st.st_mtime_ns), digest, f"link={first}"]
            elif stat.S_ISLNK(kind):
                fields += [str(st.st_mtime_ns), os.readlink(path)]
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                fields += [f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"]
            attrs = sorted(a for a in os.listxattr(path, follow_symlinks=False))
            for a in attrs:
                if a.startswith("trusted.overlay."):
                    value = os.getxattr(path, a, follow_symlinks=False)
                    fields.append(f"{a}={value!r}")
            lines.append(" ".join(fields))
    return lines


def snapshot_dirs(snapshots_dir: Path) -> list[Path]:
    """The ``fs`` directories under ``snapshots_dir``, oldest snapshot first
    (both daemons number their overlay snapshots upwards)."""
    ids = sorted(os.listdir(snapshots_dir), key=lambda i: (len(i), i))
    return [snapshots_dir / i / "fs" for i in ids]


def phase_ingest(driver: Driver, args: argparse.Namespace) -> dict[str, Any]:
    lease = driver.create_lease({EXPIRE_LABEL: _expire(2)})
    driver.lease = lease
    t0 = time.perf_counter()
    for layer in _layers(args.layers):
        labels = {UNCOMPRESSED_LABEL: layer["diff_id"]}
        driver.write_blob(Path(layer["path"]), layer["digest"], layer["size"], labels)
    return {"lease": lease, "ingest_s": round(time.perf_counter() - t0, 3)}


def collect_garbage(driver: Driver) -> None:
    """Run the daemon's collector now (a throw-away lease deleted synchronously), then
    let the snapshotter reclaim the removed snapshots' directories."""
    held, driver.lease = driver.lease, None
    try:
        driver.delete_lease(driver.create_lease({EXPIRE_LABEL: _expire(0.1)}), sync=True)
        driver.cleanup()
    finally:
        driver.lease = held


def phase_unpack(driver: Driver, args: argparse.Namespace) -> dict[str, Any]:
    snapshots_dir = Path(args.snapshots_dir)
    left = sorted(os.listdir(snapshots_dir)) if snapshots_dir.exists() else []
    if left:
        raise RuntimeError(f"{snapshots_dir} is not empty before run {args.run}: {left}")
    layers = _layers(args.layers)
    driver.lease = args.lease
    per_layer: list[dict[str, float]] = []
    committed: list[str] = []
    active: str | None = None  # prepared, not yet committed
    problems: list[str] = []
    daemon0 = cpu_s(args.daemon_pid)
    client0 = time.process_time()
    t0 = time.perf_counter()
    try:
        parent = ""
        for i, layer in enumerate(layers):
            key = f"bench-extract-{args.run}-{i}"
            t1 = time.perf_counter()
            mounts = driver.prepare(key, parent)
            active = key
            t2 = time.perf_counter()
            applied = driver.apply(descriptor(layer), mounts)
            t3 = time.perf_counter()
            driver.commit(layer["chain_id"], key)
            t4 = time.perf_counter()
            active = None
            committed.append(layer["chain_id"])
            if applied != layer["diff_id"]:
                problems.append(f"layer {i}: applied {applied} != DiffID {layer['diff_id']}")
            parent = layer["chain_id"]
            per_layer.append(
                {
                    "prepare_s": round(t2 - t1, 4),
                    "apply_s": round(t3 - t2, 4),
                    "commit_s": round(t4 - t3, 4),
                }
            )
        wall = time.perf_counter() - t0
        daemon1 = cpu_s(args.daemon_pid)
        client_cpu = time.process_time() - client0
        if args.manifest:
            with open(args.manifest, "w") as out:
                for i, fs in enumerate(snapshot_dirs(snapshots_dir)):
                    out.write(f"## layer {i}\n")
                    out.writelines(line + "\n" for line in manifest(fs))
    finally:
        t5 = time.perf_counter()
        if active is not None:
            driver.remove(active)
        for name in reversed(committed):
            driver.remove(name)
        collect_garbage(driver)
        teardown = time.perf_counter() - t5
    if problems:
        raise RuntimeError("; ".join(problems))
    return {
        "run": args.run,
        "wall_s": round(wall, 4),
        "daemon_cpu_s": round(sum(daemon1) - sum(daemon0), 3),
        "daemon_user_s": round(daemon1[0] - daemon0[0], 3),
        "daemon_sys_s": round(daemon1[1] - daemon0[1], 3),
        "client_cpu_s": round(client_cpu, 3),
        "layers": per_layer,
        "teardown_s": round(teardown, 3),
    }


def phase_release(driver: Driver, args: argparse.Namespace) -> dict[str, Any]:
    driver.delete_lease(args.lease, sync=True)
    return {"released": args.lease}


PHASES: dict[str, Callable[[Driver, argparse.Namespace], dict[str, Any]]] = {
    "ingest": phase_ingest,
    "unpack": phase_unpack,
    "release": phase_release,
}


def main(prog: str, make_driver: Callable[[str], Driver]) -> int:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--address", required=True)
    p.add_argument("--daemon-pid", type=int, required=True)
    sub = p.add_subparsers(dest="phase", required=True)
    ingest = sub.add_parser("ingest")
    ingest.add_argument("--layers", required=True)
    unpack = sub.add_parser("unpack")
    unpack.add_argument("--layers", required=True)
    unpack.add_argument("--lease", required=True)
    unpack.add_argument("--run", type=int, required=True)
    unpack.add_argument("--snapshots-dir", required=True)
    unpack.add_argument("--manifest", help="describe the unpacked trees into this file")
    release = sub.add_parser("release")
    release.add_argument("--lease", required=True)
    args = p.parse_args()
    driver = make_driver(args.address)
    result = PHASES[args.phase](driver, args)
    result["client"] = driver.about
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit("run _unpack_containerd.py or _unpack_pycontainerd.py")
