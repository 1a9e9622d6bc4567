"""Template checks that warn (SPEC section 3): unbalanced braces, SMS over one segment, REMINDER at 0 days."""

from __future__ import annotations

from .models import Desired

# GSM 03.38 basic character set, and the extension table whose characters take two septets.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")
GSM7_LIMIT, UCS2_LIMIT = 160, 70


def sms_length(text: str) -> tuple[int, int, str]:
    """(units used, one-segment limit, encoding) for an SMS text."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text), GSM7_LIMIT, "GSM-7"
    return len(text.encode("utf-16-le")) // 2, UCS2_LIMIT, "UCS-2"


def unbalanced_braces(text: str) -> str | None:
    depth = 0
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair == "{{":
            if depth:
                return "'{{' opened again before '}}'"
            depth, i = 1, i + 2
        elif pair == "}}":
            if not depth:
                return "'}}' without a matching '{{'"
            depth, i = 0, i + 2
        else:
            i += 1
    return "'{{' is never closed" if depth else None


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
