from __future__ import annotations

import pytest

from pycontainerd.api import errdefs
from pycontainerd.plugin import InitContext, Instance, Registration, order


async def _init(ic: InitContext) -> Instance:
    return Instance()


def reg(type_: str, id_: str, *requires: str) -> Registration:
    return Registration(type=type_, id=id_, init=_init, requires=requires)


def test_requirements_start_first_and_given_order_is_kept() -> None:
    regs = [
        reg("svc", "namespaces", "meta"),
        reg("meta", "sqlite"),
        reg("svc", "version"),
        reg("event", "exchange", "meta"),
    ]
    assert [r.uri for r in order(regs)] == [
        "meta.sqlite",
        "svc.namespaces",
        "svc.version",
        "event.exchange",
    ]


def test_star_requires_every_other_plugin() -> None:
    regs = [reg("svc", "introspection", "*"), reg("meta", "sqlite"), reg("svc", "version")]
    assert [r.uri for r in order(regs)][-1] == "svc.introspection"


def test_cycle_is_invalid_argument_naming_the_path() -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"cycle: a\.x -> b\.y -> a\.x"):
        order([reg("a", "x", "b"), reg("b", "y", "a")])


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="twice"):
        order([reg("a", "x"), reg("a", "x")])


def test_uri() -> None:
    assert reg("io.containerd.metadata.v1", "sqlite").uri == "io.containerd.metadata.v1.sqlite"
