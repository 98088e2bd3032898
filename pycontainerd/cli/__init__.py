"""``pyctr``: the debugging CLI, shaped like containerd's ``ctr``.

    pyctr [--address A] [--namespace N] [--format text|json] COMMAND
      version
      namespaces ls | create NAME [K=V...] | rm NAME... | label NAME [K=V...]
      plugins ls [FILTER...]
      events [--since N] [FILTER...]
      debug actors
      content ls|get|ingest|active|rm|label
      leases ls|create|rm
      snapshots [--snapshotter NAME] ls|prepare|view|mounts|commit|rm|usage|tree|info|label
      images ls|pull|push|rm|tag|check|import|export|usage|label|mount|unmount
      run [--rm] [-t] [-d] [--env K=V] [--mount SPEC] [--net-host] ... IMAGE ID [ARGS...]
      containers ls|create|rm|info|label
      tasks ls|start|kill|ps|pause|resume|exec|attach|metrics|rm

``$PYCONTAINERD_ADDRESS`` and ``$PYCONTAINERD_NAMESPACE`` give the defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._content_args import add_parsers as add_content_parsers
from ._images_args import add_parsers as add_images_parsers
from ._run_args import add_parsers as add_run_parsers
from ._snapshots_args import add_parsers as add_snapshots_parsers


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyctr", description="pycontainerd's debugging CLI")
    p.add_argument("--address", "-a", help="daemon socket ($PYCONTAINERD_ADDRESS)")
    p.add_argument("--namespace", "-n", help="namespace ($PYCONTAINERD_NAMESPACE, default)")
    p.add_argument("--timeout", type=float, default=None, help="per-call timeout in seconds")
    p.add_argument("--format", choices=("text", "json"), default="text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("version", help="client and server versions")

    ns = sub.add_parser("namespaces", aliases=["namespace", "ns"], help="manage namespaces")
    ns_sub = ns.add_subparsers(dest="action", required=True, metavar="ACTION")
    ns_sub.add_parser("ls", aliases=["list"], help="list namespaces")
    c = ns_sub.add_parser("create", help="create a namespace")
    c.add_argument("name")
    c.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    r = ns_sub.add_parser("rm", aliases=["remove", "delete"], help="remove empty namespaces")
    r.add_argument("names", nargs="+", metavar="NAME")
    lb = ns_sub.add_parser("label", help="set labels (KEY= removes one)")
    lb.add_argument("name")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")

    pl = sub.add_parser("plugins", aliases=["plugin"], help="list plugins")
    pl_sub = pl.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = pl_sub.add_parser("ls", aliases=["list"], help="list plugins")
    ls.add_argument("filters", nargs="*", metavar="FILTER")

    ev = sub.add_parser("events", aliases=["event"], help="print events as they happen")
    ev.add_argument("--since", type=int, default=None, help="replay after this sequence first")
    ev.add_argument("filters", nargs="*", metavar="FILTER")

    add_content_parsers(sub)
    add_snapshots_parsers(sub)
    add_images_parsers(sub)
    add_run_parsers(sub)

    dbg = sub.add_parser("debug", help="look inside the daemon")
    dbg_sub = dbg.add_subparsers(dest="action", required=True, metavar="ACTION")
    dbg_sub.add_parser("actors", help="the live actor tree")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pycontainerd.api import errdefs
    from pycontainerd.client import Client

    from ._commands import COMMANDS, Output
    from ._content import COMMANDS as CONTENT_COMMANDS
    from ._images import COMMANDS as IMAGES_COMMANDS
    from ._snapshots import COMMANDS as SNAPSHOTS_COMMANDS

    out = Output(json_mode=args.format == "json", stream=sys.stdout)
    code: object = 0
    try:
        with Client(args.address, namespace=args.namespace, timeout=args.timeout) as client:
            handlers = {**COMMANDS, **CONTENT_COMMANDS, **SNAPSHOTS_COMMANDS, **IMAGES_COMMANDS}
            if args.command in handlers:
                handlers[args.command](client, args, out)
            else:  # run, containers, tasks: imported only when used (they import oci)
                from ._run import COMMANDS as RUN_COMMANDS
                from ._tasks import COMMANDS as TASKS_COMMANDS

                code = {**RUN_COMMANDS, **TASKS_COMMANDS}[args.command](client, args, out)
    except errdefs.ErrdefsError as exc:
        print(f"pyctr: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) else 0


__all__ = ["main"]
