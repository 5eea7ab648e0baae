"""RDQL, the filter language of list endpoints: the parser (reference page
``crm-v2-rdql-filtering``). What each resource may filter on, and how values compare, is in
:mod:`.filters`.

    name:Acme             equal
    name:"Acme Ltda"      quoted value (\\" and \\\\ escape inside quotes)
    name:~acme            match: contains, case-insensitive
    status:(won,lost)     in;  -status:(won,lost)  not in
    -status:lost          not
    rating:>3  <3  >=3  <=3
    created_at:>="2026-01-01 12:00:00"
    has:product  is:active  -has:product
                          flags, where the resource documents them
    @cpf:123              custom field by slug
    a:1 b:2   a:1 and b:2 and
    a:1 or b:2            or (binds looser than and)
    (a:1 or b:2) c:3      parentheses group
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERM = re.compile(r"(-?)(@?[A-Za-z_][A-Za-z0-9_]*):")
_KEYWORD = re.compile(r"(and|or)(?=[\s()]|$)", re.IGNORECASE)
_OPERATORS = ((">=", "ge"), ("<=", "le"), (">", "gt"), ("<", "lt"), ("~", "contains"))
FLAG_FIELDS = ("has", "is")


class RdqlError(ValueError):
    """A filter the API refuses with 400."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # eq, in, contains, gt, lt, ge, le; flag for has:/is:
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class Group:
    """Conditions joined by ``and`` or ``or``; an empty ``and`` matches everything."""

    kind: str  # and | or
    items: tuple[Node, ...]


Node = Condition | Group


def parse(text: str) -> Node:
    """The syntax tree of ``text``; raises RdqlError for anything malformed."""
    parser = _Parser(text)
    node = parser.expression()
    parser.skip_spaces()
    if parser.i < len(text):
        raise RdqlError(f"malformed filter: unexpected {text[parser.i]!r} at {parser.i}")
    return node


def conditions(node: Node) -> list[Condition]:
    """Every condition in the tree, in writing order."""
    if isinstance(node, Condition):
        return [node]
    return [c for item in node.items for c in conditions(item)]


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.depth = 0

    def skip_spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def _keyword(self, word: str) -> bool:
        """Consume ``and``/``or`` if it is next (a keyword is not followed by ``:``)."""
        self.skip_spaces()
        match = _KEYWORD.match(self.text, self.i)
        if match and match.group(1).lower() == word:
            self.i = match.end()
            return True
        return False

    def _at_end_of_group(self) -> bool:
        self.skip_spaces()
        return self.i >= len(self.text) or self.text[self.i] == ")"

    def expression(self) -> Node:
        items = [self._conjunction()]
        while self._keyword("or"):
            items.append(self._conjunction())
        return items[0] if len(items) == 1 else Group("or", tuple(items))

    def _next_is(self, word: str) -> bool:
        self.skip_spaces()
        match = _KEYWORD.match(self.text, self.i)
        return bool(match) and match.group(1).lower() == word

    def _conjunction(self) -> Node:
        items: list[Node] = []
        while not self._at_end_of_group() and not self._next_is("or"):
            if self._keyword("and"):
                if not items or self._at_end_of_group() or self._next_is("or"):
                    raise RdqlError("malformed filter: 'and' needs a condition on both sides")
                continue
            items.append(self._unary())
        if not items and (self.depth or self.text.strip()):
            raise RdqlError(
                "malformed filter: an empty group, or 'or' without a condition on both sides"
            )
        return items[0] if len(items) == 1 else Group("and", tuple(items))

    def _unary(self) -> Node:
        self.skip_spaces()
        if self.text.startswith("(", self.i):
            self.i += 1
            self.depth += 1
            node = self.expression()
            self.skip_spaces()
            if not self.text.startswith(")", self.i):
                raise RdqlError("malformed filter: missing ')' to close a group")
            self.i += 1
            self.depth -= 1
            return node
        return self._condition()

    def _condition(self) -> Condition:
        text = self.text
        match = _TERM.match(text, self.i)
        if match is None:
            raise RdqlError(
                f"malformed filter at {text[self.i : self.i + 30]!r}: expected field:value"
            )
        negate, field = match.group(1) == "-", match.group(2)
        self.i = match.end()
        if field in FLAG_FIELDS:
            value = self._value(field)
            return Condition(field, "flag", (value,), negate)
        op = "eq"
        for symbol, name in _OPERATORS:
            if text.startswith(symbol, self.i):
                op, self.i = name, self.i + len(symbol)
                break
        if op == "eq" and text.startswith("(", self.i):
            return Condition(field, "in", self._list(field), negate)
        return Condition(field, op, (self._value(field),), negate)

    def _value(self, field: str) -> str:
        text, start = self.text, self.i
        if text.startswith('"', start):
            self.i += 1
            return self._quoted(field)
        while self.i < len(text) and text[self.i] not in " \t\r\n)":
            self.i += 1
        if self.i == start:
            raise RdqlError(f"malformed filter: missing value for {field}")
        return text[start : self.i]

    def _quoted(self, field: str) -> str:
        value = self._quoted_text(f"the value of {field}")
        text = self.text
        if self.i < len(text) and not (text[self.i].isspace() or text[self.i] == ")"):
            raise RdqlError(f"malformed filter: unexpected {text[self.i]!r} after {field}")
        return value

    def _list(self, field: str) -> tuple[str, ...]:
        text, values = self.text, []
        self.i += 1  # the "("
        while True:
            self.skip_spaces()  # any whitespace around an item
            if text.startswith('"', self.i):
                self.i += 1
                value = self._quoted_text(f"the list for {field}")
            else:
                start = self.i
                while self.i < len(text) and text[self.i] not in ",)":
                    self.i += 1
                value = text[start : self.i].strip()
            if not value:
                raise RdqlError(f"malformed filter: empty item in the list for {field}")
            values.append(value)
            self.skip_spaces()  # any whitespace around an item
            if self.i >= len(text):
                raise RdqlError(f"malformed filter: missing ')' in the list for {field}")
            if text[self.i] == ")":
                self.i += 1
                return tuple(values)
            if text[self.i] != ",":
                raise RdqlError(f"malformed filter: expected ',' or ')' in the list for {field}")
            self.i += 1

    def _quoted_text(self, where: str) -> str:
        """The text of a quoted value up to its closing quote (a backslash escapes the next
        character); the opening quote is read already."""
        text, chars = self.text, []
        while self.i < len(text):
            char = text[self.i]
            if char == "\\" and self.i + 1 < len(text):
                chars.append(text[self.i + 1])
                self.i += 2
            elif char == '"':
                self.i += 1
                return "".join(chars)
            else:
                chars.append(char)
                self.i += 1
        raise RdqlError(f"malformed filter: unterminated quote in {where}")
