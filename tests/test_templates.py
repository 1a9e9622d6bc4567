"""The template checks scan with regular expressions; they must agree with the character-by-character definitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from commctl.templates import GSM7_BASIC, GSM7_EXTENDED, GSM7_LIMIT, UCS2_LIMIT, sms_length, unbalanced_braces


def braces_by_hand(text: str) -> str | None:
    """The definition: "{{" opens, "}}" closes, each pair consumed whole, left to right."""
    depth, i = 0, 0
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


def sms_by_hand(text: str) -> tuple[int, int, str]:
    """The definition: GSM-7 when every character is in the tables (extension characters count two)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text), GSM7_LIMIT, "GSM-7"
    return len(text.encode("utf-16-le")) // 2, UCS2_LIMIT, "UCS-2"


@settings(max_examples=150)
@given(st.text(alphabet="{}a ", max_size=30))
def test_braces_agree_with_the_definition(text: str) -> None:
    assert unbalanced_braces(text) == braces_by_hand(text)


@settings(max_examples=150)
@given(st.text(alphabet=st.sampled_from([*"aZ1 {}^\\[~]|€\f\n\r\x1b-é", "😀", "ü", "\u0416"]), max_size=30))
def test_sms_length_agrees_with_the_definition(text: str) -> None:
    assert sms_length(text) == sms_by_hand(text)


def test_a_megabyte_template_is_one_pass() -> None:
    text = "{{name}} " * 120_000
    assert unbalanced_braces(text) is None
    assert unbalanced_braces(text + "}}") == "'}}' without a matching '{{'"
    assert sms_length("€" * 500_000) == (1_000_000, GSM7_LIMIT, "GSM-7")
