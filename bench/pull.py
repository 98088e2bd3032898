"""Pull+unpack and push benchmark: pycontainerd against Debian's containerd, in one run, as root.

Generates :mod:`_layers`' deterministic 5-layer image once (about 80 MB of
gzip, 210 MB of tar, 9,000 files), gives it an OCI image config (``rootfs.
diff_ids`` = the layers' DiffIDs) and manifest, and pushes it with
pycontainerd's registry client to a local ``docker-registry`` on 127.0.0.1
(``_registry``). Both daemons' roots are on one filesystem made for the run
(``--fs``, as ``bench/unpack.py``: a fresh loop-mounted ext4 by default).
Then ``--runs`` times, alternating which side goes first, each side:

1. starts its daemon on a **fresh root** (a cold content store and
   snapshotter), and times the pull of ``<registry>/bench/big:latest`` with
   its CLI, which resolves, fetches the five layers and the config, and
   unpacks them into ``overlayfs`` snapshots: ``ctr images pull --plain-http``
   (side ``containerd``) and ``pyctr images pull --plain-http`` (side
   ``pycontainerd``, the headline: the same thing as ``ctr``, CLI start-up
   included on both sides); side ``pycontainerd-client`` times
   ``Client.pull(ref, plain_http=True)`` from this process instead (and
   ``Client.push`` in step 3). While the pull runs, the RSS of the daemon and
   its children (pycontainerd's gunzip processes, containerd's ``unpigz``
   when it is on ``PATH``: containerd uses it then, printed) is polled every
   10 ms; the peak is reported with the daemon's own ``VmHWM``;
2. checks the image is there and unpacked: the top layer's ChainID is a
   committed snapshot (``snapshots ls``); in the first round every snapshot's
   tree is described (``_unpack_worker.manifest``: metadata, contents,
   xattrs, hardlinks) and each pycontainerd side's compared with containerd's;
3. times pushing the image to a repository named for the side and run
   (``images push --plain-http``), by default on a **second** registry so every
   blob is uploaded (``--push-to same``: the source registry, where a
   cross-repository mount may stand in for uploads); the registry's access
   log says how many blobs were uploaded, mounted or already there;
4. stops the daemon, removes its root, ``sync``s and rests ``--settle`` s.

Prints best and median seconds of both pulls and pushes, the peak RSS, the
ratios pycontainerd/containerd and whether issue 6's target (pull at most
1.0x containerd's wall time) and goal (0.6x) are met; ``--json`` writes all.

    .venv/bin/python bench/pull.py [--runs 3] [--settle 2] [--fs ext4|tmpfs|none]
        [--push-to separate|same] [--peers pycontainerd,containerd,pycontainerd-client]
        [--tmpdir /tmp] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import _layers
import _peers
import _pull_stats
import _registry
import _scratch_fs
import _unpack_worker
import unpack

from pycontainerd.client import Client

SIDES = ("pycontainerd", "containerd", "pycontainerd-client")
DAEMON = {
    "pycontainerd": "pycontainerd",
    "containerd": "containerd",
    "pycontainerd-client": "pycontainerd",
}
START: dict[str, Callable[[Path | None], _peers.Peer]] = {
    "pycontainerd": _peers.start_pycontainerd,
    "containerd": _peers.start_containerd,
}
REPOSITORY = "bench/big"
TIMEOUT_S = 600.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/pull.py",
        description="pull+unpack and push of a 5-layer image: pycontainerd vs containerd",
    )
    p.add_argument("--runs", type=int, default=3, help="timed pulls and pushes per side (3)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to rest between pulls (2)")
    _scratch_fs.add_arguments(p)
    p.add_argument(
        "--push-to",
        choices=("separate", "same"),
        default="separate",
        help="push to a second registry (default: every blob uploaded) or to another "
        "repository of the source registry (cross-repository mounts possible)",
    )
    p.add_argument("--peers", default=",".join(SIDES), help=f"sides to run ({','.join(SIDES)})")
    p.add_argument("--json", metavar="FILE", help="also write the results here")
    return p


# --------------------------------------------------------------------------- one side
def cli(peer: _peers.Peer) -> list[str]:
    """The peer's CLI with its socket: ``ctr --address S`` or ``pyctr --address S``."""
    if peer.name == "containerd":
        return [shutil.which("ctr") or "ctr", "--address", peer.address]
    return [str(_peers.VENV_BIN / "pyctr"), "--address", peer.address]


def run_cli(peer: _peers.Peer, *args: str) -> str:
    """Run the peer's CLI; its stdout.

    Raises:
        BenchError: the command failed or took over 10 minutes.
    """
    cmd = [*cli(peer), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise _peers.BenchError(f"{' '.join(cmd)} took over {TIMEOUT_S}s") from exc
    if done.returncode != 0:
        raise _peers.BenchError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()}\n"
            f"daemon log:\n{peer.log_tail()}"
        )
    return done.stdout


def timed(peer: _peers.Peer, action: Callable[[], object]) -> dict[str, Any]:
    """Wall time, daemon CPU (with reaped children) and peak RSS of ``action``."""
    cpu0 = _pull_stats.cpu_with_children_s(peer.pid)
    with _pull_stats.peak_rss(peer.pid) as rss:
        t0 = time.perf_counter()
        action()
        wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 4),
        "daemon_cpu_s": round(_pull_stats.cpu_with_children_s(peer.pid) - cpu0, 2),
        "rss_tree_peak_kb": rss["tree_peak_kb"],
        "rss_daemon_hwm_kb": rss["daemon_hwm_kb"],
        "rss_samples": rss["samples"],
    }


def pull(side: str, peer: _peers.Peer, ref: str) -> dict[str, Any]:
    """Time one cold pull+unpack of ``ref`` by ``side``."""
    if side == "pycontainerd-client":
        with Client(peer.address, timeout=TIMEOUT_S) as client:
            client.version()  # connected before the clock starts, like a long-lived client
            return timed(peer, lambda: client.pull(ref, plain_http=True))
    return timed(peer, lambda: run_cli(peer, "images", "pull", "--plain-http", ref))


def push(side: str, peer: _peers.Peer, push_ref: str, ref: str) -> dict[str, Any]:
    """Time one push of the local image ``ref`` to ``push_ref`` by ``side``."""
    if side == "pycontainerd-client":
        with Client(peer.address, timeout=TIMEOUT_S) as client:
            client.version()
            return timed(peer, lambda: client.push(push_ref, source_ref=ref, plain_http=True))
    return timed(peer, lambda: run_cli(peer, "images", "push", "--plain-http", push_ref, ref))


def check_unpacked(peer: _peers.Peer, ref: str, chain_id: str) -> None:
    """The image is listed and its top ChainID is a committed overlayfs snapshot.

    Raises:
        BenchError: either is missing.
    """
    if ref not in run_cli(peer, "images", "ls"):
        raise _peers.BenchError(f"{peer.name}: {ref} not in images ls after the pull")
    if chain_id not in run_cli(peer, "snapshots", "ls"):
        raise _peers.BenchError(f"{peer.name}: snapshot {chain_id} missing: not unpacked")


def describe_tree(peer: _peers.Peer, out: Path) -> None:
    """Write :func:`_unpack_worker.manifest` of every overlay snapshot of ``peer``
    into ``out``, bottom layer first (to compare what the sides unpacked)."""
    snapshots = peer.base / unpack.SNAPSHOTS_DIR
    with out.open("w") as f:
        for i, fs in enumerate(_unpack_worker.snapshot_dirs(snapshots)):
            f.write(f"## layer {i}\n")
            f.writelines(line + "\n" for line in _unpack_worker.manifest(fs))


def one_run(
    side: str,
    root: Path,
    ref: str,
    push_ref: str,
    chain_id: str,
    target: _registry.Registry,
    tree: Path | None = None,
) -> dict[str, Any]:
    """Start a fresh daemon for ``side``, pull, check, push, stop; the figures.

    With ``tree``, after the pull's clock stops, the unpacked snapshots are
    described into that file (:func:`describe_tree`).
    """
    peer = START[DAEMON[side]](root)
    try:
        out: dict[str, Any] = {"server": " ".join(run_cli(peer, "version").split())}
        load = os.getloadavg()[0]
        out["pull"] = pull(side, peer, ref)
        out["pull"]["loadavg_1m_before"] = round(load, 2)
        check_unpacked(peer, ref, chain_id)
        if tree is not None:
            describe_tree(peer, tree)
        out["push"] = push(side, peer, push_ref, ref)
        out["push"]["ref"] = push_ref
        out["push"]["registry"] = dict(
            target.requests(push_ref.split("/", 1)[1].rpartition(":")[0])
        )
        return out
    finally:
        left = unpack.unmount_under(peer.base)
        peer.stop()
        for point in left + unpack.unmount_under(peer.base):
            print(f"[bench] unmounted {point}, left behind by {peer.name}", file=sys.stderr)


def measure(
    sides: list[str],
    root: Path,
    source: _registry.Registry,
    target: _registry.Registry,
    layers: list[_layers.Layer],
    args: argparse.Namespace,
    scratch: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``args.runs`` rounds over ``sides``, alternating their order.

    Returns:
        Each side's runs, and :func:`unpack.compare_trees` of what each
        pycontainerd side and containerd unpacked in the first round.
    """
    ref = f"{source.host}/{REPOSITORY}:latest"
    chain_id = layers[-1].chain_id
    results: dict[str, dict[str, Any]] = {side: {"runs": []} for side in sides}
    for run in range(args.runs):
        for side in sides if run % 2 == 0 else list(reversed(sides)):
            print(f"[bench] {side}: pull and push, run {run + 1}/{args.runs}", file=sys.stderr)
            push_ref = f"{target.host}/bench/push-{side}-{run}:latest"
            tree = scratch / f"{side}.tree" if run == 0 else None
            out = one_run(side, root, ref, push_ref, chain_id, target, tree)
            results[side]["server"] = out.pop("server")
            results[side]["runs"].append(out)
            os.sync()
            time.sleep(args.settle)
    trees: dict[str, Any] = {}
    if "containerd" in sides:
        for side in sides:
            if side != "containerd":
                trees[side] = unpack.compare_trees(
                    scratch / f"{side}.tree", scratch / "containerd.tree"
                )
    return results, trees


# --------------------------------------------------------------------------- main
def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _image(layers: list[_layers.Layer], generate_s: float, digest: str) -> dict[str, Any]:
    return {
        "manifest_digest": digest,
        "generate_s": round(generate_s, 1),
        "gzip_bytes": sum(x.size for x in layers),
        "tar_bytes": sum(x.tar_size for x in layers),
        "files": sum(x.files for x in layers),
        "top_chain_id": layers[-1].chain_id,
        "layers": [{"digest": x.digest, "size": x.size, "diff_id": x.diff_id} for x in layers],
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sides = [s for s in args.peers.split(",") if s]
    if not sides or any(s not in SIDES for s in sides) or args.runs < 1:
        print(f"bench/pull.py: --peers from {','.join(SIDES)}; --runs >= 1", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench/pull.py: run as root (overlay mounts need it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored (&)
    scratch = Path(tempfile.mkdtemp(prefix="pcd-bench-pull-", dir=args.tmpdir))
    cleanup = contextlib.ExitStack()
    try:
        print("[bench] generating the 5-layer image", file=sys.stderr)
        t0 = time.perf_counter()
        (scratch / "layers").mkdir()
        layers = _layers.build(scratch / "layers")
        generate_s = time.perf_counter() - t0
        source = _registry.Registry(scratch / "registry")
        cleanup.callback(source.close)
        target = source
        if args.push_to == "separate":
            target = _registry.Registry(scratch / "registry-push")
            cleanup.callback(target.close)
        ref = f"{source.host}/{REPOSITORY}:latest"
        print(f"[bench] pushing the image to {ref}", file=sys.stderr)
        digest = _registry.publish(ref, layers)
        for layer in layers:  # the registry has them now; the daemons fetch from it
            layer.path.unlink()
        root, made = cleanup.enter_context(_scratch_fs.scratch_fs(args.fs, scratch))
        fs = f"{unpack.filesystem(root)}; {made}"
        results, trees = measure(sides, root, source, target, layers, args, scratch)
    except (_peers.BenchError, _scratch_fs.ScratchError) as exc:
        print(f"bench/pull.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/pull.py: interrupted; stopping the daemons", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup.close()
        shutil.rmtree(scratch, ignore_errors=True)
    summary = _pull_stats.summarize(results)
    image = _image(layers, generate_s, digest)
    report = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "filesystem": fs,
            "servers": {side: r.get("server") for side, r in results.items()},
            "containerd_unpigz": shutil.which("unpigz"),
            "note": "pull = resolve + fetch + unpack into overlayfs from a cold content store "
            "(fresh daemon root per run) over plain http from a local docker-registry; "
            "ratios pycontainerd/containerd; RSS = daemon + its children, polled every 10 ms",
        },
        "image": image,
        "config": {
            "runs": args.runs,
            "settle_s": args.settle,
            "fs": args.fs,
            "push_to": args.push_to,
            "registry": ref,
        },
        "summary": summary,
        "trees": trees,
        "results": results,
    }
    print(
        f"image: {ref} (5 layers, {image['gzip_bytes'] / 2**20:.1f} MiB gzip, "
        f"{image['tar_bytes'] / 1e6:.1f} MB tar, {image['files']} files)"
    )
    print(f"filesystem of the daemons' roots: {fs}; runs: {args.runs}; push to: {args.push_to}")
    unpigz = shutil.which("unpigz")
    print(f"containerd's gzip: {'unpigz (' + unpigz + ')' if unpigz else 'Go (no unpigz on PATH)'}")
    print(_pull_stats.table(summary))
    for side, same in trees.items():
        verdict = "identical" if same["identical"] else "DIFFERENT (see the JSON's trees)"
        print(f"trees unpacked by {side} and containerd (run 1, every entry): {verdict}")
    _peers.write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
