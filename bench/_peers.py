"""Run pycontainerd and Debian's containerd side by side, and measure them alike.

The harness every benchmark in ``bench/`` builds on:

- :func:`start_containerd` / :func:`start_pycontainerd` start a daemon on its own
  temporary root, state and socket and wait until it serves; :meth:`Peer.stop`
  stops it (SIGTERM, then SIGKILL) and removes the directories.
- :func:`latency`, :func:`throughput` run the per-daemon client processes
  (``_containerd_client.py`` under the gRPC venv, ``_pycontainerd_client.py``
  under the project venv; both share ``_worker``'s loop).
- :func:`cold_start` times a CLI command like hyperfine; :func:`sample_rss`
  reads VmRSS and :func:`cpu_s` CPU time from ``/proc``; :func:`percentile`
  and :func:`summarize` are the statistics.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
GRPC_VENV = Path(os.environ.get("PYCTD_BENCH_GRPC_VENV", BENCH / ".venv-grpc"))
GRPC_PACKAGES = ["containerd", "grpcio", "protobuf<3.21"]


class BenchError(Exception):
    """A peer could not be started or measured; the message says why."""


# --------------------------------------------------------------------------- statistics
def percentile(xs: list[float], p: float) -> float:
    """The ``p``-th percentile of ``xs``, linearly interpolated (numpy's default).

    Raises:
        ValueError: ``xs`` is empty.
    """
    s = sorted(xs)
    if not s:
        raise ValueError("percentile of no samples")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(samples: list[float], unit: str = "us") -> dict[str, float]:
    """n, p50, p90, p99, mean, min and max of ``samples``, keys suffixed by ``unit``."""
    out: dict[str, float] = {"n": len(samples)}
    for p in (50, 90, 99):
        out[f"p{p}_{unit}"] = round(percentile(samples, p), 3)
    out[f"mean_{unit}"] = round(statistics.fmean(samples), 3)
    out[f"min_{unit}"] = round(min(samples), 3)
    out[f"max_{unit}"] = round(max(samples), 3)
    return out


# --------------------------------------------------------------------------- /proc
def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sample_rss(pid: int, samples: int = 5, interval: float = 0.2) -> dict[str, Any]:
    """VmRSS sampled ``samples`` times, ``interval`` seconds apart.

    Raises:
        BenchError: the process is gone.
    """
    values: list[int] = []
    for i in range(samples):
        v = rss_kb(pid)
        if v is None:
            raise BenchError(f"process {pid} is gone; cannot read its RSS")
        values.append(v)
        if i + 1 < samples:
            time.sleep(interval)
    return {"vmrss_kb_median": int(statistics.median(values)), "vmrss_kb_samples": values}


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used (all its threads), or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --------------------------------------------------------------------------- the gRPC venv
def grpc_python() -> Path:
    """The Python of the venv holding containerd's gRPC stubs, made on first use.

    Returns:
        Path of its interpreter (``bench/.venv-grpc/bin/python`` by default,
        ``$PYCTD_BENCH_GRPC_VENV`` overrides the venv).

    Raises:
        BenchError: the venv cannot be created or the packages installed.
    """
    python = GRPC_VENV / "bin" / "python"
    probe = [str(python), "-c", "import grpc, containerd.services.version.v1.version_pb2_grpc"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"[bench] creating {GRPC_VENV} with {' '.join(GRPC_PACKAGES)} ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(GRPC_VENV)],
        [str(python), "-m", "pip", "install", "-q", *GRPC_PACKAGES],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    if subprocess.run(probe, capture_output=True).returncode != 0:
        raise BenchError(f"{GRPC_VENV} still cannot import grpc and the containerd stubs")
    return python


# --------------------------------------------------------------------------- daemons
@attrs.frozen(kw_only=True)
class Peer:
    """One daemon started for a benchmark, on its own temporary directory."""

    name: str
    base: Path
    address: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    client: list[str]  # argv prefix of a client process: [python, script, --address, A]
    cli_version: list[str]  # the daemon's own CLI asking for the version

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; then remove the temporary directory.

        Returns:
            The daemon's exit code (negative: killed by that signal).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"[bench] {self.name} ignored SIGTERM; killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
        return self.proc.returncode


def _connects(address: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def _spawn(name: str, base: Path, address: str, argv: list[str], **kw: Any) -> Peer:
    log_path = base / "daemon.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    peer = Peer(name=name, base=base, address=address, proc=proc, log_path=log_path, **kw)
    deadline = time.monotonic() + 30.0
    while not _connects(address):
        if proc.poll() is not None:
            tail = peer.log_tail()
            peer.stop()
            raise BenchError(f"{name} exited with {proc.returncode} while starting:\n{tail}")
        if time.monotonic() > deadline:
            tail = peer.log_tail()
            peer.stop()
            raise BenchError(f"{name} not serving on {address} after 30s:\n{tail}")
        time.sleep(0.02)
    return peer


def start_containerd(parent: Path | None = None) -> Peer:
    """Debian's containerd on a temporary root, state and socket (CRI's TCP off),
    in a new directory under ``parent`` (default ``/tmp``).

    Raises:
        BenchError: containerd is not installed, or does not come up.
    """
    binary = shutil.which("containerd")
    ctr = shutil.which("ctr")
    if binary is None or ctr is None:
        raise BenchError(
            "containerd/ctr not found: run scripts/setup.sh (apt-get install containerd)"
        )
    base = Path(tempfile.mkdtemp(prefix="pcd-bench-ctd-", dir=parent or "/tmp"))
    address = str(base / "ctd.sock")
    config = base / "ctd.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base}/root"\n'
        f'state = "{base}/state"\n'
        "[grpc]\n"
        f'  address = "{address}"\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n'
        "  disable_tcp_service = true\n"
    )
    client = [str(grpc_python()), str(BENCH / "_containerd_client.py"), "--address", address]
    return _spawn(
        "containerd",
        base,
        address,
        [binary, "--config", str(config)],
        client=client,
        cli_version=[ctr, "--address", address, "version"],
    )


def start_pycontainerd(parent: Path | None = None) -> Peer:
    """pycontainerd from the project venv on a temporary root, state and socket,
    in a new directory under ``parent`` (default ``/tmp``).

    Raises:
        BenchError: the venv has no ``pycontainerd``, or it does not come up.
    """
    binary = Path(os.environ.get("PYCONTAINERD", VENV_BIN / "pycontainerd"))
    if not binary.exists():
        raise BenchError(f"{binary} not found: run scripts/setup.sh first")
    base = Path(tempfile.mkdtemp(prefix="pcd-bench-py-", dir=parent or "/tmp"))
    address = str(base / "pycontainerd.sock")
    argv = [str(binary), "--root", str(base / "root"), "--state", str(base / "state")]
    client = [
        str(VENV_BIN / "python"),
        str(BENCH / "_pycontainerd_client.py"),
        "--address",
        address,
    ]
    return _spawn(
        "pycontainerd",
        base,
        address,
        [*argv, "--address", address],
        client=client,
        cli_version=[str(VENV_BIN / "pyctr"), "--address", address, "version"],
    )


# --------------------------------------------------------------------------- client processes
def _last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def latency(peer: Peer, calls: int, warmup: int, methods: list[str]) -> dict[str, Any]:
    """Sequential timed calls from one client process with one persistent connection.

    Returns:
        ``{"server": version reply, "samples_us": {method: [...]}}``.

    Raises:
        BenchError: the client process failed.
    """
    cmd = [*peer.client, "latency", f"--calls={calls}", f"--warmup={warmup}"]
    done = subprocess.run([*cmd, f"--methods={','.join(methods)}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(
            f"{peer.name} latency client failed ({done.returncode}):\n{done.stderr}\n"
            f"daemon log:\n{peer.log_tail()}"
        )
    return _last_json(done.stdout)


def throughput(
    peer: Peer, clients: int, duration: float, method: str = "version"
) -> dict[str, Any]:
    """``clients`` client processes, each with its own connection, calling ``method``
    back to back for ``duration`` seconds, started together.

    Returns:
        ``calls_per_s`` (sum over the clients) and each client's count.

    Raises:
        BenchError: a client process failed.
    """
    cmd = [*peer.client, "throughput", f"--method={method}", f"--duration={duration}"]
    procs = [
        subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(clients)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                _, err = p.communicate(timeout=30)
                raise BenchError(f"{peer.name} throughput client did not start:\n{err}")
        cpu0 = cpu_s(peer.pid)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        per_client: list[dict[str, Any]] = []
        for p in procs:
            out, err = p.communicate(timeout=duration + 60)
            if p.returncode != 0:
                raise BenchError(f"{peer.name} throughput client failed ({p.returncode}):\n{err}")
            per_client.append(_last_json(out))
        cpu1 = cpu_s(peer.pid)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    rate = sum(c["calls"] / c["elapsed_s"] for c in per_client)
    total = sum(c["calls"] for c in per_client)
    daemon_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "clients": clients,
        "duration_s": duration,
        "method": method,
        "calls_per_s": round(rate, 1),
        "calls_per_client": [c["calls"] for c in per_client],
        "daemon_cpu_s": None if daemon_cpu is None else round(daemon_cpu, 2),
        "daemon_cpu_us_per_call": None
        if daemon_cpu is None
        else round(daemon_cpu / total * 1e6, 1),
    }


def cold_start(cmd: list[str], runs: int = 15, warmup: int = 2) -> dict[str, Any]:
    """Wall time of ``cmd`` as a fresh process, hyperfine style.

    Returns:
        median/min/max in milliseconds over ``runs`` runs after ``warmup`` untimed ones.

    Raises:
        BenchError: the command failed.
    """
    samples: list[float] = []
    for i in range(warmup + runs):
        t0 = time.perf_counter_ns()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
        if done.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        if i >= warmup:
            samples.append(elapsed_ms)
    return {
        "command": cmd,
        "runs": runs,
        "median_ms": round(statistics.median(samples), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
    }


def write_report(path: str | None, report: Any) -> None:
    """Write a benchmark's results as JSON to ``path`` (nothing when ``None``)."""
    if not path:
        return
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"[bench] wrote {path}", file=sys.stderr)
