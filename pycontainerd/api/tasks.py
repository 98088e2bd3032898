"""containerd's Tasks service (``tasks.*``).

A task is a container's running (or created, paused, stopped) init process,
plus the processes exec'd into it, each named by an ``exec_id`` (``""`` is
the init process). Status values are lower-case strings: ``"created"``,
``"running"``, ``"stopped"``, ``"paused"``, ``"pausing"``, ``"unknown"``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .bounds import FILTER, FILTERS, UINT32
from .types import AnyValue, Descriptor, Mount

STATUSES = ("unknown", "created", "running", "stopped", "paused", "pausing")


@attrs.frozen(kw_only=True)
class Process:
    container_id: str = ""
    id: str = ""
    """The exec id; for the init process, the container id."""
    pid: int = 0
    status: str = "unknown"
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    exit_status: int = 0
    exited_at: datetime | None = None


@attrs.frozen(kw_only=True)
class ProcessInfo:
    pid: int = 0
    info: AnyValue | None = None


@attrs.frozen(kw_only=True)
class Metric:
    timestamp: datetime | None = None
    id: str = ""
    data: AnyValue | None = None


@attrs.frozen(kw_only=True)
class CreateTaskRequest:
    container_id: str = ""
    rootfs: list[Mount] = attrs.field(factory=list)
    """Explicit mounts; empty: the container's ``snapshot_key`` is mounted."""
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    """FIFO paths, or ``file://<path>`` / ``binary://<path>?args`` log URIs."""
    terminal: bool = False
    checkpoint: Descriptor | None = None
    options: AnyValue | None = None
    runtime_path: str = ""


@attrs.frozen(kw_only=True)
class CreateTaskResponse:
    container_id: str = ""
    pid: int = 0


@attrs.frozen(kw_only=True)
class StartTaskRequest:
    container_id: str = ""
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class StartTaskResponse:
    pid: int = 0


@attrs.frozen(kw_only=True)
class DeleteTaskRequest:
    container_id: str = ""


@attrs.frozen(kw_only=True)
class DeleteProcessRequest:
    container_id: str = ""
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class DeleteTaskResponse:
    id: str = ""
    pid: int = 0
    exit_status: int = 0
    exited_at: datetime | None = None


@attrs.frozen(kw_only=True)
class GetTaskRequest:
    container_id: str = ""
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class GetTaskResponse:
    process: Process = attrs.field(factory=Process)


@attrs.frozen(kw_only=True)
class ListTasksRequest:
    filter: str = attrs.field(default="", metadata=FILTER)


@attrs.frozen(kw_only=True)
class ListTasksResponse:
    tasks: list[Process] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class KillRequest:
    container_id: str = ""
    exec_id: str = ""
    signal: int = attrs.field(default=0, metadata=UINT32)
    all: bool = False


@attrs.frozen(kw_only=True)
class ExecProcessRequest:
    container_id: str = ""
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    spec: AnyValue | None = None
    """The OCI process (``types.containerd.io/opencontainers/runtime-spec/1/Process``)."""
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class ResizePtyRequest:
    container_id: str = ""
    exec_id: str = ""
    width: int = attrs.field(default=0, metadata=UINT32)
    height: int = attrs.field(default=0, metadata=UINT32)


@attrs.frozen(kw_only=True)
class CloseIORequest:
    container_id: str = ""
    exec_id: str = ""
    stdin: bool = False


@attrs.frozen(kw_only=True)
class PauseTaskRequest:
    container_id: str = ""


@attrs.frozen(kw_only=True)
class ResumeTaskRequest:
    container_id: str = ""


@attrs.frozen(kw_only=True)
class ListPidsRequest:
    container_id: str = ""


@attrs.frozen(kw_only=True)
class ListPidsResponse:
    processes: list[ProcessInfo] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class CheckpointTaskRequest:
    container_id: str = ""
    parent_checkpoint: str = ""
    options: AnyValue | None = None


@attrs.frozen(kw_only=True)
class CheckpointTaskResponse:
    descriptors: list[Descriptor] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class UpdateTaskRequest:
    container_id: str = ""
    resources: AnyValue | None = None
    annotations: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class MetricsRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class MetricsResponse:
    metrics: list[Metric] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class WaitRequest:
    container_id: str = ""
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class WaitResponse:
    exit_status: int = 0
    exited_at: datetime | None = None


def any_map(value: AnyValue | None) -> dict[str, Any] | None:
    """An ``Any`` as the plain map the runtime and the shim take."""
    return None if value is None else {"type_url": value.type_url, "value": value.value}
