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
