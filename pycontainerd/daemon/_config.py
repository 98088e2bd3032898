"""The daemon's TOML config, in containerd's ``version = 2`` shape where a key means the same.

``[grpc] address`` becomes ``[rpc] address``; plugin sections are
``[plugins."<type>.<id>"]``. Command-line flags override the file.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import attrs

DEFAULT_ROOT = "/var/lib/pycontainerd"
DEFAULT_STATE = "/run/pycontainerd"
DEFAULT_ADDRESS = "/run/pycontainerd/pycontainerd.sock"
DEFAULT_CONFIG = "/etc/pycontainerd/config.toml"
MiB = 1 << 20


class ConfigError(Exception):
    """The config file cannot be used; the message says what to fix."""


@attrs.frozen(kw_only=True)
class RpcConfig:
    address: str = DEFAULT_ADDRESS
    gid: int = 0
    mode: int = 0o660
    max_recv_message_size: int = 16 * MiB
    """Bytes of one frame (containerd's ``[grpc] max_recv_message_size``)."""
    partial_frame_budget: int = 64 * MiB
    """Bytes of started, unfinished frames all connections may hold together; the
    connection whose frame would go over is answered ``ResourceExhausted`` and closed."""
    frame_timeout: float = 30.0
    """Seconds a started frame may take to arrive whole (slowloris); idle
    connections, which have started none, are not timed."""


_POSITIVE = {
    "rpc": ("max_recv_message_size", "partial_frame_budget", "frame_timeout"),
}


@attrs.frozen(kw_only=True)
class DebugConfig:
    level: str = "info"
    format: str = "text"


@attrs.frozen(kw_only=True)
class Config:
    version: int = 2
    root: str = DEFAULT_ROOT
    state: str = DEFAULT_STATE
    disabled_plugins: tuple[str, ...] = ()
    rpc: RpcConfig = RpcConfig()
    debug: DebugConfig = DebugConfig()
    plugins: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def plugin(self, uri: str) -> dict[str, Any]:
        return self.plugins.get(uri, {})


_SECTIONS: dict[str, type[Any]] = {"rpc": RpcConfig, "debug": DebugConfig}


def _check(where: str, value: object, expected: type[Any]) -> None:
    if expected in (int, float) and isinstance(value, bool):
        what = "an integer" if expected is int else "a number"
        raise ConfigError(f"{where}: expected {what}, got {value!r}")
    if expected is float and isinstance(value, int):
        return  # TOML's 30 for 30.0
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {value!r}")


def _section(name: str, cls: type[Any], raw: object) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    kwargs: dict[str, Any] = {}
    fields = {f.name: f for f in attrs.fields(cls)}
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            raise ConfigError(f"[{name}] has no key {key!r} (known: {', '.join(fields)})")
        expected = type(field.default)
        _check(f"[{name}] {key}", value, expected)
        if key in _POSITIVE.get(name, ()) and not (0 < value < math.inf):
            raise ConfigError(f"[{name}] {key}: expected a finite number above 0, got {value!r}")
        kwargs[key] = float(value) if expected is float else value
    return cls(**kwargs)


def parse(text: str, *, source: str = "<config>") -> Config:
    """A :class:`Config` from TOML text.

    Raises:
        ConfigError: bad TOML, an unknown key, or a value of the wrong type.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            kwargs[key] = _section(key, _SECTIONS[key], value)
        elif key == "grpc":
            raise ConfigError(f"{source}: [grpc] is [rpc] in pycontainerd (msgpack-RPC)")
        elif key == "plugins":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise ConfigError(f'{source}: [plugins."<type>.<id>"] sections must be tables')
            kwargs["plugins"] = value
        elif key in ("version", "root", "state"):
            _check(key, value, int if key == "version" else str)
            kwargs[key] = value
        elif key == "disabled_plugins":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: disabled_plugins must be a list of strings")
            kwargs[key] = tuple(value)
        else:
            raise ConfigError(f"{source}: unknown key {key!r}")
    config = Config(**kwargs)
    if config.version != 2:
        raise ConfigError(f"{source}: version = {config.version} is not supported (use 2)")
    return config


def load(path: str | None) -> Config:
    """The config at ``path``; the default path may be absent, an explicit one not."""
    target = Path(path or DEFAULT_CONFIG)
    try:
        text = target.read_text()
    except FileNotFoundError:
        if path is None:
            return Config()
        raise ConfigError(f"config file {target} does not exist") from None
    return parse(text, source=str(target))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump(config: Config, plugin_defaults: dict[str, dict[str, Any]]) -> str:
    """``pycontainerd config default``: the config as TOML, plugin defaults included."""
    lines = [
        f"version = {config.version}",
        f"root = {_toml_value(config.root)}",
        f"state = {_toml_value(config.state)}",
        f"disabled_plugins = {_toml_value(list(config.disabled_plugins))}",
    ]
    for name in _SECTIONS:
        section = getattr(config, name)
        lines += ["", f"[{name}]"]
        for field in attrs.fields(type(section)):
            value = getattr(section, field.name)
            text = f"0o{value:o}" if field.name == "mode" else _toml_value(value)
            lines.append(f"  {field.name} = {text}")
    plugins = {**plugin_defaults, **config.plugins}
    for uri, values in plugins.items():
        lines += ["", f'[plugins."{uri}"]']
        lines += [f"  {k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"
