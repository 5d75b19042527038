"""Row validation: phone numbers to E.164 with phonenumbers, emails, timezones. Reasons in plain words."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from phonenumber_field.phonenumber import PhoneNumber
from phonenumbers import NumberParseException, PhoneNumberType

from .mapping import CUSTOM

# 1.41555E+10, 4,15555E+10 (decimal comma), 1.4E10: a number Excel displayed in scientific notation and
# saved that way; the digits after the shown ones are gone for good.
_SCIENTIFIC = re.compile(r"^\s*\+?\d+(?:[.,]\d+)?\s*[eE]\s*\+?\d+\s*$")
_TRAILING_ZERO_DECIMAL = re.compile(r"^(\+?\d{6,})[.,]0+$")  # 14155550100.0 from a float column
_PHONE_CHARS = re.compile(r"[\d+]")

FIELD_MAX = {"first_name": 100, "last_name": 100, "email": 254, "timezone": 64}
_email = EmailValidator()


@lru_cache(maxsize=1)
def _timezones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


class CheckedPhoneNumber(PhoneNumber):
    """A number this module has already validated and formatted: saving it does not validate it again
    (the model field would otherwise run phonenumbers' validation twice more per row)."""

    e164 = ""

    def is_valid(self) -> bool:
        return True

    def format_as(self, format):
        if format == phonenumbers.PhoneNumberFormat.E164 and self.e164:
            return self.e164
        return super().format_as(format)

    def __str__(self) -> str:
        return self.e164 or super().__str__()

    def __len__(self) -> int:
        return len(str(self))


@dataclass(slots=True)
class Phone:
    e164: str = ""
    fixed_line: bool = False
    number: PhoneNumber | None = None  # phonenumber_field's subclass, ready for the model field
    error: str = ""


# Codes people type that are not the ISO 3166 code phonenumbers uses.
_REGION_ALIASES = {"UK": "GB", "EL": "GR", "EN": "GB", "USA": "US"}


def region_clean(region: str | None) -> str | None:
    """A default country as phonenumbers knows it ('gb' -> 'GB', '' -> None). Raises MappingError."""
    from .mapping import MappingError

    code = (region or "").strip().upper()
    if not code:
        return None
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    hint = _REGION_ALIASES.get(code)
    if hint:
        raise MappingError(f"{code!r} is not a country code phonenumbers knows: use {hint} "
                           f"(+{phonenumbers.country_code_for_region(hint)}) instead.")
    raise MappingError(f"{code!r} is not a country code phonenumbers knows. Use the two-letter ISO 3166 "
                       "code of the country, e.g. US, GB, DE, FR or IN.")


def region_name(region: str | None) -> str:
    if not region:
        return "no default country"
    code = phonenumbers.country_code_for_region(region)
    return f"{region} (+{code})" if code else region


def phone_normalize(raw: str, region: str | None) -> Phone:
    """One cell to E.164, or the reason it cannot be, in words a spreadsheet user understands."""
    text = (raw or "").strip()
    if not text:
        return Phone(error="No phone number.")
    if _SCIENTIFIC.match(text):
        return Phone(
            error=f"{text!r} is a number Excel turned into scientific notation: digits were lost. "
            "Format the column as text in Excel and export again."
        )
    match = _TRAILING_ZERO_DECIMAL.match(text)
    if match:
        text = match.group(1)
    if not _PHONE_CHARS.search(text):
        return Phone(error=f"{text!r} is not a phone number.")
    phone = _parse(text, region)
    if phone.error and _DIGITS_ONLY.match(text):
        # Excel drops the + of an international number typed as a number (+14155550100 -> 14155550100):
        # when the digits are not a valid national number, try them as an international one.
        retry = _parse("+" + re.sub(r"\D", "", text), None)
        if not retry.error:
            return retry
    return phone


_DIGITS_ONLY = re.compile(r"^[1-9][\d\s\-.]{9,}$")


def _parse(text: str, region: str | None) -> Phone:
    try:
        number = phonenumbers.parse(text, region or None, numobj=CheckedPhoneNumber())
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if region:
                return Phone(error=f"{text!r} starts with an unknown country code.")
            return Phone(error=f"{text!r} has no country code: write it with + or choose a default country.")
        if exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
            return Phone(error=f"{text!r} is too short to be a phone number.")
        if exc.error_type == NumberParseException.TOO_LONG:
            return Phone(error=f"{text!r} is too long to be a phone number.")
        return Phone(error=f"{text!r} is not a phone number.")
    number_type = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number() is False
    if number_type == PhoneNumberType.UNKNOWN:
        where = phonenumbers.region_code_for_country_code(number.country_code)
        where = f"{where} (+{number.country_code})" if where and where != "ZZ" else f"+{number.country_code}"
        if not phonenumbers.is_possible_number(number):
            return Phone(error=f"{text!r} has the wrong number of digits for {where}.")
        return Phone(error=f"{text!r} is not a valid number in {where}.")
    number.e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=number.e164, fixed_line=number_type == PhoneNumberType.FIXED_LINE, number=number)


@dataclass(slots=True)
class Row:
    """One data row, cleaned. ``warnings`` are problems that did not stop the row being imported."""

    number: int
    values: list[str]
    phone: Phone
    fields: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def row_clean(number: int, values: list[str], mapping: list[str], region: str | None) -> Row:
    """Read one row through a mapping. An unusable phone is in ``row.phone.error``; the rest never fails."""
    phone_cell = ""
    fields: dict[str, str] = {}
    custom: dict[str, str] = {}
    warnings: list[str] = []
    for column, target in enumerate(mapping):
        if not target:
            continue
        value = values[column].strip() if column < len(values) else ""
        if target == "phone":
            phone_cell = value
            continue
        if not value:
            continue
        if target.startswith(CUSTOM):
            custom[target[len(CUSTOM):]] = value
            continue
        if target == "email":
            try:
                _email(value)
            except ValidationError:
                warnings.append(f"{value!r} is not an email address; imported without the email.")
                continue
        elif target == "timezone":
            known = _timezones().get(value.lower())
            if known is None:
                warnings.append(f"{value!r} is not a known timezone (e.g. America/New_York); imported without it.")
                continue
            value = known
        limit = FIELD_MAX.get(target)
        if limit and len(value) > limit:
            warnings.append(f"The {target.replace('_', ' ')} was cut to {limit} characters.")
            value = value[:limit]
        fields[target] = value
    return Row(number=number, values=values, phone=phone_normalize(phone_cell, region), fields=fields,
               custom=custom, warnings=warnings)
