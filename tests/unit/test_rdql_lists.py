"""RDQL value lists as the client writes them: quoting, what cannot be listed, the URL length.
The emulator's parser reads each list back to the values written."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from dbt_rdcrm.crm.rdql import ValueList, listable, quoted, value_list
from dbt_rdcrm.emulator.rdql import Condition, parse

AWKWARD = [
    "Acme, Inc.",  # a comma
    "Tech (BR) Ltda",  # parentheses
    "São Paulo Comércio",  # accents
    "  spaced  out ",  # spaces inside and around
    "or",  # a keyword
    "a:b",  # a colon
    "-negated",  # a leading minus
    "50% off & more + tax",  # characters URL encoding changes
    "Ünïcödé ✓",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_a_listed_value_reads_back_as_written(value):
    text = value_list("name", ["first", value, "last"])
    assert parse(text) == Condition("name", "in", ("first", value, "last"))


def test_every_item_is_quoted():
    assert value_list("name", ["Acme, Inc.", "B"]) == 'name:("Acme, Inc.","B")'
    assert value_list("@cnpj", ["1"]) == '@cnpj:("1")'


@pytest.mark.parametrize("value", ['Say "hi"', "back\\slash", ""])
def test_values_that_need_an_escape_are_not_listed(value):
    # RD documents quoted items in lists but no escape inside them: such values go alone
    assert not listable(value)
    assert not ValueList("name").add(value)


@pytest.mark.parametrize("value", ['Say "hi"', "back\\slash"])
def test_a_single_lookup_still_escapes_them(value):
    assert parse(f"name:{quoted(value)}") == Condition("name", "eq", (value,))


def test_a_list_stops_at_its_number_of_values():
    batch = ValueList("name", max_values=3)
    assert [batch.add(v) for v in "abcd"] == [True, True, True, False]
    assert batch.values == ["a", "b", "c"]


def test_a_list_stops_before_its_encoded_filter_passes_the_limit():
    batch = ValueList("email", max_chars=300)
    added = [v for v in (f"person.{i}@example.com.br" for i in range(100)) if batch.add(v)]
    encoded = len(urlencode({"filter": batch.text})) - len("filter=")
    assert encoded == batch.chars <= 300
    assert len(added) == len(batch) and 5 < len(added) < 100
    assert not batch.add("x" * 300)  # a value too long for the list is refused, not cut


@pytest.mark.parametrize("value", AWKWARD)
def test_the_counted_length_is_the_encoded_length(value):
    batch = ValueList("name")
    for item in (value, "other", value + "2"):
        assert batch.add(item)
    assert len(urlencode({"filter": batch.text})) - len("filter=") == batch.chars
