"""Mask personal data in payloads shown by ``plan --show``: keep the shape and a hint.

E-mails ``m***@example.com``, phones ``+55 ** *****-**78``, names and other free text
``M*** S***`` (a deal's name stays: it names the deal, not a person), document numbers ``***.***.***-00``, URLs ``https://e***.com.br/***``. CRM ids,
deal statuses, dates (except birthdays), numbers and booleans stay as they are: they identify
records or describe the deal, not a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from dbt_rdcrm.report.events import Emit, Event, ModelFinished, RunFinished
from dbt_rdcrm.report.results import PLANNED_ID, ModelResult

HIDDEN = "***"
# In a plan, a parent the run would create first has no id yet; payloads show this instead.
PLANNED_PARENT = "<id of the record this run creates first>"
# Payload keys whose values stay readable.
CLEAR_KEYS = frozenset(
    {
        "id",
        "status",
        "contact_ids",
        "organization_id",
        "stage_id",
        "pipeline_id",
        "owner_id",
        "campaign_id",
        "segment_ids",
        "expected_close_date",
        "rating",
        "one_time_price",
        "recurrence_price",
    }
)
_DIGIT = re.compile(r"\d")
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<host>[^/?#\s]+)(?P<rest>.*)$", re.I)


def mask_email(text: str) -> str:
    local, at, domain = text.strip().rpartition("@")
    if not at or not local:
        return mask_text(text)
    return f"{local[0]}{HIDDEN}@{domain}"


def mask_digits(text: str, keep_last: int = 2) -> str:
    """Every digit hidden but the last ``keep_last``; letters hidden, punctuation kept."""
    digits = len(_DIGIT.findall(text))
    out, seen = [], 0
    for char in text:
        if char.isdigit():
            seen += 1
            out.append(char if seen > digits - keep_last else "*")
        elif char.isalpha():
            out.append("*")
        else:
            out.append(char)
    return "".join(out)


def mask_phone(text: str) -> str:
    """``+55 11 91234-5678`` -> ``+55 ** *****-**78``: the country code and last two digits."""
    text = text.strip()
    match = re.match(r"^(\+\d{1,3})(?=[\s.-])", text)
    if match is None:
        return mask_digits(text)
    return match.group(1) + mask_digits(text[match.end() :])


def _mask_word(word: str) -> str:
    if not any(c.isalnum() for c in word):
        return word
    if any(c.isdigit() for c in word) and not any(c.isalpha() for c in word):
        return mask_digits(word)
    first = next(c for c in word if c.isalnum())
    return first + HIDDEN


def mask_text(text: str) -> str:
    """Free text: each word as its first character and ``***``; digit runs as ``mask_digits``."""
    if "@" in text and " " not in text.strip():
        return mask_email(text)
    if len(_DIGIT.findall(text)) >= 6 and not any(c.isalpha() for c in text):
        return mask_digits(text)
    return " ".join(_mask_word(word) for word in text.split())


def mask_url(text: str) -> str:
    match = _URL.match(text.strip())
    if match is None:
        return mask_text(text)
    host = match.group("host")
    first, _, suffix = host.partition(".")
    masked = (first[:1] + HIDDEN) + ("." + suffix if suffix else "")
    rest = "/" + HIDDEN if match.group("rest").strip("/") else ""
    return (match.group("scheme") or "") + masked + rest


def mask_value(value: object) -> object:
    """A custom field or free-text value: strings masked, numbers and booleans kept."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: mask_value(item) for key, item in value.items()}
    return value


def mask_payload(data: Mapping[str, object], mode: str | None = None) -> dict[str, object]:
    """A v2 ``data`` object with its personal data masked (a new dict; ``data`` is unchanged).
    A deal's name names the deal, not a person: it stays readable."""
    clear = CLEAR_KEYS | {"name"} if mode == "deals" else CLEAR_KEYS
    masked: dict[str, object] = {}
    for key, value in data.items():
        if key in clear:
            masked[key] = value
        elif key == "emails" and isinstance(value, list):
            masked[key] = [_masked_entry(e, "email", mask_email) for e in value]
        elif key == "phones" and isinstance(value, list):
            masked[key] = [_masked_entry(e, "phone", mask_phone) for e in value]
        elif key == "url" and isinstance(value, str):
            masked[key] = mask_url(value)
        elif key == "birthday" and isinstance(value, str):
            masked[key] = _DIGIT.sub("*", value)
        else:
            masked[key] = mask_value(value)
    return masked


def _masked_entry(entry: object, field: str, mask: Callable[[str], str]) -> object:
    if isinstance(entry, Mapping) and isinstance(entry.get(field), str):
        return {**entry, field: mask(entry[field])}
    return mask_value(entry)


def mask_sample(sample: Mapping[str, object], mode: str | None = None) -> dict[str, object]:
    """One ``plan --show`` sample (``{"key", "crm_id", "data"}``) with its payload masked."""
    data = sample.get("data")
    return {**sample, "data": mask_payload(data, mode) if isinstance(data, Mapping) else data}


def _with_planned_parents(value: object) -> object:
    if value == PLANNED_ID:
        return PLANNED_PARENT
    if isinstance(value, list):
        return [_with_planned_parents(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _with_planned_parents(item) for key, item in value.items()}
    return value


def masking_emit(emit: Emit, *, unmasked: bool = False) -> Emit:
    """``emit``, with each model's ``--show`` payloads masked before any reporter sees them
    (left as they are with ``unmasked``; the run result records which). Ids of parents the
    plan would create first read as ``PLANNED_PARENT``."""
    done: set[int] = set()

    def mask_model(result: ModelResult) -> None:
        if id(result) in done:
            return
        done.add(id(result))
        result.samples = {
            op: [
                _with_planned_parents(s if unmasked else mask_sample(s, result.mode))
                for s in samples
            ]
            for op, samples in result.samples.items()
        }

    def wrapped(event: Event) -> None:
        if isinstance(event, ModelFinished):
            mask_model(event.result)
        elif isinstance(event, RunFinished):
            event.result.samples_masked = not unmasked
            for model in event.result.models:
                mask_model(model)
        emit(event)

    return wrapped
