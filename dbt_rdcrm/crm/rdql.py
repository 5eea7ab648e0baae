"""RDQL filter text as the client writes it (RD's page ``crm-v2-rdql-filtering``).

Values are always written quoted, ``name:"Acme Ltda"``. RD documents quoted strings, also as
items of a value list (``field:(1, "2 b", 3c)``: equal to any of them), but no escape for a
quote inside a quoted value. A single lookup escapes ``"`` and ``\\`` with a backslash (this
project's choice, which the emulator follows); a value list takes only values that need no
escape (:func:`listable`), and the others are looked up alone.

A value list is cut so its filter stays under ``MAX_FILTER_CHARS`` once URL-encoded: the whole
request line then stays well under the 8 KB that common gateways (nginx, Kong) accept.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote_plus

MAX_LIST_VALUES = 200  # the largest page: a list of distinct names is answered in one request
MAX_FILTER_CHARS = 6_000
_SEPARATOR = len(quote_plus(","))


def quoted(value: str) -> str:
    """A value as one RDQL string: ``"..."`` (``\\`` and ``"`` escaped with a backslash)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rdql_time(moment: dt.datetime) -> str:
    """A date-time as RD's RDQL documents it: quoted ``"YYYY-MM-DD HH:MM:SS"`` (UTC)."""
    return quoted(moment.strftime("%Y-%m-%d %H:%M:%S"))


def listable(value: str) -> bool:
    """Whether ``value`` can be an item of a value list: it needs no escape once quoted."""
    return bool(value) and '"' not in value and "\\" not in value


class ValueList:
    """``field:("a","b",...)``, filled value by value up to a number of values and a length."""

    def __init__(
        self,
        field: str,
        *,
        max_values: int = MAX_LIST_VALUES,
        max_chars: int = MAX_FILTER_CHARS,
    ):
        self.field = field
        self.max_values = max_values
        self.max_chars = max_chars
        self.values: list[str] = []
        self._chars = len(quote_plus(f"{field}:()"))

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: str) -> bool:
        """Add ``value``; False (and nothing added) when it cannot be listed or does not fit."""
        if not listable(value) or len(self.values) >= self.max_values:
            return False
        chars = len(quote_plus(quoted(value))) + (_SEPARATOR if self.values else 0)
        if self._chars + chars > self.max_chars:
            return False
        self.values.append(value)
        self._chars += chars
        return True

    @property
    def chars(self) -> int:
        """The filter's length once URL-encoded."""
        return self._chars

    @property
    def text(self) -> str:
        return value_list(self.field, self.values)


def value_list(field: str, values: list[str]) -> str:
    """``field:("a","b")``: equal to any of ``values`` (each :func:`listable`)."""
    return f"{field}:({','.join(quoted(v) for v in values)})"
