"""The commands of ``pyctr``: each takes the client, the parsed args and an output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, Any

import attrs

from pycontainerd import __version__
from pycontainerd.api import errdefs
from pycontainerd.client import Client


def _jsonable(obj: Any) -> Any:
    if attrs.has(type(obj)):
        return {k: _jsonable(v) for k, v in attrs.asdict(obj, recurse=False).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


@attrs.define
class Output:
    """Text tables for people, one JSON document (or one per line for streams) for scripts."""

    json_mode: bool
    stream: IO[str]

    @staticmethod
    def dumps(obj: Any) -> str:
        """``obj`` as one line of JSON (attrs classes as maps, datetimes in ISO 8601)."""
        import json  # here: a cold text-mode command does not import it

        return json.dumps(_jsonable(obj), sort_keys=True)

    def json(self, obj: Any) -> None:
        self.stream.write(self.dumps(obj) + "\n")
        self.stream.flush()

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        widths = [len(h) for h in header]
        for row in rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        for row in [header, *rows]:
            line = "    ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            self.stream.write(line.rstrip() + "\n")

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _labels(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errdefs.InvalidArgument(f"label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _fmt_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _human(n: int) -> str:
    """Sizes as ctr's ``progress.Bytes`` prints them (``4.0 KiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def version(client: Client, args: argparse.Namespace, out: Output) -> None:
    server = client.version()
    if out.json_mode:
        out.json({"client": {"version": __version__}, "server": server})
        return
    out.line(f"Client:\n  Version:  {__version__}\n")
    out.line(f"Server:\n  Version:  {server.version}\n  Revision: {server.revision}")
    out.line(f"  UUID: {client.server().uuid}")


def namespaces(client: Client, args: argparse.Namespace, out: Output) -> None:
    action = args.action
    if action in ("ls", "list"):
        found = client.namespaces.list()
        if out.json_mode:
            out.json(found)
        else:
            out.table(["NAME", "LABELS"], [[n.name, _fmt_labels(n.labels)] for n in found])
    elif action == "create":
        created = client.namespaces.create(args.name, _labels(args.labels))
        if out.json_mode:
            out.json(created)
    elif action in ("rm", "remove", "delete"):
        failed: errdefs.ErrdefsError | None = None
        for name in args.names:
            try:
                client.namespaces.delete(name)
                if not out.json_mode:
                    out.line(name)
            except errdefs.ErrdefsError as exc:
                failed = exc
                out.stream.flush()
                print(f"pyctr: {name}: {exc.code}: {exc.message}", file=sys.stderr)
        if failed is not None:
            raise failed
    elif action == "label":
        updated = client.namespaces.label(args.name, _labels(args.labels))
        if out.json_mode:
            out.json(updated)
        else:
            out.line(_fmt_labels(updated.labels))


def plugins(client: Client, args: argparse.Namespace, out: Output) -> None:
    found = client.plugins(args.filters)
    if out.json_mode:
        out.json(found)
        return
    rows = []
    for p in found:
        platforms = ",".join(f"{x.os}/{x.architecture}" for x in p.platforms) or "-"
        status = "ok" if p.init_err is None else "skip"
        rows.append([p.type, p.id, platforms, status])
    out.table(["TYPE", "ID", "PLATFORMS", "STATUS"], rows)


def events(client: Client, args: argparse.Namespace, out: Output) -> None:
    for env in client.subscribe(args.filters, since=args.since):
        if out.json_mode:
            out.json(env)
        else:
            when = env.timestamp.isoformat() if env.timestamp else "-"
            payload = Output.dumps(env.event)
            out.line(f"{env.sequence} {when} {env.namespace} {env.topic} {payload}")


def debug(client: Client, args: argparse.Namespace, out: Output) -> None:
    actors = client.actors()
    if out.json_mode:
        out.json(actors)
        return
    rows = [
        [
            a.path,
            a.kind,
            f"{a.mailbox_depth}/{a.mailbox_capacity}" if a.mailbox_capacity else "-",
            str(a.restarts),
            f"{a.age_seconds:.0f}s",
            a.status,
        ]
        for a in actors
    ]
    out.table(["PATH", "KIND", "MAILBOX", "RESTARTS", "AGE", "STATUS"], rows)


Command = Callable[[Client, argparse.Namespace, Output], None]

COMMANDS: dict[str, Command] = {
    "version": version,
    "namespaces": namespaces,
    "namespace": namespaces,
    "ns": namespaces,
    "plugins": plugins,
    "plugin": plugins,
    "events": events,
    "event": events,
    "debug": debug,
}
