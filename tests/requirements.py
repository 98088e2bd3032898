"""What the tests need from the host, installed by ``scripts/setup.sh``.

A missing program is a broken setup, not something this host cannot do: the
test fails and says what to install, instead of skipping silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require(program: str | Path, package: str) -> str:
    """The path of ``program`` (a name on PATH or a path); fails the test when missing.

    Args:
        program: ``"umoci"`` or ``Path("/usr/bin/docker-registry")``.
        package: the Debian package that provides it.
    """
    found = str(program) if os.path.exists(program) else shutil.which(str(program))
    if found is None:
        pytest.fail(
            f"{program} is missing: run ./scripts/setup.sh (it installs the Debian "
            f"package {package})"
        )
    return found
