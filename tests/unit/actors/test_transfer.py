"""The transfer service's request checks (no daemon)."""

from __future__ import annotations

import pytest

from pycontainerd.actors.transfer import matcher_for
from pycontainerd.api import errdefs
from pycontainerd.api.types import Platform
from pycontainerd.images import platforms

AMD64 = Platform(os="linux", architecture="amd64")
ARM64 = Platform(os="linux", architecture="arm64")
ARMV7 = Platform(os="linux", architecture="arm", variant="v7")


def test_default_is_the_host_platform() -> None:
    matcher = matcher_for([])
    assert matcher.match(platforms.default_platform())
    assert not matcher.match(Platform(os="windows", architecture="amd64"))


def test_given_platforms_in_order_and_all() -> None:
    one = matcher_for(["linux/arm64"])
    assert one.match(ARM64) and not one.match(AMD64)
    both = matcher_for(["linux/arm/v7", "linux/amd64"])
    assert both.match(ARMV7) and both.match(AMD64) and not both.match(ARM64)
    assert both.less(ARMV7, AMD64) and not both.less(AMD64, ARMV7)
    everything = matcher_for(["linux/arm64"], all_platforms=True)
    assert everything.match(Platform(os="plan9", architecture="mips"))


def test_a_bad_specifier_is_invalid_argument() -> None:
    with pytest.raises(errdefs.InvalidArgument):
        matcher_for(["a/b/c/d"])
