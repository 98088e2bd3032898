"""A cold ``pyctr`` imports only what its command needs (the cold-start budget)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from pycontainerd.cli import FAMILIES, _command, _parser

# What no command but the ones named below may load: the stores (they pull in
# sqlite, btrfs, the metadata schema), Trio, the OCI runtime spec code.
STORES = ("pycontainerd.snapshots", "pycontainerd.metadata", "sqlite3", "trio")
CONTAINERS = ("pycontainerd.client._container", "pycontainerd.client.cio", "pycontainerd.oci")
IMAGES = ("pycontainerd.images", "pycontainerd.client._transfer", "pycontainerd.content")

_PROBE = """
import json, sys
from pycontainerd import cli
code = cli.main(["--address", "/nonexistent/pyctr-cold-start.sock", *sys.argv[1:]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 1  # no daemon there: Unavailable, after the imports
    assert "Unavailable" in done.stderr
    modules: list[str] = result["modules"]
    return modules


def _offenders(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m.startswith(prefixes) and m.split(".")[0] != "cattrs"]


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["version"], (*STORES, *CONTAINERS, *IMAGES, "pycontainerd.client._tasks")),
        (["namespaces", "ls"], (*STORES, *CONTAINERS, *IMAGES, "pycontainerd.cli._content")),
        (["snapshots", "ls"], (*STORES, *CONTAINERS, *IMAGES)),
        (["content", "ls"], (*STORES, *CONTAINERS, *IMAGES)),
        (["images", "ls"], (*STORES, *CONTAINERS, "pycontainerd.cli._snapshots")),
        (["containers", "ls"], (*STORES, *CONTAINERS, *IMAGES, "pycontainerd.client._tasks")),
        (["tasks", "ls"], (*STORES, *IMAGES, "pycontainerd.oci", "pycontainerd.client._container")),
    ],
)
def test_command_imports_only_its_family(argv: list[str], forbidden: tuple[str, ...]) -> None:
    modules = _loaded(*argv)
    assert f"pycontainerd.cli.{FAMILIES[argv[0]][1][1:]}" in modules
    assert _offenders(modules, forbidden) == []


def test_client_import_is_light() -> None:
    code = (
        "import json, sys\n"
        "from pycontainerd.client import Client\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout)
    assert "pycontainerd.client._sync" in modules
    assert _offenders(modules, (*STORES, *CONTAINERS, *IMAGES, "pycontainerd.client._")) == [
        "pycontainerd.client._sync"
    ]


def test_client_names_resolve_lazily() -> None:
    import pycontainerd.client as client
    from pycontainerd.client import _tasks, _transfer, cio

    assert client.Image is _transfer.Image
    assert client.Task is _tasks.Task and client.cio is cio
    assert {"Container", "Image", "cio", "aio", "Snapshots"} <= set(dir(client))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        client.Nope  # noqa: B018


def _choices(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    choices: dict[str, argparse.ArgumentParser] = action.choices
    return choices


def test_every_command_word_has_a_family() -> None:
    assert set(_choices(_parser())) == set(FAMILIES)
    for word, (_args, _run) in FAMILIES.items():
        assert word in _choices(_parser(word))
    assert set(_choices(_parser("version"))) < set(FAMILIES)


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["version"], "version"),
        (["-a", "/s", "--format=json", "-n", "ns1", "ns", "ls"], "ns"),
        (["--address=/s", "-nfoo", "--timeout", "3", "i", "ls", "-q"], "i"),
        (["-a/s", "snapshot", "--snapshotter", "native", "tree"], "snapshot"),
        (["--format", "json", "c", "ls"], "c"),
        (["t", "kill", "-s", "SIGKILL", "x"], "t"),
        (["--addr", "/s", "version"], None),  # an abbreviation: only the full parser knows
        (["-h"], None),
        (["bogus"], None),
        ([], None),
    ],
)
def test_command_word_and_family_parse_like_the_full_parser(
    argv: list[str], word: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYCONTAINERD_SNAPSHOTTER", raising=False)
    assert _command(argv) == word
    if word is not None:
        assert vars(_parser(word).parse_args(argv)) == vars(_parser().parse_args(argv))
