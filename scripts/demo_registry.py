"""Start Debian's docker-registry on 127.0.0.1 and push a busybox image to it.

    python scripts/demo_registry.py DIR        prints HOST:PORT once the image is pushed;
                                               the registry's pid is in DIR/registry.pid

Used by ``scripts/demo.sh``: the image is built from ``/bin/busybox``
(busybox-static) exactly as the tests build theirs, and pushed with
pycontainerd's own registry client, so the demo needs no network.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pycontainerd.remotes import Resolver  # noqa: E402
from tests.imagebuild import busybox_image, push_image  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_registry(base: Path) -> str:
    port = free_port()
    host = f"127.0.0.1:{port}"
    (base / "registry.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'registry'}\n"
        f"http:\n  addr: {host}\n"
    )
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(base / "registry.yml")], stdout=log, stderr=log
    )
    (base / "registry.pid").write_text(str(proc.pid))
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return host
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"docker-registry did not listen on {host}; see {base / 'registry.log'}")


async def push(host: str) -> None:
    async with Resolver(plain_http=True) as resolver:
        await push_image(resolver, f"{host}/library/busybox:latest", busybox_image())


def main() -> None:
    base = Path(sys.argv[1])
    base.mkdir(parents=True, exist_ok=True)
    host = start_registry(base)
    trio.run(push, host)
    print(host)


if __name__ == "__main__":
    main()
