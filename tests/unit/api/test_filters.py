from __future__ import annotations

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.filters import adapt, parse, parse_all

OBJ = adapt(
    {
        "name": "foo",
        "other": "bbb",
        "topic": "/images/create",
        "labels": {
            "foo": "true",
            "more complex label": "x",
            'with \\ and "': "present",
            "containerd.io/gc.root": "x",
            "a.b": "dotted",
        },
        "event": {"exit_status": 3, "ok": False, "nested": {"id": "n1"}, "gone": None},
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("name", True),
        ("nope", False),
        ("labels.foo", True),
        ("labels.foo==true", True),
        ("labels.foo==omg_asdf.asdf-qwer", False),
        ("name!=bar", True),
        ("name!=foo", False),
        ("missing!=x", True),
        ('other=="too complex, yo"', False),
        ("other~=[abc]+,name!=foo", False),
        ("other~=[abc]+,name==foo", True),
        ("other~=/[abc]{1,2}/", True),
        ("other~=|^b+$|", True),
        ('labels."more complex label"', True),
        ('labels."with \\\\ and \\""==present', True),
        ('labels."containerd.io/gc.root"==x', True),
        ('labels."a.b"==dotted', True),
        ("labels.a.b==dotted", True),
        ('topic~="/images/"', True),
        ('topic=="/images/create"', True),
        ("  name  ==  foo  ,  other  ", True),
        ("event.exit_status==3", True),
        ("event.ok==false", True),
        ("event.nested.id==n1", True),
        ("event.nested", False),
        ("event.gone", False),
        ('name=="\\x66oo"', True),
        ('name=="\\u0066oo"', True),
        ('name=="\\146oo"', True),
    ],
)
def test_match(text: str, expected: bool) -> None:
    assert parse(text).match(OBJ) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name==foo,", "filters: parse error: [name==foo,]: expected field or quoted"),
        ("labels.", "filters: parse error: [labels.]: expected field or quoted"),
        ("image~=,id?=?fbaq", "expected value or quoted"),
        ("labels.ns/key==value", "quoted literal not terminated"),
        ("labels.|foo|==x", "invalid quote encountered"),
        ("name==/foo/", "invalid quote encountered"),
        ("name=!foo", "unsupported operator '=!'"),
        ("name foo", "expected an operator"),
        ("name==", "expected value or quoted"),
        ("name==foo bar", "unexpected input: b"),
        ('name=="\\q"', "invalid escape sequence"),
        ("name~=(", "invalid regular expression"),
        ("name==a||name==b", "|| is not supported"),
        ("name?", "unexpected character '?'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(errdefs.InvalidArgument) as info:
        parse(text)
    assert message in str(info.value)


def test_or_of_several_strings() -> None:
    f = parse_all(["name==bar", "other==bbb"])
    assert f.match(OBJ)
    assert not parse_all(["name==bar", "other==x"]).match(OBJ)
    assert parse_all([]).match(OBJ)
    assert parse_all(["name==bar", ""]).match(OBJ)


def test_pipes_inside_quotes_are_fine() -> None:
    assert not parse('name=="a||b"').match(OBJ)
