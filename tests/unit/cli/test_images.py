"""``pyctr images``: ctr's argument order and flags; the progress display."""

from __future__ import annotations

import io

import pytest

from pycontainerd.api.transfer import Progress
from pycontainerd.cli import _parser
from pycontainerd.cli._images import ProgressDisplay


def test_ctr_argument_order() -> None:
    args = _parser().parse_args(["images", "export", "out.tar", "a:1", "b:2"])
    assert (args.action, args.output, args.refs) == ("export", "out.tar", ["a:1", "b:2"])
    args = _parser().parse_args(["images", "import", "--base-name", "x/y", "in.tar"])
    assert (args.input, args.base_name, args.no_unpack) == ("in.tar", "x/y", False)
    args = _parser().parse_args(["i", "ls", "-q"])
    assert (args.command, args.action, args.quiet) == ("i", "ls", True)
    args = _parser().parse_args(["images", "push", "--plain-http", "r.test/a:2", "a:1"])
    assert (args.remote, args.local, args.plain_http) == ("r.test/a:2", "a:1", True)


def test_pull_flags() -> None:
    args = _parser().parse_args(
        [
            "images",
            "pull",
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
            "--user",
            "me:pw",
            "--hosts-dir",
            "/etc/containerd/certs.d",
            "--skip-unpack",
            "r.test/app:1",
        ]
    )
    assert args.platform == ["linux/arm64", "linux/amd64"]
    assert (args.user, args.hosts_dir, args.skip_unpack) == (
        "me:pw",
        "/etc/containerd/certs.d",
        True,
    )
    assert (args.all_platforms, args.plain_http, args.ref) == (False, False, "r.test/app:1")
    with pytest.raises(SystemExit):
        _parser().parse_args(["images", "export", "only-out.tar"])


def test_progress_as_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    show = ProgressDisplay(out, live=False)
    show(Progress(event="downloading", name="layer-sha256:ab", progress=10, total=100))
    show(Progress(event="complete", name="layer-sha256:ab", progress=100, total=100))
    assert out.getvalue() == (
        "downloading\tlayer-sha256:ab\t10\t100\ncomplete\tlayer-sha256:ab\t100\t100\n"
    )


def test_live_progress_redraws_one_line_per_object() -> None:
    out = io.StringIO()
    show = ProgressDisplay(out, live=True)
    show(Progress(event="downloading", name="layer-a", progress=0, total=2048))
    show(Progress(event="downloading", name="layer-b", progress=0, total=4096))
    show(Progress(event="complete", name="layer-a", progress=2048, total=2048))
    text = out.getvalue()
    assert text.count("\x1b[1F") == 1 and text.count("\x1b[2F") == 1  # cursor back up
    last = text.rsplit("\x1b[2F", 1)[1]
    assert "complete" in last and "2.0 KiB/2.0 KiB" in last and "layer-b" in last
