"""Text shown to people, made safe for a terminal or a CI log.

Keys, CRM messages and reasons come from rows, YAML and remote servers: an ANSI escape could
recolour or erase a line, a newline could forge an ``error:`` line in a CI log. Everything a
reporter prints goes through :func:`printable` (control characters written as visible
escapes, ``\\x1b``, ``\\n``), and through :func:`shown` when it is printed as rich markup.
"""

from __future__ import annotations

import re

from rich.markup import escape

from dbt_rdcrm.redaction import redact

# C0 and C1 controls, DEL, line/paragraph separators and bidirectional overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` on one line, every control character written as a visible escape."""
    return _CONTROL.sub(_visible, text)


def shown(text: str) -> str:
    """``text`` ready for rich markup: secrets masked, controls escaped, markup escaped."""
    return escape(printable(redact(str(text))))


def shown_lines(text: str) -> str:
    """Like :func:`shown` for a message of our own that spans lines: each line on its own."""
    return "\n".join(shown(line) for line in str(text).split("\n"))
