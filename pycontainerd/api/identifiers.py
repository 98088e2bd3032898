"""containerd's identifier rule (``identifiers/validate.go``).

Namespaces, container ids, task ids and event-topic components are
identifiers: letters and digits, separated by single ``.``, ``_`` or ``-``,
at most 76 characters. Image names, lease ids, content refs and snapshot keys
are not.
"""

from __future__ import annotations

import re

from . import errdefs

MAX_LENGTH = 76
PATTERN = r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
_RE = re.compile(PATTERN)


def validate(s: str) -> None:
    """Check ``s`` against the identifier rule.

    Raises:
        errdefs.InvalidArgument: with containerd's message.
    """
    if not s:
        raise errdefs.InvalidArgument("identifier must not be empty")
    if len(s) > MAX_LENGTH:
        raise errdefs.InvalidArgument(
            f"identifier {s!r} greater than maximum length ({MAX_LENGTH} characters)"
        )
    if not _RE.match(s) or s.endswith("\n"):
        raise errdefs.InvalidArgument(f"identifier {s!r} must match {PATTERN}")


def is_valid(s: str) -> bool:
    try:
        validate(s)
    except errdefs.InvalidArgument:
        return False
    return True
