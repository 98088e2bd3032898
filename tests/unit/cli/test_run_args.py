"""``pyctr run``/``containers``/``tasks`` argument parsing (no daemon)."""

from __future__ import annotations

import signal

import pytest

from pycontainerd import oci
from pycontainerd.api import errdefs
from pycontainerd.cli import _parser
from pycontainerd.cli._run import parse_mount, spec_opts
from pycontainerd.cli._tasks import parse_signal


def test_everything_after_image_and_id_is_the_command() -> None:
    args = _parser().parse_args(
        ["run", "--rm", "-t", "--env", "A=1", "img", "x", "sh", "-c", "exit 3", "--rm"]
    )
    assert (args.rm, args.tty, args.env, args.image, args.id) == (True, True, ["A=1"], "img", "x")
    assert args.args == ["sh", "-c", "exit 3", "--rm"]
    ex = _parser().parse_args(["tasks", "exec", "--exec-id", "e", "c", "ls", "-l"])
    assert (ex.exec_id, ex.id, ex.args) == ("e", "c", ["ls", "-l"])


def test_parse_mount() -> None:
    assert parse_mount("type=bind,src=/a,dst=/b,options=rbind:ro") == {
        "type": "bind",
        "source": "/a",
        "destination": "/b",
        "options": ["rbind", "ro"],
    }
    with pytest.raises(errdefs.InvalidArgument):
        parse_mount("type=bind,src=/a")
    with pytest.raises(errdefs.InvalidArgument):
        parse_mount("type=bind,bogus=1,dst=/b")


def test_parse_signal() -> None:
    assert parse_signal("SIGKILL") == parse_signal("kill") == parse_signal("9") == signal.SIGKILL
    with pytest.raises(errdefs.InvalidArgument):
        parse_signal("SIGNOPE")


def test_flags_become_spec_options() -> None:
    args = _parser().parse_args(
        ["run", "--net-host", "--memory-limit", "1048576", "--cpus", "1.5", "--read-only", "i", "x"]
    )
    spec = oci.apply(oci.default_spec("ns", "x"), *spec_opts(args))
    linux = spec["linux"]
    assert {"type": "network"} not in linux["namespaces"]
    assert linux["resources"]["memory"]["limit"] == 1048576
    assert linux["resources"]["cpu"]["quota"] == 150_000
    assert spec["root"]["readonly"] is True
