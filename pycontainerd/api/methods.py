"""Every method the daemon serves: the one table that routes, documents and
generates the JSON Schema (``python -m pycontainerd.api.docgen``)."""

from __future__ import annotations

from . import (
    containers,
    content,
    debug,
    diff,
    events,
    images,
    introspection,
    leases,
    namespaces,
    snapshots,
    tasks,
    transfer,
    version,
)
from .rpc import Method
from .types import Empty, Envelope

_ALL = [
    Method(
        name="version.version",
        request=Empty,
        response=version.VersionResponse,
        namespaced=False,
        doc="The daemon's version and git revision.",
    ),
    Method(
        name="namespaces.create",
        request=namespaces.CreateNamespaceRequest,
        response=namespaces.CreateNamespaceResponse,
        namespaced=False,
        doc="Create a namespace. `AlreadyExists` if it exists; the name must be an identifier.",
    ),
    Method(
        name="namespaces.get",
        request=namespaces.GetNamespaceRequest,
        response=namespaces.GetNamespaceResponse,
        namespaced=False,
        doc="A namespace and its labels. `NotFound` for an unknown name "
        "(containerd answers empty labels).",
    ),
    Method(
        name="namespaces.list",
        request=namespaces.ListNamespacesRequest,
        response=namespaces.ListNamespacesResponse,
        namespaced=False,
        doc="Every namespace, by name.",
    ),
    Method(
        name="namespaces.update",
        request=namespaces.UpdateNamespaceRequest,
        response=namespaces.UpdateNamespaceResponse,
        namespaced=False,
        doc="Set labels. With `update_mask`, only the `labels.<key>` paths named "
        "(an empty value deletes the label); without, the labels are replaced.",
    ),
    Method(
        name="namespaces.delete",
        request=namespaces.DeleteNamespaceRequest,
        response=Empty,
        namespaced=False,
        doc="Delete an empty namespace: `FailedPrecondition` while it holds objects, "
        "`NotFound` if unknown.",
    ),
    Method(
        name="introspection.plugins",
        request=introspection.PluginsRequest,
        response=introspection.PluginsResponse,
        namespaced=False,
        doc="Plugins in start order; `init_err` is set for those that could not start.",
    ),
    Method(
        name="introspection.server",
        request=Empty,
        response=introspection.ServerResponse,
        namespaced=False,
        doc="The daemon's persistent uuid, pid and pid namespace.",
    ),
    Method(
        name="events.publish",
        request=events.PublishRequest,
        response=Empty,
        doc="Journal an event in the call's namespace (timestamp: now). An `event` "
        "larger than 1 MiB msgpack-encoded is `ResourceExhausted`.",
    ),
    Method(
        name="events.forward",
        request=events.ForwardRequest,
        response=Empty,
        namespaced=False,
        doc="Journal an envelope built elsewhere (a shim's); namespace, topic and "
        "a non-zero timestamp are required.",
    ),
    Method(
        name="events.subscribe",
        request=events.SubscribeRequest,
        response=Empty,
        namespaced=False,
        stream=Envelope,
        doc="Stream envelopes matching any of `filters` (fields `namespace`, `topic`, "
        "`event.<field>`). With `since`, first replay the journal after that "
        "sequence, then continue live, without gap or duplicate. A `since` older "
        "than the journal's oldest event is `FailedPrecondition`; a `since` beyond the "
        "journal's head (the journal was reset) is `OutOfRange`, naming the head; the "
        "replay reads at most 4 MiB of the journal at a time; a subscriber too "
        "slow to keep up is ended with `ResourceExhausted` (resubscribe with `since`).",
    ),
    Method(
        name="content.info",
        request=content.InfoRequest,
        response=content.InfoResponse,
        doc="A blob of this namespace: size, times, labels. `NotFound` if the namespace "
        "does not own it; `InvalidArgument` for a digest that is not `sha256:<hex>`.",
    ),
    Method(
        name="content.update",
        request=content.UpdateContentRequest,
        response=content.UpdateContentResponse,
        doc="Set a blob's labels: paths `labels` or `labels.<key>` (an empty value "
        "deletes); no mask replaces them all. Other paths are `InvalidArgument`.",
    ),
    Method(
        name="content.list",
        request=content.ListContentRequest,
        response=content.ListContentResponse,
        doc="The blobs of this namespace matching any of `filters` (fields `digest`, "
        "`size`, `labels.<key>`), in one reply.",
    ),
    Method(
        name="content.delete",
        request=content.DeleteContentRequest,
        response=Empty,
        doc="Remove a blob from this namespace and publish `/content/delete`; the "
        "bytes are removed by the garbage collector once no namespace owns them.",
    ),
    Method(
        name="content.read",
        request=content.ReadContentRequest,
        response=Empty,
        stream=content.ReadContentResponse,
        doc="Stream `{offset, data}` items (1 MiB each at most) of `size` bytes from "
        "`offset` (size <= 0: to the end), then answer `{}`. An offset past the end is "
        "`OutOfRange`.",
    ),
    Method(
        name="content.status",
        request=content.StatusRequest,
        response=content.StatusResponse,
        doc="The ingest of `ref` in this namespace: offset, total, times. `NotFound` if none.",
    ),
    Method(
        name="content.list_statuses",
        request=content.ListStatusesRequest,
        response=content.ListStatusesResponse,
        doc="Ingests in progress in this namespace; filter field `ref`.",
    ),
    Method(
        name="content.write",
        request=content.WriteContentRequest,
        response=content.WriteContentResponse,
        doc="One message of containerd's Write stream. `ref` is required: the first "
        "write of a ref opens or resumes its ingest and locks it to this connection "
        "(another connection gets `Unavailable`) until commit, `content.abort` or "
        "disconnect (the ingest stays resumable). `expected` already in the namespace: "
        "`AlreadyExists`; stored by another namespace: the ingest is pre-filled "
        "(offset == total == size) and `commit` links it. `stat` answers the status; "
        "`write` appends `data` at `offset` (a non-zero offset other than the "
        "ingest's is `OutOfRange`; offset 0 restarts the ingest); `commit` writes "
        "`data` then verifies `total` and `expected` (`FailedPrecondition`, ingest "
        "kept) and makes the blob visible with `labels`. A full disk is "
        "`ResourceExhausted`, the ingest resumable. With the `lease` meta key the "
        "ingest and the blob are held by that lease.",
    ),
    Method(
        name="content.abort",
        request=content.AbortRequest,
        response=Empty,
        doc="Remove the ingest of `ref`; `NotFound` if there is none.",
    ),
    Method(
        name="leases.create",
        request=leases.CreateLeaseRequest,
        response=leases.CreateLeaseResponse,
        doc="Create a lease (an empty `id` is generated). Label "
        "`containerd.io/gc.expire` (RFC 3339) ends it at that time; "
        "`containerd.io/gc.flat` keeps its objects without what they reference.",
    ),
    Method(
        name="leases.delete",
        request=leases.DeleteLeaseRequest,
        response=Empty,
        doc="Delete a lease; with `sync`, collect garbage before answering.",
    ),
    Method(
        name="leases.list",
        request=leases.ListLeasesRequest,
        response=leases.ListLeasesResponse,
        doc="Leases of this namespace; filter fields `id`, `labels.<key>`.",
    ),
    Method(
        name="leases.add_resource",
        request=leases.AddResourceRequest,
        response=Empty,
        doc="Hold a resource: type `content` (id a digest), `ingests` (a ref) or "
        "`snapshots/<snapshotter>` (a key); other types are `NotImplemented`.",
    ),
    Method(
        name="leases.delete_resource",
        request=leases.DeleteResourceRequest,
        response=Empty,
        doc="Release a resource.",
    ),
    Method(
        name="leases.list_resources",
        request=leases.ListResourcesRequest,
        response=leases.ListResourcesResponse,
        doc="The resources a lease holds.",
    ),
    Method(
        name="diff.apply",
        request=diff.ApplyRequest,
        response=diff.ApplyResponse,
        doc="Unpack the layer blob `diff` (tar, tar+gzip or tar+zstd, detected) onto "
        "`mounts` (an active snapshot's). Answers the uncompressed tar's descriptor: "
        "`digest` is the DiffID computed while extracting. A hostile layer (paths "
        "escaping the root, links out of it, a whiteout of `/`, a truncated or corrupt "
        "stream) is `InvalidArgument` or `DataLoss`; nothing is written outside the "
        "snapshot.",
    ),
    Method(
        name="diff.diff",
        request=diff.DiffRequest,
        response=diff.DiffResponse,
        doc="Write the layer from `left` to `right` (mounted read-only) into this "
        "namespace's content as `media_type` (default `...tar+gzip`; `...tar`, "
        "`...tar+zstd`; others `NotImplemented`), labelled "
        "`containerd.io/uncompressed=<DiffID>` plus `labels`. With the `lease` meta key "
        "the blob is held by that lease.",
    ),
    Method(
        name="images.get",
        request=images.GetImageRequest,
        response=images.GetImageResponse,
        doc="An image by name; `NotFound` if there is none in this namespace.",
    ),
    Method(
        name="images.list",
        request=images.ListImagesRequest,
        response=images.ListImagesResponse,
        doc="Images matching any of `filters` (fields `name`, `target.digest`, "
        "`target.mediatype`, `labels.<key>`, `annotations.<key>`).",
    ),
    Method(
        name="images.create",
        request=images.CreateImageRequest,
        response=images.CreateImageResponse,
        doc="Create an image: `name` non-empty, `target` with a valid digest, a size "
        "over 0 and a media type (`InvalidArgument` otherwise); `AlreadyExists` for a "
        "taken name. Publishes `/images/create`. The target and what its blobs "
        "reference by `containerd.io/gc.ref.*` labels are kept from the collector.",
    ),
    Method(
        name="images.update",
        request=images.UpdateImageRequest,
        response=images.UpdateImageResponse,
        doc="Paths `labels`, `labels.<key>`, `target`, `annotations`, "
        "`annotations.<key>`; no mask replaces labels and target. Publishes "
        "`/images/update`.",
    ),
    Method(
        name="images.delete",
        request=images.DeleteImageRequest,
        response=Empty,
        doc="Delete an image (with `target`, only while it points at that digest, "
        "else `NotFound`); with `sync`, collect garbage before answering. "
        "Publishes `/images/delete`.",
    ),
    Method(
        name="transfer.pull",
        request=transfer.PullRequest,
        response=transfer.PullResponse,
        stream=transfer.Progress,
        doc="Pull `ref` from its registry: resolve, fetch the manifest for `platforms` "
        "(default: the host's; every one with `all_platforms`), fetch layers "
        "(`max_concurrent_downloads` at a time, each verified against digest and size, "
        "blobs the namespace has skipped, partial ingests resumed) and, with `unpack`, "
        "apply them into `snapshotter` snapshots named by chain ID as they arrive; then "
        "create or update the image. Progress streams as `stream.item`. Runs under the "
        "call's lease, or a 24 h lease of its own deleted at the end; `call.cancel` "
        "leaves nothing referenced. `InvalidArgument` for a bad ref or platform, "
        "`NotFound` for an unknown ref or platform, `PermissionDenied` for refused "
        "credentials, `FailedPrecondition` for a blob that is not its digest.",
    ),
    Method(
        name="transfer.push",
        request=transfer.PushRequest,
        response=transfer.PushResponse,
        stream=transfer.Progress,
        doc="Push the image `source_ref` (default `ref`) to `ref`: blobs first (cross-repo "
        "mounts from their `containerd.io/distribution.source.*` labels), then manifests "
        "and indexes, the target under the reference's tag. With `platforms`, only those "
        "manifests of an index. `NotFound` for an unknown image or missing content.",
    ),
    Method(
        name="transfer.import",
        request=transfer.ImportRequest,
        response=transfer.ImportResponse,
        stream=transfer.Progress,
        doc="Import the OCI image layout or docker-save tarball at `path` (on the daemon's "
        "host): images named by `io.containerd.image.name`, else "
        "`org.opencontainers.image.ref.name` (joined to `base_name` when it is a tag), or "
        "docker `RepoTags`; only blobs of the selected platforms are read; unpacked unless "
        "`unpack` is false. `InvalidArgument` for unsafe member names or an unknown "
        "layout, `NotFound` for a missing blob.",
    ),
    Method(
        name="transfer.export",
        request=transfer.ExportRequest,
        response=transfer.ExportResponse,
        stream=transfer.Progress,
        doc="Write the images `refs` to the tarball `path` (on the daemon's host): an OCI "
        "image layout whose `index.json` entries carry `io.containerd.image.name` and "
        "`org.opencontainers.image.ref.name`, plus a docker `manifest.json` with "
        "`RepoTags`; the blobs of `platforms` (default: the host's) or all platforms.",
    ),
    Method(
        name="snapshots.prepare",
        request=snapshots.PrepareSnapshotRequest,
        response=snapshots.PrepareSnapshotResponse,
        doc="Create the active (writable) snapshot `key` on the committed `parent` "
        '(`""`: an empty tree) and answer its mounts. `NotFound` for a missing parent '
        "(or lease), `InvalidArgument` for a parent that is not committed, "
        "`AlreadyExists` for a taken key or an existing `containerd.io/snapshot.ref` "
        "target. Only `containerd.io/snapshot/*` and `containerd.io/snapshot.ref` "
        "labels reach the backend; all are kept. Publishes `/snapshot/prepare`; with "
        "the `lease` meta key the lease holds it.",
    ),
    Method(
        name="snapshots.view",
        request=snapshots.ViewSnapshotRequest,
        response=snapshots.ViewSnapshotResponse,
        doc="Like `snapshots.prepare`, but a read-only view that can never be committed; "
        "no event is published (as in containerd).",
    ),
    Method(
        name="snapshots.mounts",
        request=snapshots.MountsRequest,
        response=snapshots.MountsResponse,
        doc="The mounts of an active snapshot or view; `FailedPrecondition` for a "
        "committed one, `NotFound` if none.",
    ),
    Method(
        name="snapshots.commit",
        request=snapshots.CommitSnapshotRequest,
        response=Empty,
        doc="Turn the active snapshot `key` into the committed snapshot `name` (with "
        "`key`'s parent and the given labels); `key` is gone afterwards. "
        "`AlreadyExists` for a taken name, `NotFound` for a missing key, "
        "`FailedPrecondition` for a view or committed key. Publishes `/snapshot/commit`.",
    ),
    Method(
        name="snapshots.remove",
        request=snapshots.RemoveSnapshotRequest,
        response=Empty,
        doc="Remove a snapshot of any kind; the key is free at once. `FailedPrecondition` "
        "while it has children, `NotFound` if none. Publishes `/snapshot/remove`.",
    ),
    Method(
        name="snapshots.stat",
        request=snapshots.StatSnapshotRequest,
        response=snapshots.StatSnapshotResponse,
        doc="A snapshot's kind (`view`, `active`, `committed`), parent, labels and times.",
    ),
    Method(
        name="snapshots.update",
        request=snapshots.UpdateSnapshotRequest,
        response=snapshots.UpdateSnapshotResponse,
        doc="Set labels: paths `labels` or `labels.<key>` (an empty value deletes); no "
        "mask replaces them all. Other paths (`name`, `parent`, `kind`, ...) are "
        "`InvalidArgument`.",
    ),
    Method(
        name="snapshots.list",
        request=snapshots.ListSnapshotsRequest,
        response=snapshots.ListSnapshotsResponse,
        doc="The snapshots of this namespace matching any of `filters` (fields `name`, "
        "`parent`, `kind`, `labels.<key>`), by key, in one reply.",
    ),
    Method(
        name="snapshots.usage",
        request=snapshots.UsageRequest,
        response=snapshots.UsageResponse,
        doc="Disk usage of one snapshot: allocated bytes and inodes (active: scanned "
        "now; committed: recorded at commit).",
    ),
    Method(
        name="snapshots.cleanup",
        request=snapshots.CleanupRequest,
        response=Empty,
        doc="Reclaim the disk space of removed snapshots (overlayfs deletes their "
        "directories here unless `sync_remove` is set).",
    ),
    Method(
        name="containers.get",
        request=containers.GetContainerRequest,
        response=containers.GetContainerResponse,
        doc="A container by id; `NotFound` if there is none in this namespace.",
    ),
    Method(
        name="containers.list",
        request=containers.ListContainersRequest,
        response=containers.ListContainersResponse,
        doc="Containers matching any of `filters` (fields `id`, `runtime.name`, `image`, "
        "`labels.<key>`), in one reply.",
    ),
    Method(
        name="containers.list_stream",
        request=containers.ListContainersRequest,
        response=Empty,
        stream=containers.ListContainerMessage,
        doc="As `containers.list`, one `{container}` item each.",
    ),
    Method(
        name="containers.create",
        request=containers.CreateContainerRequest,
        response=containers.CreateContainerResponse,
        doc="Create a container: `id` an identifier, `runtime.name` and `spec` "
        "required, `snapshotter` required with `snapshot_key` (`InvalidArgument` "
        "otherwise); `AlreadyExists` for a taken id. Publishes `/containers/create`. "
        "Its snapshot and label references are kept from the collector.",
    ),
    Method(
        name="containers.update",
        request=containers.UpdateContainerRequest,
        response=containers.UpdateContainerResponse,
        doc="Paths `labels`, `labels.<key>`, `spec`, `extensions`, `extensions.<key>`, "
        "`image`, `snapshotkey`; no mask replaces all of them, and a changed "
        "`snapshotter` or `runtime.name` is then `InvalidArgument` (immutable). "
        "Publishes `/containers/update`.",
    ),
    Method(
        name="containers.delete",
        request=containers.DeleteContainerRequest,
        response=Empty,
        doc="Delete a container (`NotFound` if unknown); publishes `/containers/delete`.",
    ),
    Method(
        name="tasks.create",
        request=tasks.CreateTaskRequest,
        response=tasks.CreateTaskResponse,
        doc=(
            "Create the task of a container: mount its rootfs (`rootfs`, or the "
            "container's `snapshot_key`), start its shim and `runc create` it; "
            "stdio are FIFO paths or `file://`/`binary://` URIs handed to the "
            "container. `NotFound` for an unknown container, `AlreadyExists` if it "
            "has a task. Publishes `/tasks/create`."
        ),
    ),
    Method(
        name="tasks.start",
        request=tasks.StartTaskRequest,
        response=tasks.StartTaskResponse,
        doc=(
            "Start the init process (`exec_id` empty) or an exec'd one; answers its "
            "pid. Starting twice is `FailedPrecondition`. Publishes `/tasks/start` "
            "or `/tasks/exec-started`."
        ),
    ),
    Method(
        name="tasks.delete",
        request=tasks.DeleteTaskRequest,
        response=tasks.DeleteTaskResponse,
        doc=(
            "Delete a stopped (or never started) task: `runc delete`, the shim "
            "exits, the bundle goes. A running or paused task is "
            "`FailedPrecondition`. Publishes `/tasks/delete`."
        ),
    ),
    Method(
        name="tasks.delete_process",
        request=tasks.DeleteProcessRequest,
        response=tasks.DeleteTaskResponse,
        doc=("Delete an exec'd process that has exited."),
    ),
    Method(
        name="tasks.get",
        request=tasks.GetTaskRequest,
        response=tasks.GetTaskResponse,
        doc=("A process of the task (init when `exec_id` is empty): pid, status, stdio, exit."),
    ),
    Method(
        name="tasks.list",
        request=tasks.ListTasksRequest,
        response=tasks.ListTasksResponse,
        doc=("The init processes of this namespace's tasks."),
    ),
    Method(
        name="tasks.kill",
        request=tasks.KillRequest,
        response=Empty,
        doc=(
            "Signal a process (`all`: every process of the container). A finished "
            "process is `NotFound` (process already finished)."
        ),
    ),
    Method(
        name="tasks.exec",
        request=tasks.ExecProcessRequest,
        response=Empty,
        doc=(
            "Add a process (an OCI `Process` in `spec`) under `exec_id` (an "
            "identifier; empty is `InvalidArgument`); start it with `tasks.start`. "
            "Publishes `/tasks/exec-added`."
        ),
    ),
    Method(
        name="tasks.resize_pty",
        request=tasks.ResizePtyRequest,
        response=Empty,
        doc=("Resize a process's terminal."),
    ),
    Method(
        name="tasks.close_io",
        request=tasks.CloseIORequest,
        response=Empty,
        doc=("Close a process's stdin (`stdin: true`)."),
    ),
    Method(
        name="tasks.pause",
        request=tasks.PauseTaskRequest,
        response=Empty,
        doc=(
            "Freeze the task's processes; a created task is `FailedPrecondition`. "
            "Publishes `/tasks/paused`."
        ),
    ),
    Method(
        name="tasks.resume",
        request=tasks.ResumeTaskRequest,
        response=Empty,
        doc=("Thaw a paused task. Publishes `/tasks/resumed`."),
    ),
    Method(
        name="tasks.list_pids",
        request=tasks.ListPidsRequest,
        response=tasks.ListPidsResponse,
        doc=("The pids in the task's cgroup; `info` names the `exec_id` of exec'd ones."),
    ),
    Method(
        name="tasks.update",
        request=tasks.UpdateTaskRequest,
        response=Empty,
        doc=("Update the task's resources (an OCI `LinuxResources` in `resources`)."),
    ),
    Method(
        name="tasks.metrics",
        request=tasks.MetricsRequest,
        response=tasks.MetricsResponse,
        doc=("cgroup metrics of the tasks matching `filters` (field `id`)."),
    ),
    Method(
        name="tasks.wait",
        request=tasks.WaitRequest,
        response=tasks.WaitResponse,
        doc=("Wait for a process to exit: `{exit_status, exited_at}`."),
    ),
    Method(
        name="debug.actors",
        request=debug.ActorsRequest,
        response=debug.ActorsResponse,
        namespaced=False,
        doc="The live actor tree: path, mailbox depth and capacity, restarts, age.",
    ),
]

METHODS: dict[str, Method] = {m.name: m for m in _ALL}
