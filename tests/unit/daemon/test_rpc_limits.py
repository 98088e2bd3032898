"""``[rpc] partial_frame_budget`` and ``frame_timeout``: defaults, parsing, refusals."""

from __future__ import annotations

import pytest

from pycontainerd.daemon._config import Config, ConfigError, dump, parse


def test_defaults_are_64_mib_and_30_seconds() -> None:
    rpc = Config().rpc
    assert rpc.partial_frame_budget == 64 << 20
    assert rpc.frame_timeout == 30.0


def test_an_integer_timeout_is_seconds_and_the_dump_reads_back() -> None:
    c = parse("[rpc]\nframe_timeout = 5\npartial_frame_budget = 1048576\n")
    assert c.rpc.frame_timeout == 5.0 and isinstance(c.rpc.frame_timeout, float)
    assert c.rpc.partial_frame_budget == 1 << 20
    assert parse(dump(c, {})).rpc == c.rpc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame_timeout = 0", "frame_timeout: expected a finite number above 0"),
        ("frame_timeout = -1.5", "frame_timeout: expected a finite number above 0"),
        ("frame_timeout = nan", "frame_timeout: expected a finite number above 0"),
        ("frame_timeout = inf", "frame_timeout: expected a finite number above 0"),
        ("frame_timeout = true", "frame_timeout: expected a number"),
        ("frame_timeout = '30s'", "frame_timeout: expected float"),
        ("partial_frame_budget = 0", "partial_frame_budget: expected a finite number above 0"),
        ("partial_frame_budget = 1.5", "partial_frame_budget: expected int"),
        ("max_recv_message_size = -1", "max_recv_message_size: expected a finite number"),
    ],
)
def test_bad_limits_are_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse("[rpc]\n" + text)
