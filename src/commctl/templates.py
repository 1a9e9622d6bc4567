"""Template checks that warn (SPEC section 3): unbalanced braces, SMS over one segment, REMINDER at 0 days."""

from __future__ import annotations

import re

from .models import Desired

# GSM 03.38 basic character set, and the extension table whose characters take two septets.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
GSM7_LIMIT, UCS2_LIMIT = 160, 70
# Regular expressions, not loops over characters: templates can be megabytes, and 50k of them are checked.
_NOT_GSM7 = re.compile(f"[^{re.escape(GSM7_BASIC + GSM7_EXTENDED)}]")
_GSM7_DOUBLE = re.compile(f"[{re.escape(GSM7_EXTENDED)}]")
_BRACES = re.compile(r"\{\{|\}\}")  # scanned left to right, so "{{{" is "{{" then "{"


def sms_length(text: str) -> tuple[int, int, str]:
    """(units used, one-segment limit, encoding) for an SMS text."""
    if not _NOT_GSM7.search(text):
        return len(text) + len(_GSM7_DOUBLE.findall(text)), GSM7_LIMIT, "GSM-7"
    return len(text.encode("utf-16-le")) // 2, UCS2_LIMIT, "UCS-2"


def unbalanced_braces(text: str) -> str | None:
    is_open = False
    for m in _BRACES.finditer(text):
        if m.group() == "{{":
            if is_open:
                return "'{{' opened again before '}}'"
            is_open = True
        else:
            if not is_open:
                return "'}}' without a matching '{{'"
            is_open = False
    return "'{{' is never closed" if is_open else None


def check(items: list[Desired], channel_names: dict[int, str] | None = None) -> list[str]:
    """Warnings, one `FILE:LINE:COL: field: message` line each."""
    names = channel_names or {}
    out = []
    for d in items:
        where, _, path = d.where.partition(": ")
        found: list[tuple[str, str]] = []
        for field in ("subjectTemplate", "messageTemplate"):
            text = d.fields.get(field)
            if isinstance(text, str) and (problem := unbalanced_braces(text)):
                found.append((field, f"unbalanced placeholder braces: {problem}"))
        name = d.channel_name or (names.get(d.channel) if isinstance(d.channel, int) else None)
        message = d.fields.get("messageTemplate")
        if name and name.upper() == "SMS" and isinstance(message, str):
            used, limit, encoding = sms_length(message)
            if used > limit:
                found.append(
                    ("messageTemplate", f"SMS text is {used} {encoding} characters, more than one segment ({limit})")
                )
        if d.type == "REMINDER" and d.fields.get("offsetDays") == 0:
            found.append(("offsetDays", "a REMINDER with offsetDays 0 is sent on the last day, not before it"))
        out += [f"{d.locs.get(field, where)}: {path}.{field}: {text}" for field, text in found]
    return out
