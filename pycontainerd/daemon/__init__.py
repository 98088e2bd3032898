"""``pycontainerd``: the daemon's command line.

pycontainerd [--config FILE] [--root DIR] [--state DIR] [--address SOCK]
             [--log-level L] [--log-format text|json]
pycontainerd config default
"""

from __future__ import annotations

import argparse
import sys

import attrs

from ._config import Config, ConfigError, dump, load


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pycontainerd", description="containerd, rebuilt in Python on Trio"
    )
    p.add_argument("--config", "-c", help="TOML config (default /etc/pycontainerd/config.toml)")
    p.add_argument("--root", help="persistent state directory")
    p.add_argument("--state", help="runtime state directory")
    p.add_argument("--address", "-a", help="Unix socket to serve msgpack-RPC on")
    p.add_argument("--log-level", "-l", help="debug, info, warning, error")
    p.add_argument("--log-format", choices=["text", "json"], help="text (logfmt) or json")
    sub = p.add_subparsers(dest="command")
    cfg = sub.add_parser("config", help="information on the config")
    cfg.add_argument(
        "action", choices=["default", "dump"], help="print the default / the effective config"
    )
    return p


def _apply_flags(config: Config, args: argparse.Namespace) -> Config:
    config = attrs.evolve(
        config,
        root=args.root or config.root,
        state=args.state or config.state,
        rpc=attrs.evolve(config.rpc, address=args.address or config.rpc.address),
        debug=attrs.evolve(
            config.debug,
            level=args.log_level or config.debug.level,
            format=args.log_format or config.debug.format,
        ),
    )
    return config


def _plugin_defaults() -> dict[str, dict[str, object]]:
    from pycontainerd.actors.registry import builtins

    return {reg.uri: dict(reg.defaults) for reg in builtins() if reg.defaults}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = (
            Config() if args.command == "config" and args.action == "default" else load(args.config)
        )
        config = _apply_flags(config, args)
    except ConfigError as exc:
        print(f"pycontainerd: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        sys.stdout.write(dump(config, _plugin_defaults()))
        return 0

    import trio

    from . import _logging
    from ._run import Daemon, StartupError

    try:
        _logging.setup(config.debug.level, config.debug.format)
    except ValueError as exc:
        print(f"pycontainerd: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(Daemon(config).run)
    except StartupError as exc:
        print(f"pycontainerd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
