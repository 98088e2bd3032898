"""``pyctr`` and the client library against the real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client

from .daemon import DaemonProcess


def pyctr(
    daemon: DaemonProcess, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYCONTAINERD_ADDRESS=daemon.address)
    return subprocess.run(
        [sys.executable, "-m", "pycontainerd.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_version(daemon: DaemonProcess) -> None:
    out = pyctr(daemon, "version").stdout
    assert "Server:" in out and "UUID:" in out
    doc = json.loads(pyctr(daemon, "--format", "json", "version").stdout)
    assert doc["server"]["version"] == doc["client"]["version"]


def test_namespaces_create_label_ls_rm(daemon: DaemonProcess) -> None:
    pyctr(daemon, "namespaces", "create", "team-a", "owner=ops", "tier=1")
    assert pyctr(daemon, "ns", "label", "team-a", "tier=", "env=prod").stdout.strip() == (
        "env=prod,owner=ops"
    )
    listed = json.loads(pyctr(daemon, "--format", "json", "namespaces", "ls").stdout)
    assert {"name": "team-a", "labels": {"env": "prod", "owner": "ops"}} in listed
    text = pyctr(daemon, "namespaces", "ls").stdout.splitlines()
    assert text[0].split() == ["NAME", "LABELS"]
    assert "team-a" in text[1]
    assert pyctr(daemon, "namespaces", "rm", "team-a").stdout.strip() == "team-a"
    gone = pyctr(daemon, "namespaces", "rm", "team-a", check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def test_bad_label_argument_is_a_clear_error(daemon: DaemonProcess) -> None:
    res = pyctr(daemon, "namespaces", "create", "x", "novalue", check=False)
    assert res.returncode == 1
    assert "InvalidArgument" in res.stderr and "KEY=VALUE" in res.stderr


def test_plugins_ls_and_filter(daemon: DaemonProcess) -> None:
    rows = pyctr(daemon, "plugins", "ls").stdout.splitlines()
    assert rows[0].split() == ["TYPE", "ID", "PLATFORMS", "STATUS"]
    assert any("io.containerd.metadata.v1" in r and "ok" in r for r in rows)
    only = json.loads(pyctr(daemon, "--format", "json", "plugins", "ls", "id==sqlite").stdout)
    assert [p["id"] for p in only] == ["sqlite"]


def test_events_since_replays_as_json_lines(daemon: DaemonProcess) -> None:
    with Client(daemon.address, namespace="evns") as c:
        c.publish("/test/one", {"n": 1})
        c.publish("/test/two", {"n": 2})
    env = dict(os.environ, PYCONTAINERD_ADDRESS=daemon.address)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pycontainerd.cli",
            "--format",
            "json",
            "events",
            "--since",
            "0",
            'topic~="^/test/"',
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert [(e["topic"], e["event"]["n"], e["namespace"]) for e in lines] == [
        ("/test/one", 1, "evns"),
        ("/test/two", 2, "evns"),
    ]
    assert lines[0]["sequence"] < lines[1]["sequence"]


def test_debug_actors(daemon: DaemonProcess) -> None:
    rows = pyctr(daemon, "debug", "actors").stdout
    assert "root/metadata" in rows and "MetadataActor" in rows


def test_unreachable_daemon_is_unavailable(daemon: DaemonProcess) -> None:
    res = pyctr(daemon, "--address", "/nonexistent.sock", "version", check=False)
    assert res.returncode == 1 and "Unavailable" in res.stderr


def test_client_library_typed_calls(daemon: DaemonProcess) -> None:
    with Client(daemon.address) as c:
        assert c.version().version
        assert c.server().pid == daemon.pid
        ns = c.namespaces.create("lib", {"a": "1"})
        assert ns.labels == {"a": "1"}
        assert c.namespaces.get("lib").name == "lib"
        with pytest.raises(errdefs.NotFound):
            c.namespaces.get("nope")
        assert "root/metadata" in {a.path for a in c.actors()}
        c.publish("/lib/event", {"k": "v"})
        first = next(c.subscribe(['topic=="/lib/event"'], since=0))
        assert first.namespace == "default" and first.event == {"k": "v"}


def _pyctr_in(daemon: DaemonProcess, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYCONTAINERD_ADDRESS=daemon.address)
    return subprocess.run(
        [sys.executable, "-m", "pycontainerd.cli", *args],
        env=env,
        input=data,
        capture_output=True,
        timeout=30,
        check=True,
    )


def test_content_ingest_ls_get_label_active_rm(daemon: DaemonProcess) -> None:
    import hashlib

    data = os.urandom(3 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    out = _pyctr_in(
        daemon, data, "content", "ingest", "--expected-digest", digest, "--label", "a=b", "blob-1"
    )
    assert out.stdout.decode().strip() == digest
    assert _pyctr_in(daemon, b"", "content", "get", digest).stdout == data
    assert pyctr(daemon, "content", "ls", "-q").stdout.split() == [digest]
    table = pyctr(daemon, "content", "ls").stdout.splitlines()
    assert table[0].split() == ["DIGEST", "SIZE", "AGE", "LABELS"]
    assert "3.0 MiB" in table[1] and "a=b" in table[1] and "containerd.io/gc.root=" in table[1]
    assert (
        pyctr(daemon, "content", "label", digest, "a=", "c=d")
        .stdout.strip()
        .startswith("c=d,containerd.io/gc.root=")
    )
    listed = json.loads(pyctr(daemon, "--format", "json", "content", "ls", "labels.c==d").stdout)
    assert [i["digest"] for i in listed] == [digest]
    with Client(daemon.address) as c:
        w = c.content.writer("in-progress", total=100)
        w.write(b"x" * 40)
        w.close()
    active = pyctr(daemon, "content", "active").stdout.splitlines()
    assert active[0].split() == ["REF", "SIZE", "TOTAL", "AGE"]
    assert active[1].split()[:3] == ["in-progress", "40", "B"]
    assert pyctr(daemon, "content", "rm", digest).stdout.strip() == digest
    gone = pyctr(daemon, "content", "get", digest, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    bad = pyctr(daemon, "content", "get", "sha256:nothex", check=False)
    assert bad.returncode == 1 and "InvalidArgument" in bad.stderr


def test_leases_create_ls_rm(daemon: DaemonProcess) -> None:
    assert pyctr(daemon, "leases", "create", "--id", "mine", "--expires", "1h", "k=v").stdout == (
        "mine\n"
    )
    generated = pyctr(daemon, "leases", "create", "--expires", "0").stdout.strip()
    assert generated and generated != "mine"
    assert sorted(pyctr(daemon, "leases", "ls", "-q").stdout.split()) == sorted([generated, "mine"])
    listed = json.loads(pyctr(daemon, "--format", "json", "leases", "ls", "id==mine").stdout)
    assert listed[0]["labels"]["k"] == "v"
    assert "containerd.io/gc.expire" in listed[0]["labels"]
    assert pyctr(daemon, "leases", "rm", "--sync", "mine", generated).stdout.split() == [
        "mine",
        generated,
    ]
    assert pyctr(daemon, "leases", "ls", "-q").stdout == ""
    bad = pyctr(daemon, "leases", "create", "--expires", "soon", check=False)
    assert bad.returncode == 1 and "invalid duration" in bad.stderr


# A cold ``pyctr`` command loads its own family only, its handler's run included
# (tests/unit/cli/test_cold_start.py checks the imports up to the first call).
_PROBE = """
import json, sys
from pycontainerd import cli
code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
_STORES = ("pycontainerd.snapshots", "pycontainerd.metadata", "pycontainerd.content", "sqlite3")
_HEAVY = (*_STORES, "trio", "pycontainerd.oci", "pycontainerd.images", "pycontainerd.client.cio")


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["version"], (*_HEAVY, "pycontainerd.client._")),
        (["namespaces", "ls"], (*_HEAVY, "pycontainerd.client._")),
        (["plugins", "ls"], (*_HEAVY, "pycontainerd.client._")),
        (["snapshots", "ls"], (*_HEAVY, "pycontainerd.client._transfer")),
        (["content", "ls"], (*_HEAVY, "pycontainerd.client._transfer")),
        (["containers", "ls"], (*_HEAVY, "pycontainerd.client._tasks")),
        (["tasks", "ls"], (*_STORES, "trio", "pycontainerd.oci", "pycontainerd.images")),
        (["images", "ls"], (*_STORES, "trio", "pycontainerd.oci", "pycontainerd.client.cio")),
    ],
)
def test_cold_command_loads_only_its_family(
    daemon: DaemonProcess, argv: list[str], forbidden: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "--address", daemon.address, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, done.stderr
    loaded = [m for m in result["modules"] if m.startswith(forbidden)]
    assert loaded in ([], ["pycontainerd.client._sync"]), loaded
