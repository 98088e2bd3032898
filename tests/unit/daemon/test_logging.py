from __future__ import annotations

import json
import logging

import pytest

from pycontainerd.daemon._logging import JsonFormatter, LogfmtFormatter, setup


def _record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("pycontainerd.test", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_logfmt_quotes_only_what_needs_it() -> None:
    line = LogfmtFormatter().format(_record("hello world", plugin="a.b"))
    assert 'msg="hello world"' in line
    assert "plugin=a.b" in line
    assert "level=info" in line


def test_json_is_one_object() -> None:
    obj = json.loads(JsonFormatter().format(_record("hi", n=3)))
    assert obj["msg"] == "hi" and obj["n"] == 3 and obj["logger"] == "pycontainerd.test"


def test_setup_refuses_unknown_level_and_format() -> None:
    with pytest.raises(ValueError, match="format"):
        setup("info", "xml")
    with pytest.raises(ValueError, match="level"):
        setup("loud", "text")
