"""The daemon side of tasks: bundles, shims and recovery (containerd ``runtime/v2``).

Blocking and thread-safe enough to be driven from worker threads: a task
actor creates the bundle (:func:`new_bundle`), starts the shim
(:func:`start_shim`) and drives it through :class:`ShimClient`; on daemon
start, :func:`load_existing` reconnects live shims and cleans dead ones.
"""

from __future__ import annotations

from ._bundle import TASK_PLUGIN as TASK_PLUGIN
from ._bundle import Bundle as Bundle
from ._bundle import delete_bundle_path as delete_bundle_path
from ._bundle import load_bundle as load_bundle
from ._bundle import new_bundle as new_bundle
from ._forkserver import FORK_SERVER as FORK_SERVER
from ._forkserver import REAPER as REAPER
from ._forkserver import ChildReaper as ChildReaper
from ._forkserver import ForkServer as ForkServer
from ._load import DEAD_SHIM_EXIT_STATUS as DEAD_SHIM_EXIT_STATUS
from ._load import LoadedTask as LoadedTask
from ._load import load_existing as load_existing
from ._shim import SHIM_BINARY_FILE as SHIM_BINARY_FILE
from ._shim import DeleteResult as DeleteResult
from ._shim import ExitStatus as ExitStatus
from ._shim import ShimClient as ShimClient
from ._shim import delete_shim as delete_shim
from ._shim import max_socket_dir as max_socket_dir
from ._shim import record_exit as record_exit
from ._shim import recorded_shim_command as recorded_shim_command
from ._shim import shim_command as shim_command
from ._shim import shim_pycache_dir as shim_pycache_dir
from ._shim import shim_socket_dir as shim_socket_dir
from ._shim import start_shim as start_shim
