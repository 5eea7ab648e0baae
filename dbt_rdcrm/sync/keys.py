"""Row keys as the state stores them: one text per row, the same in SQL and in Python.

- one key column: its value as text, unchanged (so existing id maps stay readable);
- several key columns: each value with ``\\`` and ``|`` escaped by a backslash, joined by ``|``,
  so ``('a|b', 'c')`` and ``('a', 'b|c')`` never collide;
- no key at all (the original product's configuration): ``#`` and a digest of the row's
  content, so each distinct row is one record and a changed row is a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

SEPARATOR = "|"
ESCAPE = "\\"
CONTENT_PREFIX = "#"


def escape_part(text: str) -> str:
    return text.replace(ESCAPE, ESCAPE + ESCAPE).replace(SEPARATOR, ESCAPE + SEPARATOR)


def encode_key(values: Sequence[object]) -> str | None:
    """The stored key of a row whose key columns hold ``values``; None if any is NULL."""
    if any(v is None for v in values):
        return None
    if len(values) == 1:
        return str(values[0])
    return SEPARATOR.join(escape_part(str(v)) for v in values)


def is_content_key(key: str) -> bool:
    return key.startswith(CONTENT_PREFIX)
