"""The chaos checks see what they check: each one, given the breakage it is
for, reports it (so a chaos run with 0 violations means something)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import attrs

from pycontainerd import images as oci_images
from pycontainerd.client import Client
from tests.integration.daemon import DaemonProcess

from . import invariants as inv


def test_each_check_reports_its_breakage(daemon: DaemonProcess, image_ref: str) -> None:
    seen: Counter[str] = Counter()
    with Client(daemon.address, namespace="inv", timeout=60) as c:
        image = c.pull(image_ref, plain_http=True)
        assert inv.blobs(daemon, ["inv"], seen) == []
        assert inv.images(c, seen) == []
        assert seen["blob files hashed"] == len(c.content.walk()) > 4
        assert seen["image chains checked"] == 1

        # a blob file that is not its digest
        _, manifest = image.manifest()
        blob = daemon.root / "io.containerd.content.v1.content/blobs/sha256"
        path = blob / manifest.config.digest.removeprefix("sha256:")
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        hashed, sized = inv.blobs(daemon, ["inv"], seen)
        assert hashed.startswith(f"blob file {path.name} hashes to ")
        size = manifest.config.size
        assert sized.endswith(f"{manifest.config.digest} of {size} bytes, its file has {size + 1}")
        path.write_bytes(original)

        # an image whose recorded unpack is not its chain's top
        chain = oci_images.chain_ids(image.config().diff_ids)
        info = c.content.info(manifest.config.digest)
        label = inv.GC_REF_SNAPSHOT + inv.SNAPSHOTTER
        c.content.update(attrs.evolve(info, labels={label: chain[-2]}), [f"labels.{label}"])
        [found] = inv.images(c, seen)
        assert f"unpacked to {chain[-2]}, not {chain[-1]}" in found

        # a container whose snapshot is gone
        c.containers.create(
            "lost", spec={"ociVersion": "1.0.2"}, snapshotter="overlayfs", snapshot_key="gone"
        )
        [found] = inv.containers(c, seen)
        assert found == "inv: container lost references missing snapshot gone"
        c.containers.delete("lost")

        # a task said to run whose process is gone (pids stay below pid_max, at most 2**22);
        # one that ran before the kill and is not listed
        assert inv.tasks(c, {"t1": ("running", 1 << 22)}, {"t2": 42}, seen) == [
            f"inv: task t1 listed running, its process {1 << 22} is gone",
            "inv: task t2 (pid 42) was running before the kill, now missing (pid 0)",
        ]

        # an exit journalled twice
        exit = {"container_id": "t3", "id": "t3", "pid": 7, "exit_status": 137}
        for _ in range(2):
            c.publish("/tasks/exit", {**exit, "exited_at": datetime.now(UTC)})
        journal = inv.Journal()
        journal.read(c)
        assert journal.count("inv", "t3", "t3", 7) == 2
        assert journal.twice() == [
            "inv: exit of t3/t3 pid 7 journalled 2 times (statuses [137, 137])"
        ]
