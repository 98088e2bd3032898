"""containerd's label rule (``labels/validate.go``): key plus value at most 4096 bytes."""

from __future__ import annotations

from collections.abc import Mapping

from . import errdefs

MAX_SIZE = 4096
RESERVED_PREFIX = "containerd.io/"


def validate(key: str, value: str) -> None:
    """Check one label.

    Raises:
        errdefs.InvalidArgument: empty key, or key and value over 4096 bytes.
    """
    if not key:
        raise errdefs.InvalidArgument("label key must not be empty")
    size = len(key.encode()) + len(value.encode())
    if size > MAX_SIZE:
        raise errdefs.InvalidArgument(
            f"label key and value length ({size} bytes) greater than maximum size "
            f"({MAX_SIZE} bytes), key: {key[:10]}"
        )


def validate_labels(labels: Mapping[str, str]) -> None:
    """Check every label of a map (see :func:`validate`)."""
    for key, value in labels.items():
        validate(key, value)
