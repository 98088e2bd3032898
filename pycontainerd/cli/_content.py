"""``pyctr content`` and ``pyctr leases``, shaped like ``ctr content`` and ``ctr leases``.

content ls [-q] [FILTER...]          DIGEST SIZE AGE LABELS
content get DIGEST                   the blob on stdout
content ingest [--expected-size N] [--expected-digest D] [--label K=V] REF
                                     stdin into the store; like the snapshots
                                     pyctr creates, the blob carries
                                     containerd.io/gc.root so GC keeps it
content active [FILTER...]           REF SIZE TOTAL AGE
content rm DIGEST...
content label DIGEST [KEY=VALUE...]  KEY= removes a label
leases ls [-q] [FILTER...]           ID CREATED AT LABELS
leases create [--id ID] [--expires DURATION] [KEY=VALUE...]
leases rm [--sync] ID...
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.content_values import CHUNK
from pycontainerd.client import Client

from ._commands import Output, _fmt_labels, _labels

GC_ROOT = "containerd.io/gc.root"


def _age(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def parse_duration(text: str) -> timedelta:
    """Go durations as ``ctr`` takes them: ``90s``, ``1h30m``, ``24h``, ``0``.

    Raises:
        errdefs.InvalidArgument: anything else.
    """
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, number, i = 0.0, "", 0
    if text in ("0", ""):
        return timedelta(0)
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            raise errdefs.InvalidArgument(f"invalid duration {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise errdefs.InvalidArgument(f"invalid duration {text!r}: missing unit")
    return timedelta(seconds=total)


def content(client: Client, args: argparse.Namespace, out: Output) -> None:
    store, action = client.content, args.action
    if action in ("ls", "list"):
        infos = store.walk(args.filters)
        if out.json_mode:
            out.json(infos)
        elif args.quiet:
            for i in infos:
                out.line(i.digest)
        else:
            rows = [
                [i.digest, _size(i.size), _age(i.created_at), _fmt_labels(dict(i.labels))]
                for i in infos
            ]
            out.table(["DIGEST", "SIZE", "AGE", "LABELS"], rows)
    elif action == "get":
        sink = sys.stdout.buffer
        for chunk in store.read(args.digest):
            sink.write(chunk)
        sink.flush()
    elif action == "ingest":
        labels = {GC_ROOT: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **_labels(args.label)}
        source = sys.stdin.buffer
        with store.writer(args.ref, args.expected_size, args.expected_digest) as w:
            offset = w.status().offset
            skipped = 0
            while skipped < offset:  # a resumed ingest: skip what it holds
                data = source.read(min(CHUNK, offset - skipped))
                if not data:
                    raise errdefs.DataLoss(f"stdin ended at {skipped}, the ingest holds {offset}")
                skipped += len(data)
            for data in iter(lambda: source.read(CHUNK), b""):
                w.write(data)
            digest = w.commit(args.expected_size, args.expected_digest, labels)
        if out.json_mode:
            out.json({"digest": digest})
        else:
            out.line(digest)
    elif action == "active":
        statuses = store.list_statuses(args.filters)
        if out.json_mode:
            out.json(statuses)
        else:
            rows = [[s.ref, _size(s.offset), _size(s.total), _age(s.updated_at)] for s in statuses]
            out.table(["REF", "SIZE", "TOTAL", "AGE"], rows)
    elif action in ("rm", "delete", "del", "remove"):
        failed: errdefs.ErrdefsError | None = None
        for digest in args.digests:
            try:
                store.delete(digest)
                if not out.json_mode:
                    out.line(digest)
            except errdefs.ErrdefsError as exc:
                failed = exc
                out.stream.flush()
                print(f"pyctr: {digest}: {exc.code}: {exc.message}", file=sys.stderr)
        if failed is not None:
            raise failed
    elif action == "label":
        labels = _labels(args.labels)
        info = store.info(args.digest)
        updated = store.update(attrs.evolve(info, labels=labels), [f"labels.{k}" for k in labels])
        if out.json_mode:
            out.json(updated)
        else:
            out.line(_fmt_labels(dict(updated.labels)))


def leases(client: Client, args: argparse.Namespace, out: Output) -> None:
    action = args.action
    if action in ("ls", "list"):
        found = client.leases.list(args.filters)
        if out.json_mode:
            out.json(found)
        elif args.quiet:
            for lease in found:
                out.line(lease.id)
        else:
            rows = [
                [x.id, x.created_at.isoformat() if x.created_at else "-", _fmt_labels(x.labels)]
                for x in found
            ]
            out.table(["ID", "CREATED AT", "LABELS"], rows)
    elif action == "create":
        labels = _labels(args.labels)
        expires = parse_duration(args.expires)
        if expires:
            when = datetime.now(UTC) + expires
            labels["containerd.io/gc.expire"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        lease = client.leases.create(args.id, labels)
        if out.json_mode:
            out.json(lease)
        else:
            out.line(lease.id)
    elif action in ("rm", "delete", "remove"):
        for lease_id in args.ids:
            client.leases.delete(lease_id, sync=args.sync)
            if not out.json_mode:
                out.line(lease_id)


COMMANDS = {
    "content": content,
    "leases": leases,
    "lease": leases,
}
