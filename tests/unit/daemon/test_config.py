from __future__ import annotations

from pathlib import Path

import pytest

from pycontainerd.daemon._config import Config, ConfigError, dump, load, parse


def test_defaults() -> None:
    c = Config()
    assert c.root == "/var/lib/pycontainerd"
    assert c.rpc.address == "/run/pycontainerd/pycontainerd.sock"
    assert c.rpc.gid == 0 and c.rpc.mode == 0o660
    assert c.rpc.max_recv_message_size == 16 << 20


def test_parse_sections_and_plugins() -> None:
    c = parse(
        'version = 2\nroot = "/r"\n[rpc]\n  address = "/s.sock"\n  gid = 5\n'
        '[debug]\n  level = "debug"\n'
        '[plugins."io.containerd.event.v1.exchange"]\n  max_events = 10\n'
    )
    assert (c.root, c.rpc.address, c.rpc.gid, c.debug.level) == ("/r", "/s.sock", 5, "debug")
    assert c.plugin("io.containerd.event.v1.exchange") == {"max_events": 10}
    assert c.plugin("other") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1", "version = 1 is not supported"),
        ("[rpc]\nadress = '/x'", "no key 'adress'"),
        ("[rpc]\ngid = 'wheel'", "[rpc] gid: expected int"),
        ("[rpc]\ngid = true", "expected an integer"),
        ("[grpc]\naddress = '/x'", "[grpc] is [rpc]"),
        ("bogus = 1", "unknown key 'bogus'"),
        ("root = ", "<config>"),
        ("disabled_plugins = 'x'", "list of strings"),
    ],
)
def test_bad_config_names_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse(text)
    assert message in str(err.value)


def test_load_missing_default_is_defaults_but_explicit_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(str(tmp_path / "nope.toml"))


def test_dump_round_trips() -> None:
    text = dump(
        Config(root="/a b", disabled_plugins=("x.y",)), {"p.q": {"n": 1, "f": 0.5, "b": True}}
    )
    again = parse(text)
    assert again.root == "/a b"
    assert again.disabled_plugins == ("x.y",)
    assert again.rpc.mode == 0o660
    assert again.plugin("p.q") == {"n": 1, "f": 0.5, "b": True}
