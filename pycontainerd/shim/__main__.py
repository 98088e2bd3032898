"""``python -m pycontainerd.shim``: the per-task shim process."""

import sys

from ._main import main

sys.exit(main())
