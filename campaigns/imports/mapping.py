"""Which column goes into which contact field.

A mapping is a list with one target per column of the file: a standard field (``phone``, ``first_name``,
``last_name``, ``email``, ``timezone``), ``custom:<key>`` for a custom field usable in message templates
as ``{{ key }}``, or ``""`` to ignore the column.
"""

from __future__ import annotations

import re

STANDARD_FIELDS = ("phone", "first_name", "last_name", "email", "timezone")
FIELD_LABELS = {
    "phone": "phone",
    "first_name": "first name",
    "last_name": "last name",
    "email": "email",
    "timezone": "timezone",
}
# Header spellings recognised for each field, compared without case, spaces, '_', '-' or '.'.
# Earlier spellings win when several columns match one field (a "Mobile" column beats "Phone" for SMS).
SYNONYMS = {
    "phone": (
        "mobile", "mobilephone", "mobilenumber", "mobileno", "cell", "cellphone", "cellnumber", "msisdn",
        "phonenumber", "phone", "phoneno", "telephone", "tel", "number",
    ),
    "first_name": ("firstname", "givenname", "first", "forename"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "email": ("email", "emailaddress", "mail"),
    "timezone": ("timezone", "tz"),
}
_LOOKUP = {spelling: (target, rank) for target, spellings in SYNONYMS.items() for rank, spelling in enumerate(spellings)}
IGNORE = ""
CUSTOM = "custom:"


class MappingError(ValueError):
    """The mapping cannot be used. The message is meant for the person who chose it."""


def normalize(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


def custom_key(name: str) -> str:
    """A template-friendly key for a column name: 'Company Name' -> 'company_name'."""
    key = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")
    if not key:
        key = "field"
    if key[0].isdigit():
        key = "f_" + key
    return key


def standard_field(name: str) -> str | None:
    """The standard field a header or a --map target names, if any ('E-mail' -> 'email')."""
    key = normalize(name)
    if key in STANDARD_FIELDS:
        return key
    hit = _LOOKUP.get(key)
    return hit[0] if hit else None


def auto_map(header: list[str]) -> list[str]:
    """A mapping from header names alone: known spellings to standard fields, the rest to custom fields."""
    best: dict[str, tuple[int, int]] = {}  # field -> (rank, column)
    for column, name in enumerate(header):
        hit = _LOOKUP.get(normalize(name))
        if hit and (hit[0] not in best or hit[1] < best[hit[0]][0]):
            best[hit[0]] = (hit[1], column)
    mapping = [""] * len(header)
    for target, (_rank, column) in best.items():
        mapping[column] = target
    return _fill_custom(header, mapping)


def _fill_custom(header: list[str], mapping: list[str], *, only_unset: bool = True) -> list[str]:
    used = {m[len(CUSTOM):] for m in mapping if m.startswith(CUSTOM)} | set(STANDARD_FIELDS)
    result = list(mapping)
    for column, name in enumerate(header):
        if result[column] or not only_unset:
            continue
        key = base = custom_key(name)
        n = 2
        while key in used:
            key = f"{base}_{n}"
            n += 1
        used.add(key)
        result[column] = CUSTOM + key
    return result


def apply_overrides(header: list[str], mapping: list[str], overrides: list[str]) -> list[str]:
    """Apply ``COLUMN=FIELD`` overrides (CLI ``--map``). FIELD may be a standard field, 'ignore', or any
    other name for a custom field. A standard field given to one column is taken from any other."""
    result = list(mapping)
    by_name = {normalize(name): column for column, name in enumerate(header)}
    for item in overrides:
        if "=" not in item:
            raise MappingError(f"--map {item!r}: write it as COLUMN=FIELD, e.g. 'Mobile Phone=phone'.")
        column_name, target_name = (part.strip() for part in item.split("=", 1))
        column = by_name.get(normalize(column_name))
        if column is None:
            raise MappingError(f"--map {item!r}: the file has no column {column_name!r}. Columns: {', '.join(header)}.")
        if normalize(target_name) in ("ignore", "skip", "none", ""):
            target = IGNORE
        else:
            target = standard_field(target_name) or CUSTOM + custom_key(target_name)
        if target in STANDARD_FIELDS:
            result = [IGNORE if m == target else m for m in result]
        result[column] = target
    return result


def check(header: list[str], mapping: list[str]) -> list[str]:
    """Validate a mapping against a header; returns it cleaned. Raises MappingError."""
    if len(mapping) != len(header):
        raise MappingError("The mapping does not match the file's columns; choose the fields again.")
    cleaned = []
    seen: dict[str, int] = {}
    for column, target in enumerate(mapping):
        target = (target or "").strip()
        if target.startswith(CUSTOM):
            key = custom_key(target[len(CUSTOM):])
            if key in STANDARD_FIELDS:
                raise MappingError(f"Column {header[column]!r}: {key!r} is a standard field, not a custom one.")
            target = CUSTOM + key
        elif target and target not in STANDARD_FIELDS:
            raise MappingError(f"Column {header[column]!r}: unknown field {target!r}.")
        if target:
            if target in seen:
                raise MappingError(
                    f"Columns {header[seen[target]]!r} and {header[column]!r} both go to "
                    f"{describe(target)}; choose one."
                )
            seen[target] = column
        cleaned.append(target)
    if "phone" not in seen:
        raise MappingError(
            "No column holds phone numbers. Name a column phone, mobile, cell, phone number or msisdn, "
            "or choose which column is the phone number."
        )
    return cleaned


def describe(target: str) -> str:
    if not target:
        return "(ignored)"
    if target.startswith(CUSTOM):
        return f"custom field {{{{ {target[len(CUSTOM):]} }}}}"
    return FIELD_LABELS.get(target, target)


def phone_column(mapping: list[str]) -> int:
    return mapping.index("phone")
