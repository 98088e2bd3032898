"""containerd/platforms' tables: parse, format, normalize, Only vectors, ordering."""

from __future__ import annotations

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.types import Platform
from pycontainerd.images import platforms

HOST = platforms.default_platform()


def P(os: str, arch: str, variant: str = "", os_version: str = "") -> Platform:
    return Platform(os=os, architecture=arch, variant=variant, os_version=os_version)


# (specifier, parsed, formatted, normalized-formatted): containerd's TestParseSelector
PARSE_TABLE = [
    ("linux/amd64", P("linux", "amd64"), "linux/amd64", "linux/amd64"),
    ("Linux/x86_64", P("linux", "amd64"), "linux/amd64", "linux/amd64"),
    ("linux/x86-64", P("linux", "amd64"), "linux/amd64", "linux/amd64"),
    ("linux/amd64/v1", P("linux", "amd64"), "linux/amd64", "linux/amd64"),
    ("linux/amd64/v2", P("linux", "amd64", "v2"), "linux/amd64/v2", "linux/amd64/v2"),
    ("linux/i386", P("linux", "386"), "linux/386", "linux/386"),
    ("linux/arm64", P("linux", "arm64"), "linux/arm64", "linux/arm64"),
    ("linux/arm64/v8", P("linux", "arm64", "v8"), "linux/arm64/v8", "linux/arm64"),
    ("linux/aarch64", P("linux", "arm64"), "linux/arm64", "linux/arm64"),
    ("linux/aarch64/8", P("linux", "arm64", "v8"), "linux/arm64/v8", "linux/arm64"),
    ("linux/arm64/v9", P("linux", "arm64", "v9"), "linux/arm64/v9", "linux/arm64/v9"),
    ("linux/arm", P("linux", "arm"), "linux/arm", "linux/arm/v7"),
    ("linux/arm/v7", P("linux", "arm", "v7"), "linux/arm/v7", "linux/arm/v7"),
    ("linux/arm/7", P("linux", "arm", "v7"), "linux/arm/v7", "linux/arm/v7"),
    ("linux/arm/v6", P("linux", "arm", "v6"), "linux/arm/v6", "linux/arm/v6"),
    ("linux/arm/5", P("linux", "arm", "v5"), "linux/arm/v5", "linux/arm/v5"),
    ("linux/armhf", P("linux", "arm"), "linux/arm", "linux/arm/v7"),
    ("linux/armel", P("linux", "arm", "v6"), "linux/arm/v6", "linux/arm/v6"),
    ("macos/arm64", P("darwin", "arm64"), "darwin/arm64", "darwin/arm64"),
    ("windows/amd64", P("windows", "amd64"), "windows/amd64", "windows/amd64"),
    ("linux/s390x", P("linux", "s390x"), "linux/s390x", "linux/s390x"),
    ("linux/ppc64le", P("linux", "ppc64le"), "linux/ppc64le", "linux/ppc64le"),
]


@pytest.mark.parametrize(("spec", "parsed", "formatted", "normalized"), PARSE_TABLE)
def test_parse_format_normalize(
    spec: str, parsed: Platform, formatted: str, normalized: str
) -> None:
    got = platforms.parse(spec)
    assert got == parsed
    assert platforms.format(got) == formatted
    assert platforms.format(platforms.normalize(got)) == normalized
    # a platform always matches its own specifier
    assert platforms.only(got).match(got)


def test_bare_os_takes_host_arch_and_bare_arch_takes_host_os() -> None:
    linux = platforms.parse("linux")
    assert (linux.os, linux.architecture) == ("linux", HOST.architecture)
    arm64 = platforms.parse("aarch64")
    assert (arm64.os, arm64.architecture) == (HOST.os, "arm64")
    assert platforms.parse("macos").os == "darwin"
    assert platforms.parse("x86_64") == P(HOST.os, "amd64")


def test_os_version() -> None:
    p = platforms.parse("windows(10.0.17763)/amd64")
    assert p == P("windows", "amd64", os_version="10.0.17763")
    assert platforms.format_all(p) == "windows(10.0.17763)/amd64"
    assert platforms.format(p) == "windows/amd64"


@pytest.mark.parametrize(
    "spec",
    ["*", "linux/*", "*/amd64", "", "linux/amd64/v2/extra", "linux/am d64", "foobar", "linux//"],
)
def test_parse_rejects(spec: str) -> None:
    with pytest.raises(errdefs.InvalidArgument):
        platforms.parse(spec)


def test_parse_all_names_the_bad_one() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="invalid platform linux/\\*"):
        platforms.parse_all(["linux/amd64", "linux/*"])
    assert platforms.parse_all(["linux/arm64", "linux/amd64"])[1] == P("linux", "amd64")


def test_format_without_os_is_unknown() -> None:
    assert platforms.format(Platform()) == "unknown"


def test_normalize_empty_os_is_host() -> None:
    assert platforms.normalize(P("", "x86_64")).os == HOST.os


def _vector(spec: str) -> list[str]:
    return [platforms.format(p) for p in platforms.platform_vector(platforms.parse(spec))]


def test_platform_vectors() -> None:
    assert _vector("linux/amd64") == ["linux/amd64", "linux/386"]
    assert _vector("linux/amd64/v3") == [
        "linux/amd64/v3",
        "linux/amd64/v2",
        "linux/amd64/v1",
        "linux/386",
    ]
    assert _vector("linux/arm/v7") == ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    assert _vector("linux/arm/v5") == ["linux/arm/v5"]
    assert _vector("linux/arm64/v8") == [
        "linux/arm64/v8",
        "linux/arm/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    assert _vector("linux/arm64/v8.2") == [
        "linux/arm64/v8.2",
        "linux/arm64/v8.1",
        "linux/arm64/v8",
        "linux/arm/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    assert _vector("linux/arm64/v9.1")[:4] == [
        "linux/arm64/v9.1",
        "linux/arm64/v9",
        "linux/arm64/v8.6",
        "linux/arm64/v8.5",
    ]


# (matcher specifier, platforms it must match, platforms it must not): TestOnly
ONLY_TABLE = [
    ("linux/amd64", ["linux/amd64", "linux/x86_64", "linux/386", "linux/i386"], ["linux/arm64"]),
    ("linux/amd64/v2", ["linux/amd64", "linux/amd64/v2", "linux/386"], ["linux/amd64/v3"]),
    ("linux/arm/v8", ["linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"], []),
    ("linux/arm/v7", ["linux/arm", "linux/armhf", "linux/arm/v6"], ["linux/arm/v8"]),
    ("linux/arm/v6", ["linux/armel", "linux/arm/v5"], ["linux/arm/v7", "linux/arm"]),
    ("linux/arm64", ["linux/arm64", "linux/arm64/v8", "linux/aarch64", "linux/arm/v7"], []),
    ("linux/arm64", [], ["linux/amd64", "windows/arm64", "linux/arm64/v9"]),
    ("windows/amd64", ["windows/amd64", "windows/386"], ["linux/amd64"]),
]


@pytest.mark.parametrize(("spec", "yes", "no"), ONLY_TABLE)
def test_only(spec: str, yes: list[str], no: list[str]) -> None:
    matcher = platforms.only(platforms.parse(spec))
    for s in yes:
        assert matcher.match(platforms.parse(s)), s
    for s in no:
        assert not matcher.match(platforms.parse(s)), s


def test_only_strict_takes_no_fallback_but_normalizes() -> None:
    strict = platforms.only_strict(platforms.parse("linux/amd64"))
    assert strict.match(P("linux", "x86_64"))
    assert not strict.match(P("linux", "386"))
    arm = platforms.only_strict(platforms.parse("linux/arm64"))
    assert arm.match(P("linux", "arm64", "v8"))
    assert not arm.match(P("linux", "arm", "v7"))


def test_ordered_less_prefers_earlier() -> None:
    amd, arm = P("linux", "amd64"), P("linux", "arm64")
    cmp = platforms.ordered(arm, amd)
    assert cmp.less(arm, amd) and not cmp.less(amd, arm)
    assert not cmp.less(amd, amd)
    assert cmp.less(amd, P("linux", "s390x"))
    only = platforms.only(amd)
    assert only.less(amd, P("linux", "386"))
    assert not only.less(P("linux", "386"), amd)


def test_any_of_and_all() -> None:
    amd, arm, s390 = P("linux", "amd64"), P("linux", "arm64"), P("linux", "s390x")
    cmp = platforms.any_of(amd, arm)
    assert cmp.match(arm) and not cmp.match(s390)
    assert not cmp.less(amd, arm) and not cmp.less(arm, amd)
    assert cmp.less(arm, s390)
    assert platforms.all_platforms.match(s390)
    assert not platforms.all_platforms.less(amd, arm)


def test_less_puts_missing_platforms_last() -> None:
    cmp = platforms.all_platforms
    assert platforms.less(cmp, P("linux", "amd64"), None)
    assert not platforms.less(cmp, None, P("linux", "amd64"))
    assert not platforms.less(cmp, None, None)


def test_default_platform_is_the_host() -> None:
    assert HOST.os == "linux"
    assert platforms.default_comparer().match(HOST)
    assert platforms.format(HOST) == platforms.format(platforms.normalize(HOST))


# containerd/platforms platforms_test.go TestParseSelector, verbatim:
# (input, expected, also-matches, formatted, format_all?)
_ARCH, _VARIANT = HOST.architecture, HOST.variant if HOST.architecture == "arm" else ""


def _host_fmt(os_part: str) -> str:
    return "/".join(p for p in (os_part, _ARCH, _VARIANT) if p)


SELECTOR_TABLE: list[tuple[str, Platform, list[Platform], str, bool]] = [
    (
        "linux/arm64",
        P("linux", "arm64"),
        [P("linux", "aarch64"), P("linux", "aarch64", "v8"), P("linux", "arm64", "v8")],
        "linux/arm64",
        False,
    ),
    (
        "linux/arm64/v8",
        P("linux", "arm64", "v8"),
        [P("linux", "aarch64"), P("linux", "aarch64", "v8"), P("linux", "arm64")],
        "linux/arm64/v8",
        False,
    ),
    (
        "linux/arm",
        P("linux", "arm"),
        [P("linux", "arm", "v7"), P("linux", "armhf"), P("linux", "arm", "7")],
        "linux/arm",
        False,
    ),
    ("linux/arm/v6", P("linux", "arm", "v6"), [P("linux", "armel")], "linux/arm/v6", False),
    (
        "linux/arm/v7",
        P("linux", "arm", "v7"),
        [P("linux", "arm"), P("linux", "armhf")],
        "linux/arm/v7",
        False,
    ),
    ("arm", P(HOST.os, "arm"), [], f"{HOST.os}/arm", False),
    ("armel", P(HOST.os, "arm", "v6"), [], f"{HOST.os}/arm/v6", False),
    ("armhf", P(HOST.os, "arm"), [], f"{HOST.os}/arm", False),
    ("Aarch64", P(HOST.os, "arm64"), [], f"{HOST.os}/arm64", False),
    ("x86_64", P(HOST.os, "amd64"), [], f"{HOST.os}/amd64", False),
    ("Linux/x86_64", P("linux", "amd64"), [], "linux/amd64", False),
    ("i386", P(HOST.os, "386"), [], f"{HOST.os}/386", False),
    ("linux", P("linux", _ARCH, _VARIANT), [], _host_fmt("linux"), False),
    ("s390x", P(HOST.os, "s390x"), [], f"{HOST.os}/s390x", False),
    ("linux/s390x", P("linux", "s390x"), [], "linux/s390x", False),
    ("macOS", P("darwin", _ARCH, _VARIANT), [], _host_fmt("darwin"), False),
    ("windows", P("windows", _ARCH, _VARIANT), [], _host_fmt("windows"), False),
    ("windows()", P("windows", _ARCH, _VARIANT), [], _host_fmt("windows"), True),
    (
        "windows(10.0.17763)",
        P("windows", _ARCH, _VARIANT, "10.0.17763"),
        [],
        _host_fmt("windows(10.0.17763)"),
        True,
    ),
    (
        "windows(10.0.17763)/amd64",
        P("windows", "amd64", os_version="10.0.17763"),
        [],
        "windows(10.0.17763)/amd64",
        True,
    ),
    (
        "macos(Abcd.Efgh.123-4)/aarch64",
        P("darwin", "arm64", os_version="Abcd.Efgh.123-4"),
        [],
        "darwin(Abcd.Efgh.123-4)/arm64",
        True,
    ),
]


@pytest.mark.parametrize(("spec", "expected", "matches", "formatted", "v2"), SELECTOR_TABLE)
def test_containerd_parse_selector(
    spec: str, expected: Platform, matches: list[Platform], formatted: str, v2: bool
) -> None:
    got = platforms.parse(spec)
    assert got == expected
    matcher = platforms.PlatformMatcher(got)
    assert matcher.match(expected)
    for other in matches:
        assert matcher.match(other), other
    fmt = platforms.format_all if v2 else platforms.format
    assert fmt(got) == formatted
    assert fmt(platforms.parse(formatted)) == formatted  # stable round trip


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "/linux/arm",
        "linux/arm/",
        "linux /arm",
        "linux/&arm",
        "linux/arm/foo/bar",
        "amd64/windows(10.0.17763)/foo",
        "linux)()---()..../arm/foo",
        "../arm/foo",
    ],
)
def test_containerd_parse_selector_invalid(spec: str) -> None:
    with pytest.raises(errdefs.InvalidArgument):
        platforms.parse(spec)


# containerd/platforms compare_test.go TestOnly and TestOnlyStrict, verbatim
ONLY_MATCHES = {
    "linux/amd64": (
        ["linux/amd64", "linux/386"],
        ["linux/amd64/v2", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/amd64/v2": (
        ["linux/amd64", "linux/amd64/v1", "linux/amd64/v2", "linux/386"],
        ["linux/amd64/v3", "linux/amd64/v4", "linux/arm/v7", "linux/arm64", "windows/amd64",
         "windows/arm"],
    ),
    "linux/386": (
        ["linux/386"],
        ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "windows/amd64": (
        ["windows/amd64", "windows(10.0.17763)/amd64"],
        ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"],
    ),
    "linux/arm/v8": (
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"],
        ["linux/amd64", "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm/v7": (
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7"],
        ["linux/amd64", "linux/arm/v4", "linux/arm/v8", "linux/arm64", "windows/amd64",
         "windows/arm"],
    ),
    "linux/arm/v6": (
        ["linux/arm/v5", "linux/arm/v6"],
        ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v7", "linux/arm/v8",
         "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm/v5": (
        ["linux/arm/v5"],
        ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v6", "linux/arm/v7",
         "linux/arm/v8", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm/v4": (
        ["linux/arm/v4"],
        ["linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7",
         "linux/arm/v8", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm64": (
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8",
         "linux/arm64", "linux/arm64/v8"],
        ["linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v7", "linux/arm64/v9",
         "windows/amd64", "windows/arm"],
    ),
    "linux/arm64/v9": (
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8",
         "linux/arm64", "linux/arm64/v8", "linux/arm64/v9"],
        ["linux/amd64", "linux/arm/v4", "linux/arm64/v7", "linux/arm64/v10", "windows/arm64",
         "windows/arm"],
    ),
}  # fmt: skip

ONLY_STRICT_MATCHES = {
    "linux/amd64": (
        ["linux/amd64"],
        ["linux/386", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/386": (
        ["linux/386"],
        ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "windows/amd64": (
        ["windows/amd64", "windows(10.0.17763)/amd64"],
        ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"],
    ),
    "windows(10.0.17763)/amd64": (
        ["windows/amd64", "windows(10.0.17763)/amd64"],
        ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"],
    ),
    "linux/arm/v8": (
        ["linux/arm/v8"],
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/amd64",
         "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm/v7": (
        ["linux/arm", "linux/arm/v7"],
        ["linux/arm/v5", "linux/arm/v6", "linux/amd64", "linux/arm/v4", "linux/arm/v8",
         "linux/arm64", "windows/amd64", "windows/arm"],
    ),
    "linux/arm64": (
        ["linux/arm64", "linux/arm64/v8"],
        ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8",
         "linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v7", "linux/arm64/v9",
         "windows/amd64", "windows/arm"],
    ),
    "linux/arm64/v9": (
        ["linux/arm64/v9"],
        ["linux/arm", "linux/arm/v7", "linux/arm/v8", "linux/arm/v9", "linux/arm64/v7",
         "linux/arm64", "linux/arm64/v8", "linux/arm/v4", "linux/arm64/v10", "linux/amd64",
         "windows/arm64", "windows/arm"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("spec", sorted(ONLY_MATCHES))
def test_containerd_only(spec: str) -> None:
    matcher = platforms.only(platforms.parse(spec))
    yes, no = ONLY_MATCHES[spec]
    assert [s for s in yes if not matcher.match(platforms.parse(s))] == []
    assert [s for s in no if matcher.match(platforms.parse(s))] == []


@pytest.mark.parametrize("spec", sorted(ONLY_STRICT_MATCHES))
def test_containerd_only_strict(spec: str) -> None:
    matcher = platforms.only_strict(platforms.parse(spec))
    yes, no = ONLY_STRICT_MATCHES[spec]
    assert [s for s in yes if not matcher.match(platforms.parse(s))] == []
    assert [s for s in no if matcher.match(platforms.parse(s))] == []
