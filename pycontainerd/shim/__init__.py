"""The per-task shim: runc under a small process that outlives the daemon.

One shim per task (containerd's ``containerd-shim-runc-v2``): it is the
subreaper of the container, runs the OCI runtime binary, records every exit
in the bundle before it reports it, serves the runtime v2 task API on its own
msgpack-RPC socket and forwards task events to the daemon. It imports the
standard library and msgpack only (no trio, no attrs): its memory is
budgeted against containerd's Go shim. Run it as ``python -m
pycontainerd.shim ... start`` (see ``_main``); the daemon side lives in
``pycontainerd.runtime``, which does what ``start`` does in-process
(``_launch``) and forks each serving shim from one pre-imported fork server
(``_main``'s ``zygote``), or execs ``serve`` when it cannot.
"""

from __future__ import annotations

from ._launch import CMDLINE_ROOM as CMDLINE_ROOM
from ._launch import MAX_SOCKET_PATH as MAX_SOCKET_PATH
from ._launch import MIN_SOCKET_DIGEST as MIN_SOCKET_DIGEST
from ._launch import SOCKET_DIR as SOCKET_DIR
from ._launch import Spawner as Spawner
from ._launch import UsageError as UsageError
from ._launch import launch_serve as launch_serve
from ._launch import max_socket_dir as max_socket_dir
from ._launch import serve_args as serve_args
from ._launch import set_cmdline as set_cmdline
from ._launch import socket_path as socket_path
from ._launch import spawn_exec as spawn_exec
from ._process import exit_file_name as exit_file_name
from ._process import read_exit_file as read_exit_file
from ._process import write_exit_record as write_exit_record
from ._service import OPTIONS_FILE as OPTIONS_FILE
from ._service import VERSION as VERSION
