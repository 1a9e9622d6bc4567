"""Data is shown as data (SPEC 8.4): the one escaping path for text from files, flags or the API.

Nothing here parses markup: callers hand Rich `Text` objects, never markup strings. What this module
does is keep control characters from acting on the reader's terminal, log or pull request:

- `shown` is for people (table cells, stderr lines, Markdown): a newline is shown as ⏎, a tab as ⇥,
  every other control character (C0, DEL, C1), lone surrogate, line or paragraph separator and
  bidirectional override as a visible escape such as `\\x1b` or `\\u202e`.
- `inline` is for names and keys in messages: every control character as a Python-style escape.
- `field` (and `tsv` for a whole table) is for piped tables: reversible backslash escapes (`\\t`,
  `\\n`, `\\r`, `\\\\`, `\\x1b`), so a row is always one line and `cut -f` / `awk -F'\\t'` see every column.
- `json_safe` makes already-encoded JSON safe to print: the characters JSON may leave raw (DEL, C1,
  separators, surrogates) become `\\uXXXX` escapes, which decode to the exact same value.
- `markdown_code` puts text in a Markdown code span: no emphasis, links, HTML or @mentions, and `|`
  escaped so a table row stays one row.
Standard library only (it is imported on every error path).
"""

from __future__ import annotations

import re

# Characters that act on a terminal or reorder what a reviewer reads ("Trojan Source"), and lone
# surrogates (undecodable bytes), which cannot even be written as UTF-8.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[{_UNSAFE}]")
_FIELD_RE = re.compile(f"[{_UNSAFE}\\\\]")
_JSON_RE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
SYMBOLS = {"\n": "⏎", "\t": "⇥"}
FIELD_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _code(ch: str) -> str:
    n = ord(ch)
    return NAMED.get(ch) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}")


def _symbol(match: re.Match[str]) -> str:
    ch = match[0]
    return SYMBOLS.get(ch) or _code(ch)


def _field_escape(match: re.Match[str]) -> str:
    ch = match[0]
    return FIELD_ESCAPES.get(ch) or _code(ch)


def shown(text: object) -> str:
    """Text for people: ⏎ for line breaks, ⇥ for tabs, every other control character escaped."""
    s = "" if text is None else str(text)
    if s.isprintable():  # the common case, in C: no category Cc, Cf, Cs, Zl or Zp character
        return s
    return _UNSAFE_RE.sub(_symbol, s.replace("\r\n", "\n"))


def inline(text: object) -> str:
    """Text on one line with every control character as a Python-style escape (`\\n`, `\\x1b`): for
    names and keys in messages, where ⏎ would hide what a file or path really contains."""
    s = "" if text is None else str(text)
    return s if s.isprintable() else _UNSAFE_RE.sub(lambda m: _code(m[0]), s)


def field(text: object) -> str:
    """One tab-separated field: reversible backslash escapes, never a tab or a line break."""
    s = "" if text is None else str(text)
    if s.isprintable() and "\\" not in s:
        return s
    return _FIELD_RE.sub(_field_escape, s)


# Unit and record separators stand for tabs and line ends while a whole table is escaped in one pass.
_FIELD_BUT_SEPARATORS_RE = re.compile(f"[{_UNSAFE.replace(chr(0x1f), chr(0x1d))}\\\\]")
_REST_RE = re.compile(f"[{_UNSAFE.replace(chr(0) + '-' + chr(0x1f), chr(0) + '-' + chr(8) + chr(11) + chr(12) + chr(14) + '-' + chr(0x1d))}]")


def tsv(rows: list[list[str]]) -> str:
    """Rows as tab-separated lines, each field escaped as `field` does: one regex pass over the whole
    table, so 20,000 rows cost about what their JSON does."""
    if not rows:
        return ""
    body = "\x1e".join(["\x1f".join(row) for row in rows])
    separators = sum(len(row) - 1 for row in rows)
    if body.count("\x1f") != separators or body.count("\x1e") != len(rows) - 1:  # a value holds one: go slowly
        return "".join("\t".join([field(v) for v in row]) + "\n" for row in rows)
    if _FIELD_BUT_SEPARATORS_RE.search(body):
        for ch, escape in FIELD_ESCAPES.items():  # the common ones in C; backslash first
            body = body.replace(ch, escape)
        body = _REST_RE.sub(_field_escape, body)
    return body.replace("\x1f", "\t").replace("\x1e", "\n") + "\n"


def json_safe(encoded: str) -> str:
    """JSON text with the characters JSON may leave raw turned into `\\uXXXX` (the value is unchanged)."""
    if (encoded.isascii() and "\x7f" not in encoded) or not _JSON_RE.search(encoded):  # DEL is ASCII
        return encoded
    return _JSON_RE.sub(lambda m: f"\\u{ord(m[0]):04x}", encoded)


def needs_escape(text: str) -> bool:
    """True when `text` holds a character that `shown` would escape (YAML output quotes such strings)."""
    return not text.isprintable() and _UNSAFE_RE.search(text) is not None


def shorten(text: object, width: int) -> str:
    """`shown(text)` cut to `width` characters with a trailing …"""
    s = shown(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def markdown_code(text: object, width: int | None = None) -> str:
    """A Markdown code span of `text` (shown, shortened): inert in a pull-request comment or table cell."""
    s = shown(text) if width is None else shorten(text, width)
    if not s:
        return ""
    longest = max((len(run) for run in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ")) else ""
    return f"{fence}{pad}{s}{pad}{fence}".replace("|", "\\|")


# GitHub workflow commands (`::error file=F,line=L::message`): data and property escaping.
_GH_DATA = {"%": "%25", "\r": "%0D", "\n": "%0A"}
_GH_PROPERTY = {**_GH_DATA, ":": "%3A", ",": "%2C"}


def github_data(text: str) -> str:
    return "".join(_GH_DATA.get(ch, ch) for ch in shown(text))


def github_property(text: str) -> str:
    return "".join(_GH_PROPERTY.get(ch, ch) for ch in shown(text))
