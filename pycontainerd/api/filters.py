"""containerd's filter grammar (``filters/{filter,parser,scanner,quote}.go``).

::

    filters   := selectors ("," selectors)*           -- several strings are OR-ed
    selector  := fieldpath [operator value]           -- no operator: "field is present"
    fieldpath := field ("." field)*
    field     := quoted | [A-Za-z0-9_]+
    operator  := "==" | "!=" | "~="
    value     := quoted | [^\\s,]+
    quoted    := "..." (Go escapes); for ~= also /.../ and |...|

``!=`` is true when the field is absent; ``~=`` is an unanchored regular
expression search in RE2's syntax, as containerd's Go ``regexp``, and with its
guarantee: matching takes time linear in the input, whatever the pattern (no
backtracking, so no ``^(a+)+$`` that takes seconds per character). A pattern
RE2 does not take (backreferences, lookaround) is ``InvalidArgument``.
``labels."a.b"`` and ``labels.a.b`` both name the label ``a.b`` (see
:func:`adapt`). ``||`` is refused: pass several strings instead.

A request holds at most :data:`~.bounds.MAX_FILTERS` filter strings of at most
:data:`~.bounds.MAX_FILTER_LENGTH` characters; parsing is linear in their
length, and an error quotes at most :data:`QUOTE` characters of the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs
import re2

from . import errdefs
from .bounds import MAX_FILTER_LENGTH, MAX_FILTERS

QUOTE = 120
"""Characters of a filter string an error message quotes."""


class Regex(Protocol):
    """A compiled RE2 pattern (``re2._Regexp``)."""

    def search(self, text: str) -> object | None: ...


def _re2_options() -> object:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


_OPTIONS = _re2_options()


def compile_regex(pattern: str) -> Regex:
    """``pattern`` compiled by RE2 (linear-time matching).

    Raises:
        errdefs.InvalidArgument: RE2 does not take it (backreferences,
            lookaround, a program over RE2's memory budget).
    """
    try:
        regex: Regex = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        raise errdefs.InvalidArgument(
            f"invalid regular expression {_quote(pattern)}: {_reason(exc)}"
        ) from None
    return regex


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return _quote(text, repr_=False)


def _quote(text: str, *, repr_: bool = True) -> str:
    """``text`` for an error message, cut to :data:`QUOTE` characters."""
    cut = text if len(text) <= QUOTE else text[:QUOTE] + "..."
    return repr(cut) if repr_ else cut


class Adaptor(Protocol):
    def field(self, fieldpath: Sequence[str]) -> tuple[str, bool]:
        """The value at ``fieldpath`` and whether it is present."""
        ...


class Filter(Protocol):
    def match(self, adaptor: Adaptor) -> bool: ...


@attrs.frozen
class Always:
    def match(self, adaptor: Adaptor) -> bool:
        return True


@attrs.frozen
class Selector:
    fieldpath: tuple[str, ...]
    operator: str = ""  # "" = present
    value: str = ""
    regex: Regex | None = attrs.field(default=None, eq=False, repr=False)

    def match(self, adaptor: Adaptor) -> bool:
        value, present = adaptor.field(self.fieldpath)
        if self.operator == "":
            return present
        if self.operator == "==":
            return present and value == self.value
        if self.operator == "!=":
            return value != self.value
        assert self.regex is not None
        return self.regex.search(value) is not None


@attrs.frozen
class All:
    filters: tuple[Filter, ...]

    def match(self, adaptor: Adaptor) -> bool:
        return all(f.match(adaptor) for f in self.filters)


@attrs.frozen
class AnyOf:
    filters: tuple[Filter, ...]

    def match(self, adaptor: Adaptor) -> bool:
        return any(f.match(adaptor) for f in self.filters)


# -- scanner -------------------------------------------------------------------

_EOF, _QUOTED, _VALUE, _FIELD, _SEP, _OP, _ILLEGAL = range(7)
_QUOTES = '"/|'
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _is_field_rune(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


def _is_value_rune(ch: str) -> bool:
    return ch != "," and not ch.isspace() and ch.isprintable()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.value_mode = False
        self.err = ""

    def peek(self) -> str:
        """The next rune that is not whitespace ('' at the end)."""
        i = self.pos
        while i < len(self.text) and self.text[i].isspace():
            i += 1
        return self.text[i] if i < len(self.text) else ""

    def scan(self) -> tuple[int, int, str]:
        text = self.text
        while self.pos < len(text) and text[self.pos].isspace():
            self.pos += 1
        start = self.pos
        if start >= len(text):
            return start, _EOF, ""
        ch = text[start]
        self.pos += 1
        if ch in _QUOTES:
            if not self._scan_quoted(ch):
                return start, _ILLEGAL, text[start : self.pos]
            return start, _QUOTED, text[start : self.pos]
        if ch in ",.":
            self.value_mode = False
            return start, _SEP, ch
        if ch in "=!~":
            while self.pos < len(text) and text[self.pos] in "=!~":
                self.pos += 1
            self.value_mode = True
            return start, _OP, text[start : self.pos]
        if self.value_mode:
            while self.pos < len(text) and _is_value_rune(text[self.pos]):
                self.pos += 1
            self.value_mode = False
            return start, _VALUE, text[start : self.pos]
        if _is_field_rune(ch):
            while self.pos < len(text) and _is_field_rune(text[self.pos]):
                self.pos += 1
            return start, _FIELD, text[start : self.pos]
        self.err = f"unexpected character {ch!r}"
        return start, _ILLEGAL, ch

    def _scan_quoted(self, quote: str) -> bool:
        text = self.text
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                self.err = "quoted literal not terminated"
                return False
            ch = text[self.pos]
            self.pos += 1
            if ch == quote:
                return True
            if ch == "\\":
                self.pos += 1


def _unquote(s: str, allow_alt: bool) -> str:
    quote = s[0]
    if quote != '"' and not allow_alt:
        raise ValueError("invalid quote encountered")
    body = s[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        i += 1
        if ch != "\\":
            out.append(ch)
            continue
        if i >= len(body):
            raise ValueError("invalid escape sequence")
        esc = body[i]
        i += 1
        if quote != '"':
            # /regexp/ and |regexp|: only the delimiter is escaped; the rest is the regexp's
            out.append(esc if esc == quote else "\\" + esc)
        elif esc in _ESCAPES:
            out.append(_ESCAPES[esc])
        elif esc in "\\\"'":
            out.append(esc)
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i : i + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid escape sequence")
            out.append(chr(int(digits, 16)))
            i += width
        elif esc in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError("invalid escape sequence")
            out.append(chr(int(digits, 8)))
            i += 2
        else:
            raise ValueError("invalid escape sequence")
    return "".join(out)


# -- parser ----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.scanner = _Scanner(text)

    def error(self, message: str) -> errdefs.InvalidArgument:
        return errdefs.InvalidArgument(
            f"filters: parse error: [{_quote(self.text, repr_=False)}]: {message}"
        )

    def parse(self) -> Filter:
        selectors: list[Filter] = [self.selector()]
        while True:
            nxt = self.scanner.peek()
            if nxt == "":
                break
            if nxt != ",":
                raise self.error(f"unexpected input: {nxt}")
            self.scanner.scan()
            selectors.append(self.selector())
        return selectors[0] if len(selectors) == 1 else All(tuple(selectors))

    def selector(self) -> Selector:
        fieldpath = self.fieldpath()
        if self.scanner.peek() in (",", ""):
            return Selector(fieldpath)
        op = self.operator()
        value = self.value(allow_alt=op == "~=")
        regex = None
        if op == "~=":
            try:
                regex = compile_regex(value)
            except errdefs.InvalidArgument as exc:
                raise self.error(exc.message) from None
        return Selector(fieldpath, op, value, regex)

    def fieldpath(self) -> tuple[str, ...]:
        fields = [self.field()]
        while self.scanner.peek() == ".":
            self.scanner.scan()
            fields.append(self.field())
        return tuple(fields)

    def field(self) -> str:
        _, tok, s = self.scanner.scan()
        if tok == _FIELD:
            return s
        if tok == _QUOTED:
            return self.unquote(s, allow_alt=False)
        if tok == _ILLEGAL:
            raise self.error(self.scanner.err)
        raise self.error("expected field or quoted")

    def operator(self) -> str:
        _, tok, s = self.scanner.scan()
        if tok == _OP:
            if s in ("==", "!=", "~="):
                return s
            raise self.error(f"unsupported operator {_quote(s)}")
        if tok == _ILLEGAL:
            raise self.error(self.scanner.err)
        raise self.error('expected an operator ("=="|"!="|"~=")')

    def value(self, allow_alt: bool) -> str:
        _, tok, s = self.scanner.scan()
        if tok in (_VALUE, _FIELD):
            return s
        if tok == _QUOTED:
            return self.unquote(s, allow_alt)
        if tok == _ILLEGAL:
            raise self.error(self.scanner.err)
        raise self.error("expected value or quoted")

    def unquote(self, s: str, allow_alt: bool) -> str:
        try:
            return _unquote(s, allow_alt)
        except ValueError as exc:
            raise self.error(str(exc)) from None


def _outside_quotes(text: str) -> str:
    """``text`` with the contents of ``"..."`` strings blanked (to look for ``||``)."""
    out, quoted, escaped = [], False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            out.append(" ")
        else:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def parse(text: str) -> Filter:
    """One filter string; ``""`` matches everything.

    Raises:
        errdefs.InvalidArgument: a syntax error, naming the input.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise errdefs.InvalidArgument(
            f"filters: filter of {len(text)} characters, at most {MAX_FILTER_LENGTH}"
        )
    if text.strip() == "":
        return Always()
    if "||" in _outside_quotes(text):
        raise errdefs.InvalidArgument(
            f"filters: parse error: [{_quote(text, repr_=False)}]: || is not supported; "
            "pass several filter strings"
        )
    return _Parser(text).parse()


def parse_all(texts: Sequence[str]) -> Filter:
    """Several filter strings, OR-ed; none (or only empty ones) match everything.

    Raises:
        errdefs.InvalidArgument: more than :data:`~.bounds.MAX_FILTERS`
            strings, or one that does not parse (the first such).
    """
    if len(texts) > MAX_FILTERS:
        raise errdefs.InvalidArgument(
            f"filters: {len(texts)} filter strings, at most {MAX_FILTERS}"
        )
    parsed = [parse(t) for t in texts]
    if not parsed or any(isinstance(f, Always) for f in parsed):
        return Always()
    return parsed[0] if len(parsed) == 1 else AnyOf(tuple(parsed))


def _leaf(value: object) -> tuple[str, bool]:
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, str):
        return value, True
    if isinstance(value, int | float):
        return str(value), True
    return "", False


@attrs.frozen
class _MappingAdaptor:
    obj: Mapping[str, object]

    def field(self, fieldpath: Sequence[str]) -> tuple[str, bool]:
        node: object = self.obj
        rest = list(fieldpath)
        while rest:
            if not isinstance(node, Mapping):
                return "", False
            joined = ".".join(rest)
            if len(rest) > 1 and joined in node:
                node, rest = node[joined], []
                break
            if rest[0] not in node:
                return "", False
            node = node[rest.pop(0)]
        if node is None:
            return "", False
        return _leaf(node)


def adapt(obj: Mapping[str, object]) -> Adaptor:
    """An adaptor over nested maps: ``labels.a.b`` finds the key ``"a.b"`` in ``labels``."""
    return _MappingAdaptor(obj)
