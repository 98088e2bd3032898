from __future__ import annotations

import pytest

from pycontainerd.api import errdefs, identifiers, labels


@pytest.mark.parametrize("name", ["a", "a.b", "a-b_c", "A1", "x" * 76, "default", "k8s.io"])
def test_valid(name: str) -> None:
    identifiers.validate(name)
    assert identifiers.is_valid(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("-a", "must match"),
        ("a-", "must match"),
        ("a..b", "must match"),
        ("a/b", "must match"),
        ("a b", "must match"),
        ("a:b", "must match"),
        ("a\n", "must match"),
        ("../etc", "must match"),
        ("x" * 77, "greater than maximum length (76 characters)"),
    ],
)
def test_invalid(name: str, message: str) -> None:
    with pytest.raises(
        errdefs.InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        identifiers.validate(name)
    assert not identifiers.is_valid(name)


def test_labels_limit_is_4096_bytes_of_key_and_value() -> None:
    labels.validate_labels({"k": "v" * 4095})
    with pytest.raises(errdefs.InvalidArgument, match="4097 bytes"):
        labels.validate_labels({"k": "v" * 4096})
    with pytest.raises(errdefs.InvalidArgument, match="4098 bytes"):
        labels.validate("k", "é" * 2048 + "v")
    with pytest.raises(errdefs.InvalidArgument, match="must not be empty"):
        labels.validate("", "v")
