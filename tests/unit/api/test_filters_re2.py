"""``~=`` runs on RE2: linear time whatever the pattern; refusals are InvalidArgument."""

from __future__ import annotations

import time

import pytest

from pycontainerd.api import bounds, errdefs
from pycontainerd.api.filters import adapt, compile_regex, parse, parse_all


def test_catastrophic_backtracking_pattern_matches_in_linear_time() -> None:
    flt = parse('name~="^(a+)+$"')
    start = time.monotonic()
    for n in (27, 30, 10_000):
        assert not flt.match(adapt({"name": "a" * n + "b"}))
    assert flt.match(adapt({"name": "a" * 40}))
    assert time.monotonic() - start < 0.5  # Python's re: ~8 s at 27 characters


@pytest.mark.parametrize("pattern", [r"/(a)\1/", "/(?=a)b/", "/(?<!a)b/"])
def test_patterns_re2_refuses_are_invalid_argument(pattern: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="invalid regular expression"):
        parse("name~=" + pattern)


def test_re2_syntax_as_containerd_go_regexp() -> None:
    assert parse(r"name~=/(?i)^WEB-\d+$/").match(adapt({"name": "web-12"}))
    assert parse("name~=/^a.c$/").match(adapt({"name": "añc"}))  # one character, not a byte
    assert not parse('name~="^b"').match(adapt({"name": "ab"}))
    assert parse('name~="b"').match(adapt({"name": "ab"}))  # unanchored search


def test_compile_error_message_is_short() -> None:
    with pytest.raises(errdefs.InvalidArgument) as info:
        compile_regex("(" * 10_000)
    assert len(info.value.message) < 400


def test_too_many_or_too_long_filters() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="at most 128"):
        parse_all(["name==a"] * (bounds.MAX_FILTERS + 1))
    with pytest.raises(errdefs.InvalidArgument, match="characters, at most"):
        parse_all(["name==" + "x" * bounds.MAX_FILTER_LENGTH])


def test_parse_errors_quote_a_bounded_part_of_the_input() -> None:
    text = "name==" + "x" * 10_000 + " junk"
    with pytest.raises(errdefs.InvalidArgument) as info:
        parse(text)
    assert len(info.value.message) < 300
    with pytest.raises(errdefs.InvalidArgument) as info:
        parse("name" + "=!" * 5000 + "x")
    assert len(info.value.message) < 400


def test_parsing_is_linear_in_the_length() -> None:
    many = ",".join(f"labels.k{i}==v" for i in range(1500))[: bounds.MAX_FILTER_LENGTH]
    many = many[: many.rfind(",")]
    start = time.monotonic()
    parse_all([many] * bounds.MAX_FILTERS)
    assert time.monotonic() - start < 5
