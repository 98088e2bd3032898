"""Every method the daemon serves: the one table that routes, documents and
generates the JSON Schema (``python -m pycontainerd.api.docgen``)."""

from __future__ import annotations

from . import debug, events, introspection, namespaces, version
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
        doc="Journal an event in the call's namespace (timestamp: now).",
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
        "than the journal's oldest event is `FailedPrecondition`; a subscriber too "
        "slow to keep up is ended with `ResourceExhausted` (resubscribe with `since`).",
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
