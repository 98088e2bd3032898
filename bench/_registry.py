"""A local ``docker-registry`` for the pull benchmark, and the image pushed into it.

:class:`Registry` runs Debian's ``docker-registry`` (distribution 2.8) on a free
port of 127.0.0.1 with its storage in a directory of the benchmark, its access
log on, so :func:`Registry.requests` can tell what a push did (uploads,
cross-repository mounts, blobs already there). :func:`publish` makes an OCI
image of :mod:`_layers`' blobs (an image config whose ``rootfs.diff_ids`` are
the layers' DiffIDs, an OCI manifest) and pushes it with pycontainerd's own
registry client (``pycontainerd.remotes``), children first.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import _layers
import _peers
import trio

from pycontainerd.images import Descriptor
from pycontainerd.remotes import Resolver

REGISTRY_BIN = "docker-registry"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}
_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Registry:
    """One ``docker-registry`` serving plain http on ``host`` (``127.0.0.1:<port>``).

    Raises:
        BenchError: ``docker-registry`` is not installed or does not listen within 15 s.
    """

    def __init__(self, base: Path) -> None:
        binary = shutil.which(REGISTRY_BIN)
        if binary is None:
            raise _peers.BenchError("docker-registry not found: apt-get install docker-registry")
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.host = f"127.0.0.1:{_free_port()}"
        self.log_path = base / "registry.log"
        config = base / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(8)}\n"
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15.0
        while True:
            if self.proc.poll() is not None:
                raise _peers.BenchError(f"docker-registry exited:\n{self._tail()}")
            try:
                with socket.create_connection(("127.0.0.1", int(self.host.split(":")[1])), 0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise _peers.BenchError("docker-registry not listening after 15 s") from None
                time.sleep(0.05)

    def _tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def requests(self, repository: str) -> Counter[str]:
        """What the access log shows done to ``repository``'s blobs, by kind.

        Kinds: ``mounted`` (``POST ?mount=`` answered 201), ``uploaded``
        (an upload's final ``PUT ?digest=`` answered 201), ``exists`` (``HEAD``
        of a blob answered 200), ``manifests`` (``PUT`` of a manifest, 201).
        """
        out: Counter[str] = Counter()
        prefix = f"/v2/{repository}/"
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = _REQUEST.search(line)
            if m is None or not m["path"].startswith(prefix):
                continue
            method, path, status = m["method"], m["path"][len(prefix) :], m["status"]
            if method == "POST" and "mount=" in path and status == "201":
                out["mounted"] += 1
            elif method == "PUT" and path.startswith("blobs/uploads/") and status == "201":
                out["uploaded"] += 1
            elif method == "HEAD" and path.startswith("blobs/") and status == "200":
                out["exists"] += 1
            elif method == "PUT" and path.startswith("manifests/") and status == "201":
                out["manifests"] += 1
        return out

    def close(self) -> None:
        """Stop the registry (SIGTERM, then SIGKILL); its directory stays for the caller."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _blob(media_type: str, data: bytes) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Descriptor(media_type=media_type, digest=digest, size=len(data))


def image_documents(layers: list[_layers.Layer]) -> tuple[bytes, bytes]:
    """The image config and OCI manifest of ``layers`` for this machine's platform.

    Returns:
        ``(config, manifest)`` as canonical JSON bytes.
    """
    arch = GOARCH.get(platform.machine(), platform.machine())
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]},
        "history": [
            {"created": "2023-11-14T22:13:20Z", "created_by": f"bench layer {i}"}
            for i in range(len(layers))
        ],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_desc = _blob(CONFIG_TYPE, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "digest": config_desc.digest,
            "size": config_desc.size,
        },
        "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in layers],
    }
    return config_bytes, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


async def _push(ref: str, layers: list[_layers.Layer], config: bytes, manifest: bytes) -> str:
    async with Resolver(plain_http=True) as resolver:
        pusher = resolver.pusher(ref)
        for layer in layers:
            desc = Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)
            await pusher.push_blob(desc, layer.path.read_bytes())
        await pusher.push_blob(_blob(CONFIG_TYPE, config), config)
        target = _blob(MANIFEST_TYPE, manifest)
        await pusher.push_manifest(target, manifest, tag=ref.rpartition(":")[2])
        return target.digest


def publish(ref: str, layers: list[_layers.Layer]) -> str:
    """Push the image of ``layers`` to ``ref`` (``host:port/repo:tag``, plain http).

    Returns:
        The manifest's digest.

    Raises:
        BenchError: the registry refused a blob or the manifest.
    """
    config, manifest = image_documents(layers)
    try:
        return trio.run(_push, ref, layers, config, manifest)
    except Exception as exc:
        raise _peers.BenchError(f"pushing {ref} failed: {type(exc).__name__}: {exc}") from exc
