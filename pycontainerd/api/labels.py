"""containerd's label rule (``labels/validate.go``): key plus value at most 4096 bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def apply_update(
    current: Mapping[str, str],
    update: Mapping[str, str],
    paths: Sequence[str],
    *,
    what: str,
) -> dict[str, str]:
    """containerd's label update of an object (content, images, snapshots, ...).

    With no ``paths`` the labels are replaced by ``update``. The path
    ``labels`` replaces them too; ``labels.<key>`` (everything after the first
    ``labels.``, dots allowed) sets that key to its value in ``update``, or
    deletes it when the value is empty or absent. Empty values never stay.

    Args:
        current: the object's labels now.
        update: the labels the caller sent.
        paths: the update mask's paths.
        what: names the object in errors (``content "sha256:..."``).

    Raises:
        errdefs.InvalidArgument: a path other than these, or a label that
            breaks the size rule.
    """
    if not paths:
        merged = {k: v for k, v in update.items() if v}
    else:
        merged = dict(current)
        for path in paths:
            if path == "labels":
                merged = {k: v for k, v in update.items() if v}
            elif path.startswith("labels.") and len(path) > len("labels."):
                key = path[len("labels.") :]
                value = update.get(key, "")
                if value:
                    merged[key] = value
                else:
                    merged.pop(key, None)
            else:
                raise errdefs.InvalidArgument(f"cannot update {path!r} field on {what}")
    validate_labels(merged)
    return merged
