"""Secrets that cannot be printed by accident, and redaction of text that may contain them.

Every secret the process learns (access and refresh tokens, client secrets, encryption keys)
is wrapped in :class:`Secret`, which registers its value; :func:`redact` replaces every
registered value in a piece of text. Reporters, error messages and artifacts pass their text
through :func:`redact` as a last line of defence.
"""

from __future__ import annotations

import re
import threading

_MASK = "***"
_lock = threading.Lock()
_known: set[str] = set()
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_QUERY_SECRET = re.compile(
    r"(?i)\b(access_token|refresh_token|client_secret|token|code)=([^&\s\"']+)"
)


class Secret:
    """A secret string: ``str()``/``repr()`` show a mask; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, register: bool = True):
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value
        if register:
            _register(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return _MASK

    def __repr__(self) -> str:
        return f"Secret({_MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def register(value: str | None) -> None:
    """Remember a secret value so :func:`redact` masks it everywhere."""
    _register(value)


def _register(value: str | None) -> None:
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Mask every registered secret, bearer token and credential query parameter in ``text``."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, _MASK)
    text = _BEARER.sub(lambda m: m.group(1) + _MASK, text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={_MASK}", text)
