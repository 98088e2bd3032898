"""Platforms: parse, normalize, format and match (``github.com/containerd/platforms``).

A platform is ``os/architecture[/variant]`` (plus an ``os_version`` for
Windows). Specifiers given by users are parsed with :func:`parse`; platforms
read from manifests are compared through :func:`normalize`, so that
``x86_64`` matches ``amd64`` and ``aarch64`` matches ``arm64``.

A :class:`MatchComparer` both filters and orders: :func:`only` (the default
when pulling) accepts a platform and the ones it can run, best first::

    only(parse("linux/amd64/v3"))   ->  amd64/v3, amd64/v2, amd64 (v1), 386
    only(parse("linux/arm/v7"))     ->  arm/v7, arm/v6, arm/v5
    only(parse("linux/arm64"))      ->  arm64 (v8), arm/v8, arm/v7, arm/v6, arm/v5
"""

from __future__ import annotations

import functools
import os
import platform as _host_platform
import re
from collections.abc import Iterable
from typing import Protocol

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.types import Platform

_SPECIFIER_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_OS_RE = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)\))?$")

_KNOWN_OS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    }
)
_KNOWN_ARCH = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)
_UNAME_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "armv5tel": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips64": "mips64",
}


def _normalize_os(os_name: str) -> str:
    if not os_name:
        return _host_os()
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def normalize(platform: Platform) -> Platform:
    """The canonical form: ``x86_64`` → ``amd64``, ``aarch64/v8`` → ``arm64``, ``arm`` → ``arm/v7``.

    An empty OS becomes the host OS.
    """
    arch, variant = _normalize_arch(platform.architecture, platform.variant)
    return Platform(
        os=_normalize_os(platform.os),
        architecture=arch,
        variant=variant,
        os_version=platform.os_version,
    )


@functools.cache
def _host_os() -> str:
    return os.uname().sysname.lower()


@functools.cache
def _host_arch() -> tuple[str, str]:
    machine = _host_platform.machine().lower()
    arch = _UNAME_ARCH.get(machine, machine)
    variant = ""
    if arch == "arm":
        variant = {"armv6l": "v6", "armv5tel": "v5"}.get(machine, "v7")
    return arch, variant


def default_platform() -> Platform:
    """The host's platform, normalized (containerd's ``DefaultSpec``)."""
    arch, variant = _host_arch()
    return normalize(Platform(os=_host_os(), architecture=arch, variant=variant))


def parse(specifier: str) -> Platform:
    """Parse ``<os>|<arch>|<os>/<arch>[/<variant>]``; ``<os>`` may carry ``(<os_version>)``.

    A bare OS gets the host architecture; a bare architecture gets the host OS.
    The result is normalized except that an explicit ``arm64`` variant stays
    (``linux/arm64/v8``), as containerd's ``Parse`` does.

    Raises:
        errdefs.InvalidArgument: a wildcard, an invalid component, an unknown
            bare OS/architecture, or more than three components.
    """
    if "*" in specifier:
        raise errdefs.InvalidArgument(f"{specifier!r}: wildcards not yet supported")
    parts = specifier.split("/", 3)
    os_match = _OS_RE.match(parts[0])
    if os_match is None:
        raise errdefs.InvalidArgument(
            f"{parts[0]!r} is an invalid OS component of {specifier!r}: "
            f"OSAndVersion specifier component must match {_OS_RE.pattern!r}"
        )
    for part in parts[1:]:
        if not _SPECIFIER_RE.match(part):
            raise errdefs.InvalidArgument(
                f"{part!r} is an invalid component of {specifier!r}: platform specifier "
                f"component must match {_SPECIFIER_RE.pattern!r}"
            )
    os_name = _normalize_os(os_match.group(1))
    os_version = os_match.group(2) or ""
    if len(parts) == 1:
        if os_name in _KNOWN_OS:
            arch, variant = _host_arch()
            if arch == "arm" and variant == "v7":
                variant = ""
            return Platform(os=os_name, architecture=arch, variant=variant, os_version=os_version)
        arch, variant = _normalize_arch(parts[0], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        if arch in _KNOWN_ARCH:
            return Platform(os=_host_os(), architecture=arch, variant=variant)
        raise errdefs.InvalidArgument(f"{specifier!r}: unknown operating system or architecture")
    if len(parts) == 2:
        arch, variant = _normalize_arch(parts[1], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        return Platform(os=os_name, architecture=arch, variant=variant, os_version=os_version)
    if len(parts) == 3:
        arch, variant = _normalize_arch(parts[1], parts[2])
        if arch == "arm64" and not variant:
            variant = "v8"
        return Platform(os=os_name, architecture=arch, variant=variant, os_version=os_version)
    raise errdefs.InvalidArgument(f"{specifier!r}: cannot parse platform specifier")


def parse_all(specifiers: Iterable[str]) -> list[Platform]:
    """:func:`parse` each specifier.

    Raises:
        errdefs.InvalidArgument: naming the first invalid specifier.
    """
    out = []
    for spec in specifiers:
        try:
            out.append(parse(spec))
        except errdefs.InvalidArgument as exc:
            raise errdefs.InvalidArgument(f"invalid platform {spec}: {exc}") from exc
    return out


def format(platform: Platform) -> str:
    """``os/arch[/variant]``, or ``"unknown"`` without an OS."""
    if not platform.os:
        return "unknown"
    return "/".join(p for p in (platform.os, platform.architecture, platform.variant) if p)


def format_all(platform: Platform) -> str:
    """:func:`format` with the OS version: ``windows(10.0.17763)/amd64``."""
    if not platform.os:
        return "unknown"
    os_part = platform.os
    if platform.os_version:
        os_part += f"({platform.os_version})"
    return "/".join(p for p in (os_part, platform.architecture, platform.variant) if p)


class Matcher(Protocol):
    """Decides whether a platform is acceptable."""

    def match(self, platform: Platform) -> bool: ...


class MatchComparer(Matcher, Protocol):
    """A :class:`Matcher` that also orders platforms, preferred first."""

    def less(self, a: Platform, b: Platform) -> bool: ...


@attrs.frozen
class PlatformMatcher:
    """Matches one platform on normalized os, architecture and variant (``NewMatcher``).

    OS versions only narrow the match when both sides have one: then their
    first three components (Windows' major.minor.build) must agree.
    """

    platform: Platform = attrs.field(converter=normalize)

    def match(self, platform: Platform) -> bool:
        norm = normalize(platform)
        mine = self.platform
        return (
            norm.os == mine.os
            and norm.architecture == mine.architecture
            and norm.variant == mine.variant
            and _os_version_match(mine.os_version, norm.os_version)
        )

    def __str__(self) -> str:
        return format_all(self.platform)


@attrs.frozen
class OrderedComparer:
    """Matches any of its platforms, preferring them in the given order (``Ordered``)."""

    matchers: tuple[PlatformMatcher, ...]

    def match(self, platform: Platform) -> bool:
        return any(m.match(platform) for m in self.matchers)

    def less(self, a: Platform, b: Platform) -> bool:
        for m in self.matchers:
            am, bm = m.match(a), m.match(b)
            if am and not bm:
                return True
            if am or bm:
                return False
        return False


@attrs.frozen
class AnyComparer:
    """Matches any of its platforms, matching ones before the rest (``Any``)."""

    matchers: tuple[PlatformMatcher, ...]

    def match(self, platform: Platform) -> bool:
        return any(m.match(platform) for m in self.matchers)

    def less(self, a: Platform, b: Platform) -> bool:
        return self.match(a) and not self.match(b)


@attrs.frozen
class AllComparer:
    """Matches every platform, with no preference (``All``)."""

    def match(self, platform: Platform) -> bool:
        return True

    def less(self, a: Platform, b: Platform) -> bool:
        return False


def _os_version_match(mine: str, theirs: str) -> bool:
    if not mine or not theirs:
        return True
    return mine.split(".")[:3] == theirs.split(".")[:3]


def _variant_number(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


def platform_vector(platform: Platform) -> list[Platform]:
    """The ordered list of platforms that ``platform`` can run (``platformVector``)."""
    vector = [platform]

    def with_(arch: str, variant: str) -> Platform:
        return attrs.evolve(platform, architecture=arch, variant=variant)

    if platform.architecture == "amd64":
        level = _variant_number(platform.variant)
        if level is not None and level > 1:
            vector += [with_("amd64", f"v{v}") for v in range(level - 1, 0, -1)]
        vector.append(with_("386", ""))
    elif platform.architecture == "arm":
        level = _variant_number(platform.variant)
        if level is not None and level > 5:
            vector += [with_("arm", f"v{v}") for v in range(level - 1, 4, -1)]
    elif platform.architecture == "arm64":
        variant = platform.variant or "v8"
        major_s, dot, minor_s = variant.partition(".")
        major = _variant_number(major_s)
        if major is not None and major >= 8:
            minor = int(minor_s) if len(variant) == 4 and dot and minor_s.isdigit() else 0
            if major == 9:
                for m in range(minor - 1, -1, -1):
                    vector.append(with_("arm64", f"v9.{m}" if m else "v9"))
                # v9.0 diverged from v8.5: v9.x runs v8.{x+5}.
                minor, major = minor + 5, 8
                vector.append(with_("arm64", f"v8.{minor}"))
            for m in range(minor - 1, -1, -1):
                vector.append(with_("arm64", f"v{major}.{m}" if m else f"v{major}"))
        if variant.startswith(("v8.", "v9.")):
            variant = "v8"
        vector += platform_vector(with_("arm", variant))
    return vector


def only(platform: Platform) -> OrderedComparer:
    """The platform and those it can run, best first (``Only``; the pull default)."""
    return ordered(*platform_vector(normalize(platform)))


def only_strict(platform: Platform) -> OrderedComparer:
    """Exactly this platform, normalized (``OnlyStrict``)."""
    return ordered(platform)


def ordered(*platforms: Platform) -> OrderedComparer:
    """Any of ``platforms``, preferred in the given order (``Ordered``)."""
    return OrderedComparer(tuple(PlatformMatcher(p) for p in platforms))


def any_of(*platforms: Platform) -> AnyComparer:
    """Any of ``platforms``, without preference (``Any``)."""
    return AnyComparer(tuple(PlatformMatcher(p) for p in platforms))


all_platforms = AllComparer()
"""Every platform (``All``)."""


def default_comparer() -> OrderedComparer:
    """:func:`only` of the host platform (``platforms.Default()``)."""
    return only(default_platform())


def less(comparer: MatchComparer, a: Platform | None, b: Platform | None) -> bool:
    """Whether ``a`` sorts before ``b``; platform-less entries sort last (``images.Manifest``)."""
    if a is None:
        return False
    if b is None:
        return True
    return comparer.less(a, b)
