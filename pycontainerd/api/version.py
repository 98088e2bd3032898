"""containerd's Version service."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class VersionResponse:
    version: str = ""
    revision: str = ""
