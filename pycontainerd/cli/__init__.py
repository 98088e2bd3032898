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
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# Each command word (aliases included): the module registering its arguments
# and the module running it. Only the command's own two are imported, and only
# its arguments are built: a cold ``pyctr version`` loads no image, snapshot or
# task code and builds 11 parsers, not 70 (each costs gettext look-ups).
FAMILIES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        ("version", "namespaces", "namespace", "ns", "plugins", "plugin"),
        ("", "._commands"),
    ),
    **dict.fromkeys(("events", "event", "debug"), ("", "._commands")),
    **dict.fromkeys(("content", "leases", "lease"), ("._content_args", "._content")),
    **dict.fromkeys(("snapshots", "snapshot"), ("._snapshots_args", "._snapshots")),
    **dict.fromkeys(("images", "image", "i"), ("._images_args", "._images")),
    **dict.fromkeys(("run", "containers", "container", "c"), ("._run_args", "._run")),
    **dict.fromkeys(("tasks", "task", "t"), ("._run_args", "._tasks")),
}
_ARGS_MODULES = ("", "._content_args", "._snapshots_args", "._images_args", "._run_args")
_VALUED = ("--address", "-a", "--namespace", "-n", "--timeout", "--format")
_JOINED = ("--address=", "--namespace=", "--timeout=", "--format=", "-a", "-n")


def _command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``, or ``None`` when it cannot be told without
    the whole parser (``--help``, an abbreviated option, an unknown word)."""
    it = iter(argv)
    for arg in it:
        if arg in _VALUED:
            next(it, None)
        elif arg.startswith(_JOINED):  # --address=/s, -a/s (-a alone is in _VALUED)
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in FAMILIES else None
    return None


def _add_core_parsers(sub: Any) -> None:
    """``version``, ``namespaces``, ``plugins``, ``events``, ``debug``."""
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

    dbg = sub.add_parser("debug", help="look inside the daemon")
    dbg_sub = dbg.add_subparsers(dest="action", required=True, metavar="ACTION")
    dbg_sub.add_parser("actors", help="the live actor tree")


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """``pyctr``'s parser: with ``command``, only that command's family of subcommands."""
    p = argparse.ArgumentParser(prog="pyctr", description="pycontainerd's debugging CLI")
    p.add_argument("--address", "-a", help="daemon socket ($PYCONTAINERD_ADDRESS)")
    p.add_argument("--namespace", "-n", help="namespace ($PYCONTAINERD_NAMESPACE, default)")
    p.add_argument("--timeout", type=float, default=None, help="per-call timeout in seconds")
    p.add_argument("--format", choices=("text", "json"), default="text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _ARGS_MODULES if command is None else (FAMILIES[command][0],)
    for name in wanted:
        if name:
            importlib.import_module(name, __name__).add_parsers(sub)
        else:
            _add_core_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = _parser(_command(argv)).parse_args(argv)
    from pycontainerd.api import errdefs
    from pycontainerd.client import Client

    from ._commands import Output

    handler = importlib.import_module(FAMILIES[args.command][1], __name__).COMMANDS[args.command]
    out = Output(json_mode=args.format == "json", stream=sys.stdout)
    code: object = 0
    try:
        with Client(args.address, namespace=args.namespace, timeout=args.timeout) as client:
            code = handler(client, args, out)
    except errdefs.ErrdefsError as exc:
        print(f"pyctr: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) else 0


__all__ = ["FAMILIES", "main"]
